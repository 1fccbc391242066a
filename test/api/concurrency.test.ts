/**
 * The Lock and Election recipes inside one member. The lock's wait queue: each waiter watches
 * only its predecessor, so a release wakes the next waiter alone (no thundering herd), a waiter
 * leaving the middle of the queue wakes only its successor, and grants follow the order of the
 * keys' create revisions (reads of the store are counted through a KvApi that counts them).
 * An observer of an election that goes away leaves no watcher behind.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { resolveConfig } from '../../src/server/config.ts';
import { Member, type Logger } from '../../src/server/member.ts';
import type { CallContext } from '../../src/api/grpc/index.ts';
import { NO_USER } from '../../src/auth/index.ts';
import { KvApi } from '../../src/api/etcd/kv.ts';
import { Concurrency } from '../../src/api/etcd/concurrency.ts';
import { LockApi } from '../../src/api/etcd/lock.ts';
import { ElectionApi } from '../../src/api/etcd/election.ts';
import { prefixEnd, type RangeRequest, type RangeResponse } from '../../src/mvcc/index.ts';
import { freePorts } from '../helpers/ports.ts';

const LIMITS = {
  /** Waiters queued behind the holder. */
  waiters: 6,
  /** Any wait for a state of the queue. */
  waitMs: 10_000,
  /** Time given to waiters that should not wake, to show that they do not. */
  quietMs: 200,
} as const;

/** A call of no user (auth is off here), canceled through `signal`. */
const ctx = (signal: AbortSignal = new AbortController().signal): CallContext => ({ method: 'test', metadata: {}, peer: 'test', deadline: undefined, signal });

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

class CountingKv extends KvApi {
  ranges = 0;
  override rangeStore(r: RangeRequest, serializable: boolean, call: CallContext): Promise<RangeResponse> {
    this.ranges++;
    return super.rangeStore(r, serializable, call);
  }
}

let dir: string;
let member: Member;
let kv: CountingKv;
let locks: LockApi;
let elections: ElectionApi;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'conclave-lock-queue-'));
  const [peer, client] = await freePorts(2);
  const config = resolveConfig(
    {
      name: 'm0',
      'data-dir': join(dir, 'm0'),
      'listen-peer-urls': `http://127.0.0.1:${peer}`,
      'initial-advertise-peer-urls': `http://127.0.0.1:${peer}`,
      'listen-client-urls': `http://127.0.0.1:${client}`,
      'advertise-client-urls': `http://127.0.0.1:${client}`,
      'initial-cluster': `m0=http://127.0.0.1:${peer}`,
      'heartbeat-interval': '20',
      'election-timeout': '200',
    },
    {},
  );
  member = await Member.start(config, quiet, (e) => assert.fail(String(e)));
  await until('a leader', () => member.status().role === 'leader');
  kv = new CountingKv(member);
  const concurrency = new Concurrency(member, kv, quiet);
  locks = new LockApi(concurrency);
  elections = new ElectionApi(concurrency);
});

after(async () => {
  await member?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function until(what: string, pred: () => boolean): Promise<void> {
  const end = Date.now() + LIMITS.waitMs;
  while (!pred()) {
    if (Date.now() > end) assert.fail(`${what}: not within ${LIMITS.waitMs} ms`);
    await sleep(5);
  }
}

interface Waiter {
  readonly lease: bigint;
  readonly abort: AbortController;
  readonly granted: Promise<Uint8Array>;
  done: boolean;
}

test('a release wakes only the next waiter; one leaving the queue wakes only its successor; grants go in queue order', async () => {
  const name = Buffer.from('queue');
  const leases: bigint[] = [];
  for (let i = 0; i <= LIMITS.waiters; i++) leases.push((await member.leaseGrant(0n, 60, NO_USER)).id);
  const held = await locks.lock({ name, lease: leases[0]!.toString() }, ctx());
  const watchers = (): number => member.watches().stats().syncedWatchers;
  const base = watchers();

  const queue: Waiter[] = [];
  for (const lease of leases.slice(1)) {
    const abort = new AbortController();
    const w: Waiter = { lease, abort, granted: locks.lock({ name, lease: lease.toString() }, ctx(abort.signal)).then((r) => r.key), done: false };
    void w.granted.then(
      () => (w.done = true),
      () => (w.done = true),
    );
    queue.push(w);
    // One at a time, so the queue order is the order of this loop.
    await until(`waiter ${queue.length} watching`, () => watchers() === base + queue.length);
  }

  // Each waiter watches one key: its predecessor's.
  const keys = (await kv.rangeStore({ key: Buffer.from('queue/'), rangeEnd: prefixEnd(Buffer.from('queue/')), sortTarget: 'CREATE', sortOrder: 'ASCEND' }, false, ctx())).kvs;
  assert.deepEqual(
    keys.map((k) => Buffer.from(k.key).toString()),
    leases.map((l) => `queue/${l.toString(16)}`),
  );

  // The third waiter leaves: only the fourth wakes, reads once, and waits on the second instead.
  kv.ranges = 0;
  const leaving = queue.splice(2, 1)[0]!;
  leaving.abort.abort(new Error('client gone'));
  await assert.rejects(leaving.granted, /client gone/);
  await until('the leaver’s key deleted and its successor re-queued', () => watchers() === base + queue.length);
  await sleep(LIMITS.quietMs);
  assert.equal(kv.ranges, 1, 'not just the successor of the leaver, once, looked again');
  assert.equal((await member.range({ key: Buffer.from(`queue/${leaving.lease.toString(16)}`) }, false)).count, 0, 'the leaver’s key is still there');

  // Each release wakes the next waiter only: one read for its predecessors, one for its own key.
  let holder = held.key;
  for (const [i, w] of queue.entries()) {
    kv.ranges = 0;
    await kv.deleteStore({ key: holder }, ctx());
    holder = await w.granted;
    assert.equal(Buffer.from(holder).toString(), `queue/${w.lease.toString(16)}`, `grant ${i} out of queue order`);
    await sleep(LIMITS.quietMs);
    assert.equal(kv.ranges, 2, `release ${i} woke more than the next waiter`);
    assert.deepEqual(
      queue.map((x) => x.done),
      queue.map((_, j) => j <= i),
      `release ${i}: a waiter behind the next one finished`,
    );
  }
  await kv.deleteStore({ key: holder }, ctx());
  assert.equal(watchers(), base);
});

test('an observer sees the leader and its proclamation, and leaves no watcher behind when it goes', async () => {
  const watchers = (): number => member.watches().stats().syncedWatchers + member.watches().stats().unsyncedWatchers;
  const base = watchers();
  const lease = (await member.leaseGrant(0n, 60, NO_USER)).id;
  const won = await elections.campaign({ name: Buffer.from('obs'), lease: lease.toString(), value: Buffer.from('first') }, ctx());
  const gone = new AbortController();
  const observer = elections.observe({ name: Buffer.from('obs') }, ctx(gone.signal));
  const values: string[] = [];
  const next = async (): Promise<void> => {
    const r = await observer.next();
    assert.ok(r.done !== true);
    values.push(Buffer.from(r.value.kv.value).toString());
  };
  await next();
  await elections.proclaim({ leader: won.leader, value: Buffer.from('second') }, ctx());
  await next();
  assert.deepEqual(values, ['first', 'second']);
  // The observer waits for the next change; its client goes away.
  const waiting = observer.next();
  gone.abort(new Error('observer gone'));
  await assert.rejects(waiting, /observer gone/);
  await until('the observer’s watcher gone', () => watchers() === base);
  await elections.resign({ leader: won.leader }, ctx());
});
