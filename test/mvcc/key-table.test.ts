import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { KeyIndex } from '../../src/mvcc/key-index.ts';
import { KeyTable } from '../../src/mvcc/key-table.ts';

test('key table matches a Map under random inserts, replacements, deletes and clears (growing and shrinking)', () => {
  const key = fc.string({ unit: fc.constantFrom('a', 'b', 'c', '\0', '\xff'), maxLength: 5 });
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 40 }), key), { maxLength: 600 }), (ops) => {
      const t = new KeyTable();
      const ref = new Map<string, KeyIndex>();
      for (const [op, k] of ops) {
        if (op === 0) {
          t.clear();
          ref.clear();
        } else if (op < 22) {
          const ki = new KeyIndex(k);
          t.set(ki);
          ref.set(k, ki);
        } else {
          assert.equal(t.delete(k), ref.delete(k));
        }
        assert.equal(t.size, ref.size);
      }
      for (const [k, ki] of ref) assert.equal(t.get(k), ki);
      for (const [, k] of ops) assert.equal(t.get(k), ref.get(k));
    }),
    { numRuns: 300 },
  );
});

test('key table keeps every key reachable through long probe runs and back-shifted deletes', () => {
  const t = new KeyTable();
  const keys = Array.from({ length: 5000 }, (_, i) => `k${i}`);
  for (const k of keys) t.set(new KeyIndex(k));
  for (let i = 0; i < keys.length; i += 2) assert.ok(t.delete(keys[i]!));
  for (let i = 0; i < keys.length; i++) assert.equal(t.get(keys[i]!)?.key, i % 2 === 0 ? undefined : keys[i]);
  for (let i = 1; i < keys.length; i += 2) assert.ok(t.delete(keys[i]!));
  assert.equal(t.size, 0);
  assert.equal(t.get('k1'), undefined);
});
