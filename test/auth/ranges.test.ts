/**
 * RangeSet: the merged-interval structure behind permission checks, against a brute-force model
 * (every key over a small alphabet up to a small length is in the set iff some interval holds it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { etcdInterval, RangeSet, type KeyInterval } from '../../src/auth/index.ts';

const b = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'));
const ZERO = Uint8Array.of(0);
const EMPTY = new Uint8Array(0);

test('a single key, a range, a prefix and an open-ended range, as etcd writes them', () => {
  const set = RangeSet.of([etcdInterval(b('k1'), EMPTY), etcdInterval(b('a'), b('c')), etcdInterval(b('p/'), b('p0')), etcdInterval(b('x'), ZERO)]);
  assert.ok(set.coversKey(b('k1')));
  assert.ok(!set.coversKey(b('k10')), 'a single-key permission is not a prefix');
  assert.ok(!set.coversKey(b('k')));
  assert.ok(set.covers(etcdInterval(b('a'), b('c'))));
  assert.ok(set.covers(etcdInterval(b('ab'), b('b'))));
  assert.ok(!set.covers(etcdInterval(b('a'), b('c0'))), 'range end is exclusive');
  assert.ok(!set.coversKey(b('c')));
  assert.ok(set.coversKey(b('p/any/depth')));
  assert.ok(set.covers(etcdInterval(b('p/'), b('p0'))));
  assert.ok(!set.coversKey(b('p0')));
  assert.ok(set.covers(etcdInterval(b('x'), ZERO)), 'open-ended covers open-ended');
  assert.ok(set.covers(etcdInterval(b('y'), ZERO)));
  assert.ok(!set.covers(etcdInterval(b('w'), ZERO)));
  assert.ok(set.coversKey(b('\xff\xff')));
  assert.ok(!set.covers(etcdInterval(b('a'), ZERO)), 'the gap between c and k1 is not covered');
});

test('overlapping and touching intervals merge; inverted ones add nothing', () => {
  const set = RangeSet.of([
    { begin: b('a'), end: b('c') },
    { begin: b('c'), end: b('e') },
    { begin: b('b'), end: b('d') },
    { begin: b('z'), end: b('m') },
    { begin: b('m'), end: b('m') },
  ]);
  assert.equal(set.size, 1);
  assert.deepEqual(set.list(), [{ begin: b('a'), end: b('e') }]);
  assert.ok(set.covers({ begin: b('a'), end: b('e') }), 'touching intervals cover their union, as etcd\'s interval tree does');
  assert.ok(!set.coversKey(b('m')));
  assert.ok(!set.coversKey(b('z')));
  assert.equal(RangeSet.of([{ begin: b('a'), end: null }, { begin: b('b'), end: b('c') }]).size, 1);
  assert.ok(!RangeSet.EMPTY.coversKey(b('')));
});

test('a request range with its end at or below its key asks for the key itself', () => {
  const set = RangeSet.of([etcdInterval(b('m'), EMPTY)]);
  assert.ok(set.covers({ begin: b('m'), end: b('a') }));
  assert.ok(!set.covers({ begin: b('n'), end: b('a') }));
});

// ---- against a model -----------------------------------------------------------------------

const ALPHABET = ['a', 'b', 'c'];
const ALL_KEYS: string[] = [''];
for (let len = 1; len <= 3; len++) {
  const prev = ALL_KEYS.filter((k) => k.length === len - 1);
  for (const p of prev) for (const c of ALPHABET) ALL_KEYS.push(p + c);
}

const cmp = (x: string, y: string) => Buffer.compare(b(x), b(y));
const inModel = (intervals: KeyInterval[], key: string) =>
  intervals.some((i) => cmp(Buffer.from(i.begin).toString('latin1'), key) <= 0 && (i.end === null || cmp(key, Buffer.from(i.end).toString('latin1')) < 0));

const keyArb = fc.constantFrom(...ALL_KEYS);
const intervalArb = fc.record({ begin: keyArb, end: fc.option(keyArb, { nil: null }) }).map((i) => ({ begin: b(i.begin), end: i.end === null ? null : b(i.end) }));

test('covers() agrees with the model for any intervals and any query over a small key space', () => {
  fc.assert(
    fc.property(fc.array(intervalArb, { maxLength: 8 }), intervalArb, (intervals, query) => {
      const set = RangeSet.of(intervals);
      // Merged intervals are sorted, disjoint and not touching.
      const list = set.list();
      for (let i = 1; i < list.length; i++) assert.ok(list[i - 1]!.end !== null && Buffer.compare(list[i - 1]!.end!, list[i]!.begin) < 0);
      const q = { begin: Buffer.from(query.begin).toString('latin1'), end: query.end === null ? null : Buffer.from(query.end).toString('latin1') };
      if (q.end !== null && cmp(q.begin, q.end) >= 0) return; // empty queries: covered by the unit test above
      // Every gap between intervals starts at an interval's end, a key of the small space, so the
      // small keys decide; an open-ended query also needs the union to be unbounded.
      const wanted = ALL_KEYS.filter((k) => cmp(q.begin, k) <= 0 && (q.end === null || cmp(k, q.end) < 0));
      const expected = wanted.every((k) => inModel(intervals, k)) && (q.end !== null || intervals.some((i) => i.end === null));
      assert.equal(set.covers(query), expected, JSON.stringify({ intervals: intervals.map((i) => [Buffer.from(i.begin).toString(), i.end && Buffer.from(i.end).toString()]), q }));
    }),
    { numRuns: 2000 },
  );
});
