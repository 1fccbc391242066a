/** Users, roles, key-range permissions and tokens: the auth layer (pure; the member drives it). */
export { AUTH_ERRORS, AuthError, AuthOptionsError, type AuthErrorCode } from './errors.ts';
export { AUTH_LIMITS } from './limits.ts';
export { NO_USER, PERMISSION_TYPES, ROOT_ROLE, ROOT_USER, type AuthInfo, type Permission, type Role, type User } from './types.ts';
export { AUTH_OPS, isAuthRequest, type AuthRequest } from './requests.ts';
export { AuthState } from './state.ts';
export { applyAuthChange, checkName, type AuthChangeRequest } from './mutations.ts';
export { checkLeaseRead, checkLeaseWrite, checkRequest, putsWithLease } from './check.ts';
export { etcdInterval, RangeSet, type KeyInterval } from './ranges.ts';
export { hashPassword, verifyPassword } from './kdf.ts';
export { SimpleTokens } from './simple-tokens.ts';
export { JwtTokens } from './jwt.ts';
export { parseGoDuration, parseTokenOptions, type TokenOptions } from './token-options.ts';
