/**
 * Durability and exactly-once: a store reopened after close, and a store whose writer process
 * was SIGKILLed at a random moment, must equal the reference model at the recovered consistent
 * index — nothing half-applied, nothing lost before that index — and replaying the log from any
 * earlier index must change nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { MvccStore } from '../../src/mvcc/index.ts';
import type { RangeRequest } from '../../src/mvcc/index.ts';
import { Model } from './model.ts';
import { requestFor } from './fixtures/workload.ts';
import { norm, tempDir } from './helpers.ts';

const all: RangeRequest = { key: Buffer.from('\0'), rangeEnd: Buffer.from('\0') };

function modelAt(index: number): Model {
  const m = new Model();
  for (let i = 1; i <= index; i++) m.apply(requestFor(i));
  return m;
}

/** Full key space now and at sampled retained revisions, revision and compaction revision. */
function assertMatches(store: MvccStore, m: Model, label: string): void {
  assert.equal(store.revision, m.currentRev, `${label}: revision`);
  assert.equal(store.compactRevision, m.compactRev, `${label}: compact revision`);
  assert.deepEqual(norm(store.range(all)), norm(m.range(all)), `${label}: key space`);
  const lo = Math.max(m.compactRev, 1);
  for (let k = 0; k < 12; k++) {
    const rev = lo + Math.floor(((m.currentRev - lo) * k) / 11);
    const q = { ...all, revision: rev };
    assert.deepEqual(norm(store.range(q)), norm(m.range(q)), `${label}: key space at revision ${rev}`);
  }
}

test('reopen: identical state, consistent index and revision; replayed indexes are skipped', async () => {
  const { dir, cleanup } = tempDir();
  try {
    let s = await MvccStore.open(dir);
    const n = 400;
    for (let i = 1; i <= n; i++) s.apply(i, requestFor(i));
    const before = { range: norm(s.range(all)), kvHash: await s.hashKV(), hash: await s.hash(), rev: s.revision };
    await s.close();
    s = await MvccStore.open(dir);
    assert.equal(s.consistentIndex(), n);
    assertMatches(s, modelAt(n), 'after reopen');
    assert.deepEqual(norm(s.range(all)), before.range);
    await s.compactionDone();
    assert.deepEqual(await s.hashKV(), before.kvHash);
    // Replaying the whole log again changes nothing.
    for (let i = 1; i <= n; i++) assert.deepEqual(s.apply(i, requestFor(i)), { status: 'skipped' });
    assert.equal(s.revision, before.rev);
    assert.deepEqual(await s.hash(), before.hash);
    await s.close();
  } finally {
    cleanup();
  }
});

const writer = fileURLToPath(new URL('./fixtures/crash-writer.ts', import.meta.url));

/**
 * Starts the writer, lets it run for `ms` after it is ready, SIGKILLs it; returns its start index
 * and the last index it reported synced (0 if none).
 */
function runAndKill(dir: string, ms: number): Promise<{ start: number; synced: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', writer, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let start = -1;
    let synced = 0;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      for (const s of out.matchAll(/synced (\d+)/g)) synced = Math.max(synced, Number(s[1]));
      const m = /ready (\d+)/.exec(out);
      if (m !== null && start === -1) {
        start = Number(m[1]);
        setTimeout(() => child.kill('SIGKILL'), ms);
      }
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (_code, signal) => {
      if (signal === 'SIGKILL' && start !== -1) resolve({ start, synced });
      else reject(new Error(`writer exited unexpectedly (${String(signal)}): ${err}`));
    });
  });
}

test('crash: a writer SIGKILLed at random moments recovers exactly the state at its consistent index', async () => {
  const { dir, cleanup } = tempDir();
  try {
    let last = 0;
    for (let round = 0; round < 3; round++) {
      const { start } = await runAndKill(dir, 150 + Math.floor(Math.random() * 350));
      assert.equal(start, last + 1, 'the writer resumes right after the recovered index');
      const s = await MvccStore.open(dir);
      const ci = s.consistentIndex();
      assert.ok(ci >= last, 'the consistent index never goes back');
      const m = modelAt(ci);
      assertMatches(s, m, `round ${round} (index ${ci})`);
      // The recovered store hashes like a store that applied the same log without crashing.
      const { dir: refDir, cleanup: refCleanup } = tempDir();
      const ref = await MvccStore.open(refDir);
      for (let i = 1; i <= ci; i++) ref.apply(i, requestFor(i));
      assert.deepEqual(await s.hashKV(), await ref.hashKV());
      await ref.close();
      refCleanup();
      if (ci > 0) assert.deepEqual(s.apply(ci, requestFor(ci)), { status: 'skipped' });
      console.log(`round ${round}: killed after index ${ci}, revision ${s.revision}, compacted at ${s.compactRevision}, ${s.stats().kvRecords} kv records`);
      await s.close();
      last = ci;
    }
    assert.ok(last > 0, 'the writer applied something');
  } finally {
    cleanup();
  }
});

test('power loss: opened at its last fsynced commit, as after a reboot, the store is the state at its consistent index, which covers every sync', async () => {
  const { dir, cleanup } = tempDir();
  // lmdb-js's safe restore opens at the last fsynced commit even on the same boot: what a
  // reboot after a power loss leaves when the unsynced pages never reached the disk.
  const before = process.env.LMDB_RESTORE;
  try {
    let last = 0;
    for (let round = 0; round < 3; round++) {
      const { start, synced } = await runAndKill(dir, 300 + Math.floor(Math.random() * 400));
      assert.ok(start > last, 'the writer resumes after the recovered index');
      process.env.LMDB_RESTORE = 'safe';
      const s = await MvccStore.open(dir);
      delete process.env.LMDB_RESTORE;
      const ci = s.consistentIndex();
      assert.ok(ci >= synced, `index ${ci} recovered, though ${synced} was synced`);
      assertMatches(s, modelAt(ci), `round ${round} (index ${ci}, synced ${synced})`);
      console.log(`round ${round}: synced ${synced}, recovered ${ci} at its last fsynced commit`);
      await s.close();
      last = ci;
    }
    assert.ok(last > 0, 'the writer synced something');
  } finally {
    if (before === undefined) delete process.env.LMDB_RESTORE;
    else process.env.LMDB_RESTORE = before;
    cleanup();
  }
});
