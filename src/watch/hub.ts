/**
 * WatchHub: the watchers of one store, fed without ever holding up a write (etcd's
 * watchableStore).
 *
 * Synced watchers get each committed revision straight from the store's commit hook, all of a
 * revision's events for a watcher in one message. A watcher whose stream has no room for them
 * leaves the synced group at that revision; unsynced watchers (those, and new watchers with a
 * start revision in the past) read the history back from the store in bounded batches, a few
 * per event-loop turn, whenever their stream has room for a whole batch; one batch serves a
 * group of them (read from the lowest revision any needs, each taking its own events), so many
 * watchers falling behind together cost one read, not one each; revisions still among the
 * latest few thousand come from memory (recent.ts) instead of the store, and events read for a
 * watcher whose stream is full wait with it instead of being read again. A batch that reaches
 * the current revision moves the watcher back to the synced group in the same synchronous step,
 * so the next commit finds it there: no gap and no duplicate. Catching up never runs inside the
 * commit hook, where the store may already be at a later revision than the one being reported
 * (applyBatch reports its revisions after committing them all).
 *
 * A watcher that needs a revision below the compaction revision is canceled with the
 * compaction revision, as in etcd.
 */
import { CompactedError, StoreClosedError, keyBytes, keyString } from '../mvcc/index.ts';
import type { MvccEvent, MvccStore } from '../mvcc/index.ts';
import { StreamClosedError } from './errors.ts';
import { WatcherGroup } from './group.ts';
import { resolveWatchLimits } from './limits.ts';
import { RecentRevisions } from './recent.ts';
import type { WatchLimits } from './limits.ts';
import { WatchStream, sumBytes } from './stream.ts';
import type { StreamHost } from './stream.ts';
import type { PendingEvents, Watcher } from './watcher.ts';

export interface WatchHubStats {
  readonly streams: number;
  readonly syncedWatchers: number;
  /** etcd's slow watchers: catching up from the store. */
  readonly unsyncedWatchers: number;
}

export class WatchHub {
  readonly limits: WatchLimits;
  private readonly synced = new WatcherGroup();
  /** Insertion order is the catch-up order: a watcher served goes to the back. */
  private readonly unsynced = new Set<Watcher>();
  /** Unsynced watchers per stream, so that a consumer's read wakes catch-up only when it can help. */
  private readonly unsyncedPerStream = new Map<WatchStream, number>();
  private readonly streams = new Set<WatchStream>();
  private readonly host: StreamHost;
  private unsubscribe: () => void;
  private readonly progressTimer: NodeJS.Timeout;
  private readonly recent: RecentRevisions;
  private catchUpScheduled = false;
  private closed = false;

  constructor(
    private store: MvccStore,
    limits: Partial<WatchLimits> = {},
  ) {
    this.limits = resolveWatchLimits(limits);
    this.recent = new RecentRevisions(this.limits.recentRevisionsMax, this.limits.recentBytesMax);
    const hub = this;
    this.host = {
      get revision() {
        return hub.store.revision;
      },
      attach: (w) => this.attach(w),
      detach: (w) => this.detach(w),
      roomFreed: (s) => {
        if (this.unsyncedPerStream.has(s) && s.hasRoomForCatchUp()) this.scheduleCatchUp();
      },
      streamClosed: (s) => this.streams.delete(s),
    };
    this.unsubscribe = this.subscribe();
    this.progressTimer = setInterval(() => this.progressTick(), this.limits.progressNotifyIntervalMs);
    this.progressTimer.unref();
  }

  /**
   * Continues on `store`, which replaced the old one (a member installing a snapshot). Every
   * watcher catches up from the new store's history after the last revision it was sent, so
   * it misses nothing the snapshot holds, or is canceled if that history was compacted away.
   */
  replaceStore(store: MvccStore): void {
    if (this.closed) return;
    const next = this.store.revision + 1;
    this.unsubscribe();
    this.recent.clear();
    this.store = store;
    this.unsubscribe = this.subscribe();
    for (const w of this.synced.all()) this.toUnsynced(w, Math.max(w.minRevision, next));
  }

  private subscribe(): () => void {
    return this.store.onCommit((rev, events) => this.dispatch(rev, events));
  }

  /** A new client stream (one gRPC Watch call). */
  openStream(): WatchStream {
    if (this.closed) throw new StreamClosedError();
    const s = new WatchStream(this.host, this.limits);
    this.streams.add(s);
    return s;
  }

  stats(): WatchHubStats {
    return { streams: this.streams.size, syncedWatchers: this.synced.size, unsyncedWatchers: this.unsynced.size };
  }

  /** Closes every stream and detaches from the store. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.progressTimer);
    this.unsubscribe();
    for (const s of [...this.streams]) s.close();
  }

  private attach(w: Watcher): void {
    if (w.minRevision > this.store.revision) this.toSynced(w);
    else this.toUnsynced(w, w.minRevision);
  }

  private detach(w: Watcher): void {
    if (this.unsynced.has(w)) this.leaveUnsynced(w);
    this.synced.delete(w);
  }

  private toSynced(w: Watcher): void {
    if (this.unsynced.has(w)) this.leaveUnsynced(w);
    w.state = 'synced';
    this.synced.add(w);
  }

  private toUnsynced(w: Watcher, minRevision: number): void {
    this.synced.delete(w);
    if (this.unsynced.has(w)) this.leaveUnsynced(w);
    w.state = 'unsynced';
    w.minRevision = minRevision;
    this.unsynced.add(w);
    this.unsyncedPerStream.set(w.stream, (this.unsyncedPerStream.get(w.stream) ?? 0) + 1);
    this.scheduleCatchUp();
  }

  private leaveUnsynced(w: Watcher): void {
    this.unsynced.delete(w);
    const n = this.unsyncedPerStream.get(w.stream)! - 1;
    if (n === 0) this.unsyncedPerStream.delete(w.stream);
    else this.unsyncedPerStream.set(w.stream, n);
  }

  /** The commit hook: one revision's events to the synced watchers that want them. */
  private dispatch(rev: number, events: readonly MvccEvent[]): void {
    this.recent.record(rev, events);
    if (this.synced.size === 0) return;
    if (events.length === 1) {
      this.dispatchOne(rev, events);
      return;
    }
    const matched = new Map<Watcher, MvccEvent[]>();
    // Events without prevKv, made once per event for the watchers that did not ask for it.
    const bare: Array<MvccEvent | undefined> = [];
    for (let i = 0; i < events.length; i++) {
      const ev = events[i]!;
      this.synced.forEachCovering(keyString(ev.kv.key), (w) => {
        if (rev < w.minRevision || !w.accepts(ev)) return;
        let out = ev;
        if (!w.prevKv && ev.prevKv !== undefined) out = bare[i] ??= { type: ev.type, kv: ev.kv };
        const list = matched.get(w);
        if (list === undefined) matched.set(w, [out]);
        else list.push(out);
      });
    }
    for (const [w, evs] of matched) if (!w.stream.offer(w, rev, evs)) this.toUnsynced(w, rev);
  }

  /**
   * A revision of one event (a put, a one-key delete: the common case). Every watcher gets the
   * same list, the revision's own or one copy without prevKv, so the gRPC layer encodes it once.
   */
  private dispatchOne(rev: number, events: readonly MvccEvent[]): void {
    const ev = events[0]!;
    const targets: Watcher[] = [];
    this.synced.forEachCovering(keyString(ev.kv.key), (w) => {
      if (rev >= w.minRevision && w.accepts(ev)) targets.push(w);
    });
    const bytes = sumBytes(events);
    let bare: readonly MvccEvent[] | undefined;
    let bareBytes = 0;
    for (const w of targets) {
      let list = events;
      let size = bytes;
      if (!w.prevKv && ev.prevKv !== undefined) {
        if (bare === undefined) {
          bare = [{ type: ev.type, kv: ev.kv }];
          bareBytes = sumBytes(bare);
        }
        list = bare;
        size = bareBytes;
      }
      if (!w.stream.offer(w, rev, list, size)) this.toUnsynced(w, rev);
    }
  }

  private scheduleCatchUp(): void {
    if (this.catchUpScheduled || this.closed) return;
    this.catchUpScheduled = true;
    setImmediate(() => this.catchUpTurn());
  }

  /**
   * One turn of catching up, over the unsynced watchers in queue order, each at most once: one
   * with pending events gets them if its stream now has room; the others whose stream has room
   * for a batch are served in groups of up to catchUpWatchersPerBatch, each group from one
   * history read (etcd's syncWatchers), at most catchUpBatchesPerTurn reads.
   */
  private catchUpTurn(): void {
    this.catchUpScheduled = false;
    if (this.closed) return;
    let budget = this.limits.catchUpBatchesPerTurn;
    let group: Watcher[] = [];
    for (const w of [...this.unsynced]) {
      if (w.state !== 'unsynced') continue;
      if (w.pending !== undefined) {
        this.deliver(w, w.pending);
        continue;
      }
      if (!w.stream.hasRoomForCatchUp()) continue;
      if (budget === 0) {
        this.scheduleCatchUp();
        return;
      }
      group.push(w);
      if (group.length < this.limits.catchUpWatchersPerBatch) continue;
      budget--;
      if (!this.catchUpGroup(group)) return;
      group = [];
    }
    if (group.length > 0 && !this.catchUpGroup(group)) return;
    // Watchers still behind whose stream has room go on next turn; the others wait for roomFreed.
    for (const w of this.unsynced) {
      if (w.stream.hasRoomForCatchUp()) {
        this.scheduleCatchUp();
        return;
      }
    }
  }

  /**
   * One history batch read for a group of unsynced watchers, from the lowest revision any of them
   * needs, over the smallest key range holding all of theirs; each gets its own events of it.
   * False when the store is closed: the member is stopping (and closes the hub) or swapping in a
   * snapshot's store (replaceStore() schedules catch-up again).
   */
  private catchUpGroup(group: readonly Watcher[]): boolean {
    const compactRev = this.store.compactRevision;
    const live: Watcher[] = [];
    for (const w of group) {
      // etcd cancels a watcher whose next revision lies below the compaction revision.
      if (Math.max(w.minRevision, 1) < compactRev) {
        this.leaveUnsynced(w);
        w.stream.compacted(w, compactRev, new CompactedError().message);
      } else {
        live.push(w);
      }
    }
    if (live.length === 0) return true;
    const rev = this.store.revision;
    let from = Infinity;
    let prevKv = false;
    for (const w of live) {
      from = Math.min(from, w.minRevision);
      prevKv ||= w.prevKv;
    }
    const l = this.limits;
    // From memory when it holds every revision needed (not the compaction revision: see recent.ts).
    let batch = from > compactRev ? this.recent.batch(from, rev, l.catchUpBatchRecords, l.catchUpBatchBytes) : undefined;
    if (batch === undefined) {
      const range = unionRange(live);
      try {
        batch = this.store.history({ key: range.key, rangeEnd: range.rangeEnd, fromRevision: from, toRevision: rev, prevKv, recordsMax: l.catchUpBatchRecords, bytesMax: l.catchUpBatchBytes });
      } catch (e) {
        if (e instanceof StoreClosedError) return false;
        throw e;
      }
    }
    const keys = batch.events.map((ev) => keyString(ev.kv.key));
    // Events without prevKv, made once per event for the watchers that did not ask for it.
    const bare: Array<MvccEvent | undefined> = [];
    // Watchers wanting the same events (same selector and start) share one list.
    const selections = new Map<string, { events: MvccEvent[]; bytes: number }>();
    for (const w of live) {
      const id = `${w.minRevision}:${w.selector}`;
      let sel = selections.get(id);
      if (sel === undefined) {
        const events: MvccEvent[] = [];
        for (let i = 0; i < batch.events.length; i++) {
          const ev = batch.events[i]!;
          if (ev.kv.modRevision < w.minRevision || !w.covers(keys[i]!) || !w.accepts(ev)) continue;
          events.push(!w.prevKv && ev.prevKv !== undefined ? (bare[i] ??= { type: ev.type, kv: ev.kv }) : ev);
        }
        sel = { events, bytes: sumBytes(events) };
        selections.set(id, sel);
      }
      this.deliver(w, { events: sel.events, bytes: sel.bytes, nextRevision: batch.nextRevision });
    }
    return true;
  }

  /**
   * Hands an unsynced watcher its catch-up events. If its stream has no room for them (other
   * watchers of a group filled it), they stay pending with it, to be offered again without
   * being read again. Otherwise it is synced if they reach the current revision, or goes to the
   * back of the queue for the next batch.
   */
  private deliver(w: Watcher, p: PendingEvents): void {
    const rev = this.store.revision;
    // etcd's catch-up responses carry the current revision in their header.
    if (p.events.length > 0 && !w.stream.offer(w, rev, p.events, p.bytes)) {
      w.pending = p;
      return;
    }
    w.pending = undefined;
    if (p.nextRevision > rev) {
      this.toSynced(w);
      w.stream.watcherSynced();
    } else {
      this.toUnsynced(w, Math.max(w.minRevision, p.nextRevision)); // to the back of the queue
    }
  }

  private progressTick(): void {
    const rev = this.store.revision;
    for (const s of this.streams) s.progressTick(rev);
  }
}

/**
 * The smallest [key, rangeEnd) holding every watcher's range, from their latin1 bounds: a single
 * key k is [k, k + "\0"); an open end makes the union open ("\0").
 */
function unionRange(watchers: readonly Watcher[]): { key: Uint8Array; rangeEnd: Uint8Array } {
  let start: string | undefined;
  let end: string | null = '';
  for (const w of watchers) {
    const b = w.bounds;
    if (start === undefined || b.start < start) start = b.start;
    const e = b.single ? `${b.start}\0` : b.end;
    if (end !== null && (e === null || e > end)) end = e;
  }
  return { key: keyBytes(start!), rangeEnd: end === null ? openRangeEnd : keyBytes(end) };
}

const openRangeEnd = new Uint8Array([0]);
