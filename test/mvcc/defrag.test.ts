import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { MvccStore, MvccAssertionError } from '../../src/mvcc/index.ts';
import type { RangeRequest } from '../../src/mvcc/index.ts';
import { b, norm, tempDir } from './helpers.ts';

const all: RangeRequest = { key: b('\0'), rangeEnd: b('\0') };
const VALUE = Buffer.alloc(2000, 'v');

/** A store that grew to hold 3000 values of 2 KB, then lost most of them to a delete and a compaction. */
async function bloated(dir: string): Promise<MvccStore> {
  const store = await MvccStore.open(dir);
  let index = 0;
  for (let i = 0; i < 3000; i++) store.apply(++index, { op: 'put', request: { key: b(`big/${String(i).padStart(5, '0')}`), value: VALUE } });
  for (let i = 0; i < 20; i++) store.apply(++index, { op: 'put', request: { key: b(`keep/${i}`), value: b(`v${i}`) } });
  // Committed to LMDB before they are deleted, so the file holds them all once.
  await store.sync();
  store.apply(++index, { op: 'deleteRange', request: { key: b('big/'), rangeEnd: b('big0') } });
  store.apply(++index, { op: 'compact', revision: store.revision });
  await store.compactionDone();
  await store.sync();
  return store;
}

async function collect(src: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of src) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

test('defragment gives free pages back: the file shrinks, data, revisions, index and hashes stay, writes go on', async () => {
  const t = tempDir();
  try {
    const dir = join(t.dir, 'db');
    const store = await bloated(dir);
    const before = store.stats();
    const fileBefore = statSync(join(dir, 'data.mdb')).size;
    assert.ok(before.dbBytes > 6_000_000, `the store grew (${before.dbBytes} bytes)`);
    assert.ok(before.dbBytesInUse < before.dbBytes / 10, `most pages are free: ${before.dbBytesInUse} of ${before.dbBytes} in use`);
    const view = norm(store.range(all));
    const hash = await store.hash();
    const hashKV = await store.hashKV();

    const r = await store.defragment();
    assert.equal(r.beforeBytes, before.dbBytes);
    const after = store.stats();
    const fileAfter = statSync(join(dir, 'data.mdb')).size;
    assert.ok(fileAfter < fileBefore / 10, `data.mdb shrank from ${fileBefore} to ${fileAfter} bytes`);
    assert.equal(r.afterBytes, after.dbBytes);
    assert.ok(after.dbBytes < before.dbBytes / 10, `dbBytes ${before.dbBytes} → ${after.dbBytes}`);
    assert.ok(after.dbBytesInUse <= after.dbBytes);
    assert.equal(after.revision, before.revision);
    assert.equal(after.compactRevision, before.compactRevision);
    assert.equal(after.consistentIndex, before.consistentIndex);
    assert.equal(after.kvRecords, before.kvRecords);
    assert.deepEqual(norm(store.range(all)), view);
    assert.deepEqual(await store.hash(), hash);
    assert.deepEqual(await store.hashKV(), hashKV);
    assert.ok(!existsSync(`${dir}.defrag`) && !existsSync(`${dir}.defrag-tmp`));

    // Writes, reads at old revisions and commit listeners work on the new file.
    const seen: number[] = [];
    store.onCommit((rev) => seen.push(rev));
    store.apply(after.consistentIndex + 1, { op: 'put', request: { key: b('keep/0'), value: b('new') } });
    assert.deepEqual(seen, [after.revision + 1]);
    assert.equal(Buffer.from(store.range({ key: b('keep/0') }).kvs[0]!.value).toString(), 'new');
    assert.equal(Buffer.from(store.range({ key: b('keep/0'), revision: after.revision }).kvs[0]!.value).toString(), 'v0');
    await store.close();

    const reopened = await MvccStore.open(dir);
    assert.equal(reopened.consistentIndex(), after.consistentIndex + 1);
    assert.equal(Buffer.from(reopened.range({ key: b('keep/0') }).kvs[0]!.value).toString(), 'new');
    await reopened.close();
  } finally {
    t.cleanup();
  }
});

test('a snapshot stream begun before a defragment finishes from the old file, which goes once it is done', async () => {
  const t = tempDir();
  try {
    const dir = join(t.dir, 'db');
    const store = await MvccStore.open(dir, { limits: { snapshotChunkBytes: 4096, hashSliceEntries: 50 } });
    for (let i = 1; i <= 400; i++) store.apply(i, { op: 'put', request: { key: b(`k${i}`), value: VALUE } });
    const it = store.snapshot()[Symbol.asyncIterator]();
    const first = await it.next();
    assert.equal(first.done, false);
    await store.defragment();
    assert.ok(existsSync(`${dir}.defrag-old`), 'the old file stays while the stream reads it');
    store.apply(401, { op: 'put', request: { key: b('after'), value: b('x') } });
    const rest: Buffer[] = [Buffer.from(first.value)];
    for (let n = await it.next(); n.done !== true; n = await it.next()) rest.push(Buffer.from(n.value));
    const restored = join(t.dir, 'restored');
    await MvccStore.restore(restored, (async function* () {
      yield* rest;
    })());
    const copy = await MvccStore.open(restored);
    assert.equal(copy.consistentIndex(), 400, 'the stream holds the state from before the defragment');
    assert.equal(copy.range({ key: b('after') }).count, 0);
    assert.equal(copy.range(all).count, 400);
    await copy.close();
    for (let i = 0; i < 100 && existsSync(`${dir}.defrag-old`); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(!existsSync(`${dir}.defrag-old`), 'the old file is removed after its last reader');
    assert.equal((await collect(store.snapshot())).length > 0, true);
    await store.close();
  } finally {
    t.cleanup();
  }
});

test('a write during the copy breaks an invariant; the store refuses a second defragment meanwhile', async () => {
  const t = tempDir();
  try {
    const store = await MvccStore.open(join(t.dir, 'db'));
    for (let i = 1; i <= 200; i++) store.apply(i, { op: 'put', request: { key: b(`k${i}`), value: VALUE } });
    const run = store.defragment();
    assert.throws(() => store.defragment(), /already running/);
    // Let the compactor pause and the backend freeze, then write as a buggy caller would.
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    assert.throws(() => store.apply(201, { op: 'put', request: { key: b('x'), value: b('y') } }), MvccAssertionError);
    await run;
    store.apply(201, { op: 'put', request: { key: b('x'), value: b('y') } });
    assert.equal(store.consistentIndex(), 201);
    await store.close();
  } finally {
    t.cleanup();
  }
});

test('open recovers from a crash in the middle of the swap: the store comes back whole, leftovers go', async () => {
  const t = tempDir();
  try {
    const dir = join(t.dir, 'db');
    const store = await MvccStore.open(dir);
    for (let i = 1; i <= 50; i++) store.apply(i, { op: 'put', request: { key: b(`k${i}`), value: b(`v${i}`) } });
    await store.close();
    // As if it crashed between "db → db.defrag-old" and "db.defrag → db": only the old one exists.
    renameSync(dir, `${dir}.defrag-old`);
    mkdirSync(`${dir}.defrag-tmp`);
    const back = await MvccStore.open(dir);
    assert.equal(back.consistentIndex(), 50);
    assert.equal(back.range(all).count, 50);
    assert.ok(!existsSync(`${dir}.defrag-old`) && !existsSync(`${dir}.defrag-tmp`));
    await back.close();
  } finally {
    t.cleanup();
  }
});

test('resetConsistentIndex forgets the applied index and keeps the data', async () => {
  const t = tempDir();
  try {
    const dir = join(t.dir, 'db');
    const store = await MvccStore.open(dir);
    for (let i = 1; i <= 10; i++) store.apply(i, { op: 'put', request: { key: b(`k${i}`), value: b(`v${i}`) } });
    const rev = store.revision;
    store.resetConsistentIndex();
    assert.equal(store.consistentIndex(), 0);
    await store.close();
    const back = await MvccStore.open(dir);
    assert.equal(back.consistentIndex(), 0);
    assert.equal(back.revision, rev);
    assert.equal(back.range(all).count, 10);
    assert.equal(back.apply(1, { op: 'put', request: { key: b('k1'), value: b('again') } }).status, 'applied');
    await back.close();
  } finally {
    t.cleanup();
  }
});
