/**
 * Records watchers on raw gRPC Watch streams (grpc-js over our own protos), keeping every
 * WatchResponse as it arrived, so that watch-history.ts can check order, gaps, duplicates and
 * the grouping of events into responses.
 *
 * A RecordedWatcher lives across sessions: each create request starts one, and a watcher that
 * loses its stream (or is canceled and re-created) resumes at the revision after the last one its
 * sessions spoke for (its last event or progress notification), as etcd clients do. A WatchStream
 * is one bidi call to one member carrying several watchers; create answers are matched to the
 * requests in order, as etcd clients match them.
 */
import * as grpc from '@grpc/grpc-js';
import type { Type } from 'protobufjs';
import { etcdService } from '../../src/api/etcd/proto/load.ts';
import { sessionCoverage, type RecordedEvent, type RecordedKv, type RecordedResponse, type WatchSession, type WatchSpec, type WatcherRecord } from './watch-history.ts';

const watchMethod = (() => {
  const m = etcdService('etcdserverpb.Watch').methods['Watch']!;
  m.resolve();
  return { path: '/etcdserverpb.Watch/Watch', req: m.resolvedRequestType!, res: m.resolvedResponseType! };
})();

interface PbKv {
  key: Buffer;
  create_revision: string;
  mod_revision: string;
  version: string;
  value: Buffer;
  lease: string;
}

interface PbWatchResponse {
  header: { revision: string } | null;
  watch_id: string;
  created: boolean;
  canceled: boolean;
  compact_revision: string;
  cancel_reason: string;
  fragment: boolean;
  events: Array<{ type: 'PUT' | 'DELETE'; kv: PbKv | null; prev_kv: PbKv | null }>;
}

const serialize = (t: Type) => (o: object): Buffer => Buffer.from(t.encode(t.fromObject(o)).finish());
const deserialize = (t: Type) => (b: Buffer): PbWatchResponse => t.toObject(t.decode(b), { longs: String, enums: String, defaults: true }) as PbWatchResponse;

function kvOf(kv: PbKv): RecordedKv {
  return {
    key: kv.key.toString('latin1'),
    value: kv.value.toString('latin1'),
    createRevision: Number(kv.create_revision),
    modRevision: Number(kv.mod_revision),
    version: Number(kv.version),
    lease: kv.lease,
  };
}

function recorded(r: PbWatchResponse): RecordedResponse {
  const events = r.events.map((e): RecordedEvent => {
    const kv = kvOf(e.kv ?? { key: Buffer.alloc(0), create_revision: '0', mod_revision: '0', version: '0', value: Buffer.alloc(0), lease: '0' });
    return e.prev_kv === null ? { type: e.type, kv } : { type: e.type, kv, prevKv: kvOf(e.prev_kv) };
  });
  return {
    watchId: Number(r.watch_id),
    headerRevision: Number(r.header?.revision ?? 0),
    created: r.created,
    canceled: r.canceled,
    compactRevision: Number(r.compact_revision),
    cancelReason: r.cancel_reason,
    fragment: r.fragment,
    events,
  };
}

/** Channel options: reconnect quickly to a member that was restarted. */
export const RECORDER_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1_000,
};

interface Session {
  readonly startRevision: number;
  readonly responses: RecordedResponse[];
  readonly where: string;
}

export class RecordedWatcher {
  private readonly sessions: Session[] = [];

  /** initialStart: the first session's start_revision (0 = from now). */
  constructor(
    readonly name: string,
    readonly spec: WatchSpec,
    private readonly initialStart: number,
  ) {}

  /** The revision the next session starts at: after everything the created sessions spoke for. */
  nextStart(): number {
    const through = this.through();
    return through === undefined ? this.initialStart : through + 1;
  }

  /** The revision through which the watcher has everything, once a session was created. */
  through(): number | undefined {
    let through: number | undefined;
    for (const s of this.sessions) {
      const cov = sessionCoverage(s);
      if (cov !== undefined) through = cov.through;
    }
    return through;
  }

  /** Starts a session; responses go to it until the next one starts. */
  begin(where: string): Session {
    const s: Session = { startRevision: this.nextStart(), responses: [], where };
    this.sessions.push(s);
    return s;
  }

  record(): WatcherRecord {
    // A session whose stream was lost before `created` came delivered nothing: leave it out.
    const sessions: WatchSession[] = this.sessions.filter((s) => s.responses.length > 0);
    return { name: this.name, spec: this.spec, sessions };
  }
}

interface Attached {
  readonly watcher: RecordedWatcher;
  readonly session: Session;
}

/** One Watch call to one member, carrying several watchers. */
export class WatchStream {
  private readonly call: grpc.ClientDuplexStream<object, PbWatchResponse>;
  private readonly pendingCreates: Attached[] = [];
  /** Watchers with a live watch id on the stream. */
  private readonly active = new Map<number, Attached>();
  /** Watchers being canceled: no longer vouched for by stream-wide progress notifications. */
  private readonly canceling = new Map<number, { attached: Attached; done: () => void }>();
  private ended = false;
  private resolveFinished!: () => void;
  /** Resolves when the call is over, by either side. */
  readonly finished: Promise<void> = new Promise((r) => (this.resolveFinished = r));
  /** Protocol violations the recorder itself sees (answers for unknown watch ids). */
  readonly strays: string[] = [];

  constructor(
    readonly where: string,
    client: grpc.Client,
    watchers: readonly RecordedWatcher[],
  ) {
    this.call = client.makeBidiStreamRequest(watchMethod.path, serialize(watchMethod.req), deserialize(watchMethod.res), new grpc.Metadata(), {});
    this.call.on('data', (r: PbWatchResponse) => this.onResponse(recorded(r)));
    this.call.on('error', () => this.end());
    this.call.on('end', () => this.end());
    for (const w of watchers) this.create(w);
  }

  get closed(): boolean {
    return this.ended;
  }

  /** Sends a create request for w, starting its next session. */
  create(w: RecordedWatcher): void {
    if (this.ended) return;
    const attached = { watcher: w, session: w.begin(this.where) };
    this.pendingCreates.push(attached);
    const s = w.spec;
    this.send({
      create_request: {
        key: Buffer.from(s.key, 'latin1'),
        range_end: s.rangeEnd === undefined ? Buffer.alloc(0) : Buffer.from(s.rangeEnd, 'latin1'),
        start_revision: attached.session.startRevision,
        filters: s.filters ?? [],
        prev_kv: s.prevKv === true,
      },
    });
  }

  /**
   * Cancels w's watcher, waits for the answer, and creates it again from where it stands. False
   * if w is not live here, or the stream ended first; a cancel left unanswered for answerTimeoutMs
   * is recorded as a stray and the stream closed.
   */
  async recreate(w: RecordedWatcher, answerTimeoutMs: number): Promise<boolean> {
    const entry = [...this.active].find(([, a]) => a.watcher === w);
    if (entry === undefined || this.ended) return false;
    const [id, attached] = entry;
    this.active.delete(id);
    const answered = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), answerTimeoutMs);
      this.canceling.set(id, {
        attached,
        done: () => {
          clearTimeout(timer);
          resolve(true);
        },
      });
      this.send({ cancel_request: { watch_id: id } });
    });
    if (!answered) {
      this.strays.push(`${this.where}: no answer to the cancel of watch ${id} within ${answerTimeoutMs} ms`);
      this.close();
    }
    if (this.ended) return false;
    this.create(w);
    return true;
  }

  /** Watchers live on this stream. */
  watchers(): RecordedWatcher[] {
    return [...this.active.values(), ...this.pendingCreates].map((a) => a.watcher);
  }

  /** Stops reading for ms: the server's buffers for this stream fill up and its watchers fall behind. */
  stall(ms: number): void {
    if (this.ended) return;
    this.call.pause();
    setTimeout(() => this.call.resume(), ms).unref();
  }

  requestProgress(): void {
    this.send({ progress_request: {} });
  }

  /** Ends the call from the client side; nothing arriving later is recorded. */
  close(): void {
    if (this.ended) return;
    this.end();
    this.call.cancel();
  }

  private send(req: object): void {
    if (!this.ended) this.call.write(req);
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    for (const { done } of this.canceling.values()) done();
    this.canceling.clear();
    this.resolveFinished();
  }

  private onResponse(r: RecordedResponse): void {
    if (this.ended) return;
    if (r.created) {
      const a = this.pendingCreates.shift();
      if (a === undefined) {
        this.strays.push(`${this.where}: created response for watch ${r.watchId} without a pending create`);
        return;
      }
      a.session.responses.push(r);
      if (!r.canceled) this.active.set(r.watchId, a);
      return;
    }
    if (r.watchId === -1) {
      // A stream-wide progress notification speaks for every watcher created and not being canceled.
      for (const a of this.active.values()) a.session.responses.push(r);
      return;
    }
    const a = this.active.get(r.watchId);
    const c = this.canceling.get(r.watchId);
    const target = a ?? c?.attached;
    if (target === undefined) {
      this.strays.push(`${this.where}: response for unknown watch ${r.watchId}`);
      return;
    }
    target.session.responses.push(r);
    if (r.canceled) {
      this.active.delete(r.watchId);
      this.canceling.delete(r.watchId);
      c?.done();
    }
  }
}
