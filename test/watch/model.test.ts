/**
 * Model-based test: random interleavings of writes, compactions, watchers created at random
 * past, present and future revisions on a few streams, consumers that read a little, a lot or
 * nothing for a while, progress requests and cancels. A naive model of the key space gives the
 * expected history; at the end (after draining everything) every watcher must have received
 * exactly its history — its range, filters and prevKv, from its start revision, no gap, no
 * duplicate, whole revisions per message — or a prefix of it followed by a compaction cancel
 * that was due. Progress notifications must never claim a revision whose events are still
 * missing, and buffers must stay within their limits throughout.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { MvccEvent } from '../../src/mvcc/index.ts';
import { invalidWatchId } from '../../src/watch/index.ts';
import type { WatchFilter, WatchMessage, WatchStream } from '../../src/watch/index.ts';
import { drain, nextTurn, openHub, settle } from './helpers.ts';

const lat = (s: string): Buffer => Buffer.from(s, 'latin1');
const str = (u: Uint8Array): string => Buffer.from(u).toString('latin1');
const keys = ['a', 'b', 'c', 'd', 'e'];
const ranges: ReadonlyArray<{ key: string; end?: string }> = [{ key: 'a' }, { key: 'c' }, { key: 'b', end: 'd' }, { key: '\0', end: '\0' }, { key: 'c', end: '\0' }];

interface ModelKv {
  readonly value: string;
  readonly create: number;
  readonly mod: number;
  readonly version: number;
}

/** One expected event: type, key, revision, value and the previous value (with its revision). */
interface Expected {
  readonly type: 'PUT' | 'DELETE';
  readonly key: string;
  readonly rev: number;
  readonly value: string;
  readonly version: number;
  readonly prev: ModelKv | undefined;
}

type Cmd =
  | { readonly c: 'put'; readonly key: string; readonly value: string }
  | { readonly c: 'del'; readonly range: number }
  | { readonly c: 'txn'; readonly puts: readonly string[]; readonly del: string }
  | { readonly c: 'burst'; readonly n: number }
  | { readonly c: 'compact'; readonly offset: number }
  | {
      readonly c: 'watch';
      readonly stream: number;
      readonly range: number;
      readonly start: 'now' | 'past' | 'nearCompaction' | 'future';
      readonly offset: number;
      readonly filter: WatchFilter | null;
      readonly prevKv: boolean;
    }
  | { readonly c: 'cancel'; readonly stream: number; readonly pick: number }
  | { readonly c: 'consume'; readonly stream: number; readonly n: number }
  | { readonly c: 'turn' }
  | { readonly c: 'progress'; readonly stream: number };

const streamArb = fc.integer({ min: 0, max: 2 });
const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ c: fc.constant('put' as const), key: fc.constantFrom(...keys), value: fc.constantFrom('1', '2', 'xyz') }) },
  { weight: 2, arbitrary: fc.record({ c: fc.constant('del' as const), range: fc.integer({ min: 0, max: ranges.length - 1 }) }) },
  {
    weight: 2,
    arbitrary: fc
      .shuffledSubarray(keys, { minLength: 2, maxLength: 4 })
      .map((ks): Cmd => ({ c: 'txn', puts: ks.slice(1), del: ks[0]! })),
  },
  { weight: 1, arbitrary: fc.record({ c: fc.constant('burst' as const), n: fc.integer({ min: 2, max: 12 }) }) },
  { weight: 1, arbitrary: fc.record({ c: fc.constant('compact' as const), offset: fc.nat({ max: 1000 }) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      c: fc.constant('watch' as const),
      stream: streamArb,
      range: fc.integer({ min: 0, max: ranges.length - 1 }),
      start: fc.constantFrom('now' as const, 'past' as const, 'past' as const, 'nearCompaction' as const, 'future' as const),
      offset: fc.nat({ max: 1000 }),
      filter: fc.constantFrom<WatchFilter | null>(null, null, 'NOPUT', 'NODELETE'),
      prevKv: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ c: fc.constant('cancel' as const), stream: streamArb, pick: fc.nat() }) },
  { weight: 5, arbitrary: fc.record({ c: fc.constant('consume' as const), stream: streamArb, n: fc.integer({ min: 0, max: 6 }) }) },
  { weight: 3, arbitrary: fc.constant({ c: 'turn' as const }) },
  { weight: 1, arbitrary: fc.record({ c: fc.constant('progress' as const), stream: streamArb }) },
);

interface WatchRecord {
  readonly stream: number;
  readonly id: number;
  readonly range: { key: string; end?: string };
  readonly start: number;
  /** Asked for a start revision (not "from now"). */
  readonly explicitStart: boolean;
  readonly filter: WatchFilter | null;
  readonly prevKv: boolean;
  clientCanceled: boolean;
}

function inRange(k: string, r: { key: string; end?: string }): boolean {
  if (r.end === undefined) return k === r.key;
  if (r.end === '\0') return k >= r.key;
  return k >= r.key && k < r.end;
}

class KeySpace {
  rev = 1;
  readonly kvs = new Map<string, ModelKv>();
  readonly history: Expected[] = [];

  private put(key: string, value: string): void {
    const prev = this.kvs.get(key);
    const kv: ModelKv = { value, create: prev?.create ?? this.rev, mod: this.rev, version: (prev?.version ?? 0) + 1 };
    this.kvs.set(key, kv);
    this.history.push({ type: 'PUT', key, rev: this.rev, value, version: kv.version, prev });
  }

  private del(r: { key: string; end?: string }): void {
    for (const k of [...this.kvs.keys()].filter((k) => inRange(k, r)).sort()) {
      this.history.push({ type: 'DELETE', key: k, rev: this.rev, value: '', version: 0, prev: this.kvs.get(k) });
      this.kvs.delete(k);
    }
  }

  /** Applies one write (a list of puts and deletes at one revision); no revision if nothing changes. */
  write(puts: ReadonlyArray<[string, string]>, del: { key: string; end?: string } | undefined): void {
    const changes = puts.length > 0 || (del !== undefined && [...this.kvs.keys()].some((k) => inRange(k, del)));
    if (!changes) return;
    this.rev++;
    for (const [k, v] of puts) this.put(k, v);
    if (del !== undefined) this.del(del);
  }
}

function expectedFor(w: WatchRecord, space: KeySpace): Expected[] {
  return space.history.filter(
    (e) => e.rev >= w.start && inRange(e.key, w.range) && !(w.filter === 'NOPUT' && e.type === 'PUT') && !(w.filter === 'NODELETE' && e.type === 'DELETE'),
  );
}

/** The event as the watcher should see it; prevKv is compared separately. */
function shape(e: MvccEvent): string {
  return `${e.type} ${str(e.kv.key)}@${e.kv.modRevision}${e.type === 'PUT' ? `=${str(e.kv.value)} v${e.kv.version}` : ''}`;
}
function shapeExpected(e: Expected): string {
  return `${e.type} ${e.key}@${e.rev}${e.type === 'PUT' ? `=${e.value} v${e.version}` : ''}`;
}

test('model: every watcher receives exactly its history, whatever the interleaving', async () => {
  const coverage = { fellBehind: 0, compactionCancels: 0, progress: 0, fromPast: 0 };
  await fc.assert(
    fc.asyncProperty(
      fc.array(cmdArb, { minLength: 1, maxLength: 80, size: 'max' }),
      fc.integer({ min: 2, max: 10 }).chain((streamBufferEventsMax) =>
        fc.record({
          streamBufferEventsMax: fc.constant(streamBufferEventsMax),
          catchUpBatchRecords: fc.integer({ min: 1, max: Math.min(4, streamBufferEventsMax) }),
          catchUpBatchesPerTurn: fc.integer({ min: 1, max: 3 }),
          catchUpWatchersPerBatch: fc.integer({ min: 1, max: 4 }),
          recentRevisionsMax: fc.integer({ min: 1, max: 8 }),
        }),
      ),
      async (cmds, limits) => {
        const f = await openHub(limits);
        try {
          const space = new KeySpace();
          const streams: WatchStream[] = [f.hub.openStream(), f.hub.openStream(), f.hub.openStream()];
          const logs: WatchMessage[][] = [[], [], []];
          const watchers: WatchRecord[] = [];
          let compactRev = -1;
          const maxRevisionEvents = keys.length;

          for (const cmd of cmds) {
            const unsyncedBefore = f.hub.stats().unsyncedWatchers;
            switch (cmd.c) {
              case 'put':
                f.store.put({ key: lat(cmd.key), value: lat(cmd.value) });
                space.write([[cmd.key, cmd.value]], undefined);
                break;
              case 'del': {
                const r = ranges[cmd.range]!;
                f.store.deleteRange({ key: lat(r.key), ...(r.end === undefined ? {} : { rangeEnd: lat(r.end) }) });
                space.write([], r);
                break;
              }
              case 'txn':
                f.store.txn({
                  compare: [],
                  success: [...cmd.puts.map((k) => ({ op: 'put' as const, request: { key: lat(k), value: lat('t') } })), { op: 'deleteRange', request: { key: lat(cmd.del) } }],
                  failure: [],
                });
                space.write(
                  cmd.puts.map((k): [string, string] => [k, 't']),
                  { key: cmd.del },
                );
                break;
              case 'burst':
                for (let i = 0; i < cmd.n; i++) {
                  const key = keys[(i * 3 + space.rev) % keys.length]!;
                  f.store.put({ key: lat(key), value: lat(`b${i}`) });
                  space.write([[key, `b${i}`]], undefined);
                }
                break;
              case 'compact': {
                if (compactRev >= space.rev) break;
                const lo = Math.max(compactRev + 1, 1);
                const at = lo + (cmd.offset % (space.rev - lo + 1));
                f.store.compact(at);
                compactRev = at;
                break;
              }
              case 'watch': {
                const r = ranges[cmd.range]!;
                const startRevision =
                  cmd.start === 'now'
                    ? 0
                    : cmd.start === 'past'
                      ? 1 + (cmd.offset % space.rev)
                      : cmd.start === 'nearCompaction'
                        ? Math.max(1, compactRev - 1 + (cmd.offset % 3))
                        : space.rev + 1 + (cmd.offset % 3);
                const id = streams[cmd.stream]!.watch({
                  key: lat(r.key),
                  ...(r.end === undefined ? {} : { rangeEnd: lat(r.end) }),
                  startRevision,
                  filters: cmd.filter === null ? [] : [cmd.filter],
                  prevKv: cmd.prevKv,
                });
                watchers.push({ stream: cmd.stream, id, range: r, start: startRevision === 0 ? space.rev + 1 : startRevision, explicitStart: startRevision !== 0, filter: cmd.filter, prevKv: cmd.prevKv, clientCanceled: false });
                break;
              }
              case 'cancel': {
                const mine = watchers.filter((w) => w.stream === cmd.stream && !w.clientCanceled);
                if (mine.length === 0) break;
                const w = mine[cmd.pick % mine.length]!;
                // False when the hub already canceled it (compaction).
                w.clientCanceled = streams[cmd.stream]!.cancel(w.id);
                break;
              }
              case 'consume':
                for (let i = 0; i < cmd.n; i++) {
                  const m = streams[cmd.stream]!.poll();
                  if (m === undefined) break;
                  logs[cmd.stream]!.push(m);
                }
                break;
              case 'turn':
                await nextTurn();
                break;
              case 'progress':
                streams[cmd.stream]!.requestProgress();
                break;
            }
            if (cmd.c === 'put' || cmd.c === 'del' || cmd.c === 'txn' || cmd.c === 'burst') {
              if (f.hub.stats().unsyncedWatchers > unsyncedBefore) coverage.fellBehind++;
            }
            // A revision is never split, so one larger than a catch-up batch may top up the buffer.
            const bound = Math.max(limits.streamBufferEventsMax, limits.streamBufferEventsMax - limits.catchUpBatchRecords + maxRevisionEvents);
            for (const s of streams) assert.ok(s.buffered.events <= bound, `buffer of ${s.buffered.events} events`);
          }
          const rest = await settle(f.hub, streams);
          rest.forEach((msgs, i) => logs[i]!.push(...msgs));
          for (const s of streams) assert.deepEqual(drain(s), []);

          for (const w of watchers) checkWatcher(w, logs[w.stream]!, space, compactRev);
          for (const m of logs.flat()) {
            if (m.type === 'canceled' && m.compactRevision > 0) coverage.compactionCancels++;
            if (m.type === 'progress') coverage.progress++;
          }
          coverage.fromPast += watchers.filter((w) => w.explicitStart && w.start <= space.rev).length;
          logs.forEach((log, i) => checkProgress(log, watchers.filter((w) => w.stream === i), space));
        } finally {
          await f.close();
        }
      },
    ),
    { numRuns: 150 },
  );
  // The runs must have exercised what the property is about.
  for (const [what, n] of Object.entries(coverage)) assert.ok(n > 0, `no run covered ${what}`);
});

function checkWatcher(w: WatchRecord, log: readonly WatchMessage[], space: KeySpace, finalCompactRev: number): void {
  const mine = log.filter((m) => m.watchId === w.id);
  assert.equal(mine[0]?.type, 'created', `watcher ${w.stream}/${w.id} starts with created`);
  const received: MvccEvent[] = [];
  const expected = expectedFor(w, space);
  for (const m of mine) {
    if (m.type !== 'events') continue;
    // Atomic: every revision in a message is whole.
    for (const rev of new Set(m.events.map((e) => e.kv.modRevision))) {
      assert.equal(m.events.filter((e) => e.kv.modRevision === rev).length, expected.filter((e) => e.rev === rev).length, `revision ${rev} whole in one message`);
    }
    received.push(...m.events);
  }
  const end = mine.at(-1);
  const compacted = end?.type === 'canceled' && end.compactRevision > 0;
  if (w.clientCanceled || compacted) {
    assert.deepEqual(received.map(shape), expected.slice(0, received.length).map(shapeExpected), 'a canceled watcher got a prefix of its history');
  } else {
    assert.deepEqual(received.map(shape), expected.map(shapeExpected), `watcher ${w.stream}/${w.id} from ${w.start}`);
  }
  if (compacted) {
    const next = received.length === 0 ? w.start : received.at(-1)!.kv.modRevision + 1;
    assert.ok(next < end.compactRevision && end.compactRevision <= finalCompactRev, `canceled at ${end.compactRevision} while needing ${next}`);
    assert.equal(end.reason, 'mvcc: required revision has been compacted');
  }
  received.forEach((e, i) => {
    const want = expected[i]!.prev;
    if (!w.prevKv || want === undefined || (e.type === 'PUT' && e.kv.version === 1)) {
      assert.equal(e.prevKv, undefined, 'no prevKv unless asked, and none for a create');
      return;
    }
    // From history, the value before the compaction revision is gone.
    if (e.prevKv === undefined) {
      assert.ok(e.kv.modRevision <= finalCompactRev, `prevKv missing at ${e.kv.modRevision}`);
      return;
    }
    assert.deepEqual([str(e.prevKv.value), e.prevKv.modRevision, e.prevKv.version, e.prevKv.createRevision], [want.value, want.mod, want.version, want.create]);
  });
}

/** A progress notification at R comes after every event up to R of the watchers it speaks for. */
function checkProgress(log: readonly WatchMessage[], watchers: readonly WatchRecord[], space: KeySpace): void {
  log.forEach((m, at) => {
    if (m.type !== 'progress') return;
    assert.equal(m.watchId, invalidWatchId);
    for (const w of watchers) {
      const created = log.findIndex((x) => x.type === 'created' && x.watchId === w.id);
      const canceled = log.findIndex((x) => x.type === 'canceled' && x.watchId === w.id);
      if (created > at || (canceled !== -1 && canceled < at)) continue;
      assert.ok(!w.explicitStart || m.revision >= w.start, 'no progress before a start revision');
      const before = log.slice(0, at).flatMap((x) => (x.type === 'events' && x.watchId === w.id ? x.events : []));
      const due: Expected[] = expectedFor(w, space).filter((e) => e.rev <= m.revision);
      assert.equal(before.length, due.length, `progress at ${m.revision} before watcher ${w.id} had its events`);
    }
  });
}
