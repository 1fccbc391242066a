/**
 * The fault harness's workload checkers on crafted histories: each anomaly they exist to find is
 * found (with the evidence named), and sound histories pass. The linearizability checker has its
 * own tests (checker.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Prng } from '../sim/prng.ts';
import { checkAppendHistory, realTimeEdges, type MicroOp, type Txn } from './workloads/append-check.ts';
import { checkLease, expiryBound, type LeaseCheckContext, type LeaseLog } from './workloads/lease-check.ts';
import { checkLock, type Acquisition } from './workloads/lock-check.ts';
import { agreeOnHistory, checkAcknowledged, checkWatcher, type WatchedEvent } from './workloads/watch-check.ts';
import { planPartition, PARTITION_KINDS } from './nemesis/partitions.ts';

// ---- list append ----------------------------------------------------------------------------

let nextId = 0;
function txn(process: number, call: number, ret: number | null, mops: MicroOp[], status: Txn['status'] = 'ok'): Txn {
  return { id: nextId++, process, call, ret, status, mops };
}
const r = (key: string, value: number[] | null): MicroOp => ({ f: 'r', key, value });
const a = (key: string, value: number): MicroOp => ({ f: 'append', key, value });
const kinds = (txns: Txn[], final: Record<string, number[]>): string[] => checkAppendHistory(txns, new Map(Object.entries(final))).map((x) => x.kind);

test('append: a serial history of appends and reads is clean', () => {
  const h = [txn(0, 0, 1, [a('x', 1)]), txn(1, 2, 3, [r('x', [1]), a('y', 2)]), txn(0, 4, 5, [r('x', [1]), r('y', [2]), a('x', 3)]), txn(1, 6, 7, [r('x', [1, 3])])];
  assert.deepEqual(kinds(h, { x: [1, 3], y: [2] }), []);
});

test('append: lost, duplicated, garbage and aborted elements; incompatible orders', () => {
  const ok = txn(0, 0, 1, [a('x', 1)]);
  const failed = txn(1, 0, 1, [a('x', 2)], 'fail');
  assert.deepEqual(kinds([ok, failed], { x: [] }), ['lost append']);
  assert.ok(kinds([ok], { x: [1, 1] }).includes('duplicate elements'));
  assert.ok(kinds([ok], { x: [1, 9] }).includes('garbage read'));
  assert.ok(kinds([ok, failed], { x: [1, 2] }).includes('aborted read (G1a)'));
  const reader1 = txn(2, 2, 3, [r('x', [1, 4])]);
  const w4 = txn(3, 0, 1, [a('x', 4)]);
  const w5 = txn(3, 0, 1, [a('x', 5)]);
  assert.ok(kinds([ok, w4, w5, reader1], { x: [1, 5, 4] }).includes('incompatible order'));
});

test('append: an indeterminate transaction half visible is not atomic', () => {
  const t = txn(0, 0, null, [a('x', 1), a('y', 2)], 'info');
  assert.deepEqual(kinds([t], { x: [1], y: [] }), ['non-atomic transaction']);
  assert.deepEqual(kinds([t], { x: [1], y: [2] }), []);
  assert.deepEqual(kinds([t], { x: [], y: [] }), []);
});

test('append: G0, G1c and G-single cycles are found and named', () => {
  // G0: x has T1 then T2, y has T2 then T1.
  const t1 = txn(0, 0, 10, [a('x', 1), a('y', 12)]);
  const t2 = txn(1, 0, 10, [a('x', 2), a('y', 11)]);
  const g0 = checkAppendHistory([t1, t2], new Map([['x', [1, 2]], ['y', [11, 12]]]));
  assert.equal(g0[0]?.kind, 'G0 (write cycle)');
  assert.match(g0[0]!.details, /-ww\(x\)->/);
  // G1c: T1 reads T2's append to y, T2 reads T1's append to x.
  const u1 = txn(0, 0, 10, [r('y', [21]), a('x', 20)]);
  const u2 = txn(1, 0, 10, [r('x', [20]), a('y', 21)]);
  assert.equal(checkAppendHistory([u1, u2], new Map([['x', [20]], ['y', [21]]]))[0]?.kind, 'G1c (circular information flow)');
  // Write skew (G2 with two anti-dependencies) and read skew (G-single).
  const s1 = txn(0, 0, 10, [r('x', []), r('y', []), a('x', 30)]);
  const s2 = txn(1, 0, 10, [r('x', []), r('y', []), a('y', 31)]);
  assert.equal(checkAppendHistory([s1, s2], new Map([['x', [30]], ['y', [31]]]))[0]?.kind, 'G2 (anti-dependency cycle)');
  const v1 = txn(0, 0, 10, [a('x', 40), a('y', 41)]);
  const v2 = txn(1, 0, 10, [r('x', []), r('y', [41])]);
  assert.equal(checkAppendHistory([v1, v2], new Map([['x', [40]], ['y', [41]]]))[0]?.kind, 'G-single (read skew: one anti-dependency)');
});

test('append: a stale read is a real-time cycle; the same read concurrent with the write is fine', () => {
  const w = txn(0, 0, 5, [a('x', 1)]);
  const stale = txn(1, 6, 8, [r('x', [])]);
  assert.deepEqual(kinds([w, stale], { x: [1] }), ['strict serializability (real-time cycle)']);
  const concurrent = txn(1, 4, 8, [r('x', [])]);
  assert.deepEqual(kinds([w, concurrent], { x: [1] }), []);
});

test('append: a client that misses its own acknowledged append breaks read-your-writes', () => {
  const w = txn(0, 0, 5, [a('x', 1)]);
  const own = txn(0, 6, 8, [r('x', [])]);
  assert.ok(kinds([w, own], { x: [1] }).includes('read-your-writes'));
});

test('append: real-time edges are the transitive reduction of "completed before invoked"', () => {
  const t = [txn(0, 0, 1, []), txn(1, 2, 3, []), txn(2, 4, 5, []), txn(3, 0.5, 6, [])];
  const edges = realTimeEdges(t).map(([f, to]) => `${f - t[0]!.id}->${to - t[0]!.id}`);
  assert.deepEqual(edges.sort(), ['0->1', '1->2']);
});

// ---- leases ---------------------------------------------------------------------------------

const quiet: LeaseCheckContext = { electionTimeoutMs: 1000, slackMs: 500, unansweredRenewalMs: 5000, leaderChanges: [], faultIntervals: [], clockJumps: [] };
function lease(over: Partial<LeaseLog>): LeaseLog {
  return { id: '1', key: 'le/1', ttlMs: 3000, renewals: [{ sent: 0, answered: 10, ttl: 3 }], keyWrittenAt: 20, reads: [], revoked: null, revokeSentAt: null, ...over };
}

test('lease: gone before TTL after a renewal is an early expiry, unless a clock jump explains it', () => {
  const early = lease({ renewals: [{ sent: 0, answered: 10, ttl: 3 }, { sent: 1000, answered: 1010, ttl: 3 }], reads: [{ call: 3500, ret: 3600, present: false }] });
  assert.deepEqual(checkLease(early, quiet).map((x) => x.kind), ['lease expired early']);
  assert.deepEqual(checkLease(early, { ...quiet, clockJumps: [{ at: 2000, ms: 500 }] }), []);
  const ttl0 = lease({ renewals: [{ sent: 0, answered: 10, ttl: 3 }, { sent: 1000, answered: 1010, ttl: 3 }, { sent: 2000, answered: 2010, ttl: 0 }] });
  assert.deepEqual(checkLease(ttl0, quiet).map((x) => x.kind), ['lease expired early']);
  const fine = lease({ reads: [{ call: 3100, ret: 3200, present: false }] });
  assert.deepEqual(checkLease(fine, quiet), []);
});

test('lease: a key seen after its bound outlived its lease; leader changes and faults push the bound', () => {
  const bound = expiryBound(3000, 10, quiet);
  assert.equal(bound, 10 + 3000 + 1000 + 500);
  const late = lease({ reads: [{ call: bound + 1, ret: bound + 50, present: true }] });
  assert.deepEqual(checkLease(late, quiet).map((x) => x.kind), ['key outlived its lease']);
  assert.deepEqual(checkLease(late, { ...quiet, leaderChanges: [2000] }), []);
  assert.equal(expiryBound(3000, 10, { ...quiet, faultIntervals: [[100, 8000]] }), 8000 + 4500);
});

test('lease: a key read after an acknowledged revoke survived it', () => {
  const l = lease({ revoked: { call: 100, ret: 200 }, revokeSentAt: 100, reads: [{ call: 250, ret: 300, present: true }] });
  assert.deepEqual(checkLease(l, quiet).map((x) => x.kind), ['key survived revoke']);
});

// ---- locks ----------------------------------------------------------------------------------

const put = (revision: number, key: string, value = ''): WatchedEvent => ({ revision, type: 'PUT', key, value });
const del = (revision: number, key: string): WatchedEvent => ({ revision, type: 'DELETE', key, value: '' });

test('lock: holders in turn with increasing fenced writes pass; two owners or a stale token do not', () => {
  const history = [put(10, 'lk/a'), put(11, 'lk/b'), put(12, 'lkres', '10:1'), del(13, 'lk/a'), put(14, 'lkres', '11:1'), del(15, 'lk/b')];
  const good: Acquisition[] = [
    { client: 0, token: 10, revision: 10, at: 1 },
    { client: 1, token: 11, revision: 13, at: 2 },
  ];
  assert.deepEqual(checkLock(good, history, 'lk/', 'lkres'), []);
  const early: Acquisition[] = [good[0]!, { client: 1, token: 11, revision: 12, at: 2 }];
  assert.deepEqual(checkLock(early, history, 'lk/', 'lkres').map((x) => x.kind), ['mutual exclusion violated']);
  const backwards = [...history, put(16, 'lkres', '10:2')];
  assert.deepEqual(checkLock(good, backwards, 'lk/', 'lkres').map((x) => x.kind), ['fencing token went backwards']);
  const twice: Acquisition[] = [good[0]!, { client: 2, token: 10, revision: 10, at: 3 }];
  assert.deepEqual(checkLock(twice, history, 'lk/', 'lkres').map((x) => x.kind), ['token granted twice']);
});

// ---- watch ----------------------------------------------------------------------------------

test('watch: a watcher must receive exactly the history from its start; members must agree', () => {
  const h = [put(5, 'wa/0', 'a'), put(6, 'wa/1', 'b'), put(6, 'wa/2', 'b'), del(7, 'wa/0'), put(8, 'wa/1', 'c')];
  const w = (events: WatchedEvent[]) => checkWatcher({ name: 'w', startRevision: 6, events, sessions: ['m0'] }, h).map((x) => x.kind);
  assert.deepEqual(w(h.slice(1)), []);
  assert.deepEqual(w(h.slice(1, 3)), [], 'a prefix is fine: the watcher may not have caught up');
  assert.deepEqual(w([h[1]!, h[2]!, h[4]!]), ['gap']);
  assert.deepEqual(w([h[1]!, h[2]!, h[2]!]), ['duplicate event']);
  assert.deepEqual(w([h[1]!, h[3]!, h[2]!]), ['gap']);
  assert.deepEqual(w([h[1]!, put(6, 'wa/2', 'x')]), ['event that did not happen']);
  assert.deepEqual(agreeOnHistory(new Map([['m0', h], ['m1', h]])).anomalies, []);
  assert.equal(agreeOnHistory(new Map([['m0', h], ['m1', h.slice(0, 4)]])).anomalies[0]?.kind, 'members disagree on history');
  assert.deepEqual(checkAcknowledged([{ revision: 8, type: 'PUT', key: 'wa/1', value: 'c' }], h), []);
  assert.equal(checkAcknowledged([{ revision: 9, type: 'PUT', key: 'wa/1', value: 'd' }], h)[0]?.kind, 'lost acknowledged write');
});

// ---- partitions -----------------------------------------------------------------------------

test('partitions: every shape cuts only links between members, and leaves a way to a quorum', () => {
  const members = ['m0', 'm1', 'm2', 'm3', 'm4'];
  const rng = new Prng(7);
  for (const kind of PARTITION_KINDS) {
    for (let i = 0; i < 20; i++) {
      const p = planPartition(kind, members, 'm0', rng);
      const cut = new Set(p.blocked.map(([f, t]) => `${f}>${t}`));
      for (const [f, t] of p.blocked) assert.ok(members.includes(f) && members.includes(t) && f !== t);
      // Some majority still hears each other both ways.
      const connected = (x: string, y: string): boolean => !cut.has(`${x}>${y}`) && !cut.has(`${y}>${x}`);
      const hasQuorum = members.some((c) => members.filter((m) => m === c || connected(c, m)).length >= 3);
      assert.ok(hasQuorum, `${kind}: ${p.description}`);
      if (kind === 'isolated-leader') assert.equal(p.blocked.length, 8);
      if (kind === 'one-way') assert.equal(p.blocked.length, 4);
    }
  }
});
