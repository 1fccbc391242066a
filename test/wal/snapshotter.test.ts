import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import type { Snapshot } from '../../src/raft/types.ts';
import { decodeSnapshotFile, encodeSnapshotFile } from '../../src/wal/snapshotter.ts';
import { DiskLog, SnapshotCorruptError, Wal, listSnapshots, loadNewest, saveSnapshot, snapshotFileName, type SyncFn } from '../../src/wal/index.ts';
import { defaultSync } from '../../src/wal/fsutil.ts';
import { CONF, META, SMALL, dataFor, ents, snapMeta, tmpDir } from './helpers.ts';

function snap(index: number, term: number, bytes = 100): Snapshot {
  return { metadata: snapMeta(index, term), data: dataFor(index, term, bytes) };
}

function same(a: Snapshot | null, b: Snapshot): void {
  assert.ok(a !== null);
  assert.deepEqual(a.metadata, b.metadata);
  assert.deepEqual(Array.from(a.data), Array.from(b.data));
}

test('snapshot files: encode/decode round-trips; any flipped byte fails the checksum', () => {
  fc.assert(
    fc.property(fc.maxSafeNat(), fc.maxSafeNat(), fc.uint8Array({ maxLength: 200 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (index, term, data, at, mask) => {
      const s: Snapshot = { metadata: { index, term, confState: CONF }, data };
      const buf = encodeSnapshotFile(s);
      same(decodeSnapshotFile(buf, 'x'), s);
      const bad = Buffer.from(buf);
      bad[at % bad.length] ^= mask;
      assert.throws(() => decodeSnapshotFile(bad, 'x'), SnapshotCorruptError);
    }),
  );
});

test('snapshot files: written under a temporary name, synced, then renamed and the directory synced', async (t) => {
  const dir = tmpDir(t);
  const events: string[] = [];
  const sync: SyncFn = async (fd, kind) => {
    const names = fs.readdirSync(dir);
    events.push(`${kind}:${names.sort().join(',')}`);
    await defaultSync(fd, kind);
  };
  const s = snap(10, 2);
  const path = await saveSnapshot(dir, s, { sync });
  const name = snapshotFileName(s.metadata);
  assert.equal(path, join(dir, name));
  // The data sync happens while only the temporary file exists; the directory sync after the rename.
  assert.deepEqual(events, [`data:${name}.tmp`, `directory:${name}`]);
  const loaded = await loadNewest(dir);
  same(loaded.snapshot, s);
  assert.equal(loaded.file, path);
  assert.deepEqual(loaded.broken, []);
});

test('snapshot files: a corrupt newest file falls back to the next older valid one and is reported', async (t) => {
  const dir = tmpDir(t);
  await saveSnapshot(dir, snap(10, 1));
  await saveSnapshot(dir, snap(20, 1));
  await saveSnapshot(dir, snap(30, 2));
  const newest = join(dir, snapshotFileName(snapMeta(30, 2)));
  const buf = fs.readFileSync(newest);
  buf[buf.length - 5]! ^= 0x40;
  fs.writeFileSync(newest, buf);
  fs.writeFileSync(join(dir, snapshotFileName(snapMeta(40, 2))), Buffer.from('CVSN')); // truncated write
  const loaded = await loadNewest(dir);
  same(loaded.snapshot, snap(20, 1));
  assert.deepEqual(loaded.broken.map((b) => b.file), [join(dir, snapshotFileName(snapMeta(40, 2))), newest]);
  assert.ok(loaded.broken.every((b) => b.error.code === 'SNAP_CORRUPT'));
  assert.match(loaded.broken[1]!.error.message, /checksum/);

  // `accept` skips valid files the caller cannot use (e.g. newer than the WAL's marker).
  const older = await loadNewest(dir, { accept: (m) => m.index <= 15 });
  same(older.snapshot, snap(10, 1));
  assert.equal((await loadNewest(dir, { accept: () => false })).snapshot, null);
  assert.equal((await loadNewest(join(dir, 'none'))).snapshot, null);
});

test('snapshot files: only the newest N are kept, and temporary debris is removed', async (t) => {
  const dir = tmpDir(t);
  fs.writeFileSync(join(dir, `${snapshotFileName(snapMeta(1, 1))}.tmp`), 'partial');
  for (let i = 1; i <= 8; i++) await saveSnapshot(dir, snap(i * 10, 1), { keep: 3 });
  assert.deepEqual(await listSnapshots(dir), [80, 70, 60].map((i) => snapshotFileName(snapMeta(i, 1))));
  assert.deepEqual(fs.readdirSync(dir).filter((n) => n.endsWith('.tmp')), []);
  for (let i = 9; i <= 14; i++) await saveSnapshot(dir, snap(i * 10, 1));
  assert.equal((await listSnapshots(dir)).length, 5, 'default keep is 5');
  await assert.rejects(saveSnapshot(dir, snap(200, 1), { keep: 0 }), RangeError);
});

test('snapshot files: a file whose name disagrees with its contents is not trusted', async (t) => {
  const dir = tmpDir(t);
  await saveSnapshot(dir, snap(10, 1));
  fs.renameSync(join(dir, snapshotFileName(snapMeta(10, 1))), join(dir, snapshotFileName(snapMeta(99, 1))));
  const loaded = await loadNewest(dir);
  assert.equal(loaded.snapshot, null);
  assert.equal(loaded.broken.length, 1);
});

test('disk log: snapshot file before its WAL marker, release after; recovery finds both', async (t) => {
  const walDir = tmpDir(t);
  const snapDir = tmpDir(t);
  const log = new DiskLog(await Wal.create(walDir, META, SMALL), snapDir);
  for (let i = 1; i <= 120; i += 4) await log.save({ term: 1, vote: 'm1', commit: i + 3 }, ents(i, i + 3, 1, 100), null);
  const segmentsBefore = log.wal.segmentNames().length;
  await log.saveSnapshot({ metadata: snapMeta(100, 1), data: new Uint8Array(0) });
  assert.ok(log.wal.segmentNames().length < segmentsBefore, 'the log before the snapshot was released');
  // A snapshot received from a leader replaces the log.
  const received = snap(200, 3, 50);
  await log.save({ term: 3, vote: '', commit: 200 }, [], received);
  await log.wal.close();

  const r = await Wal.open(walDir, SMALL);
  const marker = r.snapshot!;
  assert.deepEqual(marker, received.metadata);
  assert.deepEqual(r.entries, []);
  const loaded = await loadNewest(snapDir, { accept: (m) => m.index === marker.index && m.term === marker.term });
  same(loaded.snapshot, received);
  await r.wal.close();
});
