import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { AssertionError } from '../../src/util/assert.ts';
import type { Entry, HardState } from '../../src/raft/types.ts';
import {
  Wal,
  WalClosedError,
  WalClusterMismatchError,
  WalCorruptError,
  WalExistsError,
  WalFailedError,
  WalNotFoundError,
  WalRecordTooLargeError,
  type SyncFn,
} from '../../src/wal/index.ts';
import { defaultSync } from '../../src/wal/fsutil.ts';
import { META, Model, SMALL, ent, ents, plain, snapMeta, tmpDir, tmpDirRaw } from './helpers.ts';

test('round trip: hard states, entries and a snapshot marker come back exactly', async (t) => {
  const dir = tmpDir(t);
  const wal = await Wal.create(dir, META);
  await wal.save({ term: 1, vote: 'm1', commit: 0 }, ents(1, 3, 1));
  await wal.save({ term: 2, vote: 'm2', commit: 3 }, [ent(4, 2, 0), { index: 5, term: 2, kind: 1, data: new Uint8Array([1, 2, 3]) }]);
  await wal.save(null, [], snapMeta(2, 1));
  await wal.save({ term: 2, vote: 'm2', commit: 5 }, ents(6, 7, 2, 1000));
  await wal.close();

  const r = await Wal.open(dir);
  assert.deepEqual(r.metadata, META);
  assert.deepEqual(r.hardState, { term: 2, vote: 'm2', commit: 5 });
  assert.deepEqual(r.snapshot, snapMeta(2, 1));
  assert.deepEqual(plain(r.entries), plain([...ents(3, 3, 1), ent(4, 2, 0), { index: 5, term: 2, kind: 1, data: new Uint8Array([1, 2, 3]) }, ...ents(6, 7, 2, 1000)]));
  assert.equal(r.repaired, null);
  assert.equal(r.wal.lastIndex(), 7);
  // Appends continue after the recovered log and survive another reopen.
  await r.wal.save(null, ents(8, 8, 3));
  await r.wal.close();
  const r2 = await Wal.open(dir);
  assert.deepEqual(r2.entries.map((e) => e.index), [3, 4, 5, 6, 7, 8]);
  await r2.wal.close();
});

test('round trip: a suffix overwrite replaces entries from its first index on', async (t) => {
  const dir = tmpDir(t);
  const wal = await Wal.create(dir, META);
  await wal.save({ term: 1, vote: '', commit: 2 }, ents(1, 6, 1));
  await wal.save({ term: 2, vote: '', commit: 2 }, ents(4, 5, 2));
  await wal.close();
  const r = await Wal.open(dir);
  assert.deepEqual(plain(r.entries), plain([...ents(1, 3, 1), ...ents(4, 5, 2)]));
  await r.wal.close();
});

test('round trip: a snapshot that contradicts the log replaces it; one that matches keeps the suffix', async (t) => {
  const dir = tmpDir(t);
  const wal = await Wal.create(dir, META);
  await wal.save({ term: 1, vote: '', commit: 2 }, ents(1, 5, 1));
  await wal.save(null, [], snapMeta(3, 1)); // matches entry 3: keeps 4..5
  await wal.close();
  let r = await Wal.open(dir);
  assert.deepEqual(r.entries.map((e) => e.index), [4, 5]);
  await r.wal.save({ term: 3, vote: '', commit: 4 }, [], snapMeta(4, 3)); // entry 4 has term 1: replaces the log
  await r.wal.close();
  r = await Wal.open(dir);
  assert.deepEqual(r.snapshot, snapMeta(4, 3));
  assert.deepEqual(r.entries, []);
  await r.wal.save(null, ents(5, 6, 3));
  await r.wal.close();
  r = await Wal.open(dir);
  assert.deepEqual(r.entries.map((e) => [e.index, e.term]), [[5, 3], [6, 3]]);
  await r.wal.close();
});

// ---------------------------------------------------------------------------------------------
// Model-based property test

type Op =
  | { readonly t: 'append'; readonly n: number; readonly bump: boolean; readonly hs: boolean; readonly frac: number; readonly bytes: number; readonly wait: boolean }
  | { readonly t: 'overwrite'; readonly back: number; readonly n: number; readonly wait: boolean }
  | { readonly t: 'compact'; readonly frac: number; readonly wait: boolean }
  | { readonly t: 'install'; readonly ahead: number; readonly follow: number; readonly wait: boolean }
  | { readonly t: 'hs'; readonly vote: string; readonly wait: boolean }
  | { readonly t: 'empty'; readonly wait: boolean }
  | { readonly t: 'release'; readonly frac: number }
  | { readonly t: 'reopen' };

const frac = fc.integer({ min: 0, max: 1000 }).map((x) => x / 1000);
const wait = fc.boolean();
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ t: fc.constant('append' as const), n: fc.integer({ min: 1, max: 6 }), bump: fc.boolean(), hs: fc.boolean(), frac, bytes: fc.integer({ min: 0, max: 400 }), wait }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('overwrite' as const), back: fc.integer({ min: 1, max: 5 }), n: fc.integer({ min: 1, max: 4 }), wait }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('compact' as const), frac, wait }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('install' as const), ahead: fc.integer({ min: 0, max: 5 }), follow: fc.integer({ min: 0, max: 3 }), wait }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('hs' as const), vote: fc.constantFrom('', 'm1', 'm2', 'ünï'), wait }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('empty' as const), wait }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('release' as const), frac }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('reopen' as const) }) },
);

/** What the random runs exercised, so the property cannot pass by never reaching the hard parts. */
const TINY = { segmentBytes: 1024, zeroChunkBytes: 1024 } as const;
const coverage = { released: 0, rolled: 0, restarts: 0 };

async function runOps(dir: string, ops: readonly Op[]): Promise<void> {
  const m = new Model();
  let wal = await Wal.create(dir, META, TINY);
  let pending: Promise<unknown>[] = [];
  const check = (r: { hardState: HardState; snapshot: unknown; entries: Entry[] }): void => {
    assert.deepEqual(r.hardState, m.hardState);
    assert.deepEqual(r.snapshot, m.snapshot);
    assert.deepEqual(plain(r.entries), plain(m.log));
  };
  const save = async (hs: HardState | null, es: Entry[], snap: ReturnType<typeof snapMeta> | undefined, waitFor: boolean): Promise<void> => {
    m.save(hs, es, snap);
    const p = wal.save(hs, es, snap);
    if (waitFor) await p;
    else pending.push(p);
  };
  for (const op of ops) {
    const last = m.lastIndex();
    const commit = m.hardState.commit;
    switch (op.t) {
      case 'append': {
        const term = op.bump ? m.maxTerm() + 1 : Math.max(m.maxTerm(), 1);
        const es = ents(last + 1, last + op.n, term, op.bytes);
        const hs = op.hs ? { term: Math.max(m.hardState.term, term), vote: 'm1', commit: commit + Math.floor(op.frac * (last + op.n - commit)) } : null;
        await save(hs, es, undefined, op.wait);
        break;
      }
      case 'overwrite': {
        const from = Math.max(commit + 1, m.snapIndex() + 1, last - op.back + 1);
        await save(null, ents(from, from + op.n - 1, m.maxTerm() + 1), undefined, op.wait);
        break;
      }
      case 'compact': {
        const idx = m.snapIndex() + Math.floor(op.frac * (commit - m.snapIndex()));
        if (idx === 0) break;
        await save(null, [], snapMeta(idx, m.termAt(idx)!), op.wait);
        break;
      }
      case 'install': {
        const idx = Math.max(last + op.ahead, m.snapIndex() + 1);
        const term = m.maxTerm() + 1;
        coverage.restarts++;
        await save({ term, vote: '', commit: idx }, ents(idx + 1, idx + op.follow, term), snapMeta(idx, term, { ...snapMeta(0, 0).confState, voters: ['m' + idx] }), op.wait);
        break;
      }
      case 'hs':
        await save({ term: m.maxTerm(), vote: op.vote, commit }, [], undefined, op.wait);
        break;
      case 'empty':
        await save(null, [], undefined, op.wait);
        break;
      case 'release':
        pending.push(wal.releaseTo(Math.floor(op.frac * (last + 1))).then((removed) => (coverage.released += removed.length)));
        break;
      case 'reopen': {
        await Promise.all(pending);
        pending = [];
        await wal.close();
        const r = await Wal.open(dir, TINY);
        check(r);
        wal = r.wal;
        break;
      }
    }
  }
  await Promise.all(pending);
  coverage.rolled += wal.segmentNames().length > 1 ? 1 : 0;
  await wal.close();
  const r = await Wal.open(dir, TINY);
  check(r);
  await r.wal.close();
}

test('model: random batch sequences (appends, overwrites, snapshots, releases, reopens) recover exactly', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: 10, maxLength: 80 }), async (ops) => {
      const dir = tmpDirRaw();
      try {
        await runOps(dir, ops);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }),
    { numRuns: Number(process.env['WAL_MODEL_RUNS'] ?? 80) },
  );
  assert.ok(coverage.released > 0 && coverage.rolled > 0 && coverage.restarts > 0, JSON.stringify(coverage));
});

// ---------------------------------------------------------------------------------------------
// Segments

test('segments: roll over at segmentBytes; releaseTo deletes only what recovery no longer needs', async (t) => {
  const dir = tmpDir(t);
  const wal = await Wal.create(dir, META, SMALL);
  for (let i = 1; i <= 200; i += 4) await wal.save({ term: 1, vote: 'm1', commit: i - 1 }, ents(i, i + 3, 1, 100));
  const names = wal.segmentNames();
  assert.ok(names.length >= 5, `expected many segments, got ${names.length}`);
  for (const n of names) assert.ok(fs.statSync(join(dir, n)).size <= SMALL.segmentBytes + 200, `${n} stays near segmentBytes`);
  assert.deepEqual(fs.readdirSync(dir).filter((n) => n.endsWith('.wal')).sort(), names);

  assert.deepEqual(await wal.releaseTo(1000), [], 'no snapshot marker: nothing may be released');
  await wal.save(null, [], snapMeta(150, 1));
  const removed = await wal.releaseTo(150);
  assert.ok(removed.length > 0);
  const kept = wal.segmentNames();
  assert.deepEqual(fs.readdirSync(dir).filter((n) => n.endsWith('.wal')).sort(), kept);
  await wal.close();

  const r = await Wal.open(dir, SMALL);
  assert.deepEqual(r.snapshot, snapMeta(150, 1));
  assert.deepEqual(r.entries.map((e) => e.index), Array.from({ length: 50 }, (_, k) => 151 + k));
  assert.deepEqual(r.hardState, { term: 1, vote: 'm1', commit: 196 });
  // The first kept segment holds entry 151 (names carry the index the segment began at).
  const firstIndexOf = (n: string): number => parseInt(n.slice(17, 33), 16);
  assert.ok(firstIndexOf(kept[0]!) <= 151 && (kept.length < 2 || firstIndexOf(kept[1]!) > 151));
  await r.wal.close();
});

test('segments: after a release the hard state survives via the copy in each segment\'s first record', async (t) => {
  const dir = tmpDir(t);
  const wal = await Wal.create(dir, META, SMALL);
  await wal.save({ term: 7, vote: 'm3', commit: 0 }, []);
  for (let i = 1; i <= 120; i += 4) await wal.save(null, ents(i, i + 3, 7, 100));
  await wal.save(null, [], snapMeta(120, 7));
  await wal.save(null, ents(121, 121, 7)); // keeps the marker's segment from being the only one
  assert.ok((await wal.releaseTo(120)).length > 0);
  await wal.close();
  const r = await Wal.open(dir, SMALL);
  assert.deepEqual(r.hardState, { term: 7, vote: 'm3', commit: 0 });
  assert.deepEqual(r.snapshot, snapMeta(120, 7));
  assert.deepEqual(r.entries.map((e) => e.index), [121]);
  await r.wal.close();
});

test('segments: a crash after sealing a segment but before naming the next is recovered', async (t) => {
  const dir = tmpDir(t);
  const wal = await Wal.create(dir, META, SMALL);
  for (let i = 1; i <= 40; i++) await wal.save({ term: 1, vote: '', commit: i }, [ent(i, 1, 100)]);
  await wal.close();
  // Every segment but the newest is sealed. Removing the newest leaves the directory as it was
  // after "seal the old segment, sync" and before "rename the new one into place".
  const names = fs.readdirSync(dir).filter((n) => n.endsWith('.wal')).sort();
  assert.ok(names.length >= 2);
  const newest = names[names.length - 1]!;
  const firstIndex = parseInt(newest.slice(17, 33), 16);
  fs.unlinkSync(join(dir, newest));

  const r = await Wal.open(dir, SMALL);
  assert.deepEqual(plain(r.entries), plain(ents(1, firstIndex - 1, 1, 100)));
  assert.deepEqual(r.hardState, { term: 1, vote: '', commit: firstIndex - 1 });
  const again = r.wal.segmentNames();
  assert.equal(again[again.length - 1]!.slice(0, 16), newest.slice(0, 16), 'the missing segment is begun again');
  await r.wal.save(null, [ent(firstIndex, 1)]);
  await r.wal.close();
  const r2 = await Wal.open(dir, SMALL);
  assert.equal(r2.entries[r2.entries.length - 1]!.index, firstIndex);
  await r2.wal.close();
});

test('segments: a leftover temporary segment is deleted on open; a missing middle segment is corruption', async (t) => {
  const dir = tmpDir(t);
  const wal = await Wal.create(dir, META, SMALL);
  for (let i = 1; i <= 80; i += 4) await wal.save(null, ents(i, i + 3, 1, 100));
  await wal.close();
  fs.writeFileSync(join(dir, 'segment.wal.tmp'), Buffer.alloc(100, 1));
  const r = await Wal.open(dir, SMALL);
  assert.ok(!fs.existsSync(join(dir, 'segment.wal.tmp')) || r.wal.segmentNames().length > 0);
  assert.equal(r.entries.length, 80);
  await r.wal.close();
  assert.ok(!fs.existsSync(join(dir, 'segment.wal.tmp')), 'close removes the prepared segment');

  const names = fs.readdirSync(dir).filter((n) => n.endsWith('.wal')).sort();
  fs.unlinkSync(join(dir, names[1]!));
  await assert.rejects(Wal.open(dir, SMALL), (err: unknown) => err instanceof WalCorruptError && err.file === names[2] && /missing/.test(err.message));
});

// ---------------------------------------------------------------------------------------------
// Group commit and sync failures

function deferredSync(): { sync: SyncFn; dataSyncs: () => number; release: () => void; hold: (on: boolean) => void } {
  let holding = false;
  let waiters: (() => void)[] = [];
  let count = 0;
  return {
    sync: async (fd, kind) => {
      if (kind === 'data') count++;
      if (holding) await new Promise<void>((resolve) => waiters.push(resolve));
      await defaultSync(fd, kind);
    },
    dataSyncs: () => count,
    release: () => {
      const w = waiters;
      waiters = [];
      for (const f of w) f();
    },
    hold: (on) => {
      holding = on;
    },
  };
}

test('group commit: a save resolves only after its sync; saves made during a sync share the next one', async (t) => {
  const dir = tmpDir(t);
  const d = deferredSync();
  // No preallocation: the next segment is prepared in the background with a sync of its own,
  // which would land in the count below whenever the machine is slow.
  const wal = await Wal.create(dir, META, { sync: d.sync, preallocate: false });
  d.hold(true);
  const order: number[] = [];
  const first = wal.save(null, [ent(1, 1)]).then(() => order.push(1));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(order.length, 0, 'not resolved while its sync is held');
  const before = d.dataSyncs();
  const rest: Promise<number>[] = [];
  for (let i = 2; i <= 50; i++) rest.push(wal.save({ term: 1, vote: '', commit: i - 1 }, [ent(i, 1)]).then(() => order.push(i)));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(order.length, 0, 'nothing resolves while the first sync is held');
  d.hold(false);
  d.release();
  await Promise.all([first, ...rest]);
  assert.deepEqual(order, Array.from({ length: 50 }, (_, k) => k + 1), 'resolved in call order');
  assert.equal(d.dataSyncs() - before, 1, '49 saves queued during one sync are made durable by one more sync');
  await wal.close();
  const r = await Wal.open(dir);
  assert.equal(r.entries.length, 50);
  assert.equal(r.hardState.commit, 49);
  await r.wal.close();
});

test('fail-stop: a failing sync rejects the save, the saves queued behind it, and every later save', async (t) => {
  const dir = tmpDir(t);
  let fail = false;
  const boom = new Error('EIO: injected');
  const sync: SyncFn = async (fd, kind) => {
    if (fail && kind === 'data') throw boom;
    await defaultSync(fd, kind);
  };
  const wal = await Wal.create(dir, META, { sync });
  await wal.save({ term: 1, vote: '', commit: 0 }, ents(1, 3, 1));
  fail = true;
  const a = wal.save(null, [ent(4, 1)]);
  const b = wal.save(null, [ent(5, 1)]);
  await assert.rejects(a, (err: unknown) => err instanceof WalFailedError && err.code === 'WAL_FAILED' && err.cause === boom);
  await assert.rejects(b, WalFailedError);
  fail = false; // even once the disk "recovers", the WAL must not continue
  await assert.rejects(wal.save(null, [ent(4, 1)]), WalFailedError);
  await assert.rejects(wal.releaseTo(1), WalFailedError);
  await wal.close();
  const r = await Wal.open(dir);
  assert.ok(r.entries.length >= 3, 'everything acknowledged before the failure is there');
  assert.deepEqual(r.entries.slice(0, 3).map((e) => e.index), [1, 2, 3]);
  await r.wal.close();
});

test('fail-stop: a failure while rolling a segment stops the WAL too', async (t) => {
  const dir = tmpDir(t);
  let dirSyncs = 0;
  let failDir = false;
  const sync: SyncFn = async (fd, kind) => {
    if (kind === 'directory' && failDir) throw new Error('injected directory fsync failure');
    if (kind === 'directory') dirSyncs++;
    await defaultSync(fd, kind);
  };
  const wal = await Wal.create(dir, META, { ...SMALL, sync });
  assert.ok(dirSyncs >= 1, 'create syncs the directory');
  failDir = true;
  let rejected: unknown = null;
  for (let i = 1; i <= 100 && rejected === null; i++) {
    await wal.save(null, [ent(i, 1, 200)]).catch((err: unknown) => {
      rejected = err;
    });
  }
  assert.ok(rejected instanceof WalFailedError);
  await assert.rejects(wal.save(null, []), WalFailedError);
  await wal.close();
});

// ---------------------------------------------------------------------------------------------
// Refusals

test('refusals: invalid batches are rejected before anything is written, and the WAL stays usable', async (t) => {
  const dir = tmpDir(t);
  const wal = await Wal.create(dir, META);
  await wal.save({ term: 2, vote: '', commit: 4 }, ents(1, 5, 2));
  await wal.save(null, [], snapMeta(2, 2));
  const bad: [string, () => Promise<void>][] = [
    ['gap', () => wal.save(null, [ent(7, 2)])],
    ['at or below the snapshot', () => wal.save(null, [ent(2, 3)])],
    ['not contiguous', () => wal.save(null, [ent(6, 2), ent(8, 2)])],
    ['term below the entry before', () => wal.save(null, [ent(6, 1)])],
    ['commit beyond the log', () => wal.save({ term: 2, vote: '', commit: 9 }, [])],
    ['replacing committed entries', () => wal.save(null, [ent(4, 3)])],
    ['older snapshot', () => wal.save(null, [], snapMeta(1, 2))],
    ['same snapshot index, other term', () => wal.save(null, [], snapMeta(2, 3))],
    ['hard state term goes back', () => wal.save({ term: 1, vote: '', commit: 4 }, [])],
    ['vote id too long', () => wal.save({ term: 2, vote: 'x'.repeat(300), commit: 4 }, [])],
  ];
  for (const [what, f] of bad) await assert.rejects(f(), AssertionError, what);
  await wal.save(null, [ent(5, 3)]); // overwriting above the commit index is fine
  await wal.close();
  const r = await Wal.open(dir);
  assert.deepEqual(r.entries.map((e) => [e.index, e.term]), [[3, 2], [4, 2], [5, 3]]);
  await r.wal.close();
});

test('refusals: record too large, closed WAL, existing dir, missing WAL, other cluster', async (t) => {
  const dir = tmpDir(t);
  const wal = await Wal.create(dir, META, { recordBytesMax: 1000 });
  await assert.rejects(wal.save(null, [ent(1, 1, 1000)]), (e: unknown) => e instanceof WalRecordTooLargeError && e.code === 'WAL_RECORD_TOO_LARGE');
  await wal.save(null, [ent(1, 1, 900)]);
  await wal.close();
  await assert.rejects(wal.save(null, [ent(2, 1)]), WalClosedError);
  await assert.rejects(Wal.create(dir, META), (e: unknown) => e instanceof WalExistsError && e.code === 'WAL_EXISTS');
  await assert.rejects(Wal.open(join(dir, 'nope')), WalNotFoundError);
  await assert.rejects(Wal.open(tmpDir(t)), WalNotFoundError);
  await assert.rejects(Wal.open(dir, { expect: { memberId: 'm1', clusterId: 'other' } }), (e: unknown) => e instanceof WalClusterMismatchError && e.code === 'WAL_CLUSTER_MISMATCH');
  const r = await Wal.open(dir, { expect: META });
  assert.equal(r.entries.length, 1);
  await r.wal.close();
  await assert.rejects(Wal.create(tmpDir(t), META, { segmentBytes: 100 }), /segmentBytes/);
});
