import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BTree } from '../../src/mvcc/btree.ts';

test('B+ tree matches a sorted reference under random inserts and deletes (fan-out 4 and 64)', () => {
  for (const fanout of [4, 5, 64]) {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.string({ unit: fc.constantFrom('a', 'b', 'c', '\0', '\xff'), maxLength: 4 }), fc.integer()), { maxLength: 400 }),
        (ops) => {
          const t = new BTree<number>(fanout);
          const ref = new Map<string, number>();
          for (const [ins, k, v] of ops) {
            if (ins) {
              t.set(k, v);
              ref.set(k, v);
            } else {
              assert.equal(t.delete(k), ref.delete(k));
            }
          }
          t.check();
          assert.equal(t.size, ref.size);
          const got: Array<[string, number]> = [];
          t.forEach((k, v) => void got.push([k, v]));
          const want = [...ref.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
          assert.deepEqual(got, want);
          for (const [k, v] of want) assert.equal(t.get(k), v);
          // forEachFrom starts at the first key ≥ start and stops when asked.
          const start = 'b';
          const from: string[] = [];
          t.forEachFrom(start, (k) => {
            from.push(k);
            return from.length < 3;
          });
          assert.deepEqual(from, want.map(([k]) => k).filter((k) => k >= start).slice(0, 3));
        },
      ),
      { numRuns: 150 },
    );
  }
});

test('B+ tree survives growing to many levels and shrinking back to empty', () => {
  const t = new BTree<number>(4);
  const n = 5000;
  const keys = Array.from({ length: n }, (_, i) => `k${String((i * 7919) % n).padStart(5, '0')}`);
  keys.forEach((k, i) => t.set(k, i));
  t.check();
  assert.equal(t.size, n);
  for (let i = 0; i < n; i += 2) assert.ok(t.delete(keys[i]!));
  t.check();
  for (let i = 1; i < n; i += 2) assert.ok(t.delete(keys[i]!));
  t.check();
  assert.equal(t.size, 0);
  t.set('x', 1);
  assert.equal(t.get('x'), 1);
});
