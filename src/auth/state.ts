/**
 * The replicated auth state as of one point in the log, read from the store's meta space: whether
 * auth is enabled, its revision, the users and roles; and the answers to "may this user read or
 * write these keys", from each user's permissions merged into one RangeSet per access kind
 * (built on first use, kept with the state).
 *
 * A state is immutable. The member keeps the current one and replaces it after every auth change
 * it applies and after a snapshot install, so checks on the request path cost a lookup and a
 * binary search.
 */
import type { MetaReader } from '../mvcc/index.ts';
import {
  AUTH_NAMESPACE,
  decodeRevision,
  decodeRole,
  decodeUser,
  ENABLED_KEY,
  nameOfKey,
  REVISION_KEY,
  ROLES_NAMESPACE,
  USERS_NAMESPACE,
} from './codec.ts';
import { AuthError } from './errors.ts';
import { etcdInterval, RangeSet, type KeyInterval } from './ranges.ts';
import { ROOT_ROLE, type AuthInfo, type Role, type User } from './types.ts';

/** What one user may touch: the union of its roles' permissions. */
export interface UserPermissions {
  readonly read: RangeSet;
  readonly write: RangeSet;
}

export type Access = 'read' | 'write';

export class AuthState {
  private readonly permissionCache = new Map<string, UserPermissions>();

  private constructor(
    readonly enabled: boolean,
    /** Counts changes to users, roles and permissions (and disables); 1 in a new store, as in etcd. */
    readonly revision: number,
    private readonly usersByName: ReadonlyMap<string, User>,
    private readonly rolesByName: ReadonlyMap<string, Role>,
  ) {}

  static load(meta: MetaReader): AuthState {
    const enabled = meta.get(AUTH_NAMESPACE, ENABLED_KEY);
    const revision = meta.get(AUTH_NAMESPACE, REVISION_KEY);
    const users = new Map<string, User>();
    for (const e of meta.entries(USERS_NAMESPACE)) {
      const name = nameOfKey(e.key);
      users.set(name, decodeUser(name, e.value));
    }
    const roles = new Map<string, Role>();
    for (const e of meta.entries(ROLES_NAMESPACE)) {
      const name = nameOfKey(e.key);
      roles.set(name, decodeRole(name, e.value));
    }
    return new AuthState(enabled?.[0] === 1, revision === undefined ? 1 : decodeRevision(revision), users, roles);
  }

  user(name: string): User | undefined {
    return this.usersByName.get(name);
  }

  role(name: string): Role | undefined {
    return this.rolesByName.get(name);
  }

  /** Users in name order (the store's key order). */
  users(): User[] {
    return [...this.usersByName.values()];
  }

  /** Roles in name order. */
  roles(): Role[] {
    return [...this.rolesByName.values()];
  }

  hasRole(userName: string, role: string): boolean {
    return this.usersByName.get(userName)?.roles.includes(role) ?? false;
  }

  /** The merged permissions of a user (none for an unknown user). */
  permissions(userName: string): UserPermissions {
    let p = this.permissionCache.get(userName);
    if (p === undefined) {
      const read: KeyInterval[] = [];
      const write: KeyInterval[] = [];
      for (const roleName of this.usersByName.get(userName)?.roles ?? []) {
        for (const perm of this.rolesByName.get(roleName)?.permissions ?? []) {
          const i = etcdInterval(perm.key, perm.rangeEnd);
          if (perm.type !== 'WRITE') read.push(i);
          if (perm.type !== 'READ') write.push(i);
        }
      }
      p = { read: RangeSet.of(read), write: RangeSet.of(write) };
      this.permissionCache.set(userName, p);
    }
    return p;
  }

  /**
   * Whether `info` may read or write the keys [key, rangeEnd) (etcd's conventions), as etcd's
   * isOpPermitted decides: nothing is checked while auth is disabled; no credentials → "user
   * name is empty"; credentials older than the state → "revision in header is old"; an unknown
   * user → denied; the root role → everything.
   */
  checkAccess(info: AuthInfo, access: Access, key: Uint8Array, rangeEnd: Uint8Array): AuthError | null {
    if (!this.enabled) return null;
    if (info.revision === 0) return new AuthError('AUTH_USER_EMPTY');
    if (info.revision < this.revision) return new AuthError('AUTH_OLD_REVISION');
    const user = this.usersByName.get(info.user);
    if (user === undefined) return new AuthError('AUTH_PERMISSION_DENIED');
    if (user.roles.includes(ROOT_ROLE)) return null;
    const p = this.permissions(info.user);
    return (access === 'read' ? p.read : p.write).covers(etcdInterval(key, rangeEnd)) ? null : new AuthError('AUTH_PERMISSION_DENIED');
  }

  /**
   * Whether `info` may administer auth and the cluster (etcd's IsAdminPermitted): anyone while
   * auth is disabled, then only a user holding the root role. Like etcd, the credentials'
   * revision is not compared here.
   */
  checkAdmin(info: AuthInfo): AuthError | null {
    if (!this.enabled) return null;
    if (info.user === '') return new AuthError('AUTH_USER_EMPTY');
    const user = this.usersByName.get(info.user);
    if (user === undefined) return new AuthError('AUTH_USER_NOT_FOUND');
    return user.roles.includes(ROOT_ROLE) ? null : new AuthError('AUTH_PERMISSION_DENIED');
  }
}
