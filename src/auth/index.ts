/** Users, roles, key-range permissions and tokens: the auth layer (pure; the member drives it). */
export { AUTH_ERRORS, AuthError, AuthOptionsError, type AuthErrorCode } from './errors.ts';
export { AUTH_LIMITS } from './limits.ts';
export { NO_USER, PERMISSION_TYPES, ROOT_ROLE, ROOT_USER, type AuthInfo, type Permission, type PermissionType, type Role, type User } from './types.ts';
export { AUTH_OPS, isAuthRequest, type AuthOp, type AuthRequest } from './requests.ts';
export { AuthState, type Access, type UserPermissions } from './state.ts';
export { applyAuthChange, checkName, type AuthChange, type AuthChangeRequest } from './mutations.ts';
export { checkLeaseRead, checkLeaseWrite, checkRequest, putsWithLease, type LeaseKeys } from './check.ts';
export { etcdInterval, RangeSet, successor, type KeyInterval } from './ranges.ts';
export { DEFAULT_SCRYPT_PARAMS, hashPassword, verifyPassword, type ScryptParams } from './kdf.ts';
export { SimpleTokens } from './simple-tokens.ts';
export { JwtTokens, JWT_SIGN_METHODS, type JwtOptions, type JwtSignMethod } from './jwt.ts';
export { parseGoDuration, parseTokenOptions, type TokenOptions } from './token-options.ts';
