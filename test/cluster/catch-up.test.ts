/**
 * Catching up: a member that was down while the others compacted their logs gets the leader's
 * store as a snapshot, even when it dies between recording the snapshot and swapping its store
 * in; and a member SIGKILLed in the middle of a write load loses nothing that was acknowledged.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCluster, waitHealthy, type ProcessCluster } from '../helpers/processes.ts';
import { TEST_HOOKS_ENV } from '../../src/util/test-hooks.ts';

let cluster: ProcessCluster;
let dir: string;
/** The test hooks file member m2 starts with, if any (src/util/test-hooks.ts). */
let m2Hooks: string | null = null;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'conclave-catch-up-'));
  // Snapshot every 100 entries and keep only 10 behind it, so a member that misses a few
  // hundred writes can only catch up from a snapshot.
  cluster = await startCluster('conclave', 3, {
    flags: { 'snapshot-count': '100', 'snapshot-catchup-entries': '10', 'log-level': 'info' },
    env: (name): Record<string, string> => (name === 'm2' && m2Hooks !== null ? { [TEST_HOOKS_ENV]: m2Hooks } : {}),
  });
});

after(async () => {
  await cluster?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

function client(urls: string[]): Etcd3 {
  return new Etcd3({ hosts: urls, dialTimeout: 2_000 });
}

/**
 * A put retried while it times out on a loaded machine, while the client's circuit breaker
 * (opened by such timeouts) holds calls back, or while its channel reconnects (UNAVAILABLE):
 * the same value again is harmless here.
 */
async function putRetrying(etcd: Etcd3, key: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await etcd.put(key).value('v');
      return;
    } catch (e) {
      const transient = e instanceof Error && /request timed out|circuit breaker is open|UNAVAILABLE/.test(e.message);
      if (attempt >= 20 || !transient) throw e;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

async function serializableCount(url: string, prefix: string): Promise<number> {
  const res = await fetch(`${url}/v3/kv/range`, {
    method: 'POST',
    body: JSON.stringify({ key: Buffer.from(prefix).toString('base64'), range_end: Buffer.from(prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1)).toString('base64'), count_only: true, serializable: true }),
  });
  const body = (await res.json()) as { count?: string };
  return Number(body.count ?? 0);
}

/** `count` keys under `prefix`, written through m0 and m1 (m2 is down). */
async function writeBehind(prefix: string, count: number): Promise<void> {
  const etcd = client([cluster.members[0]!.clientUrl, cluster.members[1]!.clientUrl]);
  try {
    for (let i = 0; i < count; i += 20) await Promise.all(Array.from({ length: 20 }, (_, j) => putRetrying(etcd, `${prefix}${i + j}`)));
  } finally {
    etcd.close();
  }
}

test('a member far behind catches up by snapshot, and a write through one member is on every member', async () => {
  await cluster.stop(2);
  await writeBehind('behind/', 400);
  await cluster.start(2);
  await waitHealthy(cluster);
  const lagger = cluster.members[2]!;
  const deadline = Date.now() + 15_000;
  while ((await serializableCount(lagger.clientUrl, 'behind/')) < 400 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  for (const m of cluster.members) assert.equal(await serializableCount(m.clientUrl, 'behind/'), 400, `${m.name} does not have every write`);
  assert.match(lagger.output, /installed snapshot at index/, 'the restarted member should have caught up from a snapshot');
});

test('a member killed after recording a received snapshot but before swapping its store in finishes the install when it restarts', async () => {
  await cluster.stop(2);
  await writeBehind('cut/', 400);
  m2Hooks = join(dir, 'hooks.json');
  writeFileSync(m2Hooks, JSON.stringify({ killBeforeSnapshotInstall: 1 }));
  const lagger = cluster.members[2]!;
  await cluster.start(2);
  for (const deadline = Date.now() + 20_000; lagger.child !== null; await new Promise((r) => setTimeout(r, 100))) {
    assert.ok(Date.now() < deadline, `m2 did not reach the crash point:\n${lagger.output.slice(-2000)}`);
  }
  assert.match(lagger.output, /SIGKILL before swapping in the received snapshot/);
  m2Hooks = null;
  await cluster.start(2);
  await waitHealthy(cluster);
  assert.match(lagger.output, /finished installing the snapshot at index \d+, which a restart had interrupted/);
  for (const deadline = Date.now() + 15_000; (await serializableCount(lagger.clientUrl, 'cut/')) < 400 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 100));
  assert.equal(await serializableCount(lagger.clientUrl, 'cut/'), 400, 'm2 has every write');
});

test('SIGKILL of a member under load loses no acknowledged write', async () => {
  const etcd = client(cluster.members.map((m) => m.clientUrl));
  const acknowledged: string[] = [];
  let stop = false;
  const writers = Array.from({ length: 8 }, async (_, w) => {
    for (let i = 0; !stop; i++) {
      const key = `load/${w}/${i}`;
      try {
        await etcd.put(key).value(key);
        acknowledged.push(key);
      } catch {
        // unacknowledged: it may or may not have been applied
      }
    }
  });
  try {
    await new Promise((r) => setTimeout(r, 500));
    await cluster.kill(0);
    await new Promise((r) => setTimeout(r, 1_000));
    stop = true;
    await Promise.all(writers);
  } finally {
    etcd.close();
  }
  assert.ok(acknowledged.length > 100, `only ${acknowledged.length} writes were acknowledged`);
  await cluster.start(0);
  await waitHealthy(cluster);
  const reader = client([cluster.members[0]!.clientUrl]);
  try {
    const stored = await reader.getAll().prefix('load/').strings();
    for (const key of acknowledged) assert.equal(stored[key], key, `acknowledged write ${key} was lost`);
  } finally {
    reader.close();
  }
});
