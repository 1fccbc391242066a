import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prefixEnd } from '../../src/mvcc/index.ts';

test('prefixEnd: the last byte below 0xff goes up by one and the 0xff bytes after it go; all-0xff means no end', () => {
  const cases: Array<[number[], number[]]> = [
    [[0x61, 0x2f], [0x61, 0x30]],
    [[0x61, 0xff], [0x62]],
    [[0x61, 0xfe, 0xff, 0xff], [0x61, 0xff]],
    [[0xff, 0xff], [0x00]],
    [[], [0x00]],
  ];
  for (const [prefix, end] of cases) assert.deepEqual([...prefixEnd(new Uint8Array(prefix))], end, `prefix ${JSON.stringify(prefix)}`);
});

test('prefixEnd leaves its argument alone, also a Buffer (whose slice() is a view)', () => {
  const prefix = Buffer.from('lock/');
  const end = prefixEnd(prefix);
  assert.equal(prefix.toString(), 'lock/');
  assert.equal(Buffer.from(end).toString(), 'lock0');
});
