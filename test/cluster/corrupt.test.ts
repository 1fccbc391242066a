/**
 * etcd's corruption checks on a 3-member Conclave cluster: one follower's store is altered
 * while it is stopped (a value rewritten in place, same revision: only a hash can tell). With
 * --experimental-initial-corrupt-check it refuses to start; without it, it starts, and the
 * leader's periodic check (--experimental-corrupt-check-time) raises CORRUPT for it, listed by
 * `etcdctl alarm list`, while the cluster refuses writes with "etcdserver: corrupt cluster" as
 * etcd does, and still serves reads. A disarm without a repair is undone by the next check.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Backend } from '../../src/mvcc/backend.ts';
import { encodePutRecord, revKey } from '../../src/mvcc/codec.ts';
import { MvccStore } from '../../src/mvcc/index.ts';
import { etcdctl, startCluster, type ProcessCluster } from '../helpers/processes.ts';

const TEST_LIMITS = {
  testMs: 90_000,
  /** How long a member may take to exit after its initial check failed, or an alarm to appear. */
  waitMs: 20_000,
} as const;

async function ok(endpoints: string, args: string[]): Promise<string> {
  const r = await etcdctl(endpoints, args);
  assert.equal(r.code, 0, `etcdctl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function until(what: string, pred: () => Promise<boolean> | boolean, ms: number = TEST_LIMITS.waitMs): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Member ids (decimal) by client URL, and the leader's. */
async function ids(cluster: ProcessCluster): Promise<{ byUrl: Map<string, string>; leader: string }> {
  const text = await ok(cluster.endpoints, ['endpoint', 'status', '-w', 'json']);
  const list = JSON.parse(text.replace(/:(\d{10,})/g, ':"$1"')) as Array<{ Endpoint: string; Status: { header: { member_id: string }; leader: string } }>;
  return { byUrl: new Map(list.map((s) => [s.Endpoint, s.Status.header.member_id])), leader: list[0]!.Status.leader };
}

/** Rewrites a key's current value in place in a stopped member's store: same revision, other bytes. */
async function alterValue(dataDir: string, key: string, value: string): Promise<void> {
  const dir = join(dataDir, 'member', 'db');
  const store = await MvccStore.open(dir);
  const kv = store.range({ key: Buffer.from(key) }).kvs[0];
  await store.close();
  assert.ok(kv !== undefined, `${key} is in the store`);
  const backend = Backend.open(dir);
  try {
    backend.write(() => backend.kvPut(revKey(kv.modRevision, 0, false), encodePutRecord(kv.key, Buffer.from(value), kv.createRevision, kv.modRevision, kv.version, kv.lease)));
  } finally {
    await backend.close();
  }
}

test('a member whose store was altered is refused at start by the initial check, then found by the periodic one: CORRUPT, writes refused', { timeout: TEST_LIMITS.testMs }, async () => {
  const cluster = await startCluster('conclave', 3, { flags: { 'experimental-corrupt-check-time': '1s', 'experimental-initial-corrupt-check': 'true' } });
  try {
    for (let i = 0; i < 20; i++) await ok(cluster.endpoints, ['put', `config/${i}`, `v${i}`]);
    const before = await ids(cluster);
    const victim = cluster.members.findIndex((m) => before.byUrl.get(m.clientUrl) !== before.leader);
    const m = cluster.members[victim]!;
    const victimId = before.byUrl.get(m.clientUrl)!;
    // The victim has applied every put before it stops.
    await until('victim caught up', async () => (await etcdctl(m.clientUrl, ['get', 'config/19', '--consistency=s', '--print-value-only'])).stdout === 'v19\n');
    assert.equal(await ok(cluster.endpoints, ['alarm', 'list']), '', 'no alarm while the members agree');

    await cluster.stop(victim);
    await alterValue(m.dataDir, 'config/7', 'tampered');

    // With the initial check, the altered member does not come up.
    await cluster.start(victim);
    await until('the altered member exits', () => m.child === null);
    assert.match(m.output, new RegExp(`${BigInt(victimId).toString(16)} found data inconsistency with peers`));

    // Without it, it serves its altered value until the leader's periodic check catches it.
    await cluster.start(victim, { 'experimental-initial-corrupt-check': 'false' });
    await until('the altered member serves', async () => (await etcdctl(m.clientUrl, ['get', 'config/7', '--consistency=s', '--print-value-only'])).stdout === 'tampered\n');
    const alarm = `memberID:${victimId} alarm:CORRUPT \n`;
    await until('CORRUPT raised', async () => (await etcdctl(cluster.endpoints, ['alarm', 'list'])).stdout === alarm);
    assert.match(await ok(m.clientUrl, ['endpoint', 'status']), new RegExp(`, memberID:${victimId} alarm:CORRUPT \\n$`));

    // etcd's corrupt cluster: writes of every kind refused on every member, reads served.
    for (const member of cluster.members) {
      const put = await etcdctl(member.clientUrl, ['put', 'config/new', 'x']);
      assert.equal(put.code, 1);
      assert.match(put.stderr, /Error: etcdserver: corrupt cluster\n$/);
    }
    assert.match((await etcdctl(cluster.endpoints, ['lease', 'grant', '60'])).stderr, /failed to grant lease \(etcdserver: corrupt cluster\)/);
    assert.equal(await ok(cluster.members[(victim + 1) % 3]!.clientUrl, ['get', 'config/7', '--print-value-only']), 'v7\n');

    // Disarming without repairing the member: the next check raises it again.
    assert.equal(await ok(cluster.endpoints, ['alarm', 'disarm']), alarm);
    await until('CORRUPT raised again', async () => (await etcdctl(cluster.endpoints, ['alarm', 'list'])).stdout === alarm);
  } finally {
    await cluster.destroy();
  }
});
