/**
 * How users, roles and the auth flags are stored in the MVCC store's meta space, so that they
 * are part of every snapshot and every member holds the same bytes:
 *
 *   namespace 'auth-users', key = the user name (UTF-8):
 *     u8 format (1) · bytes password hash · u8 flags (1 = no password) · strings roles
 *   namespace 'auth-roles', key = the role name (UTF-8):
 *     u8 format (1) · uint count · count × (u8 type · bytes key · bytes rangeEnd)
 *   namespace 'auth', key 'enabled': u8 0/1; key 'revision': uint
 *
 * Meta entries list in key byte order, which is the order etcd lists users and roles in.
 */
import { CodecError, Reader, Writer } from '../util/binary.ts';
import { PERMISSION_TYPES, type Permission, type Role, type User } from './types.ts';

export const AUTH_NAMESPACE = 'auth';
export const USERS_NAMESPACE = 'auth-users';
export const ROLES_NAMESPACE = 'auth-roles';
export const ENABLED_KEY = new TextEncoder().encode('enabled');
export const REVISION_KEY = new TextEncoder().encode('revision');

const FORMAT = 1;
const NO_PASSWORD_FLAG = 1;
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

export function nameKey(name: string): Uint8Array {
  return utf8.encode(name);
}

export function nameOfKey(key: Uint8Array): string {
  return fromUtf8.decode(key);
}

function checkFormat(r: Reader, what: string): void {
  const f = r.u8();
  if (f !== FORMAT) throw new CodecError(`unknown ${what} record format ${f}`);
}

export function encodeUser(u: User): Uint8Array {
  const w = new Writer(64 + u.password.byteLength);
  w.u8(FORMAT);
  w.bytes(u.password);
  w.u8(u.noPassword ? NO_PASSWORD_FLAG : 0);
  w.strings(u.roles);
  return w.finish();
}

export function decodeUser(name: string, data: Uint8Array): User {
  const r = new Reader(data);
  checkFormat(r, 'user');
  const password = r.bytes();
  const flags = r.u8();
  const roles = r.strings();
  r.done();
  return { name, password, noPassword: (flags & NO_PASSWORD_FLAG) !== 0, roles };
}

export function encodeRole(role: Role): Uint8Array {
  const w = new Writer(64);
  w.u8(FORMAT);
  w.uint(role.permissions.length);
  for (const p of role.permissions) {
    w.u8(PERMISSION_TYPES.indexOf(p.type));
    w.bytes(p.key);
    w.bytes(p.rangeEnd);
  }
  return w.finish();
}

export function decodeRole(name: string, data: Uint8Array): Role {
  const r = new Reader(data);
  checkFormat(r, 'role');
  const n = r.uint();
  const permissions: Permission[] = [];
  for (let i = 0; i < n; i++) {
    const type = PERMISSION_TYPES[r.u8()];
    if (type === undefined) throw new CodecError('unknown permission type in role record');
    permissions.push({ type, key: r.bytes(), rangeEnd: r.bytes() });
  }
  r.done();
  return { name, permissions };
}

export function encodeRevision(revision: number): Uint8Array {
  const w = new Writer(10);
  w.uint(revision);
  return w.finish();
}

export function decodeRevision(data: Uint8Array): number {
  const r = new Reader(data);
  const v = r.uint();
  r.done();
  return v;
}
