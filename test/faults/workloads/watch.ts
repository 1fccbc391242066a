/**
 * Watch workload: writers put and delete a few keys under one prefix (now and then two puts in
 * one Txn, so one revision carries two events), while watchers follow the prefix over raw Watch
 * streams, one member each. A watcher whose stream fails resumes, on the next member, from the
 * revision after the last event it received, as etcd's clients do. After the heal a last put
 * marks the end; every member's full history of the prefix is read back with a watch from the
 * start, and watch-check.ts checks members, watchers and acknowledged writes against it.
 */
import type { Etcd3, IWatchResponse } from 'etcd3';
import { errorText } from '../client.ts';
import { agreeOnHistory, checkAcknowledged, checkWatcher, type AckedWrite, type WatchAnomaly, type WatchedEvent } from './watch-check.ts';
import { clientFor, Counts, memberFor, runWorkers, sleep, type Workload, type WorkloadContext, type WorkloadReport } from './workload.ts';

export const WATCH_LIMITS = {
  writers: 2,
  watchers: 3,
  keys: 5,
  thinkMs: [10, 60] as const,
  /** Pause before a watcher opens a new session after losing one. */
  resumeDelayMs: 200,
  /** How long watchers and history readers may take to reach the end marker after the heal. */
  catchUpMs: 20_000,
} as const;

const PREFIX = 'wa/';
const END_KEY = `${PREFIX}~end`;

function prefixEnd(prefix: string): Buffer {
  const b = Buffer.from(prefix);
  b[b.length - 1]!++;
  return b;
}

export function eventsOf(res: IWatchResponse): WatchedEvent[] {
  return res.events.map((e) => ({
    revision: Number(e.kv.mod_revision),
    type: e.type === 'Delete' ? 'DELETE' : 'PUT',
    key: e.kv.key.toString(),
    value: e.type === 'Delete' ? '' : e.kv.value.toString(),
  }));
}

/**
 * Watches `prefix` on `client` from `startRevision` over a raw Watch stream, handing each
 * response's events to `onEvents`, until `done()` says so after an event, or `stop` resolves,
 * or the stream fails (the promise then rejects with why).
 */
export function watchSession(client: Etcd3, prefix: string, startRevision: number, onEvents: (events: WatchedEvent[]) => void, done: () => boolean, stop: Promise<void>): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    void client.watchClient.watch().then(
      (stream) => {
        let finished = false;
        const finish = (e?: Error): void => {
          if (finished) return;
          finished = true;
          stream.cancel();
          if (e === undefined) resolve();
          else reject(e);
        };
        void stop.then(() => finish());
        stream.on('data', (res) => {
          if (res.canceled) return finish(new Error(`watch canceled: ${res.cancel_reason} (compact revision ${res.compact_revision})`));
          if (res.events.length > 0) onEvents(eventsOf(res));
          if (done()) finish();
        });
        stream.on('error', (e) => finish(e));
        stream.on('end', () => finish(new Error('watch stream ended')));
        stream.write({ create_request: { key: Buffer.from(prefix), range_end: prefixEnd(prefix), start_revision: startRevision } });
      },
      (e: unknown) => reject(e instanceof Error ? e : new Error(String(e))),
    );
  });
}

/**
 * Every event of `prefix` from `from` up to the event at `to` (which must be under the prefix),
 * as `member` serves them; fails if they do not all come within WATCH_LIMITS.catchUpMs.
 */
export async function readHistory(client: Etcd3, prefix: string, from: number, to: number, member: string): Promise<WatchedEvent[]> {
  const events: WatchedEvent[] = [];
  await watchSession(client, prefix, from, (e) => events.push(...e), () => (events.at(-1)?.revision ?? 0) >= to, sleep(WATCH_LIMITS.catchUpMs));
  if ((events.at(-1)?.revision ?? 0) < to) throw new Error(`${member}'s history of ${prefix} did not reach revision ${to} within ${WATCH_LIMITS.catchUpMs} ms`);
  return events;
}

interface Watcher {
  readonly name: string;
  readonly events: WatchedEvent[];
  readonly sessions: string[];
  readonly errors: string[];
}

export class WatchWorkload implements Workload {
  readonly name = 'watch';
  private readonly counts = new Counts();
  private readonly acked: AckedWrite[] = [];
  private readonly watchers: Watcher[] = [];
  private startRevision = 0;
  private endRevision = Infinity;
  private nextValue = 0;
  private stopWatchers: () => void = () => {};
  private watching: Promise<void> = Promise.resolve();

  constructor(private readonly ctx: WorkloadContext) {}

  async run(stopping: () => boolean): Promise<void> {
    const c = this.ctx.cluster;
    const first = await c.client(c.members()[0]!).kv.put({ key: Buffer.from(`${PREFIX}~start`), value: Buffer.from('') });
    this.startRevision = Number(first.header.revision) + 1;
    const stop = new Promise<void>((r) => (this.stopWatchers = r));
    this.watching = Promise.all(Array.from({ length: WATCH_LIMITS.watchers }, (_, i) => this.follow(i, stop))).then(() => undefined);
    await runWorkers(WATCH_LIMITS.writers, stopping, WATCH_LIMITS.thinkMs, this.ctx.rng.fork('watch'), async (w, rng) => {
      const client = clientFor(this.ctx, this.name, w);
      const key = `${PREFIX}${rng.int(0, WATCH_LIMITS.keys - 1)}`;
      const value = `w${this.nextValue++}`;
      this.counts.ops++;
      try {
        const roll = rng.next();
        if (roll < 0.6) {
          const res = await client.kv.put({ key: Buffer.from(key), value: Buffer.from(value) });
          this.acked.push({ revision: Number(res.header.revision), type: 'PUT', key, value });
        } else if (roll < 0.8) {
          const res = await client.kv.deleteRange({ key: Buffer.from(key) });
          if (Number(res.deleted) > 0) this.acked.push({ revision: Number(res.header.revision), type: 'DELETE', key, value: '' });
        } else {
          const other = `${PREFIX}${(Number(key.slice(PREFIX.length)) + 1) % WATCH_LIMITS.keys}`;
          const res = await client.kv.txn({ compare: [], success: [key, other].map((k) => ({ request_put: { key: Buffer.from(k), value: Buffer.from(value) } })), failure: [] });
          for (const k of [key, other]) this.acked.push({ revision: Number(res.header.revision), type: 'PUT', key: k, value });
        }
        this.counts.ok++;
      } catch (e) {
        // A lost write may or may not be in the history; the checks need only acknowledged ones.
        this.counts.error(e);
        this.counts.indeterminate++;
      }
    });
  }

  /** Watcher i: one session after another, on member i, then the next, … until stopped. */
  private async follow(i: number, stop: Promise<void>): Promise<void> {
    const w: Watcher = { name: `w${i}`, events: [], sessions: [], errors: [] };
    this.watchers.push(w);
    let stopped = false;
    void stop.then(() => (stopped = true));
    for (let session = 0; !stopped && !this.reachedEnd(w); session++) {
      const member = memberFor(this.ctx.cluster, i + session);
      const from = w.events.length === 0 ? this.startRevision : w.events.at(-1)!.revision + 1;
      w.sessions.push(member);
      try {
        await watchSession(this.ctx.cluster.client(member, `${this.name}-watchers`), PREFIX, from, (events) => w.events.push(...events), () => this.reachedEnd(w), stop);
      } catch (e) {
        w.errors.push(errorText(e));
        await sleep(WATCH_LIMITS.resumeDelayMs);
      }
    }
  }

  private reachedEnd(w: Watcher): boolean {
    return (w.events.at(-1)?.revision ?? 0) >= this.endRevision;
  }

  /** One member's whole history of the prefix, from the workload's start to the end marker. */
  private history(member: string): Promise<WatchedEvent[]> {
    return readHistory(this.ctx.cluster.client(member), PREFIX, this.startRevision, this.endRevision, member);
  }

  async check(): Promise<WorkloadReport> {
    const c = this.ctx.cluster;
    const anomalies: WatchAnomaly[] = [];
    const end = await c.client(c.members()[0]!).kv.put({ key: Buffer.from(END_KEY), value: Buffer.from('') });
    this.endRevision = Number(end.header.revision);
    const caughtUp = Promise.race([this.watching.then(() => true), sleep(WATCH_LIMITS.catchUpMs).then(() => false)]);
    const allCaughtUp = await caughtUp;
    this.stopWatchers();
    await this.watching;
    const histories = new Map<string, WatchedEvent[]>();
    for (const m of c.members()) {
      try {
        histories.set(m, await this.history(m));
      } catch (e) {
        anomalies.push({ kind: 'history unreadable', details: errorText(e) });
      }
    }
    const agreed = agreeOnHistory(histories);
    anomalies.push(...agreed.anomalies);
    const history = agreed.history.filter((e) => e.revision <= this.endRevision);
    if (!allCaughtUp) {
      for (const w of this.watchers.filter((x) => !this.reachedEnd(x))) {
        anomalies.push({ kind: 'watch stalled', details: `watcher ${w.name} got to revision ${w.events.at(-1)?.revision ?? 'none'} of ${this.endRevision} within ${WATCH_LIMITS.catchUpMs} ms after the heal (sessions on ${w.sessions.join(', ')}; last errors: ${w.errors.slice(-3).join(' | ')})` });
      }
    }
    for (const w of this.watchers) anomalies.push(...checkWatcher({ name: w.name, startRevision: this.startRevision, events: w.events, sessions: w.sessions }, history));
    anomalies.push(...checkAcknowledged(this.acked, history));
    const resumptions = this.watchers.reduce((n, w) => n + w.sessions.length - 1, 0);
    const events = this.watchers.reduce((n, w) => n + w.events.length, 0);
    return this.counts.report(this.name, anomalies, [`${history.length} events in the history, ${events} delivered to ${this.watchers.length} watchers, ${resumptions} resumptions`]);
  }
}
