import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { MvccStore, SnapshotCorruptError, snapshotRecordCount } from '../../src/mvcc/index.ts';
import type { RangeRequest } from '../../src/mvcc/index.ts';
import { requestFor } from './fixtures/workload.ts';
import { b, norm, tempDir } from './helpers.ts';

const all: RangeRequest = { key: b('\0'), rangeEnd: b('\0') };
const small = { limits: { snapshotChunkBytes: 4096, hashSliceEntries: 100 } };

async function collect(src: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of src) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

async function* chunks(buf: Buffer, size = 1000): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

test('snapshot stream round trip: the restored store equals the source, meta and compaction included', async () => {
  const t = tempDir();
  try {
    const src = await MvccStore.open(join(t.dir, 'src'), small);
    for (let i = 1; i <= 800; i++) src.apply(i, requestFor(i));
    src.write(801, (tx) => tx.meta.put('members', b('m1'), b('peer-url')));
    const data = await collect(src.snapshot());
    assert.ok(data.length > 4096 * 4, 'several chunks');
    await MvccStore.restore(join(t.dir, 'dst'), chunks(data, 777), small);
    const dst = await MvccStore.open(join(t.dir, 'dst'), small);
    assert.equal(dst.consistentIndex(), 801);
    assert.equal(dst.revision, src.revision);
    assert.equal(dst.compactRevision, src.compactRevision);
    assert.deepEqual(norm(dst.range(all)), norm(src.range(all)));
    for (let rev = Math.max(src.compactRevision, 1); rev <= src.revision; rev += 37) {
      assert.deepEqual(norm(dst.range({ ...all, revision: rev })), norm(src.range({ ...all, revision: rev })));
    }
    assert.equal(Buffer.from(dst.meta.get('members', b('m1'))!).toString(), 'peer-url');
    assert.deepEqual(await dst.hashKV(), await src.hashKV());
    await src.compactionDone();
    await dst.compactionDone();
    assert.deepEqual(await dst.hash(), await src.hash());
    await src.close();
    await dst.close();
  } finally {
    t.cleanup();
  }
});

test('a snapshot is a point in time: writes made while it streams are not in it', async () => {
  const t = tempDir();
  try {
    const src = await MvccStore.open(join(t.dir, 'src'), small);
    for (let i = 0; i < 500; i++) src.put({ key: b(`k${i}`), value: Buffer.alloc(50, i) });
    const rev = src.revision;
    const expected = norm(src.range(all));
    const parts: Buffer[] = [];
    let n = 0;
    for await (const c of src.snapshot()) {
      parts.push(Buffer.from(c));
      if (n++ < 3) {
        src.put({ key: b(`late${n}`), value: b('x') });
        src.deleteRange({ key: b('k1'), rangeEnd: b('k2') });
      }
    }
    await MvccStore.restore(join(t.dir, 'dst'), chunks(Buffer.concat(parts)));
    const dst = await MvccStore.open(join(t.dir, 'dst'));
    assert.equal(dst.revision, rev);
    assert.deepEqual(norm(dst.range(all)), expected);
    await dst.close();
    await src.close();
  } finally {
    t.cleanup();
  }
});

test('a truncated, altered or padded snapshot is rejected and leaves no store behind', async () => {
  const t = tempDir();
  try {
    const src = await MvccStore.open(join(t.dir, 'src'));
    for (let i = 1; i <= 200; i++) src.apply(i, requestFor(i));
    const data = await collect(src.snapshot());
    await src.close();
    const flipped = Buffer.from(data);
    flipped[Math.floor(flipped.length / 2)]! ^= 0x01;
    const cases: Array<[string, Buffer]> = [
      ['truncated in the middle', data.subarray(0, Math.floor(data.length / 2))],
      ['truncated in the trailer', data.subarray(0, data.length - 5)],
      ['one bit flipped', flipped],
      ['extra bytes after the trailer', Buffer.concat([data, b('x')])],
      ['not a snapshot', Buffer.from('hello world, this is not a snapshot at all')],
      ['empty', Buffer.alloc(0)],
    ];
    for (const [label, bad] of cases) {
      const target = join(t.dir, `bad-${label.replace(/\W+/g, '-')}`);
      await assert.rejects(MvccStore.restore(target, chunks(bad, 333)), (e: unknown) => e instanceof SnapshotCorruptError && /mvcc: snapshot is corrupt/.test(e.message), label);
      assert.ok(!existsSync(target), `${label}: no target directory`);
    }
    assert.deepEqual(
      readdirSync(t.dir).filter((f) => f.includes('restore')),
      [],
      'no temporary directories left',
    );
    // The intact stream still restores.
    await MvccStore.restore(join(t.dir, 'ok'), chunks(data));
    const ok = await MvccStore.open(join(t.dir, 'ok'));
    assert.equal(ok.consistentIndex(), 200);
    await ok.close();
  } finally {
    t.cleanup();
  }
});

test('a sized snapshot knows its length before the first byte, holds the state of the call, and declares its record count', async () => {
  const t = tempDir();
  try {
    const src = await MvccStore.open(join(t.dir, 'src'), small);
    for (let i = 1; i <= 500; i++) src.apply(i, requestFor(i));
    const sized = await src.sizedSnapshot();
    src.apply(501, { op: 'put', request: { key: b('later'), value: b('x') } });
    const data = await collect(sized.body);
    assert.equal(data.length, sized.bytes);
    const kvRecords = src.stats().kvRecords - 1;
    assert.ok(snapshotRecordCount(data) > kvRecords, 'kv and meta records');
    assert.throws(() => snapshotRecordCount(data.subarray(0, data.length - 1)), SnapshotCorruptError);
    await MvccStore.restore(join(t.dir, 'dst'), chunks(data), small);
    const dst = await MvccStore.open(join(t.dir, 'dst'), small);
    assert.equal(dst.consistentIndex(), 500);
    assert.equal(dst.range({ key: b('later') }).count, 0);
    await dst.close();
    await src.close();
  } finally {
    t.cleanup();
  }
});
