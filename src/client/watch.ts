/**
 * A watcher: the events of a key, prefix or range as an async iterable, that survives the loss
 * of the member it watches through.
 *
 * Each watcher has its own Watch stream. The watcher remembers the next revision it owes the
 * consumer: after events, the last event's revision + 1; after a progress notification, the
 * notified revision + 1; for a watch "from now", the revision it was created at + 1. When the
 * stream fails (connection lost, member stopped or without a leader) it opens a new one on
 * another member, starting at that revision, and drops any event below it: no event is lost or
 * delivered twice. A start revision that was compacted ends the watcher with CompactedError.
 *
 * Streams are opened with etcd's `hasleader` metadata, so a member that loses its leader ends
 * the stream ("no leader") instead of leaving the watcher silent on a minority side.
 */
import { num, type Int64 } from '../api/etcd/convert.ts';
import { Status } from '../api/grpc/status.ts';
import { CancelledError, ClientClosedError, CompactedError, EtcdError, errorFromStatus, WatchCanceledError } from './errors.ts';
import { fromKeyValue, keyRange, type Bytes, type KeySelector, type KeyValue, type PbHeaderIn, type PbKeyValueIn } from './kv.ts';
import { backoffMs, judge, method, type Rpc } from './rpc.ts';
import type { Call, CallSink, Endpoint } from './transport.ts';

export type WatchFilter = 'noPut' | 'noDelete';

export interface WatchOptions extends KeySelector {
  /** First revision to deliver (default: changes after the watch is created). */
  startRevision?: number;
  /** Also deliver each event's previous key-value. */
  prevKv?: boolean;
  filters?: readonly WatchFilter[];
  /** Ask the server for periodic progress notifications (they advance the resume point). */
  progressNotify?: boolean;
}

export interface WatchEvent {
  type: 'put' | 'delete';
  kv: KeyValue;
  prevKv?: KeyValue;
}

interface PbEventIn {
  type: number;
  kv: PbKeyValueIn | null;
  prev_kv: PbKeyValueIn | null;
}

interface PbWatchResponseIn {
  header: PbHeaderIn | null;
  watch_id: Int64;
  created: boolean;
  canceled: boolean;
  compact_revision: Int64;
  cancel_reason: string;
  fragment: boolean;
  events: PbEventIn[];
}

const WATCH = method('etcdserverpb.Watch', 'Watch');
const FILTER_NUMBERS: Record<WatchFilter, number> = { noPut: 0, noDelete: 1 };

function fromEvent(e: PbEventIn): WatchEvent {
  const event: WatchEvent = { type: e.type === 1 ? 'delete' : 'put', kv: fromKeyValue(e.kv!) };
  if (e.prev_kv) event.prevKv = fromKeyValue(e.prev_kv);
  return event;
}

/**
 * The error for a watch the server canceled: a known condition as its class (a transient one,
 * such as "no leader", makes the watcher move to another member), anything else ends the
 * watcher with WatchCanceledError.
 */
function canceled(reason: string): EtcdError {
  const mapped = errorFromStatus(Status.CANCELLED, reason);
  if (mapped.constructor !== EtcdError && mapped.constructor !== CancelledError) return mapped;
  return new WatchCanceledError(reason === '' ? 'watch canceled by the server' : reason, Status.CANCELLED);
}

/** Why a stream ended, and on which endpoint. */
class StreamEnded extends Error {
  constructor(
    readonly error: EtcdError,
    readonly endpoint: Endpoint | undefined,
  ) {
    super(error.message);
  }
}

export class Watcher implements AsyncIterable<WatchEvent> {
  /** Resolves when the first stream is set up (the watch is live); rejects if it never is. */
  readonly created: Promise<void>;
  private resolveCreated!: () => void;
  private rejectCreated!: (e: Error) => void;

  /** The next revision owed to the consumer; 0 until a watch "from now" is created. */
  private nextRevision: number;
  private readonly queue: WatchEvent[] = [];
  private head = 0;
  private wake: (() => void) | null = null;
  private failure: Error | null = null;
  private closed = false;
  private call: Call | null = null;
  private paused = false;
  private readonly request: object;

  constructor(
    private readonly rpc: Rpc,
    key: Bytes,
    options: WatchOptions = {},
  ) {
    this.created = new Promise<void>((resolve, reject) => {
      this.resolveCreated = resolve;
      this.rejectCreated = reject;
    });
    // Callers that only iterate need not handle `created`.
    this.created.catch(() => {});
    this.nextRevision = options.startRevision ?? 0;
    this.request = {
      ...keyRange(key, options),
      progress_notify: options.progressNotify === true,
      filters: (options.filters ?? []).map((f) => FILTER_NUMBERS[f]),
      prev_kv: options.prevKv === true,
      fragment: true,
    };
    void this.run();
  }

  /** The URL of the member currently streaming this watch (undefined between streams). */
  get endpoint(): string | undefined {
    return this.call?.endpointUrl;
  }

  /** The last revision whose events were all delivered (or skipped by filters). */
  get revision(): number {
    return Math.max(0, this.nextRevision - 1);
  }

  /**
   * Asks the member for a progress notification (etcd ≥ 3.4): once it arrives, `revision` is
   * the member's current revision if no event is pending. Ignored between streams.
   */
  requestProgress(): void {
    this.call?.send(this.rpc.encode(WATCH, { progress_request: {} }));
  }

  /** Stops the watch; iteration ends after the events already buffered. Iterate a watcher once. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.call?.cancel();
    this.rejectCreated(new ClientClosedError('watcher closed'));
    this.signal();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<WatchEvent> {
    try {
      for (;;) {
        if (this.head < this.queue.length) {
          const event = this.queue[this.head]!;
          this.queue[this.head++] = undefined as unknown as WatchEvent;
          if (this.head === this.queue.length) {
            this.queue.length = 0;
            this.head = 0;
          }
          if (this.paused && this.queue.length - this.head <= this.rpc.limits.watchBufferEventsMax / 2) {
            this.paused = false;
            this.call?.resume();
          }
          yield event;
          continue;
        }
        if (this.failure !== null) throw this.failure;
        if (this.closed) return;
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
    } finally {
      // Leaving the loop early (break, throw) ends the watch.
      this.close();
    }
  }

  private signal(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private fail(error: Error): void {
    this.failure = error;
    this.rejectCreated(error);
    this.closed = true;
    this.call?.cancel();
    this.signal();
  }

  private async run(): Promise<void> {
    let avoid: Endpoint | undefined;
    for (let attempt = 0; !this.closed; attempt++) {
      let error: unknown;
      try {
        await this.stream(avoid, () => {
          attempt = 0;
        });
      } catch (e) {
        error = e;
      }
      this.call = null;
      this.paused = false;
      if (this.closed) return;
      const ended = error instanceof StreamEnded ? error : undefined;
      const cause = ended?.error ?? error;
      const retry = cause instanceof EtcdError && !(cause instanceof CompactedError) && !(cause instanceof ClientClosedError) ? judge(cause, 'idempotent', false) : undefined;
      if (retry?.verdict !== 'retry') {
        this.fail(cause instanceof Error ? cause : new Error(String(cause)));
        return;
      }
      if (retry.endpointFault) ended?.endpoint?.failed();
      avoid = ended?.endpoint;
      try {
        await this.rpc.pause(backoffMs(attempt, this.rpc.limits), undefined);
      } catch (e) {
        this.fail(e as Error);
        return;
      }
    }
  }

  /** One stream: create the watch and deliver until the stream ends; always throws why. */
  private async stream(avoid: Endpoint | undefined, onCreated: () => void): Promise<never> {
    let fragments: PbEventIn[] = [];
    let endpoint: Endpoint | undefined;
    // The first reason wins (a cancel that follows it reports CancelledError too).
    let endStream!: (e: EtcdError) => void;
    const ended = new Promise<never>((_, reject) => (endStream = (e) => reject(new StreamEnded(e, endpoint))));
    const sink: CallSink = {
      message: (data) => {
        let res: PbWatchResponseIn;
        try {
          res = WATCH.response.decode(data) as unknown as PbWatchResponseIn;
        } catch (e) {
          endStream(errorFromStatus(Status.INTERNAL, `undecodable watch response: ${(e as Error).message}`));
          this.call?.cancel();
          return;
        }
        const revision = num(res.header?.revision);
        if (res.canceled) {
          const compactRevision = num(res.compact_revision);
          endStream(compactRevision > 0 ? new CompactedError('etcdserver: mvcc: required revision has been compacted', Status.OUT_OF_RANGE, compactRevision) : canceled(res.cancel_reason));
          this.call?.cancel();
          return;
        }
        if (res.created) {
          if (this.nextRevision === 0) this.nextRevision = revision + 1;
          onCreated();
          this.resolveCreated();
        }
        const events = res.events ?? [];
        if (res.fragment) {
          fragments.push(...events);
          return;
        }
        const all = fragments.length > 0 ? [...fragments, ...events] : events;
        fragments = [];
        if (all.length === 0) {
          // A progress notification: everything up to `revision` has been sent.
          if (!res.created && revision + 1 > this.nextRevision) this.nextRevision = revision + 1;
          return;
        }
        this.deliver(all.map(fromEvent));
      },
      end: (error) => endStream(error ?? errorFromStatus(Status.UNAVAILABLE, 'watch stream ended by the server')),
    };
    const handle = await this.rpc.openStream(WATCH, sink, avoid, { hasleader: 'true' });
    endpoint = handle.endpoint;
    this.call = handle.call;
    if (this.closed) handle.call.cancel();
    handle.call.send(this.rpc.encode(WATCH, { create_request: { ...this.request, start_revision: this.nextRevision } }));
    return ended;
  }

  private deliver(events: WatchEvent[]): void {
    let last = this.nextRevision - 1;
    for (const e of events) {
      // A resumed stream may repeat what was delivered; revisions only grow.
      if (e.kv.modRevision < this.nextRevision) continue;
      this.queue.push(e);
      last = e.kv.modRevision;
    }
    this.nextRevision = last + 1;
    if (!this.paused && this.queue.length - this.head > this.rpc.limits.watchBufferEventsMax) {
      this.paused = true;
      this.call?.pause();
    }
    this.signal();
  }
}
