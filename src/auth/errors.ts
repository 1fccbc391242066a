/**
 * The auth layer's expected failures: one code per condition, stable and never reused. The
 * message is the text of etcd's auth package for that condition ("auth: …"): the etcd front end
 * maps codes to its client-visible wording ("etcdserver: …"), except on the few calls where etcd
 * itself passes the auth package's error through unconverted (Hash, HashKV, Alarm), which then
 * show this text.
 */
export const AUTH_ERRORS = {
  AUTH_ROOT_USER_NOT_EXIST: 'auth: root user does not exist',
  AUTH_ROOT_ROLE_NOT_EXIST: 'auth: root user does not have root role',
  AUTH_USER_EXISTS: 'auth: user already exists',
  AUTH_USER_EMPTY: 'auth: user name is empty',
  AUTH_USER_NOT_FOUND: 'auth: user not found',
  AUTH_ROLE_EXISTS: 'auth: role already exists',
  AUTH_ROLE_NOT_FOUND: 'auth: role not found',
  AUTH_ROLE_EMPTY: 'auth: role name is empty',
  AUTH_FAILED: 'auth: authentication failed, invalid user ID or password',
  AUTH_NO_PASSWORD_USER: 'auth: authentication failed, password was given for no password user',
  AUTH_PERMISSION_DENIED: 'auth: permission denied',
  AUTH_ROLE_NOT_GRANTED: 'auth: role is not granted to the user',
  AUTH_PERMISSION_NOT_GRANTED: 'auth: permission is not granted to the role',
  AUTH_NOT_ENABLED: 'auth: authentication is not enabled',
  AUTH_OLD_REVISION: 'auth: revision in header is old',
  AUTH_INVALID_TOKEN: 'auth: invalid auth token',
  AUTH_INVALID_MGMT: 'auth: invalid auth management',
  AUTH_PERMISSION_NOT_GIVEN: 'auth: permission not given',
  /** More password hashings waiting than AUTH_LIMITS.kdfWaitingMax (a Conclave limit). */
  AUTH_KDF_BUSY: 'auth: too many password hashings waiting',
  /** A user or role name longer than AUTH_LIMITS.nameBytesMax (a Conclave limit; etcd has none). */
  AUTH_NAME_TOO_LONG: 'auth: name is too long',
} as const;

export type AuthErrorCode = keyof typeof AUTH_ERRORS;

export class AuthError extends Error {
  constructor(
    readonly code: AuthErrorCode,
    options?: { cause?: unknown },
  ) {
    super(AUTH_ERRORS[code], options);
    this.name = 'AuthError';
  }
}

/** Thrown by configuration parsing (--auth-token and its key files). */
export class AuthOptionsError extends Error {
  readonly code = 'AUTH_INVALID_OPTIONS';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AuthOptionsError';
  }
}
