/**
 * The hub's memory of the latest revisions: contiguous, bounded in revisions and bytes, and
 * catch-up batches cut like history()'s (whole revisions, records and bytes bounds, at least one).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventBytes, type MvccEvent } from '../../src/mvcc/index.ts';
import { RecentRevisions } from '../../src/watch/recent.ts';

function put(rev: number, key: string, valueBytes = 1): MvccEvent {
  return { type: 'PUT', kv: { key: Buffer.from(key), createRevision: rev, modRevision: rev, version: 1, value: Buffer.alloc(valueBytes), lease: 0n } };
}

const revs = (b: { events: readonly MvccEvent[] } | undefined): number[] | undefined => b?.events.map((e) => e.kv.modRevision);

test('batches: whole revisions within the records and bytes bounds, at least one, only when all held', () => {
  const r = new RecentRevisions(16, 1 << 20);
  for (let rev = 5; rev <= 9; rev++) r.record(rev, rev === 7 ? [put(7, 'a'), put(7, 'b'), put(7, 'c')] : [put(rev, 'k')]);
  assert.deepEqual(revs(r.batch(5, 9, 100, 1 << 20)), [5, 6, 7, 7, 7, 8, 9]);
  assert.equal(r.batch(5, 9, 100, 1 << 20)!.nextRevision, 10);
  const cut = r.batch(5, 9, 4, 1 << 20)!;
  assert.deepEqual([revs(cut), cut.nextRevision], [[5, 6], 7], 'revision 7 would pass 4 records');
  assert.deepEqual(revs(r.batch(7, 9, 1, 1 << 20)), [7, 7, 7], 'the first revision goes whole, however large');
  const oneEvent = eventBytes(put(5, 'k'));
  assert.deepEqual(revs(r.batch(5, 9, 100, 2 * oneEvent)), [5, 6]);
  assert.equal(r.batch(4, 9, 100, 1 << 20), undefined, 'revision 4 is not held');
  assert.equal(r.batch(5, 8, 100, 1 << 20), undefined, 'only batches up to the latest revision');
});

test('bounded by revisions and bytes; a gap starts over', () => {
  const r = new RecentRevisions(3, 1 << 20);
  for (let rev = 1; rev <= 5; rev++) r.record(rev, [put(rev, 'k')]);
  assert.equal(r.batch(2, 5, 100, 1 << 20), undefined);
  assert.deepEqual(revs(r.batch(3, 5, 100, 1 << 20)), [3, 4, 5]);
  r.record(7, [put(7, 'k')]);
  assert.equal(r.batch(5, 7, 100, 1 << 20), undefined, 'revision 6 never came: only 7 is held');
  assert.deepEqual(revs(r.batch(7, 7, 100, 1 << 20)), [7]);

  const small = new RecentRevisions(100, 3 * eventBytes(put(1, 'k', 100)));
  for (let rev = 1; rev <= 10; rev++) small.record(rev, [put(rev, 'k', 100)]);
  assert.deepEqual(revs(small.batch(8, 10, 100, 1 << 20)), [8, 9, 10]);
  assert.equal(small.batch(7, 10, 100, 1 << 20), undefined);
  small.record(11, [put(11, 'big', 10_000)]);
  assert.deepEqual(revs(small.batch(11, 11, 100, 1 << 20)), [11], 'one revision over the byte bound is still kept');
  small.clear();
  assert.equal(small.batch(11, 11, 100, 1 << 20), undefined);
});
