/**
 * A deposed leader must not act on its own lessor. The leader is stopped (SIGSTOP), sometimes
 * also cut off; the other members elect a new leader, which keeps a lease alive (or lets it
 * expire and revokes it). When the old leader continues, it may believe it leads for a while
 * (until it hears of the new term, or its quorum check), and its lessor's deadlines say nothing
 * about what the new leader did. Two bugs the fault harness's stale-leader fault pointed at:
 *
 *   - it answered keep-alives from its own lessor: TTL 0 for a lease kept alive through the new
 *     leader (the client was told its live lease was gone). A leader now confirms its
 *     leadership with a ReadIndex round before it renews (as etcd does), and forwards the
 *     keep-alive when it turns out deposed;
 *   - its lease timer, firing in the same turn in which the new leader's messages deposed it,
 *     queued revokes of every lease (all past their deadline on its clock) that its Raft, a
 *     follower's by then, forwarded to the new leader, which committed them: a lease kept alive
 *     all along was revoked. Lease proposals now go to Raft only while their proposer leads in
 *     the term it decided them in (RaftDriver.proposeBatched; unit test in raft-driver.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FaultCluster } from './cluster.ts';
import { sleep } from './workloads/workload.ts';

const SCENARIO = {
  ttlSeconds: 2,
  /** How long the others may take to elect a leader and revoke the lease. */
  revokeWithinMs: 20_000,
  keepAliveTimeoutMs: 10_000,
} as const;

async function until<T>(what: string, timeoutMs: number, attempt: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await attempt().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(200);
  }
}

/** One keep-alive: the TTL answered, or the error text. */
async function keepAlive(cluster: FaultCluster, member: string, id: string): Promise<string> {
  const stream = await cluster.client(member, 'keepalive').leaseClient.leaseKeepAlive();
  return new Promise<string>((resolve) => {
    const timer = setTimeout(() => finish('no answer'), SCENARIO.keepAliveTimeoutMs);
    function finish(outcome: string): void {
      clearTimeout(timer);
      stream.cancel();
      resolve(outcome);
    }
    stream.on('data', (res) => finish(`TTL ${res.TTL}`));
    stream.on('error', (e) => finish(`error: ${e.message.split('\n')[0]}`));
    stream.write({ ID: id });
  });
}

test('a leader that was stopped and cut off does not renew a lease the new leader revoked', { timeout: 90_000 }, async () => {
  const origin = performance.now();
  const cluster = await FaultCluster.start(3, () => performance.now() - origin);
  try {
    const old = await until('a leader', 10_000, async () => cluster.leader());
    const others = cluster.members().filter((m) => m !== old);
    const grant = await cluster.client(old).leaseClient.leaseGrant({ TTL: SCENARIO.ttlSeconds });
    await cluster.client(old).kv.put({ key: Buffer.from('stale/key'), value: Buffer.from('v'), lease: grant.ID });

    cluster.pause(old);
    cluster.network.setBlocked(others.flatMap((o): [string, string][] => [[old, o], [o, old]]));
    // The others elect a leader; it starts the lease's countdown afresh and revokes it.
    await until('the lease revoked by the new leader', SCENARIO.revokeWithinMs, async () => {
      const res = await cluster.client(others[0]!).kv.range({ key: Buffer.from('stale/key') });
      return res.kvs.length === 0 ? true : undefined;
    });

    cluster.resume(old);
    const outcome = await keepAlive(cluster, old, grant.ID);
    console.log(`keep-alive on the deposed leader: ${outcome}`);
    assert.doesNotMatch(outcome, /^TTL [1-9]/, `the deposed leader renewed a revoked lease (${outcome})`);

    cluster.network.heal();
    // Once back, the member answers for the lease as the cluster knows it: gone.
    assert.equal(await until('a keep-alive answered', 20_000, async () => {
      const o = await keepAlive(cluster, old, grant.ID);
      return o.startsWith('TTL') ? o : undefined;
    }), 'TTL 0');
  } finally {
    await cluster.destroy();
  }
});

test('a leader that was stopped and cut off neither denies nor revokes a lease kept alive through the new leader', { timeout: 90_000 }, async () => {
  const origin = performance.now();
  const cluster = await FaultCluster.start(3, () => performance.now() - origin);
  let keeping = true;
  let keeper: NodeJS.Timeout | undefined;
  try {
    const old = await until('a leader', 10_000, async () => cluster.leader());
    const others = cluster.members().filter((m) => m !== old);
    const via = others[0]!;
    const grant = await cluster.client(via).leaseClient.leaseGrant({ TTL: SCENARIO.ttlSeconds });
    await cluster.client(via).kv.put({ key: Buffer.from('stale/kept'), value: Buffer.from('v'), lease: grant.ID });
    // Kept alive through a follower all along (it forwards to whoever it knows leads), one
    // keep-alive every 400 ms whether or not the one before was answered.
    const renewals: string[] = [];
    keeper = setInterval(() => {
      if (keeping) void keepAlive(cluster, via, grant.ID).then((o) => renewals.push(o));
    }, 400);

    cluster.pause(old);
    cluster.network.setBlocked(others.flatMap((o): [string, string][] => [[old, o], [o, old]]));
    const leader = await until('a new leader', SCENARIO.revokeWithinMs, async () => (cluster.leader() !== old && cluster.leader() !== undefined ? cluster.leader() : undefined));
    const since = renewals.length;
    // Longer than the TTL and an election timeout: on the stopped leader's clock the lease expired.
    await sleep(SCENARIO.ttlSeconds * 1000 + 3_000);
    const kept = renewals.slice(since);
    assert.ok(kept.filter((r) => r === `TTL ${SCENARIO.ttlSeconds}`).length >= 3 && !kept.includes('TTL 0'), `the lease was kept alive through ${via} and ${leader}: ${kept.join(', ')}`);

    cluster.resume(old);
    const outcome = await keepAlive(cluster, old, grant.ID);
    console.log(`keep-alive on the deposed leader: ${outcome}`);
    assert.doesNotMatch(outcome, /^TTL/, `the deposed leader answered for a lease it no longer keeps (${outcome})`);

    cluster.network.heal();
    await sleep(3_000);
    const res = await cluster.client(via).kv.range({ key: Buffer.from('stale/kept') });
    assert.equal(res.kvs.length, 1, `the lease kept alive all along was revoked (renewals: ${renewals.slice(-8).join(', ')})`);
  } finally {
    keeping = false;
    clearInterval(keeper);
    await cluster.destroy();
  }
});

test('a leader that was stopped does not revoke, once it continues, a lease kept alive through the new leader', { timeout: 90_000 }, async () => {
  const origin = performance.now();
  const cluster = await FaultCluster.start(3, () => performance.now() - origin);
  let keeper: NodeJS.Timeout | undefined;
  try {
    const old = await until('a leader', 10_000, async () => cluster.leader());
    const via = cluster.members().find((m) => m !== old)!;
    const grant = await cluster.client(via).leaseClient.leaseGrant({ TTL: SCENARIO.ttlSeconds });
    await cluster.client(via).kv.put({ key: Buffer.from('stale/alive'), value: Buffer.from('v'), lease: grant.ID });
    const renewals: string[] = [];
    keeper = setInterval(() => void keepAlive(cluster, via, grant.ID).then((o) => renewals.push(o)), 400);

    // Stopped, not cut off: when it continues, its lease timer may fire (every deadline passed
    // on its clock) in the same turn in which the new leader's messages depose it. Its expiries
    // were then forwarded to the new leader as a follower's proposals, and committed.
    cluster.pause(old);
    await until('a new leader', SCENARIO.revokeWithinMs, async () => (cluster.leader() !== old && cluster.leader() !== undefined ? true : undefined));
    await sleep(SCENARIO.ttlSeconds * 1000 + 3_000);
    cluster.resume(old);
    await sleep(3_000);
    const res = await cluster.client(via).kv.range({ key: Buffer.from('stale/alive') });
    assert.equal(res.kvs.length, 1, `the lease kept alive all along was revoked (renewals: ${renewals.slice(-8).join(', ')})`);
  } finally {
    clearInterval(keeper);
    await cluster.destroy();
  }
});
