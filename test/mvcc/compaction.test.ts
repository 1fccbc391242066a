import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MvccStore } from '../../src/mvcc/index.ts';
import type { MvccRequest } from '../../src/mvcc/index.ts';
import { requestFor } from './fixtures/workload.ts';
import { attempt, b, tempDir } from './helpers.ts';

test('compaction frees old revisions from LMDB in the background; reads below fail with etcd\'s text', async () => {
  const { dir, cleanup } = tempDir();
  const s = await MvccStore.open(dir, { limits: { compactionBatchLimit: 7, compactionSleepIntervalMs: 0 } });
  try {
    for (let i = 0; i < 100; i++) s.put({ key: b(`k${i % 10}`), value: b(`v${i}`) }); // revisions 2..101
    s.deleteRange({ key: b('k0') }); // 102: tombstone
    s.put({ key: b('k1'), value: b('last') }); // 103
    assert.equal(s.stats().kvRecords, 102);
    s.compact(102);
    // The compacted revision is enforced at once, before anything is freed.
    assert.deepEqual(attempt(() => s.range({ key: b('k1'), revision: 101 })), { error: 'mvcc: required revision has been compacted' });
    assert.equal(s.range({ key: b('k1'), revision: 102 }).kvs.length, 1);
    await s.compactionDone();
    // Kept: k1..k9 latest puts at or below 102 (9), the k0 tombstone at exactly 102, and k1's revision 103.
    assert.equal(s.stats().kvRecords, 11);
    assert.equal(s.stats().compactionFreed, 91);
    assert.deepEqual(
      s.range({ key: b('k'), rangeEnd: b('l'), revision: 102 }).kvs.map((kv) => Buffer.from(kv.key).toString()),
      ['k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7', 'k8', 'k9'],
    );
    s.compact(103);
    await s.compactionDone();
    // The tombstone below 103 and k1's older put go too.
    assert.equal(s.stats().kvRecords, 9);
    assert.equal(s.stats().indexedKeys, 9);
  } finally {
    await s.close();
    cleanup();
  }
});

test('an interrupted physical compaction resumes on open', async () => {
  const { dir, cleanup } = tempDir();
  try {
    let s = await MvccStore.open(dir, { limits: { compactionBatchLimit: 1, compactionSleepIntervalMs: 60_000 } });
    for (let i = 0; i < 50; i++) s.put({ key: b('k'), value: b(`v${i}`) });
    s.compact(s.revision);
    await new Promise((resolve) => setTimeout(resolve, 20));
    await s.close(); // stops after the first one-record batch
    s = await MvccStore.open(dir);
    assert.equal(s.compactRevision, 51);
    await s.compactionDone();
    assert.equal(s.stats().kvRecords, 1);
    assert.ok(s.stats().compactionFreed >= 48, 'the reopened store finished the job');
    await s.close();
    // Finished compaction is recorded: the next open has nothing to do.
    s = await MvccStore.open(dir);
    await s.compactionDone();
    assert.equal(s.stats().compactionFreed, 0);
    assert.equal(Buffer.from(s.range({ key: b('k') }).kvs[0]!.value).toString(), 'v49');
    await s.close();
  } finally {
    cleanup();
  }
});

test('a key deleted and re-created within the compacted revision keeps its value (etcd issue 22376)', async () => {
  const { dir, cleanup } = tempDir();
  try {
    let s = await MvccStore.open(dir);
    s.put({ key: b('cfg/a'), value: b('old') }); // 2
    s.write(undefined, (tx) => {
      tx.deleteRange({ key: b('cfg/'), rangeEnd: b('\0') });
      tx.put({ key: b('cfg/a'), value: b('new') });
    }); // 3: tombstone 3.0, put 3.1
    s.compact(3);
    await s.compactionDone();
    assert.equal(Buffer.from(s.range({ key: b('cfg/a') }).kvs[0]!.value).toString(), 'new');
    await s.close();
    s = await MvccStore.open(dir);
    const kv = s.range({ key: b('cfg/a') }).kvs[0]!;
    assert.deepEqual([Buffer.from(kv.value).toString(), kv.createRevision, kv.version], ['new', 3, 1]);
    await s.close();
  } finally {
    cleanup();
  }
});

test('hashKV is equal on stores that applied the same requests, however far their physical compaction got', async () => {
  const a = tempDir();
  const c = tempDir();
  // A frees everything at once; B crawls one record per minute, so it frees next to nothing.
  let sa = await MvccStore.open(a.dir, { limits: { compactionBatchLimit: 1000, compactionSleepIntervalMs: 0 } });
  let sb = await MvccStore.open(c.dir, { limits: { compactionBatchLimit: 1, compactionSleepIntervalMs: 60_000 } });
  try {
    const checkpoints: number[] = [];
    for (let i = 1; i <= 1500; i++) {
      const req: MvccRequest = requestFor(i);
      sa.apply(i, req);
      sb.apply(i, req);
      if (req.op === 'compact') await sa.compactionDone();
      if (i % 300 === 0) {
        checkpoints.push(sa.revision);
        const [ha, hb] = [await sa.hashKV(), await sb.hashKV()];
        assert.deepEqual(ha, hb, `hashKV at index ${i}`);
      }
      if (i === 900) {
        // Restarting B mid-compaction (its resume is just as slow) changes nothing either.
        await sb.close();
        sb = await MvccStore.open(c.dir, { limits: { compactionBatchLimit: 1, compactionSleepIntervalMs: 60_000 } });
      }
    }
    assert.ok(sa.stats().kvRecords < sb.stats().kvRecords / 2, 'the two stores really differ physically');
    assert.notEqual((await sa.hash()).hash, (await sb.hash()).hash, 'hash() covers the physical backend');
    // Historical revisions still retained hash equal too.
    for (const rev of checkpoints.filter((r) => r >= sa.compactRevision)) {
      assert.deepEqual(await sa.hashKV(rev), await sb.hashKV(rev), `hashKV(${rev})`);
    }
    const hk = await sa.hashKV();
    assert.equal(hk.compactRevision, sa.compactRevision);
    assert.equal(hk.hashRevision, sa.revision);
    assert.deepEqual(await sa.hashKV(sa.compactRevision - 1).catch((e: Error) => ({ error: e.message })), {
      error: 'mvcc: required revision has been compacted',
    });
    assert.deepEqual(await sa.hashKV(sa.revision + 1).catch((e: Error) => ({ error: e.message })), { error: 'mvcc: required revision is a future revision' });
    // And a store with different data hashes differently.
    sa.put({ key: b('extra'), value: b('1') });
    sb.put({ key: b('extra'), value: b('2') });
    assert.notEqual((await sa.hashKV()).hash, (await sb.hashKV()).hash);
  } finally {
    await sa.close();
    await sb.close();
    a.cleanup();
    c.cleanup();
  }
});
