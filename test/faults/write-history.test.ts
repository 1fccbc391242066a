/**
 * The write checker against crafted histories: acknowledged puts, deletes, guarded txns and
 * no-op writes at their revisions pass, indeterminate writes may or may not be there; a lost or
 * misplaced acknowledged write, a wrong guard outcome, a no-op that was not one and a revision
 * no write explains are reported.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { History, RecordedEvent, RecordedKv } from './watch-history.ts';
import { checkWrites, type WriteOp, type WriteOutcome, type WriteRecord } from './write-history.ts';

function kv(key: string, value: string, rev: number, version: number, createRevision: number): RecordedKv {
  return { key, value, createRevision, modRevision: rev, version, lease: '0' };
}
const put = (key: string, value: string, rev: number, version = 1, create = rev): RecordedEvent => ({ type: 'PUT', kv: kv(key, value, rev, version, create) });
const del = (key: string, rev: number): RecordedEvent => ({ type: 'DELETE', kv: kv(key, '', rev, 0, 0) });

// 2: put a=1 · 3: txn(b exists? no → else: put c=1, delete a) · 4: put b=1 (indeterminate)
// 5: delete range [a, z) → b, c · 6: put a=2 (indeterminate, never acknowledged)
const H: History = {
  fromRevision: 1,
  toRevision: 6,
  events: [put('a', '1', 2), put('c', 'c1', 3), del('a', 3), put('b', 'b1', 4), del('b', 5), del('c', 5), put('a', 'a2', 6)],
};

const P = (key: string, value: string): WriteOp => ({ type: 'put', key, value });
const D = (key: string, rangeEnd?: string): WriteOp => (rangeEnd === undefined ? { type: 'delete', key } : { type: 'delete', key, rangeEnd });
const ok = (revision: number, deleted: number[], succeeded = true): WriteOutcome => ({ revision, succeeded, deleted });

function goodWrites(): WriteRecord[] {
  return [
    { id: 'put a', then: [P('a', '1')], outcome: ok(2, [0]) },
    { id: 'txn', guardKey: 'b', then: [P('b', 'never')], else: [P('c', 'c1'), D('a')], outcome: ok(3, [0, 1], false) },
    { id: 'put b (timed out)', then: [P('b', 'b1')], outcome: null },
    { id: 'delete absent x', then: [D('x')], outcome: ok(4, [0]) },
    { id: 'delete range', then: [D('a', 'z')], outcome: ok(5, [2]) },
    { id: 'put a (lost answer)', then: [P('a', 'a2')], outcome: null },
    { id: 'put q (never applied)', then: [P('q', 'q1')], outcome: null },
    { id: 'guarded no-op', guardKey: 'zz', then: [P('zz', 'never2')], else: [D('zz')], outcome: ok(6, [0], false) },
  ];
}

test('acknowledged writes at their revisions, no-ops and indeterminate writes pass', () => {
  const r = checkWrites(H, goodWrites());
  assert.deepEqual(r.problems, []);
  assert.deepEqual({ acknowledged: r.acknowledged, indeterminate: r.indeterminate, applied: r.indeterminateApplied }, { acknowledged: 5, indeterminate: 3, applied: 2 });
});

test('an acknowledged write missing from its revision, or at another one, is reported', () => {
  const lost = goodWrites().map((w) => (w.id === 'put a' ? { ...w, then: [P('a', 'other')] } : w));
  const lostHistory = { ...H, events: H.events.filter((e) => e.kv.modRevision !== 2) };
  assert.match(checkWrites(lostHistory, goodWrites()).problems.join('\n'), /put a: acknowledged at revision 2 as \[PUT "a"="1"\], the history has \[\]/);
  assert.match(checkWrites(H, lost).problems.join('\n'), /put a: acknowledged at revision 2 as \[PUT "a"="other"\]/);
  const moved = goodWrites().map((w) => (w.id === 'delete range' ? { ...w, outcome: ok(6, [2]) } : w));
  const problems = checkWrites(H, moved).problems.join('\n');
  assert.match(problems, /both acknowledged as the write of revision 6|delete range: acknowledged at revision 6/);
});

test('a wrong guard outcome, a wrong delete count and a no-op that was not one are reported', () => {
  const flipped = goodWrites().map((w) => (w.id === 'txn' ? { ...w, outcome: ok(3, [0], true) } : w));
  assert.match(checkWrites(H, flipped).problems.join('\n'), /txn: its guard "b" held at revision 3, but the history says it failed/);
  const count = goodWrites().map((w) => (w.id === 'delete range' ? { ...w, outcome: ok(5, [1]) } : w));
  assert.match(checkWrites(H, count).problems.join('\n'), /reported deleting \[1\] keys per op at revision 5, the history deleted \[2\]/);
  const notNoop = goodWrites().map((w) => (w.id === 'delete absent x' ? { ...w, then: [D('c')] } : w));
  assert.match(checkWrites(H, notNoop).problems.join('\n'), /changed nothing at revision 4, but there it would have done \[DELETE "c"\]/);
});

test('a revision that no recorded write explains is reported', () => {
  const phantom: History = { ...H, toRevision: 7, events: [...H.events, put('p', 'ghost', 7)] };
  assert.match(checkWrites(phantom, goodWrites()).problems.join('\n'), /1 revision\(s\) no recorded write explains, e.g. 7 \[PUT "p"@7="ghost"/);
  const noIndeterminate = goodWrites().filter((w) => w.outcome !== null);
  assert.match(checkWrites(H, noIndeterminate).problems.join('\n'), /2 revision\(s\) no recorded write explains/);
});

test('indeterminate deletes are matched to revisions as a whole, not greedily', () => {
  // Revision 3 deletes a alone: both indeterminate deletes would have done that. Revision 6
  // deletes a and b: only the range delete would have. Taking the range delete for revision 3
  // (the first that fits) would leave revision 6 unexplained.
  const h: History = { fromRevision: 1, toRevision: 6, events: [put('a', 'a1', 2), del('a', 3), put('a', 'a2', 4), put('b', 'b1', 5), del('a', 6), del('b', 6)] };
  const writes: WriteRecord[] = [
    { id: 'delete [a, c)', then: [D('a', 'c')], outcome: null },
    { id: 'delete a', then: [D('a')], outcome: null },
    { id: 'put a', then: [P('a', 'a1')], outcome: ok(2, [0]) },
    { id: 'put a again', then: [P('a', 'a2')], outcome: ok(4, [0]) },
    { id: 'put b', then: [P('b', 'b1')], outcome: ok(5, [0]) },
  ];
  const r = checkWrites(h, writes);
  assert.deepEqual(r.problems, []);
  assert.equal(r.indeterminateApplied, 2);
  assert.match(checkWrites(h, writes.slice(1)).problems.join('\n'), /1 revision\(s\) no recorded write explains, e.g. 6 \[DELETE "a"@6, DELETE "b"@6\]/);
});

test('two writes putting the same value are a recorder error', () => {
  assert.throws(() => checkWrites(H, [...goodWrites(), { id: 'dup', then: [P('q', '1')], outcome: null }]), /put the same value "1"/);
});
