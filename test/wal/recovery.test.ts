/**
 * Recovery from damaged segments: torn tails are cut off and the WAL carries on; damage that an
 * interrupted append cannot explain stops it with WalCorruptError naming file and offset.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import type { Entry, HardState } from '../../src/raft/types.ts';
import { PayloadReader, RecordType, readEntry, readHardState, readMetadata } from '../../src/wal/format.ts';
import { Wal, WalCorruptError } from '../../src/wal/index.ts';
import { scanSegment } from '../../src/wal/scan.ts';
import { META, SMALL, ent, ents, plain, tmpDir, tmpDirRaw } from './helpers.ts';

interface Rec {
  readonly file: string;
  readonly offset: number;
  readonly end: number;
  readonly type: number;
  readonly entry?: Entry;
  readonly hardState?: HardState;
}

/** Every record of every segment, in order, as the intact files hold them. */
function records(dir: string): { recs: Rec[]; files: string[] } {
  const files = fs.readdirSync(dir).filter((n) => n.endsWith('.wal')).sort();
  const recs: Rec[] = [];
  files.forEach((file, i) => {
    const buf = fs.readFileSync(join(dir, file));
    const scan = scanSegment(buf, file, { isLast: i === files.length - 1, seed: null }, (r) => {
      const base = { file, offset: r.offset, end: r.offset + 9 + r.payload.length, type: r.type };
      const p = new PayloadReader(r.payload);
      if (r.type === RecordType.Entry) recs.push({ ...base, entry: readEntry(p) });
      else if (r.type === RecordType.HardState) recs.push({ ...base, hardState: readHardState(p) });
      else if (r.type === RecordType.Metadata) recs.push({ ...base, hardState: readMetadata(p).hardState ?? undefined });
      else recs.push(base);
    });
    if (scan.sealed) recs.push({ file, offset: scan.end - 13, end: scan.end, type: RecordType.Seal });
  });
  return { recs, files };
}

/** What survives when exactly the records in `recs` do (no overwrites or snapshots in these logs). */
function expected(recs: readonly Rec[]): { entries: Entry[]; hardState: HardState } {
  let hardState: HardState = { term: 0, vote: '', commit: 0 };
  const entries: Entry[] = [];
  for (const r of recs) {
    if (r.entry) entries.push(r.entry);
    if (r.hardState) hardState = r.hardState;
  }
  return { entries, hardState };
}

async function buildLog(dir: string, options: { segmentBytes: number; zeroChunkBytes: number }, batches: number, bytes: (i: number) => number): Promise<void> {
  const wal = await Wal.create(dir, META, options);
  let next = 1;
  for (let b = 0; b < batches; b++) {
    const n = 1 + (b % 3);
    const es = ents(next, next + n - 1, 1 + Math.floor(b / 10), bytes(b));
    next += n;
    await wal.save(b % 2 === 0 ? { term: 1 + Math.floor(b / 10), vote: 'm2', commit: next - 1 } : null, es);
  }
  await wal.close();
}

test('torn tail: cutting the newest segment anywhere keeps every record before the cut, and the WAL writes on', async (t) => {
  const base = tmpDir(t);
  await buildLog(base, SMALL, 60, (b) => 40 + ((b * 37) % 120));
  const { recs, files } = records(base);
  const lastFile = files[files.length - 1]!;
  const lastRecs = recs.filter((r) => r.file === lastFile);
  const metaEnd = lastRecs[0]!.end;
  const dataEnd = lastRecs[lastRecs.length - 1]!.end;
  assert.ok(files.length >= 3 && lastRecs.length >= 4, 'the log spans several segments and the newest holds several records');

  let recovered = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: dataEnd + 40 }),
      fc.constantFrom('truncate' as const, 'zero' as const, 'garbage' as const),
      fc.uint8Array({ minLength: 1, maxLength: 64 }),
      async (cut, mode, noise) => {
        const dir = tmpDirRaw();
        try {
          fs.cpSync(base, dir, { recursive: true });
          const path = join(dir, lastFile);
          if (mode === 'truncate') fs.truncateSync(path, cut);
          else {
            const end = Math.max(dataEnd, cut + noise.length);
            const fill = Buffer.alloc(end - cut);
            if (mode === 'garbage') for (let i = 0; i < fill.length; i++) fill[i] = noise[i % noise.length]! ^ (i * 131);
            const fd = fs.openSync(path, 'r+');
            fs.writeSync(fd, fill, 0, fill.length, cut);
            fs.closeSync(fd);
          }
          if (cut < metaEnd) {
            // The first record is synced before the segment is named: damage there is corruption.
            await assert.rejects(Wal.open(dir, SMALL), (e: unknown) => e instanceof WalCorruptError && e.file === lastFile && e.offset === 0);
            return;
          }
          const survivors = recs.filter((r) => r.file !== lastFile || r.end <= cut);
          const want = expected(survivors);
          const r = await Wal.open(dir, SMALL);
          recovered++;
          assert.deepEqual(plain(r.entries), plain(want.entries));
          assert.deepEqual(r.hardState, want.hardState);
          const cutRecord = lastRecs.find((x) => x.offset < cut && cut < x.end);
          if (cutRecord !== undefined) {
            assert.equal(r.repaired?.file, lastFile);
            assert.equal(r.repaired?.offset, cutRecord.offset, 'the partial record is dropped from its start');
          }
          // Writable again, and a later reopen sees the new appends after the surviving ones.
          const next = want.entries[want.entries.length - 1]!.index + 1;
          await r.wal.save({ term: 9, vote: 'm3', commit: next }, [ent(next, 9, 300)]);
          await r.wal.close();
          const again = await Wal.open(dir, SMALL);
          assert.deepEqual(plain(again.entries), plain([...want.entries, ent(next, 9, 300)]));
          assert.deepEqual(again.hardState, { term: 9, vote: 'm3', commit: next });
          assert.equal(again.repaired, null);
          await again.wal.close();
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      },
    ),
    { numRuns: Number(process.env['WAL_TORN_RUNS'] ?? 150) },
  );
  assert.ok(recovered > 50);
});

test('corruption: a flipped byte anywhere but the final record stops open with the file and the record offset', async (t) => {
  const base = tmpDir(t);
  await buildLog(base, SMALL, 40, () => 90);
  const { recs, files } = records(base);
  const lastFile = files[files.length - 1]!;
  const finalRecord = recs[recs.length - 1]!;
  const candidates = recs.filter((r) => r !== finalRecord);
  assert.ok(candidates.some((r) => r.file === lastFile && r.offset > 0), 'the newest segment has records in the middle');

  await fc.assert(
    fc.asyncProperty(fc.nat({ max: candidates.length - 1 }), fc.nat(), fc.integer({ min: 1, max: 255 }), async (which, at, mask) => {
      const rec = candidates[which]!;
      const pos = rec.offset + (at % (rec.end - rec.offset));
      const dir = tmpDirRaw();
      try {
        fs.cpSync(base, dir, { recursive: true });
        const path = join(dir, rec.file);
        const fd = fs.openSync(path, 'r+');
        const b = Buffer.alloc(1);
        fs.readSync(fd, b, 0, 1, pos);
        b[0] = b[0]! ^ mask;
        fs.writeSync(fd, b, 0, 1, pos);
        fs.closeSync(fd);
        await assert.rejects(Wal.open(dir, SMALL), (e: unknown) => {
          assert.ok(e instanceof WalCorruptError, String(e));
          assert.equal(e.code, 'WAL_CORRUPT');
          assert.equal(e.file, rec.file);
          assert.equal(e.offset, rec.offset);
          assert.ok(e.message.includes(rec.file) && e.message.includes(`offset ${rec.offset}`), e.message);
          return true;
        });
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }),
    { numRuns: Number(process.env['WAL_FLIP_RUNS'] ?? 120) },
  );
});

test('corruption: a sealed segment that lost its end is corruption, not a torn tail', async (t) => {
  const dir = tmpDir(t);
  await buildLog(dir, SMALL, 40, () => 90);
  const files = fs.readdirSync(dir).filter((n) => n.endsWith('.wal')).sort();
  const victim = files[1]!;
  const size = fs.statSync(join(dir, victim)).size;
  fs.truncateSync(join(dir, victim), size - 20);
  await assert.rejects(Wal.open(dir, SMALL), (e: unknown) => e instanceof WalCorruptError && e.file === victim && /not the newest/.test(e.reason));
});

test('torn tail: a record spanning a zeroed sector is a write the disk only partly completed', async (t) => {
  const dir = tmpDir(t);
  const opts = { segmentBytes: 64 * 1024, zeroChunkBytes: 64 * 1024 };
  const wal = await Wal.create(dir, META, opts);
  for (let i = 1; i <= 10; i++) await wal.save(null, [ent(i, 1, 2000)]);
  await wal.close();
  const { recs } = records(dir);
  const victim = recs.find((r) => r.entry?.index === 7)!;
  // Zero one whole sector inside entry 7, leaving entries 8..10 intact after it: the pattern of
  // a multi-page write whose middle page never reached the disk.
  const sector = Math.ceil((victim.offset + 20) / 512) * 512;
  assert.ok(sector + 512 <= victim.end);
  const fd = fs.openSync(join(dir, victim.file), 'r+');
  fs.writeSync(fd, Buffer.alloc(512), 0, 512, sector);
  fs.closeSync(fd);
  const r = await Wal.open(dir, opts);
  assert.deepEqual(r.entries.map((e) => e.index), [1, 2, 3, 4, 5, 6]);
  assert.equal(r.repaired?.offset, victim.offset);
  assert.match(r.repaired!.reason, /zeroed sector/);
  await r.wal.close();

  // The same damage without the zeroed sector (one flipped byte) is corruption.
  const dir2 = tmpDir(t);
  const wal2 = await Wal.create(dir2, META, opts);
  for (let i = 1; i <= 10; i++) await wal2.save(null, [ent(i, 1, 2000)]);
  await wal2.close();
  const fd2 = fs.openSync(join(dir2, victim.file), 'r+');
  fs.writeSync(fd2, Buffer.from([0xff]), 0, 1, sector);
  fs.closeSync(fd2);
  await assert.rejects(Wal.open(dir2, opts), (e: unknown) => e instanceof WalCorruptError && e.offset === victim.offset);
});
