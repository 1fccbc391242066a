/**
 * The server-side Lock and Election services under contention, on a 3-member Conclave cluster,
 * called through raw gRPC (@grpc/grpc-js with our protos), each client on its own connection to
 * one of the members:
 *  - many clients take one lock many times: no two holders overlap, and the fencing tokens (the
 *    lock key's create revision) strictly increase in the order the lock was granted;
 *  - several campaigners take turns leading one election: one leader per term (the leader key's
 *    create revision), terms in increasing order, and observers on different members see every
 *    leader and its proclamations, in order;
 *  - a waiter or campaigner that gives up leaves no key; a holder whose lease is revoked loses
 *    the lock to the next waiter; a waiter whose own lease ends is told so; a leader whose lease
 *    ends is no longer leader.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type * as grpc from '@grpc/grpc-js';
import { setTimeout as sleep } from 'node:timers/promises';
import { etcdService } from '../../src/api/etcd/proto/load.ts';
import { startCluster, type ProcessCluster } from '../helpers/processes.ts';
import { Client } from '../helpers/grpc-client.ts';

const LIMITS = {
  /** Clients contending for the lock (at least 8). */
  lockClients: 8,
  /** Grants each lock client takes. */
  lockRounds: 6,
  /** Campaigners of the election. */
  campaigners: 5,
  /** Terms each campaigner leads. */
  termsEach: 2,
  /** Observers of the election (on different members). */
  observers: 2,
  /** TTL of the contenders' leases: far longer than the test, so only revocation ends one. */
  leaseTtlSeconds: 60,
  /** Longest time a holder keeps the lock. */
  holdMsMax: 5,
  /** How long a waiter is expected to go on waiting, where that is what is checked. */
  stillWaitingMs: 500,
  /** Any single wait in the test (a grant, an observation). */
  waitMs: 20_000,
} as const;

const Lock = etcdService('v3lockpb.Lock');
const Election = etcdService('v3electionpb.Election');
const Lease = etcdService('etcdserverpb.Lease');
const KV = etcdService('etcdserverpb.KV');

let cluster: ProcessCluster;
const clients: Client[] = [];

before(async () => {
  cluster = await startCluster('conclave', 3);
});

after(async () => {
  for (const c of clients) c.close();
  await cluster?.destroy();
});

/** A client on its own connection to member i (mod the cluster size). */
function client(i: number): Client {
  const c = new Client(cluster.members[i % cluster.members.length]!.clientUrl.replace('http://', ''));
  clients.push(c);
  return c;
}

async function grantLease(c: Client): Promise<string> {
  const r = await c.unary(Lease, 'LeaseGrant', { TTL: LIMITS.leaseTtlSeconds });
  return String(r.ID);
}

async function createRevision(c: Client, key: Uint8Array): Promise<number> {
  const r = (await c.unary(KV, 'Range', { key })) as { kvs?: Array<{ create_revision: string }> };
  assert.equal(r.kvs?.length, 1, `the lock key ${Buffer.from(key).toString()} is gone while held`);
  return Number(r.kvs[0]!.create_revision);
}

async function keysUnder(c: Client, prefix: string): Promise<string[]> {
  const end = Buffer.from(prefix);
  end[end.length - 1]! += 1;
  const r = (await c.unary(KV, 'Range', { key: Buffer.from(prefix), range_end: end, keys_only: true })) as { kvs?: Array<{ key: Uint8Array }> };
  return (r.kvs ?? []).map((kv) => Buffer.from(kv.key).toString());
}

function withTimeout<T>(what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${LIMITS.waitMs} ms`)), LIMITS.waitMs);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

interface Holding {
  readonly client: number;
  readonly token: number;
  readonly enter: number;
  readonly exit: number;
}

test(`${LIMITS.lockClients} clients contend for one lock: holders never overlap, fencing tokens strictly increase in grant order`, async () => {
  const holdings: Holding[] = [];
  let holder: number | null = null;
  await Promise.all(
    Array.from({ length: LIMITS.lockClients }, async (_, i) => {
      const c = client(i);
      const lease = await grantLease(c);
      for (let round = 0; round < LIMITS.lockRounds; round++) {
        const res = (await withTimeout(`client ${i} round ${round}`, c.unary(Lock, 'Lock', { name: Buffer.from('fence'), lease }))) as { key: Uint8Array; header: { revision: string } };
        const enter = performance.now();
        assert.equal(holder, null, `client ${i} got the lock while client ${holder} held it`);
        holder = i;
        assert.equal(Buffer.from(res.key).toString(), `fence/${BigInt(lease).toString(16)}`);
        const token = await createRevision(c, res.key);
        assert.ok(Number(res.header.revision) >= token, `grant header ${res.header.revision} before the key's creation at ${token}`);
        await sleep(Math.random() * LIMITS.holdMsMax);
        assert.equal(holder, i);
        holder = null;
        holdings.push({ client: i, token, enter, exit: performance.now() });
        await c.unary(Lock, 'Unlock', { key: res.key });
      }
    }),
  );
  assert.equal(holdings.length, LIMITS.lockClients * LIMITS.lockRounds);
  const byGrant = [...holdings].sort((a, b) => a.enter - b.enter);
  for (let i = 1; i < byGrant.length; i++) {
    const [prev, next] = [byGrant[i - 1]!, byGrant[i]!];
    assert.ok(prev.exit <= next.enter, `grant ${i} (client ${next.client}) entered before grant ${i - 1} (client ${prev.client}) left`);
    assert.ok(next.token > prev.token, `grant ${i} has token ${next.token}, not above ${prev.token}`);
  }
  // Every client got its turns, and nothing is left behind.
  for (let i = 0; i < LIMITS.lockClients; i++) assert.equal(holdings.filter((h) => h.client === i).length, LIMITS.lockRounds);
  assert.deepEqual(await keysUnder(clients[0]!, 'fence/'), []);
});

interface Observation {
  readonly rev: number;
  readonly value: string;
  readonly header: number;
}

interface Term {
  readonly campaigner: number;
  readonly rev: number;
  readonly won: number;
  readonly resigned: number;
}

test(`${LIMITS.campaigners} campaigners: one leader per term, terms in order, observers see every leader and proclamation in order`, async () => {
  const observed: Observation[][] = Array.from({ length: LIMITS.observers }, () => []);
  const seenListeners = new Set<() => void>();
  const observers: grpc.ClientReadableStream<Record<string, unknown>>[] = [];
  for (let o = 0; o < LIMITS.observers; o++) {
    // Observers on members 1 and 2; campaigners spread over all three.
    const stream = client(o + 1).serverStream(Election, 'Observe', { name: Buffer.from('council') });
    stream.on('data', (m: { header: { revision: string }; kv: { create_revision: string; value: Uint8Array } }) => {
      observed[o]!.push({ rev: Number(m.kv.create_revision), value: Buffer.from(m.kv.value).toString(), header: Number(m.header.revision) });
      for (const l of seenListeners) l();
    });
    stream.on('error', () => {}); // canceled at the end
    observers.push(stream);
  }
  /** Resolves once every observer saw `value` of term `rev`: a leader stays until it was seen. */
  const seenByAll = (rev: number, value: string): Promise<void> =>
    withTimeout(
      `observers seeing ${value}`,
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (!observed.every((list) => list.some((x) => x.rev === rev && x.value === value))) return;
          seenListeners.delete(check);
          resolve();
        };
        seenListeners.add(check);
        check();
      }),
    );

  const terms: Term[] = [];
  let leader: number | null = null;
  await Promise.all(
    Array.from({ length: LIMITS.campaigners }, async (_, i) => {
      const c = client(i);
      const lease = await grantLease(c);
      for (let t = 0; t < LIMITS.termsEach; t++) {
        const value = `c${i}t${t}`;
        const res = (await withTimeout(`campaigner ${i} term ${t}`, c.unary(Election, 'Campaign', { name: Buffer.from('council'), lease, value: Buffer.from(value) }))) as {
          leader: { name: Uint8Array; key: Uint8Array; rev: string; lease: string };
        };
        const won = performance.now();
        assert.equal(leader, null, `campaigner ${i} won while ${leader} led`);
        leader = i;
        const rev = Number(res.leader.rev);
        assert.equal(res.leader.lease, lease);
        // Leader(), asked of another member, names this term.
        const current = (await clients[0]!.unary(Election, 'Leader', { name: Buffer.from('council') })) as { kv: { create_revision: string; value: Uint8Array } };
        assert.equal(Number(current.kv.create_revision), rev);
        assert.equal(Buffer.from(current.kv.value).toString(), value);
        await c.unary(Election, 'Proclaim', { leader: res.leader, value: Buffer.from(`${value}+`) });
        await seenByAll(rev, `${value}+`);
        assert.equal(leader, i);
        leader = null;
        terms.push({ campaigner: i, rev, won, resigned: performance.now() });
        await c.unary(Election, 'Resign', { leader: res.leader });
        // A resigned leader may not proclaim.
        await assert.rejects(c.unary(Election, 'Proclaim', { leader: res.leader, value: Buffer.from('stale') }), (e: grpc.ServiceError) => e.details === 'election: not leader' && e.code === 2);
      }
    }),
  );
  for (const s of observers) s.cancel();

  assert.equal(terms.length, LIMITS.campaigners * LIMITS.termsEach);
  const revs = terms.map((t) => t.rev);
  assert.equal(new Set(revs).size, revs.length, 'two leaders shared a term');
  for (let i = 1; i < terms.length; i++) {
    assert.ok(terms[i]!.rev > terms[i - 1]!.rev, `term ${i} (rev ${terms[i]!.rev}) is not after term ${i - 1} (rev ${terms[i - 1]!.rev})`);
    assert.ok(terms[i]!.won >= terms[i - 1]!.resigned, `term ${i} began before term ${i - 1} ended`);
  }
  for (const [o, list] of observed.entries()) {
    // Every term, in order; in each, the campaign value (unless the proclamation came first) and then the proclamation.
    const seenRevs = list.map((x) => x.rev).filter((rev, i, all) => i === 0 || all[i - 1] !== rev);
    assert.deepEqual(seenRevs, revs, `observer ${o}: leaders out of order or missing`);
    for (const term of terms) {
      const values = list.filter((x) => x.rev === term.rev).map((x) => x.value);
      const value = `c${term.campaigner}t${terms.filter((t) => t.campaigner === term.campaigner && t.rev < term.rev).length}`;
      assert.ok(
        JSON.stringify(values) === JSON.stringify([value, `${value}+`]) || JSON.stringify(values) === JSON.stringify([`${value}+`]),
        `observer ${o}, term ${term.rev}: saw ${JSON.stringify(values)}`,
      );
    }
    for (let i = 1; i < list.length; i++) assert.ok(list[i]!.header >= list[i - 1]!.header, `observer ${o}: header revisions went back`);
  }
  assert.deepEqual(await keysUnder(clients[0]!, 'council/'), []);
});

test('a waiter that gives up leaves no key; a revoked holder loses the lock to the next waiter; a waiter whose lease ends is told so; so is a leader; a campaigner that gives up resigns', async () => {
  const [a, b, c] = [client(0), client(1), client(2)];
  const [la, lb, lc] = await Promise.all([grantLease(a), grantLease(b), grantLease(c)]);
  const name = Buffer.from('gate');
  const held = (await a.unary(Lock, 'Lock', { name, lease: la })) as { key: Uint8Array };

  // A waiter whose call ends (deadline) takes its key away with it.
  await assert.rejects(b.unary(Lock, 'Lock', { name, lease: lb }, { deadlineMs: LIMITS.stillWaitingMs }), (e: grpc.ServiceError) => e.code === 4);
  const hex = (lease: string): string => `gate/${BigInt(lease).toString(16)}`;
  for (let i = 0; (await keysUnder(a, 'gate/')).length > 1; i++) {
    assert.ok(i < 50, 'the key of the waiter that gave up is still there');
    await sleep(20);
  }
  assert.deepEqual(await keysUnder(a, 'gate/'), [hex(la)]);

  // The holder's lease is revoked (its client died): the next waiter gets the lock.
  const waiting = b.unary(Lock, 'Lock', { name, lease: lb });
  let granted = false;
  void waiting.then(() => (granted = true));
  await sleep(LIMITS.stillWaitingMs);
  assert.equal(granted, false, 'the waiter got the lock while it was held');
  await a.unary(Lease, 'LeaseRevoke', { ID: la });
  const next = (await withTimeout('the waiter after the revocation', waiting)) as { key: Uint8Array };
  assert.equal(Buffer.from(next.key).toString(), hex(lb));
  assert.ok(!Buffer.from(held.key).equals(Buffer.from(next.key)));

  // A waiter whose own lease ends while it waits is told it never got the lock.
  // The refusal can reach c before b hears its Unlock answered, so it is awaited from the start.
  const doomed = assert.rejects(withTimeout('the expired waiter', c.unary(Lock, 'Lock', { name, lease: lc })), (e: grpc.ServiceError) => e.code === 2 && e.details === 'mutex: session is expired');
  await sleep(LIMITS.stillWaitingMs);
  await c.unary(Lease, 'LeaseRevoke', { ID: lc });
  await b.unary(Lock, 'Unlock', { key: next.key });
  await doomed;
  assert.deepEqual(await keysUnder(a, 'gate/'), []);

  // A leader whose lease ends is no longer leader: the next campaigner leads, the old one may not proclaim.
  const [l1, l2] = await Promise.all([grantLease(a), grantLease(b)]);
  const first = (await a.unary(Election, 'Campaign', { name: Buffer.from('board'), lease: l1, value: Buffer.from('one') })) as { leader: object };
  const second = b.unary(Election, 'Campaign', { name: Buffer.from('board'), lease: l2, value: Buffer.from('two') });
  await sleep(LIMITS.stillWaitingMs);
  await a.unary(Lease, 'LeaseRevoke', { ID: l1 });
  await withTimeout('the second campaigner', second);
  const now = (await c.unary(Election, 'Leader', { name: Buffer.from('board') })) as { kv: { value: Uint8Array } };
  assert.equal(Buffer.from(now.kv.value).toString(), 'two');
  await assert.rejects(a.unary(Election, 'Proclaim', { leader: first.leader, value: Buffer.from('still me') }), (e: grpc.ServiceError) => e.code === 2 && e.details === 'election: not leader');

  // A campaigner that gives up (deadline) resigns: its key goes, the leader stays.
  const l3 = await grantLease(c);
  await assert.rejects(c.unary(Election, 'Campaign', { name: Buffer.from('board'), lease: l3, value: Buffer.from('three') }, { deadlineMs: LIMITS.stillWaitingMs }), (e: grpc.ServiceError) => e.code === 4);
  for (let i = 0; (await keysUnder(a, 'board/')).length > 1; i++) {
    assert.ok(i < 50, 'the key of the campaigner that gave up is still there');
    await sleep(20);
  }
  assert.deepEqual(await keysUnder(a, 'board/'), [`board/${BigInt(l2).toString(16)}`]);
});
