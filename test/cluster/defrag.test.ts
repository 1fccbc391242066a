/**
 * Defragmentation on a running 3-member Conclave cluster: after a big delete and a physical
 * compaction the leader's store file is mostly free pages; `etcdctl defrag` on it gives them
 * back (data.mdb shrinks, endpoint status shows it) while writes and linearizable reads keep
 * going through that member, none failing or lost; the data stays identical on every member
 * (same HashKV) and survives a restart of the defragmented member.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { etcdctl, startCluster, waitHealthy } from '../helpers/processes.ts';

const TEST_LIMITS = {
  testMs: 90_000,
  /** Values written to grow the store: count × bytes. */
  bigValues: 300,
  bigValueBytes: 32 * 1024,
  /** Concurrent gateway requests while loading. */
  loadConcurrency: 16,
  httpMs: 15_000,
} as const;

const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');

async function post(url: string, path: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${url}/v3/${path}`, { method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(TEST_LIMITS.httpMs) });
  const json = (await res.json()) as Record<string, unknown>;
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function ok(endpoints: string, args: string[]): Promise<string> {
  const r = await etcdctl(endpoints, args);
  assert.equal(r.code, 0, `etcdctl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

interface Status {
  Endpoint: string;
  Status: { header: { member_id: string; revision: number }; leader: string; dbSize: number; dbSizeInUse: number };
}

async function statuses(endpoints: string): Promise<Status[]> {
  return JSON.parse((await ok(endpoints, ['endpoint', 'status', '-w', 'json'])).replace(/:(\d{10,})/g, ':"$1"')) as Status[];
}

test('defrag on the leader gives the free pages back while it keeps serving; data identical everywhere and after a restart', { timeout: TEST_LIMITS.testMs }, async () => {
  const cluster = await startCluster('conclave', 3);
  try {
    const m0 = cluster.members[0]!.clientUrl;
    const big = Buffer.alloc(TEST_LIMITS.bigValueBytes, 'x');
    for (let i = 0; i < TEST_LIMITS.bigValues; i += TEST_LIMITS.loadConcurrency) {
      await Promise.all(
        Array.from({ length: Math.min(TEST_LIMITS.loadConcurrency, TEST_LIMITS.bigValues - i) }, (_, j) => post(m0, 'kv/put', { key: b64(`big/${i + j}`), value: b64(big) })),
      );
    }
    for (let i = 0; i < 20; i++) await post(m0, 'kv/put', { key: b64(`keep/${i}`), value: b64(`v${i}`) });
    await post(m0, 'kv/deleterange', { key: b64('big/'), range_end: b64('big0') });
    const rev = Number((await post(m0, 'kv/range', { key: b64('keep/0') }) as { header: { revision: string } }).header.revision);
    await post(m0, 'kv/compaction', { revision: String(rev), physical: true });

    const before = await statuses(cluster.endpoints);
    const leader = before.find((s) => s.Status.header.member_id === s.Status.leader)!;
    const target = cluster.members.find((m) => m.clientUrl === leader.Endpoint)!;
    const file = join(target.dataDir, 'member', 'db', 'data.mdb');
    const fileBefore = statSync(file).size;
    assert.ok(leader.Status.dbSize >= TEST_LIMITS.bigValues * TEST_LIMITS.bigValueBytes, `the store grew: ${leader.Status.dbSize}`);
    // Physical compaction runs in the background: wait until the pages are free.
    for (let i = 0; i < 100; i++) {
      const s = (await statuses(target.clientUrl))[0]!.Status;
      if (s.dbSizeInUse < s.dbSize / 5) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const inUse = (await statuses(target.clientUrl))[0]!.Status;
    assert.ok(inUse.dbSizeInUse < inUse.dbSize / 5, `mostly free pages: ${inUse.dbSizeInUse} of ${inUse.dbSize} in use`);

    // A writer and a reader through the member being defragmented, all the while.
    let stop = false;
    const written: number[] = [];
    const failures: string[] = [];
    const writer = (async () => {
      for (let n = 0; !stop; n++) {
        try {
          await post(target.clientUrl, 'kv/put', { key: b64(`during/${n}`), value: b64(`d${n}`) });
          written.push(n);
        } catch (e) {
          failures.push(`put ${n}: ${(e as Error).message}`);
        }
      }
    })();
    const reader = (async () => {
      while (!stop) {
        try {
          const r = (await post(target.clientUrl, 'kv/range', { key: b64('keep/'), range_end: b64('keep0'), count_only: true })) as { count?: string };
          if (r.count !== '20') failures.push(`read ${JSON.stringify(r)}`);
        } catch (e) {
          failures.push(`read: ${(e as Error).message}`);
        }
      }
    })();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await ok(target.clientUrl, ['defrag']), `Finished defragmenting etcd member[${target.clientUrl}]\n`);
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await Promise.all([writer, reader]);
    assert.deepEqual(failures, []);
    assert.ok(written.length > 0, 'writes went through');

    const fileAfter = statSync(file).size;
    assert.ok(fileAfter < fileBefore / 5, `data.mdb shrank from ${fileBefore} to ${fileAfter} bytes`);
    const after = (await statuses(target.clientUrl))[0]!.Status;
    assert.ok(after.dbSize < leader.Status.dbSize / 5, `dbSize ${leader.Status.dbSize} → ${after.dbSize}`);
    assert.ok(after.dbSizeInUse <= after.dbSize);

    // Every write acknowledged during the defrag is there, on every member; the members agree.
    const last = written.at(-1)!;
    for (const m of cluster.members) {
      assert.equal(await ok(m.clientUrl, ['get', `during/${last}`, '--print-value-only']), `d${last}\n`);
      assert.equal(Number((await post(m.clientUrl, 'kv/range', { key: b64('during/'), range_end: b64('during0'), count_only: true })).count), written.length);
    }
    const hashes = (await ok(cluster.endpoints, ['endpoint', 'hashkv'])).trim().split('\n').map((l) => l.split(', ')[1]);
    assert.equal(new Set(hashes).size, 1, `members agree: ${hashes.join(' ')}`);

    // The swapped-in file is the member's store from now on.
    const i = cluster.members.indexOf(target);
    await cluster.stop(i);
    await cluster.start(i);
    await waitHealthy(cluster);
    assert.equal(await ok(target.clientUrl, ['get', 'keep/7', '--print-value-only', '--consistency=s']), 'v7\n');
    assert.equal(await ok(target.clientUrl, ['get', `during/${last}`, '--print-value-only']), `d${last}\n`);
  } finally {
    await cluster.destroy();
  }
});
