/**
 * Auth on the apply path with a real store: every member decides from the entry alone (the
 * credentials in its envelope and the auth state at that point of the log), so a right revoked
 * between propose and apply is honoured, a refused entry changes nothing but still counts as
 * applied, the member's own requests are never refused, and how entries are batched into apply
 * calls does not change any outcome (lease puts included).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { Lessor } from '../../src/lease/index.ts';
import { MvccStore } from '../../src/mvcc/index.ts';
import { EntryKind, type Entry } from '../../src/raft/types.ts';
import { ApplyMachine, type ApplyOutcome } from '../../src/server/apply.ts';
import { bindLessor } from '../../src/server/leases.ts';
import { encodeEnvelope, type InternalRequest } from '../../src/server/request-codec.ts';
import type { AuthInfo } from '../../src/auth/index.ts';
import { storeAuth } from '../helpers/server-auth.ts';
import { b, tempDir } from '../mvcc/helpers.ts';

const ME = '00000000000000aa';
const cleanups: Array<() => void> = [];
after(() => cleanups.forEach((c) => c()));

interface Step {
  readonly request: InternalRequest;
  readonly as: AuthInfo | null;
}

/** Applies `steps` as entries 1…n, in apply calls of the given sizes; returns each outcome as text. */
async function run(steps: readonly Step[], batches: readonly number[]): Promise<{ outcomes: string[]; store: MvccStore }> {
  const t = tempDir('conclave-auth-apply-');
  cleanups.push(t.cleanup);
  const lessor = new Lessor();
  const store = await MvccStore.open(t.dir, { leaseExists: (id) => lessor.has(id) });
  bindLessor(lessor, store);
  const outcomes = new Map<number, ApplyOutcome>();
  const machine = new ApplyMachine(
    () => store,
    ME,
    { onResult: (id, o) => outcomes.set(id, o), onConfChange: () => {},
      onMembersChanged: () => {}, installSnapshot: () => Promise.resolve(), onEmptyEntry: () => {} },
    { lessor: () => lessor, now: () => 0 },
    storeAuth(() => store, lessor),
  );
  const entries: Entry[] = steps.map((s, i) => ({ term: 1, index: i + 1, kind: EntryKind.Normal, data: encodeEnvelope({ proposer: ME, requestId: i + 1, as: s.as, request: s.request }) }));
  let at = 0;
  for (const size of batches) {
    machine.apply(entries.slice(at, at + size));
    at += size;
  }
  machine.apply(entries.slice(at));
  // A replay of everything is skipped entirely.
  const before = outcomes.size;
  machine.apply(entries);
  assert.equal(outcomes.size, before);
  return { outcomes: steps.map((_, i) => { const o = outcomes.get(i + 1); return o === undefined ? 'none' : o.ok ? 'ok' : o.error.code; }), store };
}

const pw = b('hash');
const ROOT: AuthInfo = { user: 'root', revision: 0 }; // revision is not compared for admin requests
const put = (key: string, lease = 0n): InternalRequest => ({ op: 'put', request: { key: b(key), value: b('v'), lease } });

/** Root, a user u with role r that may write k/…, auth on: the auth revision ends at 7. */
const SETUP: Step[] = [
  { request: { op: 'userAdd', name: 'root', password: pw, noPassword: false }, as: null },
  { request: { op: 'userGrantRole', user: 'root', role: 'root' }, as: null },
  { request: { op: 'userAdd', name: 'u', password: pw, noPassword: false }, as: null },
  { request: { op: 'roleAdd', name: 'r' }, as: null },
  { request: { op: 'roleGrantPermission', name: 'r', permission: { type: 'READWRITE', key: b('k/'), rangeEnd: b('k0') } }, as: null },
  { request: { op: 'userGrantRole', user: 'u', role: 'r' }, as: null },
  { request: { op: 'authEnable' }, as: null },
];
const U: AuthInfo = { user: 'u', revision: 7 };
const ROOT_NOW: AuthInfo = { user: 'root', revision: 7 };

test('a write is checked against the auth state where it lands in the log, and a refusal changes nothing', async () => {
  const steps: Step[] = [
    ...SETUP,
    { request: put('k/1'), as: U },
    { request: put('other'), as: U },
    { request: put('k/2'), as: { user: '', revision: 0 } },
    { request: { op: 'roleAdd', name: 'x' }, as: U },
    { request: { op: 'roleAdd', name: 'x' }, as: { ...ROOT } },
    // Proposed with revision 7, applied after a change: refused as old.
    { request: put('k/3'), as: U },
    { request: put('k/4'), as: { user: 'u', revision: 8 } },
    { request: { op: 'roleRevokePermission', role: 'r', key: b('k/'), rangeEnd: b('k0') }, as: ROOT },
    { request: put('k/5'), as: { user: 'u', revision: 9 } },
    { request: put('k/6'), as: null },
    { request: { op: 'compact', revision: 2 }, as: { user: '', revision: 0 } },
  ];
  const { outcomes, store } = await run(steps, [3, 5, 1]);
  assert.deepEqual(outcomes.slice(SETUP.length), [
    'ok',
    'AUTH_PERMISSION_DENIED',
    'AUTH_USER_EMPTY',
    'AUTH_PERMISSION_DENIED',
    'ok',
    'AUTH_OLD_REVISION',
    'ok',
    'ok',
    'AUTH_PERMISSION_DENIED',
    'ok',
    'ok',
  ]);
  const keys = store.range({ key: b('\0'), rangeEnd: b('\0') }).kvs.map((kv) => Buffer.from(kv.key).toString());
  assert.deepEqual(keys, ['k/1', 'k/4', 'k/6']);
  assert.equal(store.consistentIndex(), steps.length, 'refused entries count as applied');
  store.close();
});

test('outcomes do not depend on batching: lease puts see the attachments of the entries before them', async () => {
  const steps: Step[] = [
    ...SETUP,
    { request: { op: 'leaseGrant', id: 5n, ttl: 60 }, as: U },
    { request: put('k/a', 5n), as: U },
    // Root puts a key u may not write on the same lease: from then on u may neither attach nor revoke.
    { request: put('z', 5n), as: ROOT_NOW },
    { request: put('k/b', 5n), as: U },
    { request: { op: 'leaseRevoke', id: 5n }, as: U },
    { request: { op: 'leaseRevoke', id: 5n }, as: ROOT_NOW },
  ];
  const expected = ['ok', 'ok', 'ok', 'AUTH_PERMISSION_DENIED', 'AUTH_PERMISSION_DENIED', 'ok'];
  for (const batches of [[steps.length], [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], [8, 2, 3], [9, 4]]) {
    const { outcomes, store } = await run(steps, batches);
    assert.deepEqual(outcomes.slice(SETUP.length), expected, `batches ${batches.join(',')}`);
    store.close();
  }
});

