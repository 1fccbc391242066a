import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyIndex } from '../../src/mvcc/key-index.ts';

/** put(1.0) put(2.0) delete(3.0) put(4.0) delete(5.0): etcd's keyIndex documentation example. */
function example(): KeyIndex {
  const ki = new KeyIndex('foo');
  ki.put(1, 0);
  ki.put(2, 0);
  ki.tombstone(3, 0);
  ki.put(4, 0);
  ki.tombstone(5, 0);
  return ki;
}

test('generations end with a tombstone and a new empty generation', () => {
  assert.equal(example().describe(), '[1.0 2.0 3.0t] [4.0 5.0t] []');
});

test('compaction follows etcd\'s documented examples', () => {
  const cases: Array<[number, string, boolean]> = [
    [1, '[1.0 2.0 3.0t] [4.0 5.0t] []', false],
    [2, '[2.0 3.0t] [4.0 5.0t] []', false],
    [3, '[3.0t] [4.0 5.0t] []', false], // a tombstone exactly at the compact revision stays
    [4, '[4.0 5.0t] []', false],
    [5, '[5.0t] []', false],
    [6, '[]', true], // nothing left: the key leaves the index
  ];
  for (const [rev, want, empty] of cases) {
    const ki = example();
    assert.equal(ki.compact(rev), empty, `compact(${rev})`);
    assert.equal(ki.describe(), want, `compact(${rev})`);
  }
});

test('compaction is idempotent and composes (compact a then b == compact b)', () => {
  for (let a = 0; a <= 6; a++) {
    for (let c = a; c <= 6; c++) {
      const x = example();
      x.compact(a);
      x.compact(c);
      const y = example();
      y.compact(c);
      assert.equal(x.describe(), y.describe(), `compact(${a}) then compact(${c})`);
    }
  }
});

test('keep: the latest put at or below the revision, never a tombstone', () => {
  const ki = example();
  assert.equal(ki.keep(0), null);
  assert.deepEqual(ki.keep(1), { main: 1, sub: 0 });
  assert.deepEqual(ki.keep(2), { main: 2, sub: 0 });
  assert.equal(ki.keep(3), null);
  assert.deepEqual(ki.keep(4), { main: 4, sub: 0 });
  assert.equal(ki.keep(5), null);
  assert.equal(ki.keep(9), null);
});

test('liveAt follows generations', () => {
  const ki = example();
  assert.equal(ki.liveAt(0), null);
  assert.deepEqual(ki.liveAt(2), { main: 2, sub: 0 });
  assert.equal(ki.liveAt(3), null);
  assert.deepEqual(ki.liveAt(4), { main: 4, sub: 0 });
  assert.equal(ki.liveAt(7), null);
});

test('a key deleted and re-created in one revision keeps its new value through compaction at that revision', () => {
  // etcd-io/etcd issue 22376: [4.0 7.0t] [7.1] compacted at 7 must keep 7.1.
  const ki = new KeyIndex('k');
  ki.put(4, 0);
  ki.tombstone(7, 0);
  ki.put(7, 1);
  assert.deepEqual(ki.liveAt(7), { main: 7, sub: 1 });
  assert.deepEqual(ki.liveAt(6), { main: 4, sub: 0 });
  assert.deepEqual(ki.keep(7), { main: 7, sub: 1 });
  ki.compact(7);
  assert.equal(ki.describe(), '[7.1]');
  assert.ok(ki.hasRevision(7, 1));
  assert.ok(!ki.hasRevision(7, 0));
});

test('a key put and deleted in one revision is absent at that revision', () => {
  const ki = new KeyIndex('k');
  ki.put(2, 0);
  ki.put(5, 0);
  ki.tombstone(5, 1);
  assert.equal(ki.liveAt(5), null);
  assert.deepEqual(ki.liveAt(4), { main: 2, sub: 0 });
  ki.compact(5);
  assert.equal(ki.describe(), '[5.1t] []');
});

test('revert undoes the revisions of an aborted write, including generation changes', () => {
  const ki = new KeyIndex('k');
  ki.put(2, 0);
  ki.put(3, 0);
  const before = ki.describe();
  const ver = ki.ver;
  ki.tombstone(4, 0);
  ki.put(4, 1);
  ki.put(4, 2);
  assert.equal(ki.revert(4), false);
  assert.equal(ki.describe(), before);
  assert.equal(ki.ver, ver);
  const fresh = new KeyIndex('n');
  fresh.put(9, 0);
  assert.equal(fresh.revert(9), true);
});

test('revisions must increase', () => {
  const ki = new KeyIndex('k');
  ki.put(3, 1);
  assert.throws(() => ki.put(3, 0), /not after/);
  assert.throws(() => ki.put(2, 5), /not after/);
});
