/**
 * One client watch stream (etcd's watchStream behind one gRPC Watch call): its watchers, their
 * ids, and the outbox the gRPC writer drains. Messages leave in the order they were queued, so
 * a watcher's `created` comes before its events, its events come in revision order, and a
 * progress notification comes after every event it vouches for.
 */
import { eventBytes } from '../mvcc/index.ts';
import type { MvccEvent } from '../mvcc/index.ts';
import {
  DuplicateWatchIdError,
  InvalidWatchArgumentError,
  StreamBackloggedError,
  StreamClosedError,
  TooManyWatchersError,
  WatchError,
} from './errors.ts';
import type { WatchLimits } from './limits.ts';
import { Outbox } from './outbox.ts';
import { invalidWatchId } from './types.ts';
import type { WatchMessage, WatcherSpec } from './types.ts';
import { Watcher, watchedRange } from './watcher.ts';

/** What a stream needs from its hub. */
export interface StreamHost {
  /** The store's current revision. */
  readonly revision: number;
  /** Takes a new watcher into the synced or the unsynced group. */
  attach(w: Watcher): void;
  /** Forgets a watcher (canceled, or its stream closed). */
  detach(w: Watcher): void;
  /** The consumer freed room: unsynced watchers of the stream may catch up. */
  roomFreed(s: WatchStream): void;
  streamClosed(s: WatchStream): void;
}

export interface StreamBuffer {
  readonly messages: number;
  readonly events: number;
  readonly bytes: number;
}

function isCount(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

export class WatchStream implements AsyncIterable<WatchMessage> {
  private readonly watchers = new Map<number, Watcher>();
  private readonly outbox: Outbox;
  private nextId = 0;
  /** A requestProgress() waits for every watcher of the stream to be synced. */
  private progressWanted = false;

  constructor(
    private readonly host: StreamHost,
    private readonly limits: WatchLimits,
  ) {
    this.outbox = new Outbox(() => {
      this.flushProgress();
      this.host.roomFreed(this);
    });
  }

  /**
   * Creates a watcher and queues its `created` message; returns its id. A request that cannot be
   * served queues a `rejected` message instead and returns −1: either way the answers to create
   * requests leave in request order, which etcd clients rely on to match them. Throws only when
   * the stream is closed, or backlogged: its client sends create requests without reading the
   * answers (the gRPC layer should then stop reading requests, or end the call).
   */
  watch(spec: WatcherSpec): number {
    if (this.outbox.closed) throw new StreamClosedError();
    if (this.outbox.control >= this.limits.streamControlMessagesMax) throw new StreamBackloggedError();
    try {
      return this.create(spec);
    } catch (e) {
      if (!(e instanceof WatchError)) throw e;
      this.reject(e);
      return invalidWatchId;
    }
  }

  /**
   * Answers a create request the front end refused (e.g. not permitted) with a `rejected`
   * message, in order with the answers to other create requests.
   */
  reject(error: WatchError): void {
    if (this.outbox.closed) throw new StreamClosedError();
    if (this.outbox.control >= this.limits.streamControlMessagesMax) throw new StreamBackloggedError();
    this.outbox.push({ type: 'rejected', watchId: invalidWatchId, revision: this.host.revision, error });
  }

  private create(spec: WatcherSpec): number {
    const start = spec.startRevision ?? 0;
    if (!isCount(start)) throw new InvalidWatchArgumentError(`start revision ${start}`);
    const requested = spec.watchId ?? 0;
    if (!isCount(requested)) throw new InvalidWatchArgumentError(`watch id ${requested}`);
    const range = watchedRange(spec);
    if (this.watchers.size >= this.limits.watchersPerStreamMax) throw new TooManyWatchersError(this.limits.watchersPerStreamMax);
    let id = requested;
    if (id === 0) {
      while (this.watchers.has(this.nextId)) this.nextId++;
      id = this.nextId++;
    } else if (this.watchers.has(id)) {
      throw new DuplicateWatchIdError();
    }
    const rev = this.host.revision;
    const w = new Watcher(id, this, spec, range, rev);
    this.watchers.set(id, w);
    this.outbox.push({ type: 'created', watchId: id, revision: rev });
    this.host.attach(w);
    return id;
  }

  /** Cancels a watcher and queues its `canceled` message; false if the stream has no such watcher. */
  cancel(watchId: number): boolean {
    const w = this.watchers.get(watchId);
    if (w === undefined) return false;
    this.forget(w);
    this.host.detach(w);
    this.outbox.push({ type: 'canceled', watchId, revision: this.host.revision, compactRevision: 0, reason: '' });
    this.flushProgress();
    return true;
  }

  /**
   * Asks for one progress notification (watchId −1) with the current revision, sent once every
   * watcher of the stream is synced, so that it never overtakes an event (etcd ≥ 3.5; like etcd,
   * a pending request is retried whenever the client takes a message). A stream without
   * watchers gets none, as in etcd; requests made while one is pending are merged.
   */
  requestProgress(): void {
    if (this.outbox.closed) return;
    this.progressWanted = true;
    this.flushProgress();
  }

  /** Ends the stream: cancels its watchers silently and drops undelivered messages. */
  close(): void {
    if (this.outbox.closed) return;
    for (const w of this.watchers.values()) {
      w.state = 'canceled';
      this.host.detach(w);
    }
    this.watchers.clear();
    this.outbox.close();
    this.host.streamClosed(this);
  }

  get closed(): boolean {
    return this.outbox.closed;
  }

  /** The next queued message, if any. */
  poll(): WatchMessage | undefined {
    return this.outbox.poll();
  }

  /** The next message, waiting for one; done when the stream is closed. One call at a time. */
  next(): Promise<IteratorResult<WatchMessage, undefined>> {
    return this.outbox.next();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<WatchMessage> {
    for (;;) {
      const r = await this.outbox.next();
      if (r.done === true) return;
      yield r.value;
    }
  }

  /** What the stream holds undelivered. */
  get buffered(): StreamBuffer {
    return { messages: this.outbox.length, events: this.outbox.events, bytes: this.outbox.bytes };
  }

  // ---- used by the hub ----

  /**
   * Queues a watcher's events, of one revision (a synced watcher's commit) or several (a catch-up
   * batch), if they fit, or if the stream holds no events: a revision is never split, however
   * large. False: no room, the watcher must catch up later.
   */
  offer(w: Watcher, revision: number, events: readonly MvccEvent[], bytes: number = sumBytes(events)): boolean {
    const o = this.outbox;
    const fits = o.events === 0 || (o.events + events.length <= this.limits.streamBufferEventsMax && o.bytes + bytes <= this.limits.streamBufferBytesMax);
    if (!fits) return false;
    this.pushEvents(w, revision, events, bytes);
    return true;
  }

  /** Whether a whole catch-up batch fits, so that reading one is not wasted. */
  hasRoomForCatchUp(): boolean {
    const o = this.outbox;
    return (
      !o.closed &&
      o.events + this.limits.catchUpBatchRecords <= this.limits.streamBufferEventsMax &&
      o.bytes + this.limits.catchUpBatchBytes <= this.limits.streamBufferBytesMax
    );
  }

  /** A watcher of this stream joined the synced group. */
  watcherSynced(): void {
    this.flushProgress();
  }

  /** The hub dropped a watcher whose next revision was compacted: tell the client. */
  compacted(w: Watcher, compactRevision: number, reason: string): void {
    this.forget(w);
    this.outbox.push({ type: 'canceled', watchId: w.id, revision: this.host.revision, compactRevision, reason });
    this.flushProgress();
  }

  /** The periodic progress tick: idle synced watchers that asked for it hear the revision. */
  progressTick(revision: number): void {
    for (const w of this.watchers.values()) {
      if (w.progressNotify && !w.active && w.canVouchFor(revision) && this.outbox.control < this.limits.streamControlMessagesMax) {
        this.outbox.push({ type: 'progress', watchId: w.id, revision });
      }
      w.active = false;
    }
  }

  private pushEvents(w: Watcher, revision: number, events: readonly MvccEvent[], bytes: number): void {
    w.active = true;
    this.outbox.push({ type: 'events', watchId: w.id, revision, events, bytes, fragment: w.fragment });
  }

  private forget(w: Watcher): void {
    w.state = 'canceled';
    this.watchers.delete(w.id);
  }

  private flushProgress(): void {
    if (!this.progressWanted) return;
    if (this.watchers.size === 0) {
      this.progressWanted = false;
      return;
    }
    // Control messages are bounded: a flood of requests waits (merged) until the client reads.
    if (this.outbox.control >= this.limits.streamControlMessagesMax) return;
    const rev = this.host.revision;
    for (const w of this.watchers.values()) if (!w.canVouchFor(rev)) return;
    this.progressWanted = false;
    this.outbox.push({ type: 'progress', watchId: invalidWatchId, revision: rev });
  }
}

/** The size of events as eventBytes counts it. */
export function sumBytes(events: readonly MvccEvent[]): number {
  let n = 0;
  for (const ev of events) n += eventBytes(ev);
  return n;
}
