/**
 * The store's history as events: what a watcher that started at `fromRevision` would have heard,
 * read back from the `kv` database (ordered by revision, see codec.ts) in bounded batches. This is
 * how an unsynced watcher catches up (etcd's syncWatchers reading the key bucket from minRev).
 *
 * Events are exactly those onCommit reported: a put's kv as stored, a delete's kv with only the
 * key and modRevision. prevKv is the key's value at main − 1, as etcd's watch fetches it (a
 * create — a put of version 1 — has none); the index only forgets values before the compaction
 * revision, so it can be missing only for events at the compaction revision itself.
 *
 * A batch always holds whole revisions (a watcher must get a revision's events together): it
 * stops before the revision that would take it beyond `recordsMax` records examined, or beyond
 * `bytesMax` event bytes once it holds events. So it holds at least one revision, and at least
 * one revision with events in the range if there is one within `recordsMax` records.
 *
 * Reading from the compaction revision itself is allowed (etcd only cancels a watch whose start
 * revision is below it); records the compaction dropped at that revision are skipped by asking
 * the index, because physical compaction may not have freed them yet.
 */
import { assert } from './assert.ts';
import { decodeRevKey, emptyBytes, keyBytes, recordKeyString, revKey } from './codec.ts';
import { CompactedError, FutureRevisionError, InvalidArgumentError } from './errors.ts';
import { keyBounds } from './range.ts';
import type { StoreState } from './state.ts';
import type { KeyValue, MvccEvent } from './types.ts';

export interface HistoryRequest {
  /** [key, rangeEnd) with RangeRequest's conventions. */
  readonly key: Uint8Array;
  readonly rangeEnd?: Uint8Array;
  /** First revision to read (inclusive). */
  readonly fromRevision: number;
  /** Last revision to read (inclusive); absent or 0 = the current revision. */
  readonly toRevision?: number;
  readonly prevKv?: boolean;
  /** Records (of any key) one call examines at most, unless the first revision alone has more. */
  readonly recordsMax: number;
  /** Event bytes (see eventBytes) one call returns at most, unless its first revision with events alone has more. */
  readonly bytesMax?: number;
}

export interface HistoryBatch {
  /** The events in the range of every revision in [fromRevision, nextRevision), in revision order. */
  readonly events: MvccEvent[];
  /** Where the next call starts; greater than toRevision once the history is read to the end. */
  readonly nextRevision: number;
  /** The last revision this read covers (the resolved toRevision). */
  readonly toRevision: number;
}

/** Bookkeeping bytes per event beyond keys and values (revisions, version, lease, framing). */
const eventOverheadBytes = 48;

/** The size by which history batches and watch buffers account for an event. */
export function eventBytes(ev: MvccEvent): number {
  const p = ev.prevKv;
  const prev = p === undefined ? 0 : p.key.byteLength + p.value.byteLength + eventOverheadBytes;
  return ev.kv.key.byteLength + ev.kv.value.byteLength + eventOverheadBytes + prev;
}

function checkRevision(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`${what} ${n}`);
}

function prevKvOf(s: StoreState, key: string, main: number): KeyValue | undefined {
  const rev = s.index.get(key, main - 1);
  return rev === null ? undefined : s.readKv(rev.main, rev.sub, false);
}

export function readHistory(s: StoreState, r: HistoryRequest): HistoryBatch {
  checkRevision(r.fromRevision, 'history from revision');
  checkRevision(r.toRevision ?? 0, 'history to revision');
  if (!Number.isSafeInteger(r.recordsMax) || r.recordsMax < 1) throw new InvalidArgumentError(`history recordsMax ${r.recordsMax}`);
  const bytesMax = r.bytesMax ?? Infinity;
  if (!(bytesMax >= 1)) throw new InvalidArgumentError(`history bytesMax ${bytesMax}`);
  // The index must agree with what LMDB has committed: no reads from inside a write.
  assert(!s.backend.writing, 'history read inside a write transaction');
  const to = r.toRevision === undefined || r.toRevision === 0 ? s.currentRev : r.toRevision;
  if (to > s.currentRev) throw new FutureRevisionError();
  const from = Math.max(r.fromRevision, 1);
  if (from < s.compactRev) throw new CompactedError();
  if (from > to) return { events: [], nextRevision: from, toRevision: to };

  const b = keyBounds(r.key, r.rangeEnd);
  const wantPrev = r.prevKv === true;
  const events: MvccEvent[] = [];
  // Totals at the start of the revision being read: what the batch holds if it stops there.
  let doneEvents = 0;
  let doneRecords = 0;
  let records = 0;
  let bytes = 0;
  let main = -1;
  let stopped = false;
  const snap = s.backend.snapshot();
  try {
    for (const { key, value } of s.backend.kvRange({ start: revKey(from, 0, false), end: revKey(to + 1, 0, false), snapshot: snap })) {
      const rev = decodeRevKey(key);
      if (rev.main !== main) {
        main = rev.main;
        doneEvents = events.length;
        doneRecords = records;
      }
      records++;
      // doneRecords > 0: the batch already holds a whole revision, so it may stop here.
      if (doneRecords > 0 && records > r.recordsMax) {
        stopped = true;
        break;
      }
      const k = recordKeyString(value);
      if (b.single ? k !== b.start : k < b.start || (b.end !== null && k >= b.end)) continue;
      if (main === s.compactRev && !s.index.hasRevision(k, main, rev.sub)) continue;
      let ev: MvccEvent;
      if (rev.tombstone) {
        const kv: KeyValue = { key: keyBytes(k), createRevision: 0, modRevision: main, version: 0, value: emptyBytes, lease: 0n };
        const prevKv = wantPrev ? prevKvOf(s, k, main) : undefined;
        ev = prevKv === undefined ? { type: 'DELETE', kv } : { type: 'DELETE', kv, prevKv };
      } else {
        const kv = s.readKv(main, rev.sub, false);
        const prevKv = wantPrev && kv.version > 1 ? prevKvOf(s, k, main) : undefined;
        ev = prevKv === undefined ? { type: 'PUT', kv } : { type: 'PUT', kv, prevKv };
      }
      events.push(ev);
      bytes += eventBytes(ev);
      if (doneEvents > 0 && bytes > bytesMax) {
        stopped = true;
        break;
      }
    }
    if (stopped) {
      events.length = doneEvents;
      return { events, nextRevision: main, toRevision: to };
    }
    return { events, nextRevision: to + 1, toRevision: to };
  } finally {
    snap.done();
  }
}
