/**
 * store.history(): reading committed events back from the backend must give exactly what
 * onCommit reported (prevKv included, as the value at revision − 1), in bounded batches of whole
 * revisions, and refuse start revisions below the compaction revision.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CompactedError, FutureRevisionError, MvccStore, eventBytes } from '../../src/mvcc/index.ts';
import type { HistoryRequest, MvccEvent, RequestOp } from '../../src/mvcc/index.ts';
import { b, norm, tempDir } from './helpers.ts';

const lat = (s: string): Buffer => Buffer.from(s, 'latin1');
const str = (u: Uint8Array): string => Buffer.from(u).toString('utf8');

async function withStore(fn: (store: MvccStore) => Promise<void> | void): Promise<void> {
  const { dir, cleanup } = tempDir('conclave-history-');
  const store = await MvccStore.open(dir, { limits: { compactionBatchLimit: 3, compactionSleepIntervalMs: 0 } });
  try {
    await fn(store);
  } finally {
    await store.close();
    cleanup();
  }
}

/** Every batch from `from` to the current revision, checking the batch invariants on the way. */
function readAll(store: MvccStore, r: Omit<HistoryRequest, 'fromRevision'>, from: number): MvccEvent[] {
  const out: MvccEvent[] = [];
  let next = from;
  const to = store.revision;
  for (let calls = 0; next <= to; calls++) {
    assert.ok(calls <= to + 1, 'history made no progress');
    const batch = store.history({ ...r, fromRevision: next, toRevision: to });
    assert.ok(batch.nextRevision > next, 'a batch holds at least one revision');
    for (const ev of batch.events) assert.ok(ev.kv.modRevision >= next && ev.kv.modRevision < batch.nextRevision);
    out.push(...batch.events);
    next = batch.nextRevision;
  }
  return out;
}

function inRange(key: Uint8Array, start: Uint8Array, end: Uint8Array | undefined): boolean {
  if (end === undefined || end.length === 0) return Buffer.compare(key, start) === 0;
  if (end.length === 1 && end[0] === 0) return Buffer.compare(key, start) >= 0;
  return Buffer.compare(key, start) >= 0 && Buffer.compare(key, end) < 0;
}

/** What history promises for prevKv: onCommit's, except that a create carries none. */
function expectedPrev(ev: MvccEvent, wantPrev: boolean): MvccEvent {
  if (!wantPrev || ev.prevKv === undefined || (ev.type === 'PUT' && ev.kv.version === 1)) return { type: ev.type, kv: ev.kv };
  return ev;
}

test('history equals the onCommit stream, for any range, batch size and start revision', async () => {
  const keyArb = fc.constantFrom('a', 'b', 'c', 'ab', '\0', '\xff').map(lat);
  const opArb: fc.Arbitrary<RequestOp> = fc.oneof(
    fc.record({ key: keyArb, value: fc.constantFrom('', 'x', 'yy').map(lat) }).map((request): RequestOp => ({ op: 'put', request })),
    fc.record({ key: keyArb, rangeEnd: fc.constantFrom(undefined, lat('\0'), lat('b')) }).map((request): RequestOp => ({ op: 'deleteRange', request })),
    fc
      .uniqueArray(keyArb, { minLength: 1, maxLength: 3, selector: (k) => k.toString('latin1') })
      .map((keys): RequestOp => ({ op: 'txn', request: { compare: [], success: keys.map((key) => ({ op: 'put', request: { key, value: lat('t') } })), failure: [] } })),
  );
  await fc.assert(
    fc.asyncProperty(
      fc.array(opArb, { minLength: 1, maxLength: 25 }),
      fc.record({ key: keyArb, rangeEnd: fc.constantFrom(undefined, lat('\0'), lat('b'), lat('c')) }),
      fc.integer({ min: 1, max: 5 }),
      fc.option(fc.integer({ min: 1, max: 300 }), { nil: undefined }),
      fc.boolean(),
      fc.nat(),
      async (ops, range, recordsMax, bytesMax, prevKv, fromSeed) => {
        await withStore((store) => {
          const committed: MvccEvent[] = [];
          store.onCommit((_rev, evs) => committed.push(...evs));
          for (const op of ops) {
            if (op.op === 'put') store.put(op.request);
            else if (op.op === 'deleteRange') store.deleteRange(op.request);
            else if (op.op === 'txn') store.txn(op.request);
          }
          const from = 1 + (fromSeed % (store.revision + 1));
          const expected = committed.filter((ev) => ev.kv.modRevision >= from && inRange(ev.kv.key, range.key, range.rangeEnd)).map((ev) => expectedPrev(ev, prevKv));
          const got = readAll(store, { ...range, prevKv, recordsMax, ...(bytesMax === undefined ? {} : { bytesMax }) }, from);
          assert.deepEqual(norm(got), norm(expected));
        });
      },
    ),
    { numRuns: 60 },
  );
});

test('a batch stops before the revision that would exceed its record or byte bound', async () => {
  await withStore((store) => {
    // Revisions 2..4: one put each; revision 5: a txn of three puts.
    for (const k of ['a', 'b', 'c']) store.put({ key: b(k), value: b('v') });
    store.txn({ compare: [], success: ['x', 'y', 'z'].map((k) => ({ op: 'put', request: { key: b(k), value: b('w') } })), failure: [] });
    const all = { key: b('\0'), rangeEnd: b('\0') };
    let batch = store.history({ ...all, fromRevision: 2, recordsMax: 2 });
    assert.deepEqual(batch.events.map((e) => e.kv.modRevision), [2, 3]);
    assert.equal(batch.nextRevision, 4);
    batch = store.history({ ...all, fromRevision: 4, recordsMax: 2 });
    assert.deepEqual(batch.events.map((e) => e.kv.modRevision), [4]);
    assert.equal(batch.nextRevision, 5);
    // The first revision is whole even when it alone exceeds the bound.
    batch = store.history({ ...all, fromRevision: 5, recordsMax: 1 });
    assert.deepEqual(batch.events.map((e) => str(e.kv.key)), ['x', 'y', 'z']);
    assert.equal(batch.nextRevision, 6);
    const one = eventBytes(store.history({ ...all, fromRevision: 2, toRevision: 2, recordsMax: 10 }).events[0]!);
    batch = store.history({ ...all, fromRevision: 2, recordsMax: 100, bytesMax: 2 * one });
    assert.deepEqual(batch.events.map((e) => e.kv.modRevision), [2, 3]);
    // Records outside the range count towards the record bound but not the byte bound.
    batch = store.history({ key: b('x'), fromRevision: 2, recordsMax: 100, bytesMax: 1 });
    assert.deepEqual(batch.events.map((e) => str(e.kv.key)), ['x']);
    assert.equal(batch.nextRevision, 6);
  });
});

test('history below the compaction revision fails; from the compaction revision it is whole', async () => {
  await withStore(async (store) => {
    store.put({ key: b('k'), value: b('1') }); // 2
    store.put({ key: b('k'), value: b('2') }); // 3
    store.put({ key: b('j'), value: b('1') }); // 4
    store.deleteRange({ key: b('k') }); // 5
    store.put({ key: b('k'), value: b('3') }); // 6
    store.compact(4);
    await store.compactionDone();
    assert.throws(() => store.history({ key: b('k'), fromRevision: 3, recordsMax: 10 }), CompactedError);
    assert.throws(() => store.history({ key: b('k'), fromRevision: 2, toRevision: 9, recordsMax: 10 }), FutureRevisionError);
    const batch = store.history({ key: b('\0'), rangeEnd: b('\0'), fromRevision: 4, prevKv: true, recordsMax: 10 });
    assert.deepEqual(
      batch.events.map((e) => [e.type, str(e.kv.key), e.kv.modRevision, e.prevKv === undefined ? undefined : str(e.prevKv.value)]),
      [
        ['PUT', 'j', 4, undefined],
        ['DELETE', 'k', 5, '2'],
        ['PUT', 'k', 6, undefined],
      ],
    );
    assert.equal(batch.nextRevision, 7);
    assert.deepEqual(store.history({ key: b('k'), fromRevision: 7, recordsMax: 10 }), { events: [], nextRevision: 7, toRevision: 6 });
  });
});

test('at the compaction revision, history is what the index keeps, however far physical compaction got', async () => {
  await withStore(async (store) => {
    store.put({ key: b('k'), value: b('1') }); // 2
    // One revision that deletes and re-creates the key (possible through write(), not through txn).
    store.write(undefined, (tx) => {
      tx.deleteRange({ key: b('k') });
      tx.put({ key: b('k'), value: b('2') });
    }); // 3
    store.put({ key: b('j'), value: b('1') }); // 4
    const read = (): string[] =>
      store.history({ key: b('\0'), rangeEnd: b('\0'), fromRevision: 3, recordsMax: 10 }).events.map((e) => `${e.type} ${str(e.kv.key)}@${e.kv.modRevision}`);
    assert.deepEqual(read(), ['DELETE k@3', 'PUT k@3', 'PUT j@4']);
    store.compact(3);
    const before = read();
    await store.compactionDone();
    assert.deepEqual(read(), before);
    assert.deepEqual(before, ['PUT k@3', 'PUT j@4']);
  });
});
