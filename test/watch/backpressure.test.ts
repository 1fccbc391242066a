/**
 * Slow consumers: a stream that is not read holds at most its buffer limits, never holds up
 * writes or other streams, and on resuming gets every event exactly once, from the store.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { HistoryBatch, HistoryRequest } from '../../src/mvcc/index.ts';
import { b, drain, eventsOf, nextTurn, openHub, settle } from './helpers.ts';
import type { Fixture } from './helpers.ts';

const all = { key: b('\0'), rangeEnd: b('\0') };

/** Counts the store's history reads. */
function countHistory(f: Fixture): { calls: number } {
  const counter = { calls: 0 };
  const original = f.store.history.bind(f.store);
  f.store.history = (r: HistoryRequest): HistoryBatch => {
    counter.calls++;
    return original(r);
  };
  return counter;
}

test('a stalled consumer does not stall writes or other streams, stays bounded, and resumes without loss', async () => {
  const limits = { streamBufferEventsMax: 64, streamBufferBytesMax: 64 << 10, catchUpBatchRecords: 16, catchUpBatchBytes: 16 << 10, catchUpBatchesPerTurn: 2 };
  const f = await openHub(limits);
  try {
    const history = countHistory(f);
    const stalled = f.hub.openStream();
    const fast = f.hub.openStream();
    const slowId = stalled.watch(all);
    const fastId = fast.watch(all);
    const value = Buffer.alloc(900, 'v');
    const fastSeen: number[] = [];
    const writes = 2000;
    for (let i = 0; i < writes; i++) {
      f.store.put({ key: b(`k${i % 50}`), value });
      for (const m of drain(fast)) if (m.type === 'events') fastSeen.push(...m.events.map((e) => e.kv.modRevision));
      assert.ok(stalled.buffered.events <= limits.streamBufferEventsMax);
      assert.ok(stalled.buffered.bytes <= limits.streamBufferBytesMax);
      if (i % 100 === 0) await nextTurn(); // let background work run; none should be for the stalled stream
    }
    assert.equal(f.store.revision, writes + 1);
    assert.deepEqual(fastSeen, Array.from({ length: writes }, (_, i) => i + 2), 'the other stream got every event live');
    assert.deepEqual(f.hub.stats(), { streams: 2, syncedWatchers: 1, unsyncedWatchers: 1 });
    assert.equal(history.calls, 0, 'no history is read while the stalled stream has no room');

    // Resume: the stream drains; the watcher catches up from the store in bounded turns.
    const got = drain(stalled);
    let turns = 0;
    while (f.hub.stats().unsyncedWatchers > 0) {
      const before = history.calls;
      await nextTurn();
      assert.ok(history.calls - before <= limits.catchUpBatchesPerTurn);
      got.push(...drain(stalled));
      assert.ok(++turns < 1000);
    }
    f.store.put({ key: b('after'), value: b('x') });
    got.push(...drain(stalled));
    const revs = eventsOf(got, slowId).map((e) => e.kv.modRevision);
    assert.deepEqual(revs, Array.from({ length: writes + 1 }, (_, i) => i + 2), 'every event exactly once, in order');
    assert.equal(eventsOf(drain(fast), fastId).length, 1);
  } finally {
    await f.close();
  }
});

test('a revision larger than the whole buffer still goes through, alone', async () => {
  const f = await openHub({ streamBufferEventsMax: 4, catchUpBatchRecords: 2 });
  try {
    const s = f.hub.openStream();
    const id = s.watch(all);
    const big = { compare: [], success: ['a', 'b', 'c', 'd', 'e', 'f'].map((k) => ({ op: 'put' as const, request: { key: b(k), value: b('1') } })), failure: [] };
    f.store.txn(big); // 2: six events into an empty buffer
    f.store.put({ key: b('g'), value: b('1') }); // 3: no room, the watcher falls behind
    assert.deepEqual(f.hub.stats().unsyncedWatchers, 1);
    f.store.txn(big); // 4
    const [msgs] = await settle(f.hub, [s]);
    assert.deepEqual(
      msgs!.filter((m) => m.type === 'events').map((m) => (m.type === 'events' ? m.events.map((e) => e.kv.modRevision) : [])),
      [[2, 2, 2, 2, 2, 2], [3], [4, 4, 4, 4, 4, 4]],
    );
    assert.equal(eventsOf(msgs!, id).length, 13);
  } finally {
    await f.close();
  }
});

test('a watcher that falls behind past a compaction is canceled; the others carry on', async () => {
  const f = await openHub({ streamBufferEventsMax: 8, catchUpBatchRecords: 4 });
  try {
    const slow = f.hub.openStream();
    const ok = f.hub.openStream();
    const slowId = slow.watch({ key: b('k') });
    const okId = ok.watch({ key: b('k') });
    for (let i = 0; i < 30; i++) {
      f.store.put({ key: b('k'), value: b(`${i}`) }); // 2..31
      drain(ok);
    }
    f.store.compact(25);
    const got = drain(slow);
    const [rest] = await settle(f.hub, [slow]);
    got.push(...rest!);
    const revs = eventsOf(got, slowId).map((e) => e.kv.modRevision);
    assert.deepEqual(revs, Array.from({ length: 8 }, (_, i) => i + 2), 'what was buffered before falling behind');
    assert.deepEqual(got.at(-1), { type: 'canceled', watchId: slowId, revision: 31, compactRevision: 25, reason: 'mvcc: required revision has been compacted' });
    f.store.put({ key: b('k'), value: b('x') });
    assert.deepEqual(eventsOf(drain(ok), okId).map((e) => e.kv.modRevision), [32]);
    assert.deepEqual(f.hub.stats(), { streams: 2, syncedWatchers: 1, unsyncedWatchers: 0 });
  } finally {
    await f.close();
  }
});

test('an async consumer (for await) with a slow writer side gets everything', async () => {
  const f = await openHub({ streamBufferEventsMax: 16, catchUpBatchRecords: 8 });
  try {
    const s = f.hub.openStream();
    const id = s.watch(all);
    const seen: number[] = [];
    const consumer = (async () => {
      for await (const m of s) {
        if (m.type !== 'events' || m.watchId !== id) continue;
        seen.push(...m.events.map((e) => e.kv.modRevision));
        if (seen.length % 7 === 0) await new Promise((r) => setTimeout(r, 1)); // a slow network now and then
        if (seen.length === 500) return;
      }
    })();
    for (let i = 0; i < 500; i++) {
      f.store.put({ key: b(`k${i % 9}`), value: b('v') });
      if (i % 25 === 0) await nextTurn();
    }
    await consumer;
    assert.deepEqual(seen, Array.from({ length: 500 }, (_, i) => i + 2));
    s.close();
  } finally {
    await f.close();
  }
});
