/**
 * Users, roles and permissions as the auth layer keeps them (etcd's authpb.User, authpb.Role and
 * authpb.Permission), and who a request runs as.
 */

/** The user that must exist, holding the root role, before auth can be enabled. */
export const ROOT_USER = 'root';
/** The role that grants everything (it needs no role record to be granted). */
export const ROOT_ROLE = 'root';

export type PermissionType = 'READ' | 'WRITE' | 'READWRITE';
export const PERMISSION_TYPES: readonly PermissionType[] = ['READ', 'WRITE', 'READWRITE'];

/**
 * A key permission in etcd's conventions: an empty rangeEnd means the one key, rangeEnd "\0"
 * means every key from `key` on, anything else the range [key, rangeEnd).
 */
export interface Permission {
  readonly type: PermissionType;
  readonly key: Uint8Array;
  readonly rangeEnd: Uint8Array;
}

export interface User {
  readonly name: string;
  /** The password hash (kdf.ts encoding); empty for a user created without a password. */
  readonly password: Uint8Array;
  /** Role names, sorted (byte order of their UTF-8, as etcd's sort.Strings). */
  readonly roles: readonly string[];
  /** Created with --no-password: may never authenticate with a password (certificate CN only). */
  readonly noPassword: boolean;
}

export interface Role {
  readonly name: string;
  /** Sorted by key (etcd keeps them so, and lists them in this order). */
  readonly permissions: readonly Permission[];
}

/**
 * Who a request runs as: a user name and the auth revision its credentials were checked at.
 * Revision 0 means no credentials at all (etcd's empty AuthInfo): with auth enabled such a
 * request fails with "user name is empty".
 */
export interface AuthInfo {
  readonly user: string;
  readonly revision: number;
}

export const NO_USER: AuthInfo = Object.freeze({ user: '', revision: 0 });
