/**
 * Applies one auth change (anything but authenticate) to the store's meta space, with etcd's
 * rules and errors. Every change that does something bumps the auth revision, except enabling
 * auth (as in etcd: enabling changes no one's rights). A refused change throws an AuthError and
 * writes nothing. Deterministic: it reads only the state and the request.
 */
import type { MetaWriter } from '../mvcc/index.ts';
import { AUTH_NAMESPACE, ENABLED_KEY, encodeRevision, encodeRole, encodeUser, nameKey, REVISION_KEY, ROLES_NAMESPACE, USERS_NAMESPACE } from './codec.ts';
import { AuthError } from './errors.ts';
import { AUTH_LIMITS } from './limits.ts';
import type { AuthRequest } from './requests.ts';
import type { AuthState } from './state.ts';
import { ROOT_ROLE, ROOT_USER, type Permission, type Role, type User } from './types.ts';

/** What an applied change means for issued tokens. */
export interface AuthChange {
  /** The auth state changed (the member must reload it). */
  readonly changed: boolean;
  /** This user's tokens are void (deleted, or its password changed). */
  readonly invalidatesUser?: string;
  /** Auth was disabled: every token is void. */
  readonly disabled?: boolean;
}

export type AuthChangeRequest = Exclude<AuthRequest, { op: 'authenticate' }>;

const utf8 = new TextEncoder();
const UNCHANGED: AuthChange = { changed: false };
const ENABLED = Uint8Array.of(1);
const DISABLED = Uint8Array.of(0);

function byUtf8(a: string, b: string): number {
  return Buffer.compare(utf8.encode(a), utf8.encode(b));
}

/** Refuses names the meta space cannot key (a Conclave limit; see AUTH_LIMITS.nameBytesMax). */
export function checkName(name: string): void {
  if (utf8.encode(name).byteLength > AUTH_LIMITS.nameBytesMax) throw new AuthError('AUTH_NAME_TOO_LONG');
}

function bumpRevision(state: AuthState, meta: MetaWriter): void {
  meta.put(AUTH_NAMESPACE, REVISION_KEY, encodeRevision(state.revision + 1));
}

function putUser(meta: MetaWriter, u: User): void {
  meta.put(USERS_NAMESPACE, nameKey(u.name), encodeUser(u));
}

function putRole(meta: MetaWriter, r: Role): void {
  meta.put(ROLES_NAMESPACE, nameKey(r.name), encodeRole(r));
}

function existingUser(state: AuthState, name: string): User {
  const u = state.user(name);
  if (u === undefined) throw new AuthError('AUTH_USER_NOT_FOUND');
  return u;
}

function existingRole(state: AuthState, name: string): Role {
  const r = state.role(name);
  if (r === undefined) throw new AuthError('AUTH_ROLE_NOT_FOUND');
  return r;
}

/**
 * etcd's RoleGrantPermission: the first permission whose key is not below the new one is updated
 * if it has the same key and range end; otherwise the new permission is added and the list kept
 * sorted by key (permissions with equal keys keep their order). Like etcd, an equal permission
 * further on is not looked for, so granting [k, ∞) after the key k alone adds a second entry.
 */
function grant(permissions: readonly Permission[], p: Permission): Permission[] {
  const list = [...permissions];
  const at = list.findIndex((q) => Buffer.compare(q.key, p.key) >= 0);
  const q = at < 0 ? undefined : list[at];
  if (q !== undefined && Buffer.compare(q.key, p.key) === 0 && Buffer.compare(q.rangeEnd, p.rangeEnd) === 0) {
    list[at] = { ...q, type: p.type };
    return list;
  }
  list.push(p);
  return list.sort((a, b) => Buffer.compare(a.key, b.key));
}

export function applyAuthChange(state: AuthState, meta: MetaWriter, r: AuthChangeRequest): AuthChange {
  switch (r.op) {
    case 'authEnable': {
      if (state.enabled) return UNCHANGED;
      const root = state.user(ROOT_USER);
      if (root === undefined) throw new AuthError('AUTH_ROOT_USER_NOT_EXIST');
      if (!root.roles.includes(ROOT_ROLE)) throw new AuthError('AUTH_ROOT_ROLE_NOT_EXIST');
      meta.put(AUTH_NAMESPACE, ENABLED_KEY, ENABLED);
      return { changed: true };
    }
    case 'authDisable':
      if (!state.enabled) return UNCHANGED;
      meta.put(AUTH_NAMESPACE, ENABLED_KEY, DISABLED);
      bumpRevision(state, meta);
      return { changed: true, disabled: true };
    case 'userAdd':
      if (r.name === '') throw new AuthError('AUTH_USER_EMPTY');
      checkName(r.name);
      if (state.user(r.name) !== undefined) throw new AuthError('AUTH_USER_EXISTS');
      putUser(meta, { name: r.name, password: r.noPassword ? new Uint8Array(0) : r.password, roles: [], noPassword: r.noPassword });
      bumpRevision(state, meta);
      return { changed: true };
    case 'userDelete':
      if (state.enabled && r.name === ROOT_USER) throw new AuthError('AUTH_INVALID_MGMT');
      existingUser(state, r.name);
      meta.delete(USERS_NAMESPACE, nameKey(r.name));
      bumpRevision(state, meta);
      return { changed: true, invalidatesUser: r.name };
    case 'userChangePassword': {
      const u = existingUser(state, r.name);
      // A user without a password stays so (it authenticates by certificate only).
      putUser(meta, { ...u, password: u.noPassword ? u.password : r.password });
      bumpRevision(state, meta);
      return { changed: true, invalidatesUser: r.name };
    }
    case 'userGrantRole': {
      const u = existingUser(state, r.user);
      if (r.role !== ROOT_ROLE) existingRole(state, r.role);
      if (u.roles.includes(r.role)) return UNCHANGED;
      putUser(meta, { ...u, roles: [...u.roles, r.role].sort(byUtf8) });
      bumpRevision(state, meta);
      return { changed: true };
    }
    case 'userRevokeRole': {
      if (state.enabled && r.name === ROOT_USER && r.role === ROOT_ROLE) throw new AuthError('AUTH_INVALID_MGMT');
      const u = existingUser(state, r.name);
      if (!u.roles.includes(r.role)) throw new AuthError('AUTH_ROLE_NOT_GRANTED');
      putUser(meta, { ...u, roles: u.roles.filter((x) => x !== r.role) });
      bumpRevision(state, meta);
      return { changed: true };
    }
    case 'roleAdd':
      if (r.name === '') throw new AuthError('AUTH_ROLE_EMPTY');
      checkName(r.name);
      if (state.role(r.name) !== undefined) throw new AuthError('AUTH_ROLE_EXISTS');
      putRole(meta, { name: r.name, permissions: [] });
      bumpRevision(state, meta);
      return { changed: true };
    case 'roleDelete':
      if (state.enabled && r.role === ROOT_ROLE) throw new AuthError('AUTH_INVALID_MGMT');
      existingRole(state, r.role);
      meta.delete(ROLES_NAMESPACE, nameKey(r.role));
      for (const u of state.users()) {
        if (u.roles.includes(r.role)) putUser(meta, { ...u, roles: u.roles.filter((x) => x !== r.role) });
      }
      bumpRevision(state, meta);
      return { changed: true };
    case 'roleGrantPermission': {
      const role = existingRole(state, r.name);
      putRole(meta, { name: role.name, permissions: grant(role.permissions, r.permission) });
      bumpRevision(state, meta);
      return { changed: true };
    }
    case 'roleRevokePermission': {
      const role = existingRole(state, r.role);
      const kept = role.permissions.filter((p) => Buffer.compare(p.key, r.key) !== 0 || Buffer.compare(p.rangeEnd, r.rangeEnd) !== 0);
      if (kept.length === role.permissions.length) throw new AuthError('AUTH_PERMISSION_NOT_GRANTED');
      putRole(meta, { name: role.name, permissions: kept });
      bumpRevision(state, meta);
      return { changed: true };
    }
  }
}
