/**
 * The guarantees etcd documents for watch (ordered, reliable, atomic, resumable), filters,
 * prevKv, compaction, ids and progress notifications, one scenario each.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StreamBackloggedError, StreamClosedError, TooManyWatchersError, invalidWatchId, resolveWatchLimits } from '../../src/watch/index.ts';
import type { WatchMessage } from '../../src/watch/index.ts';
import { b, drain, eventsOf, openHub, settle, show } from './helpers.ts';

const all = { key: b('\0'), rangeEnd: b('\0') };
const prefix = (p: string): { key: Buffer; rangeEnd: Buffer } => {
  const end = b(p);
  end[end.length - 1]!++;
  return { key: b(p), rangeEnd: end };
};

test('live events arrive ordered, after created, one message per revision, for the watched range only', async () => {
  const f = await openHub();
  try {
    const s = f.hub.openStream();
    const id = s.watch(prefix('a/'));
    f.store.put({ key: b('a/1'), value: b('x') }); // 2
    f.store.put({ key: b('b/1'), value: b('x') }); // 3: outside
    f.store.put({ key: b('a/2'), value: b('y') }); // 4
    f.store.deleteRange({ key: b('a/1') }); // 5
    const msgs = drain(s);
    assert.deepEqual(msgs[0], { type: 'created', watchId: id, revision: 1 });
    assert.deepEqual(
      msgs.slice(1).map((m) => (m.type === 'events' ? [m.revision, ...show(m.events)] : m.type)),
      [[2, 'PUT a/1@2=x'], [4, 'PUT a/2@4=y'], [5, 'DELETE a/1@5']],
    );
  } finally {
    await f.close();
  }
});

test('atomic: the events of one txn come in one message', async () => {
  const f = await openHub();
  try {
    const s = f.hub.openStream();
    const id = s.watch(all);
    f.store.txn({
      compare: [],
      success: [
        { op: 'put', request: { key: b('x'), value: b('1') } },
        { op: 'put', request: { key: b('y'), value: b('2') } },
        { op: 'deleteRange', request: { key: b('z') } },
      ],
      failure: [],
    });
    f.store.put({ key: b('z'), value: b('3') });
    // The same through the Raft apply path, which reports several revisions at once.
    f.store.applyBatch([
      { index: 1, request: { op: 'txn', request: { compare: [], success: [{ op: 'put', request: { key: b('p'), value: b('1') } }, { op: 'put', request: { key: b('q'), value: b('1') } }], failure: [] } } },
      { index: 2, request: { op: 'deleteRange', request: { key: b('p'), rangeEnd: b('r') } } },
    ]);
    const msgs = drain(s).filter((m) => m.type === 'events');
    assert.deepEqual(
      msgs.map((m) => (m.type === 'events' && m.watchId === id ? show(m.events) : [])),
      [['PUT x@2=1', 'PUT y@2=2'], ['PUT z@3=3'], ['PUT p@4=1', 'PUT q@4=1'], ['DELETE p@5', 'DELETE q@5']],
    );
  } finally {
    await f.close();
  }
});

test('reliable and resumable: a watcher from last revision + 1 sees every later event exactly once', async () => {
  const f = await openHub({ catchUpBatchRecords: 3 });
  try {
    for (let i = 0; i < 20; i++) f.store.put({ key: b(`k${i % 4}`), value: b(`${i}`) });
    const s1 = f.hub.openStream();
    const id1 = s1.watch({ ...all, startRevision: 2 });
    const [first] = await settle(f.hub, [s1]);
    const seen1 = eventsOf(first!, id1);
    assert.deepEqual(seen1.map((e) => e.kv.modRevision), Array.from({ length: 20 }, (_, i) => i + 2));
    // The client loses its stream after revision 11 and resumes at 12, while writes go on.
    s1.close();
    for (let i = 20; i < 30; i++) f.store.put({ key: b(`k${i % 4}`), value: b(`${i}`) });
    const s2 = f.hub.openStream();
    const id2 = s2.watch({ ...all, startRevision: 12 });
    for (let i = 30; i < 35; i++) f.store.put({ key: b(`k${i % 4}`), value: b(`${i}`) });
    const [second] = await settle(f.hub, [s2]);
    const seen2 = eventsOf(second!, id2);
    assert.deepEqual(seen2.map((e) => e.kv.modRevision), Array.from({ length: 25 }, (_, i) => i + 12));
    assert.deepEqual(show(seen2.slice(0, 10)), show(seen1.slice(10)));
    // Catch-up messages hold whole revisions, a few at a time, with the current revision in the header.
    const batches = second!.filter((m): m is Extract<WatchMessage, { type: 'events' }> => m.type === 'events');
    assert.ok(batches.length > 3 && batches.every((m) => m.events.length <= 3));
  } finally {
    await f.close();
  }
});

test('filters drop PUT or DELETE events; a revision left empty sends nothing', async () => {
  const f = await openHub();
  try {
    const s = f.hub.openStream();
    const noPut = s.watch({ key: b('k'), filters: ['NOPUT'] });
    const noDelete = s.watch({ key: b('k'), filters: ['NODELETE'] });
    f.store.put({ key: b('k'), value: b('1') });
    f.store.deleteRange({ key: b('k') });
    f.store.put({ key: b('k'), value: b('2') });
    const msgs = drain(s);
    assert.deepEqual(show(eventsOf(msgs, noPut)), ['DELETE k@3']);
    assert.deepEqual(show(eventsOf(msgs, noDelete)), ['PUT k@2=1', 'PUT k@4=2']);
    assert.equal(msgs.filter((m) => m.type === 'events').length, 3);
    // The same from history.
    const s2 = f.hub.openStream();
    const old = s2.watch({ key: b('k'), startRevision: 1, filters: ['NODELETE'] });
    const [hist] = await settle(f.hub, [s2]);
    assert.deepEqual(show(eventsOf(hist!, old)), ['PUT k@2=1', 'PUT k@4=2']);
  } finally {
    await f.close();
  }
});

test('prevKv: the previous version of the key, live or from history; none for a create', async () => {
  const f = await openHub();
  try {
    const s = f.hub.openStream();
    const withPrev = s.watch({ key: b('k'), prevKv: true });
    const without = s.watch({ key: b('k') });
    f.store.put({ key: b('k'), value: b('1') }); // 2
    f.store.put({ key: b('k'), value: b('2') }); // 3
    f.store.deleteRange({ key: b('k') }); // 4
    f.store.put({ key: b('k'), value: b('3') }); // 5
    const expected = ['PUT k@2=1', 'PUT k@3=2<1@2', 'DELETE k@4<2@3', 'PUT k@5=3'];
    const live = drain(s);
    assert.deepEqual(show(eventsOf(live, withPrev)), expected);
    assert.deepEqual(show(eventsOf(live, without)), ['PUT k@2=1', 'PUT k@3=2', 'DELETE k@4', 'PUT k@5=3']);
    const s2 = f.hub.openStream();
    const old = s2.watch({ key: b('k'), prevKv: true, startRevision: 2 });
    const [hist] = await settle(f.hub, [s2]);
    assert.deepEqual(show(eventsOf(hist!, old)), expected);
  } finally {
    await f.close();
  }
});

test('a start revision below the compaction revision is canceled with it; at it, the watch works', async () => {
  const f = await openHub();
  try {
    for (let i = 0; i < 6; i++) f.store.put({ key: b('k'), value: b(`${i}`) }); // 2..7
    f.store.compact(5);
    const s = f.hub.openStream();
    const gone = s.watch({ key: b('k'), startRevision: 4 });
    const kept = s.watch({ key: b('k'), startRevision: 5 });
    const [msgs] = await settle(f.hub, [s]);
    const canceled = msgs!.find((m) => m.type === 'canceled');
    assert.deepEqual(canceled, { type: 'canceled', watchId: gone, revision: 7, compactRevision: 5, reason: 'mvcc: required revision has been compacted' });
    assert.deepEqual(eventsOf(msgs!, gone), []);
    assert.deepEqual(eventsOf(msgs!, kept).map((e) => e.kv.modRevision), [5, 6, 7]);
    assert.equal(s.cancel(gone), false, 'a compacted watcher is gone');
    assert.equal(f.hub.stats().syncedWatchers, 1);
  } finally {
    await f.close();
  }
});

test('from the compaction revision, a watcher gets what the store\'s history holds there, though recent revisions are in memory', async () => {
  const f = await openHub();
  try {
    f.store.put({ key: b('a'), value: b('1') }); // 2
    f.store.deleteRange({ key: b('a') }); // 3: the compaction drops this tombstone
    f.store.put({ key: b('b'), value: b('2') }); // 4
    f.store.compact(3);
    const s = f.hub.openStream();
    const id = s.watch({ ...all, startRevision: 3 });
    const [msgs] = await settle(f.hub, [s]);
    const history = f.store.history({ ...all, fromRevision: 3, recordsMax: 100 }).events;
    assert.deepEqual(show(eventsOf(msgs!, id)), show(history));
  } finally {
    await f.close();
  }
});

test('a future start revision skips the revisions before it', async () => {
  const f = await openHub();
  try {
    const s = f.hub.openStream();
    const id = s.watch({ key: b('k'), startRevision: 4 });
    for (let i = 0; i < 4; i++) f.store.put({ key: b('k'), value: b(`${i}`) }); // 2..5
    assert.deepEqual(eventsOf(drain(s), id).map((e) => e.kv.modRevision), [4, 5]);
  } finally {
    await f.close();
  }
});

test('ids: automatic from 0, client-chosen; failed creates answered in request order; cancel answers once', async () => {
  const f = await openHub();
  try {
    const s = f.hub.openStream();
    assert.equal(s.watch({ key: b('a') }), 0);
    assert.equal(s.watch({ key: b('a'), watchId: 7 }), 7);
    assert.equal(s.watch({ key: b('a') }), 1);
    assert.equal(s.watch({ key: b('a'), watchId: 7 }), invalidWatchId);
    assert.equal(s.watch({ key: b('b'), rangeEnd: b('a') }), invalidWatchId);
    assert.equal(s.watch({ key: b('a'), startRevision: -1 }), invalidWatchId);
    assert.equal(s.watch({ key: b('c') }), 2);
    assert.equal(s.cancel(7), true);
    assert.equal(s.cancel(7), false);
    f.store.put({ key: b('a'), value: b('v') });
    const msgs = drain(s);
    assert.deepEqual(
      msgs.map((m) => (m.type === 'rejected' ? `rejected:${m.error.constructor.name}` : `${m.type}:${m.watchId}`)),
      [
        'created:0',
        'created:7',
        'created:1',
        'rejected:DuplicateWatchIdError',
        'rejected:EmptyWatcherRangeError',
        'rejected:InvalidWatchArgumentError',
        'created:2',
        'canceled:7',
        'events:0',
        'events:1',
      ],
    );
    const rejected = msgs.find((m) => m.type === 'rejected');
    assert.deepEqual([rejected?.watchId, rejected?.type === 'rejected' && rejected.error.message], [-1, 'mvcc: duplicate watch ID provided on the WatchStream']);
    // An empty key means "\0": with range end "\0", the whole key space.
    const w = s.watch({ key: new Uint8Array(0), rangeEnd: b('\0') });
    f.store.put({ key: b('\0'), value: b('v') });
    assert.equal(eventsOf(drain(s), w).length, 1);
    s.close();
    assert.throws(() => s.watch({ key: b('a') }), StreamClosedError);
    assert.deepEqual(await s.next(), { value: undefined, done: true });
    assert.deepEqual(f.hub.stats(), { streams: 0, syncedWatchers: 0, unsyncedWatchers: 0 });
  } finally {
    await f.close();
  }
});

test('requested progress waits until every watcher of the stream is synced, then carries the revision', async () => {
  const f = await openHub({ catchUpBatchRecords: 2 });
  try {
    for (let i = 0; i < 10; i++) f.store.put({ key: b('k'), value: b(`${i}`) }); // 2..11
    const s = f.hub.openStream();
    s.requestProgress(); // no watchers: nothing, as in etcd
    const live = s.watch({ key: b('k') });
    const old = s.watch({ key: b('k'), startRevision: 2 });
    s.requestProgress();
    s.requestProgress(); // merged with the pending one
    const [msgs] = await settle(f.hub, [s]);
    const progress = msgs!.filter((m) => m.type === 'progress');
    assert.deepEqual(progress, [{ type: 'progress', watchId: invalidWatchId, revision: 11 }]);
    // It comes after every event of the catching-up watcher.
    const at = msgs!.indexOf(progress[0]!);
    assert.equal(eventsOf(msgs!.slice(0, at), old).length, 10);
    f.store.put({ key: b('k'), value: b('x') });
    s.requestProgress();
    assert.deepEqual(drain(s).map((m) => `${m.type}:${m.watchId}@${m.revision}`), [`events:${live}@12`, `events:${old}@12`, 'progress:-1@12']);
  } finally {
    await f.close();
  }
});

test('periodic progress goes to idle synced watchers that asked for it', async () => {
  const f = await openHub({ progressNotifyIntervalMs: 20 });
  try {
    const s = f.hub.openStream();
    const asked = s.watch({ key: b('a'), progressNotify: true });
    s.watch({ key: b('b') });
    const future = s.watch({ key: b('c'), progressNotify: true, startRevision: 100 });
    f.store.put({ key: b('z'), value: b('v') });
    await new Promise((r) => setTimeout(r, 70));
    const msgs = drain(s).filter((m) => m.type === 'progress');
    assert.ok(msgs.length >= 1);
    assert.ok(msgs.every((m) => m.watchId === asked && m.revision === 2));
    assert.ok(!msgs.some((m) => m.watchId === future), 'no progress before the start revision');
    // A watcher that got events since the last tick is not idle: it gets no progress at the next.
    // (synchronous from here on, so the hub's own timer cannot interleave)
    drain(s);
    f.store.put({ key: b('a'), value: b('x') });
    s.progressTick(f.store.revision);
    s.progressTick(f.store.revision);
    assert.deepEqual(drain(s).map((m) => `${m.type}:${m.watchId}@${m.revision}`), [`events:${asked}@3`, `progress:${asked}@3`]);
  } finally {
    await f.close();
  }
});

test('bounds: watchers per stream, undelivered control messages, limits checked against each other', async () => {
  const f = await openHub({ watchersPerStreamMax: 3, streamControlMessagesMax: 2 });
  try {
    const s = f.hub.openStream();
    s.watch({ key: b('a') });
    s.watch({ key: b('b') });
    // Two `created` messages wait: the client must read before it creates more.
    assert.throws(() => s.watch({ key: b('c') }), StreamBackloggedError);
    s.requestProgress(); // waits for room rather than growing the queue
    assert.equal(s.buffered.messages, 2);
    s.poll();
    assert.deepEqual(s.poll(), { type: 'created', watchId: 1, revision: 1 });
    assert.deepEqual(s.poll(), { type: 'progress', watchId: invalidWatchId, revision: 1 });
    s.watch({ key: b('c') });
    assert.equal(s.watch({ key: b('d') }), invalidWatchId);
    const rejected = drain(s).at(-1);
    assert.ok(rejected?.type === 'rejected' && rejected.error instanceof TooManyWatchersError);
    // A pending next() ends when the stream closes.
    const pending = s.next();
    await assert.rejects(s.next(), /another next\(\) is pending/);
    f.hub.close();
    assert.deepEqual(await pending, { value: undefined, done: true });
    assert.throws(() => f.hub.openStream(), StreamClosedError);
  } finally {
    await f.close();
  }
  assert.throws(() => resolveWatchLimits({ catchUpBatchRecords: 10, streamBufferEventsMax: 5 }), RangeError);
  assert.throws(() => resolveWatchLimits({ streamBufferBytesMax: 0 }), RangeError);
});
