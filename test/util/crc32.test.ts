import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { crc32, crc32Table } from '../../src/util/crc32.ts';

test('crc32: the standard check value', () => {
  const check = new TextEncoder().encode('123456789');
  assert.equal(crc32(check, 0), 0xcbf43926);
  assert.equal(crc32Table(check, 0), 0xcbf43926);
  assert.equal(crc32(new Uint8Array(0), 0), 0);
});

test('crc32: table fallback agrees with the native one, and chaining equals concatenation', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 300 }), fc.nat({ max: 0xffffffff }), (a, b, seed) => {
      assert.equal(crc32Table(a, seed), crc32(a, seed));
      const ab = new Uint8Array(a.length + b.length);
      ab.set(a);
      ab.set(b, a.length);
      assert.equal(crc32(b, crc32(a, seed)), crc32(ab, seed));
    }),
  );
});
