/** The indexed min-heap against a sorted-array model. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { IndexedMinHeap, NOT_IN_HEAP } from '../../src/lease/heap.ts';

interface Item {
  readonly id: number;
  prio: number;
  pos: number;
}

const before = (a: Item, b: Item): boolean => a.prio < b.prio || (a.prio === b.prio && a.id < b.id);
const newHeap = (): IndexedMinHeap<Item> =>
  new IndexedMinHeap<Item>(before, {
    get: (i) => i.pos,
    set: (i, p) => {
      i.pos = p;
    },
  });

describe('IndexedMinHeap', () => {
  it('matches a sorted model under push, update, remove, pop and rebuild', () => {
    const op = fc.oneof(
      fc.record({ op: fc.constant('push' as const), prio: fc.integer({ min: 0, max: 50 }) }),
      fc.record({ op: fc.constant('update' as const), pick: fc.nat(), prio: fc.integer({ min: 0, max: 50 }) }),
      fc.record({ op: fc.constant('remove' as const), pick: fc.nat() }),
      fc.record({ op: fc.constant('pop' as const) }),
      fc.record({ op: fc.constant('rebuild' as const) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const h = newHeap();
        let live: Item[] = [];
        let next = 0;
        const sorted = (): Item[] => [...live].sort((a, b) => (before(a, b) ? -1 : 1));
        for (const o of ops) {
          if (o.op === 'push') {
            const it = { id: next++, prio: o.prio, pos: NOT_IN_HEAP };
            h.push(it);
            live.push(it);
          } else if (o.op === 'update' && live.length > 0) {
            const it = live[o.pick % live.length]!;
            it.prio = o.prio;
            h.update(it);
          } else if (o.op === 'remove' && live.length > 0) {
            const it = live[o.pick % live.length]!;
            assert.equal(h.remove(it), true);
            assert.equal(h.remove(it), false);
            assert.equal(it.pos, NOT_IN_HEAP);
            live = live.filter((x) => x !== it);
          } else if (o.op === 'pop') {
            const want = sorted()[0];
            assert.equal(h.pop(), want);
            live = live.filter((x) => x !== want);
          } else if (o.op === 'rebuild') {
            h.rebuild(live);
          }
          h.check();
          assert.equal(h.size, live.length);
          assert.equal(h.peek(), sorted()[0]);
        }
        const drained: Item[] = [];
        for (let it = h.pop(); it !== undefined; it = h.pop()) drained.push(it);
        assert.deepEqual(drained, sorted());
      }),
      { numRuns: 300 },
    );
  });

  it('refuses to hold an item twice', () => {
    const h = newHeap();
    const it = { id: 1, prio: 1, pos: NOT_IN_HEAP };
    h.push(it);
    assert.throws(() => h.push(it));
    h.clear();
    assert.equal(it.pos, NOT_IN_HEAP);
    assert.equal(h.has(it), false);
  });
});
