/**
 * The auth records on a real store: etcd's rules for users, roles, permissions and enabling; the
 * auth revision (bumped by every change that does something, not by enabling, kept across
 * reopening); and what requests each user may make, nested txns and lease keys included.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { MvccStore, type MvccRequest } from '../../src/mvcc/index.ts';
import {
  applyAuthChange,
  AuthError,
  AuthState,
  checkRequest,
  NO_USER,
  type AuthChangeRequest,
  type AuthErrorCode,
  type AuthInfo,
  type Permission,
} from '../../src/auth/index.ts';
import { b, tempDir } from '../mvcc/helpers.ts';

const dirs: Array<() => void> = [];
after(() => dirs.forEach((c) => c()));

async function openStore(): Promise<{ store: MvccStore; dir: string }> {
  const t = tempDir('conclave-auth-');
  dirs.push(t.cleanup);
  return { store: await MvccStore.open(t.dir), dir: t.dir };
}

/** Applies changes in order (each in its own store write); returns the error code of each, or 'ok'. */
function apply(store: MvccStore, ...changes: AuthChangeRequest[]): string[] {
  return changes.map((c) => {
    let out = 'ok';
    store.write(undefined, (tx) => {
      try {
        if (!applyAuthChange(AuthState.load(tx.meta), tx.meta, c).changed) out = 'unchanged';
      } catch (e) {
        if (!(e instanceof AuthError)) throw e;
        out = e.code;
      }
    });
    return out;
  });
}

const perm = (type: Permission['type'], key: string, rangeEnd = ''): Permission => ({ type, key: b(key), rangeEnd: b(rangeEnd) });
const pw = b('hash');

test('enabling needs the root user with the root role; the revision counts changes but not enabling', async () => {
  const { store, dir } = await openStore();
  const state = () => AuthState.load(store.meta);
  assert.equal(state().revision, 1, 'a new store is at auth revision 1, as etcd');
  assert.deepEqual(apply(store, { op: 'authEnable' }), ['AUTH_ROOT_USER_NOT_EXIST']);
  assert.deepEqual(apply(store, { op: 'userAdd', name: 'root', password: pw, noPassword: false }, { op: 'authEnable' }), ['ok', 'AUTH_ROOT_ROLE_NOT_EXIST']);
  assert.equal(state().revision, 2);
  // The root role needs no record to be granted.
  assert.deepEqual(apply(store, { op: 'userGrantRole', user: 'root', role: 'root' }, { op: 'userGrantRole', user: 'root', role: 'root' }), ['ok', 'unchanged']);
  assert.equal(state().revision, 3, 'granting a role the user has changes nothing');
  assert.deepEqual(apply(store, { op: 'authEnable' }, { op: 'authEnable' }), ['ok', 'unchanged']);
  assert.equal(state().enabled, true);
  assert.equal(state().revision, 3, 'enabling does not bump the revision');
  assert.deepEqual(
    apply(
      store,
      { op: 'userDelete', name: 'root' },
      { op: 'userRevokeRole', name: 'root', role: 'root' },
      { op: 'roleAdd', name: 'root' },
      { op: 'roleDelete', role: 'root' },
    ),
    ['AUTH_INVALID_MGMT', 'AUTH_INVALID_MGMT', 'ok', 'AUTH_INVALID_MGMT'],
  );
  assert.deepEqual(apply(store, { op: 'authDisable' }, { op: 'authDisable' }), ['ok', 'unchanged']);
  assert.equal(state().revision, 5);
  assert.deepEqual(apply(store, { op: 'roleDelete', role: 'root' }), ['ok'], 'with auth disabled the root role may go');
  assert.deepEqual(state().user('root')?.roles, [], 'deleting a role takes it from its users');
  store.close();
  const reopened = await MvccStore.open(dir);
  assert.equal(AuthState.load(reopened.meta).revision, 6);
  assert.equal(AuthState.load(reopened.meta).enabled, false);
  reopened.close();
});

test("users and roles: etcd's errors, sorted role lists, listing in name order", async () => {
  const { store } = await openStore();
  const results = apply(
    store,
    { op: 'userAdd', name: '', password: pw, noPassword: false },
    { op: 'userAdd', name: 'bob', password: pw, noPassword: false },
    { op: 'userAdd', name: 'bob', password: pw, noPassword: false },
    { op: 'userAdd', name: 'alice', password: new Uint8Array(0), noPassword: true },
    { op: 'roleAdd', name: '' },
    { op: 'roleAdd', name: 'zeta' },
    { op: 'roleAdd', name: 'alpha' },
    { op: 'roleAdd', name: 'alpha' },
    { op: 'userGrantRole', user: 'nobody', role: 'alpha' },
    { op: 'userGrantRole', user: 'bob', role: 'nothing' },
    { op: 'userGrantRole', user: 'bob', role: 'zeta' },
    { op: 'userGrantRole', user: 'bob', role: 'alpha' },
    { op: 'userRevokeRole', name: 'bob', role: 'root' },
    { op: 'userRevokeRole', name: 'nobody', role: 'zeta' },
    { op: 'userDelete', name: 'nobody' },
    { op: 'userChangePassword', name: 'nobody', password: pw },
    { op: 'roleDelete', role: 'nothing' },
    { op: 'roleGrantPermission', name: 'nothing', permission: perm('READ', 'k') },
    { op: 'roleRevokePermission', role: 'zeta', key: b('k'), rangeEnd: new Uint8Array(0) },
    { op: 'userAdd', name: 'x'.repeat(513), password: pw, noPassword: false },
  );
  const expected: Array<AuthErrorCode | 'ok'> = [
    'AUTH_USER_EMPTY', 'ok', 'AUTH_USER_EXISTS', 'ok', 'AUTH_ROLE_EMPTY', 'ok', 'ok', 'AUTH_ROLE_EXISTS',
    'AUTH_USER_NOT_FOUND', 'AUTH_ROLE_NOT_FOUND', 'ok', 'ok', 'AUTH_ROLE_NOT_GRANTED', 'AUTH_USER_NOT_FOUND',
    'AUTH_USER_NOT_FOUND', 'AUTH_USER_NOT_FOUND', 'AUTH_ROLE_NOT_FOUND', 'AUTH_ROLE_NOT_FOUND', 'AUTH_PERMISSION_NOT_GRANTED', 'AUTH_NAME_TOO_LONG',
  ];
  assert.deepEqual(results, expected);
  const s = AuthState.load(store.meta);
  assert.deepEqual(s.user('bob')?.roles, ['alpha', 'zeta']);
  assert.deepEqual(s.users().map((u) => u.name), ['alice', 'bob']);
  assert.deepEqual(s.roles().map((r) => r.name), ['alpha', 'zeta']);
  assert.equal(s.user('alice')?.noPassword, true);
  assert.equal(s.user('alice')?.password.byteLength, 0);
  // A user without a password keeps none when "changed" (it authenticates by certificate only).
  apply(store, { op: 'userChangePassword', name: 'alice', password: pw });
  assert.equal(AuthState.load(store.meta).user('alice')?.password.byteLength, 0);
  store.close();
});

test('granting a permission updates the same key and range end, else adds one in key order (etcd quirk kept)', async () => {
  const { store } = await openStore();
  apply(
    store,
    { op: 'roleAdd', name: 'r' },
    { op: 'roleGrantPermission', name: 'r', permission: perm('READ', 'm') },
    { op: 'roleGrantPermission', name: 'r', permission: perm('WRITE', 'a', 'c') },
    { op: 'roleGrantPermission', name: 'r', permission: perm('READWRITE', 'm') },
    // Same key, different range end: etcd looks only at the first permission with this key, so it adds.
    { op: 'roleGrantPermission', name: 'r', permission: perm('READ', 'm', '\0') },
    { op: 'roleGrantPermission', name: 'r', permission: perm('READ', 'm', '\0') },
  );
  const list = (AuthState.load(store.meta).role('r')?.permissions ?? []).map((p) => `${p.type} ${Buffer.from(p.key)} ${JSON.stringify(Buffer.from(p.rangeEnd).toString())}`);
  assert.deepEqual(list, ['WRITE a "c"', 'READWRITE m ""', 'READ m "\\u0000"', 'READ m "\\u0000"']);
  // Revoking removes every permission with that key and range end.
  assert.deepEqual(apply(store, { op: 'roleRevokePermission', role: 'r', key: b('m'), rangeEnd: b('\0') }), ['ok']);
  assert.equal(AuthState.load(store.meta).role('r')?.permissions.length, 2);
  assert.equal(AuthState.load(store.meta).revision, 8);
  store.close();
});

test('permission checks: key, range, prefix, open-ended; revoking takes effect; old revisions and missing users', async () => {
  const { store } = await openStore();
  apply(
    store,
    { op: 'userAdd', name: 'root', password: pw, noPassword: false },
    { op: 'userGrantRole', user: 'root', role: 'root' },
    { op: 'userAdd', name: 'u', password: pw, noPassword: false },
    { op: 'roleAdd', name: 'r' },
    { op: 'userGrantRole', user: 'u', role: 'r' },
    { op: 'roleGrantPermission', name: 'r', permission: perm('READ', 'key') },
    { op: 'roleGrantPermission', name: 'r', permission: perm('READWRITE', 'a', 'c') },
    { op: 'roleGrantPermission', name: 'r', permission: perm('READ', 'p/', 'p0') },
    { op: 'roleGrantPermission', name: 'r', permission: perm('WRITE', 'w', '\0') },
    { op: 'authEnable' },
  );
  const s = AuthState.load(store.meta);
  const u: AuthInfo = { user: 'u', revision: s.revision };
  const root: AuthInfo = { user: 'root', revision: s.revision };
  const E = new Uint8Array(0);
  const code = (e: AuthError | null) => e?.code ?? 'ok';
  const read = (info: AuthInfo, key: string, end = '') => code(s.checkAccess(info, 'read', b(key), end === '' ? E : b(end)));
  const write = (info: AuthInfo, key: string, end = '') => code(s.checkAccess(info, 'write', b(key), end === '' ? E : b(end)));
  assert.equal(read(u, 'key'), 'ok');
  assert.equal(write(u, 'key'), 'AUTH_PERMISSION_DENIED');
  assert.equal(read(u, 'key2'), 'AUTH_PERMISSION_DENIED');
  assert.equal(read(u, 'a', 'c'), 'ok');
  assert.equal(write(u, 'b'), 'ok');
  assert.equal(read(u, 'a', 'd'), 'AUTH_PERMISSION_DENIED');
  assert.equal(read(u, 'p/', 'p0'), 'ok');
  assert.equal(read(u, 'p/x/y'), 'ok');
  assert.equal(write(u, 'p/x'), 'AUTH_PERMISSION_DENIED');
  assert.equal(write(u, 'w', '\0'), 'ok');
  assert.equal(write(u, 'zzz'), 'ok');
  assert.equal(write(u, 'v', '\0'), 'AUTH_PERMISSION_DENIED');
  assert.equal(read(u, 'w'), 'AUTH_PERMISSION_DENIED');
  assert.equal(read(root, '', '\0'), 'ok', 'root reads everything');
  assert.equal(read(NO_USER, 'key'), 'AUTH_USER_EMPTY');
  assert.equal(read({ user: 'ghost', revision: s.revision }, 'key'), 'AUTH_PERMISSION_DENIED');
  assert.equal(read({ user: 'u', revision: s.revision - 1 }, 'key'), 'AUTH_OLD_REVISION');
  assert.equal(code(s.checkAdmin(root)), 'ok');
  assert.equal(code(s.checkAdmin(u)), 'AUTH_PERMISSION_DENIED');
  assert.equal(code(s.checkAdmin(NO_USER)), 'AUTH_USER_EMPTY');
  assert.equal(code(s.checkAdmin({ user: 'ghost', revision: 9 })), 'AUTH_USER_NOT_FOUND');

  apply(store, { op: 'roleRevokePermission', role: 'r', key: b('a'), rangeEnd: b('c') });
  const after = AuthState.load(store.meta);
  assert.equal(after.revision, s.revision + 1);
  assert.equal(code(after.checkAccess(u, 'read', b('b'), E)), 'AUTH_OLD_REVISION', 'credentials from before the change are refused');
  assert.equal(code(after.checkAccess({ user: 'u', revision: after.revision }, 'read', b('b'), E)), 'AUTH_PERMISSION_DENIED');
  assert.equal(code(after.checkAccess({ user: 'u', revision: after.revision }, 'read', b('key'), E)), 'ok');
  store.close();
});

test('requests: every compare and op of a txn, nested txns, prev_kv and lease keys; compaction needs nothing', async () => {
  const { store } = await openStore();
  apply(
    store,
    { op: 'userAdd', name: 'root', password: pw, noPassword: false },
    { op: 'userGrantRole', user: 'root', role: 'root' },
    { op: 'userAdd', name: 'w', password: pw, noPassword: false },
    { op: 'roleAdd', name: 'writer' },
    { op: 'userGrantRole', user: 'w', role: 'writer' },
    { op: 'roleGrantPermission', name: 'writer', permission: perm('WRITE', 'k/', 'k0') },
    { op: 'roleGrantPermission', name: 'writer', permission: perm('READ', 'k/r/', 'k/r0') },
    { op: 'authEnable' },
  );
  const s = AuthState.load(store.meta);
  const w: AuthInfo = { user: 'w', revision: s.revision };
  const leases = new Map<bigint, Uint8Array[]>([[7n, [b('k/a')]], [8n, [b('other')]]]);
  const check = (r: MvccRequest) => checkRequest(s, w, r, (id) => leases.get(id))?.code ?? 'ok';
  const put = (key: string, extra: object = {}) => ({ op: 'put' as const, request: { key: b(key), value: b('v'), ...extra } });
  assert.equal(check(put('k/x')), 'ok');
  assert.equal(check(put('k/x', { prevKv: true })), 'AUTH_PERMISSION_DENIED', 'prev_kv needs read');
  assert.equal(check(put('k/r/x', { prevKv: true })), 'ok');
  assert.equal(check(put('k/x', { lease: 7n })), 'ok');
  assert.equal(check(put('k/x', { lease: 8n })), 'AUTH_PERMISSION_DENIED', "the lease holds a key the user cannot write");
  assert.equal(check(put('k/x', { lease: 9n })), 'ok', 'an unknown lease is the store\'s business');
  assert.equal(check({ op: 'range', request: { key: b('k/x') } }), 'AUTH_PERMISSION_DENIED');
  assert.equal(check({ op: 'deleteRange', request: { key: b('k/'), rangeEnd: b('k0') } }), 'ok');
  assert.equal(check({ op: 'deleteRange', request: { key: b('k/'), rangeEnd: b('k0'), prevKv: true } }), 'AUTH_PERMISSION_DENIED');
  assert.equal(check({ op: 'compact', revision: 1 }), 'ok');
  const txn = (compare: string, ops: object[]) => ({
    op: 'txn' as const,
    request: { compare: [{ result: 'EQUAL' as const, target: 'VERSION' as const, key: b(compare), version: 0 }], success: ops as never[], failure: [] },
  });
  assert.equal(check(txn('k/r/1', [put('k/1')])), 'ok');
  assert.equal(check(txn('k/1', [put('k/1')])), 'AUTH_PERMISSION_DENIED', 'a compare needs read');
  assert.equal(check(txn('k/r/1', [txn('k/r/2', [put('elsewhere')])])), 'AUTH_PERMISSION_DENIED', 'a nested txn is checked');
  assert.equal(check(txn('k/r/1', [txn('k/r/2', [put('k/2')])])), 'ok');
  assert.equal(checkRequest(AuthState.load(store.meta), NO_USER, put('k/x'), () => undefined)?.code, 'AUTH_USER_EMPTY');
  store.close();
});
