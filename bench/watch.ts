/**
 * Watch fan-out end to end, against real processes: a 3-member etcd 3.4 cluster (Debian's
 * /usr/bin/etcd) and a 3-member Conclave cluster, each on loopback, one after the other, driven
 * by the same client and the same load.
 *
 * Watchers: --watchers (default 1,000) watchers of one prefix, spread evenly over --streams
 * (default 10) gRPC Watch streams, each stream on its own HTTP/2 connection; stream i goes to
 * member i mod 3, as clients of a real deployment spread over its endpoints. Every member serves
 * its watch streams from its own applied state.
 * Writer: --rate (default 1,000) puts per second, paced open loop (a put is sent when it is due,
 * whether or not earlier ones were answered, at most --max-in-flight unanswered), for --warmup
 * (default 2) then --seconds (default 20) seconds, round-robin over the three members (followers
 * forward them to the leader). Each put writes a new key under the prefix with a --value-bytes
 * (default 256) value carrying the put's sequence number and its send time (performance.now()).
 * Both systems run with --heartbeat-interval=50 --election-timeout=500, the rest at defaults.
 *
 * Client: a bare HTTP/2 gRPC client (bench/lib/h2-client.ts) in this one process, which reads
 * from each WatchResponse only the watch id and each event's mod_revision and value; the
 * Etcd3 client would do the same over one stream per client, at a far higher cost per event,
 * leaving less of the shared cores to the members.
 *
 * Figures (the measured window starts with the first put after the warm-up):
 *   puts/s    — measured puts answered OK, over the time from the window's start to the last answer;
 *   events/s  — measured events delivered, over the time from the window's start to the last
 *               delivery (a system that falls behind stretches its window);
 *   p50/p99/p999 — delivery latency of every delivered measured event: receipt time − send time
 *               of its put, both from this process's performance.now();
 *   missing   — (watcher, put) pairs never delivered once the writer stopped and the watchers
 *               went --drain (default 10) seconds without an event, warm-up puts included;
 *   dup       — events a watcher received more than once; `order`: events at or below a
 *               revision the watcher already had (out of order). Both must be 0;
 *   also printed: put latency, and delivery latency by the member serving the stream;
 *   srv/cli µs/ev — CPU time of the three members together and of this client per delivered
 *               event; cli busy — the client's event-loop utilisation (near 100%: the client,
 *               not the members, limits delivery); other — cores busy with other loads.
 *
 *   npm run bench -- watch [--watchers N] [--streams N] [--rate R] [--seconds S] [--warmup S]
 *                          [--value-bytes B] [--max-in-flight N] [--drain S]
 *                          [--systems etcd,conclave] [--rounds N] [--wait-quiet S]
 * --rounds N runs each system N times, alternating which goes first, and prints each round and
 * the median of every figure; --wait-quiet S waits up to S seconds for other loads on the
 * machine to stop before each run. Set CONCLAVE_NODE_ARGS (e.g. "--cpu-prof
 * --cpu-prof-dir=/tmp/prof") to profile the Conclave members.
 */
import type http2 from 'node:http2';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import protobuf from 'protobufjs';
import { etcdType } from '../src/api/etcd/proto/load.ts';
import { etcdAvailable, startCluster, type Flavour, type ProcessCluster } from '../test/helpers/processes.ts';
import { bidiCall, connectH2, unaryCall, type BidiCall } from './lib/h2-client.ts';
import { alternating, cpuMeter, leaderChanges, median, pad, percentile, ratio, stopCluster, TIMING, waitQuiet } from './lib/measure.ts';

interface Options {
  watchers: number;
  streams: number;
  rate: number;
  seconds: number;
  warmup: number;
  valueBytes: number;
  maxInFlight: number;
  drain: number;
  systems: Flavour[];
  rounds: number;
  waitQuiet: number;
}

export interface RunResult {
  readonly system: Flavour;
  readonly round: number;
  readonly putsPerS: number;
  readonly putErrors: number;
  readonly eventsPerS: number;
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly missing: number;
  readonly duplicates: number;
  readonly outOfOrder: number;
  readonly memberCpuUsPerEvent: number;
  readonly clientCpuUsPerEvent: number;
  readonly clientBusy: number;
  readonly otherCores: number;
  readonly leaderChanges: number[];
}

const PREFIX = 'bench/watch/';
/** The prefix's range end: its last byte plus one. */
const PREFIX_END = 'bench/watch0';
/** Bytes of a value that carry the put: sequence number (u32 at 0) and send time (f64 at 4). */
const VALUE_HEADER_BYTES = 12;
/** How long the watchers of all streams may take to be created. */
const CREATE_TIMEOUT_MS = 30_000;
/** The writer's pacing tick (ms): every tick sends the puts due by then. */
const PACE_TICK_MS = 1;

const WatchRequest = etcdType('etcdserverpb.WatchRequest');
const PutRequest = etcdType('etcdserverpb.PutRequest');
const WATCH_PATH = '/etcdserverpb.Watch/Watch';
const PUT_PATH = '/etcdserverpb.KV/Put';

export function parse(args: string[]): Options {
  const o: Options = {
    watchers: 1000,
    streams: 10,
    rate: 1000,
    seconds: 20,
    warmup: 2,
    valueBytes: 256,
    maxInFlight: 1000,
    drain: 10,
    systems: ['etcd', 'conclave'],
    rounds: 1,
    waitQuiet: 0,
  };
  for (let i = 0; i < args.length; i++) {
    const v = args[i + 1];
    const num = (min: number): number => {
      const n = Number(v);
      if (!Number.isFinite(n) || n < min) throw new Error(`bench watch: ${args[i]} needs a number ≥ ${min}`);
      i++;
      return n;
    };
    switch (args[i]) {
      case '--watchers': o.watchers = Math.floor(num(1)); break;
      case '--streams': o.streams = Math.floor(num(1)); break;
      case '--rate': o.rate = num(1); break;
      case '--seconds': o.seconds = num(1); break;
      case '--warmup': o.warmup = num(0); break;
      case '--value-bytes': o.valueBytes = Math.floor(num(VALUE_HEADER_BYTES)); break;
      case '--max-in-flight': o.maxInFlight = Math.floor(num(1)); break;
      case '--drain': o.drain = num(1); break;
      case '--rounds': o.rounds = Math.floor(num(1)); break;
      case '--wait-quiet': o.waitQuiet = num(0); break;
      case '--systems': {
        const list = (v ?? '').split(',').filter((s) => s !== '');
        for (const s of list) if (s !== 'etcd' && s !== 'conclave') throw new Error(`bench watch: unknown system ${s}`);
        o.systems = list as Flavour[];
        i++;
        break;
      }
      default:
        throw new Error(`bench watch: unknown option ${args[i]}`);
    }
  }
  if (o.streams > o.watchers) throw new Error('bench watch: --streams must not exceed --watchers');
  return o;
}

/**
 * What the watchers received: each (watcher, put) pair at most once, each watcher's revisions
 * rising, and the latency of every measured event.
 */
class Deliveries {
  /** seen[w * puts + seq]: watcher w has put seq. */
  private readonly seen: Uint8Array;
  private readonly lastRevision: Float64Array;
  /** Latencies (ms) of delivered measured events, in arrival order, and the member each came from. */
  readonly latencies: Float32Array;
  readonly latencyMembers: Uint8Array;
  latencyCount = 0;
  /** The member serving each watcher's stream. */
  readonly memberOf: Uint8Array;
  delivered = 0;
  duplicates = 0;
  outOfOrder = 0;
  /** Events that are not one of this run's puts (wrong size or sequence number). */
  foreign = 0;
  /** performance.now() of the last delivery, and of the last delivery of a measured put. */
  lastDeliveryAt = 0;
  lastMeasuredAt = 0;

  constructor(
    readonly watchers: number,
    readonly puts: number,
    /** Puts from this sequence number on are measured (the ones before are the warm-up). */
    readonly firstMeasured: number,
    private readonly valueBytes: number,
  ) {
    this.seen = new Uint8Array(watchers * puts);
    this.lastRevision = new Float64Array(watchers);
    this.latencies = new Float32Array(watchers * (puts - firstMeasured));
    this.latencyMembers = new Uint8Array(this.latencies.length);
    this.memberOf = new Uint8Array(watchers);
  }

  get expected(): number {
    return this.watchers * this.puts;
  }

  /** One event for watcher w at revision rev whose value is buf[at, at + length). */
  event(w: number, rev: number, buf: Buffer, at: number, length: number, now: number): void {
    if (rev <= this.lastRevision[w]!) this.outOfOrder++;
    else this.lastRevision[w] = rev;
    if (length !== this.valueBytes) {
      this.foreign++;
      return;
    }
    const seq = buf.readUInt32LE(at);
    if (seq >= this.puts) {
      this.foreign++;
      return;
    }
    const i = w * this.puts + seq;
    if (this.seen[i] !== 0) {
      this.duplicates++;
      return;
    }
    this.seen[i] = 1;
    this.delivered++;
    this.lastDeliveryAt = now;
    if (seq >= this.firstMeasured) {
      this.latencyMembers[this.latencyCount] = this.memberOf[w]!;
      this.latencies[this.latencyCount++] = now - buf.readDoubleLE(at + 4);
      this.lastMeasuredAt = now;
    }
  }
}

/**
 * One watch stream: creates its watchers and feeds their events to `deliveries`. Reads the
 * WatchResponse fields it needs with protobufjs's Reader, without decoding whole messages.
 */
class WatchClient {
  private readonly call: BidiCall;
  /** Server watch id → global watcher index, filled as `created` answers come back in request order. */
  private readonly watcherOf = new Map<number, number>();
  private created = 0;
  canceled = 0;
  private onAllCreated: (() => void) | null = null;
  private readonly reader = protobuf.Reader.create(Buffer.alloc(0));
  // Scratch for one message's events (a message's fields may come in any order).
  private revs = new Float64Array(64);
  private valueAt = new Int32Array(64);
  private valueLen = new Int32Array(64);

  constructor(
    session: http2.ClientHttp2Session,
    member: number,
    private readonly firstWatcher: number,
    private readonly count: number,
    private readonly deliveries: Deliveries,
  ) {
    deliveries.memberOf.fill(member, firstWatcher, firstWatcher + count);
    this.call = bidiCall(session, WATCH_PATH, (m) => this.message(m));
    this.call.done.catch(() => {});
  }

  /** Sends every create request at once and resolves when all were answered. */
  createWatchers(): Promise<void> {
    const request = WatchRequest.encode({ create_request: { key: Buffer.from(PREFIX), range_end: Buffer.from(PREFIX_END) } }).finish();
    for (let i = 0; i < this.count; i++) this.call.write(request);
    return new Promise((resolve) => {
      this.onAllCreated = resolve;
      if (this.created === this.count) resolve();
    });
  }

  close(): void {
    this.call.cancel();
  }

  private message(m: Buffer): void {
    const now = performance.now();
    // One reader for every message of the stream (one allocation less per message).
    const r = this.reader;
    r.buf = m;
    r.pos = 0;
    r.len = m.length;
    let watchId = 0;
    let created = false;
    let canceled = false;
    let n = 0;
    while (r.pos < r.len) {
      const tag = r.uint32();
      switch (tag >>> 3) {
        case 2: watchId = r.int32(); break;
        case 3: created = r.bool(); break;
        case 4: canceled = r.bool(); break;
        case 11: {
          if (n === this.revs.length) this.grow();
          const end = r.uint32() + r.pos;
          this.readEvent(r, end, n++);
          r.pos = end;
          break;
        }
        default: r.skipType(tag & 7);
      }
    }
    if (created) {
      if (canceled) throw new Error(`bench watch: a watcher could not be created (${m.toString('latin1')})`);
      this.watcherOf.set(watchId, this.firstWatcher + this.created++);
      if (this.created === this.count) this.onAllCreated?.();
      return;
    }
    if (canceled) {
      this.canceled++;
      return;
    }
    if (n === 0) return; // progress notification
    const w = this.watcherOf.get(watchId);
    if (w === undefined) throw new Error(`bench watch: events for unknown watch id ${watchId}`);
    for (let i = 0; i < n; i++) this.deliveries.event(w, this.revs[i]!, m, this.valueAt[i]!, this.valueLen[i]!, now);
  }

  /** An mvccpb.Event ending at `end`: its kv's mod_revision and where its value lies. */
  private readEvent(r: protobuf.Reader, end: number, i: number): void {
    this.revs[i] = 0;
    this.valueAt[i] = 0;
    this.valueLen[i] = -1;
    while (r.pos < end) {
      const tag = r.uint32();
      if (tag >>> 3 !== 2) {
        r.skipType(tag & 7);
        continue;
      }
      const kvEnd = r.uint32() + r.pos;
      while (r.pos < kvEnd) {
        const t = r.uint32();
        switch (t >>> 3) {
          case 3: this.revs[i] = r.uint32(); break;
          case 5: {
            const len = r.uint32();
            this.valueAt[i] = r.pos;
            this.valueLen[i] = len;
            r.pos += len;
            break;
          }
          default: r.skipType(t & 7);
        }
      }
    }
  }

  private grow(): void {
    const n = this.revs.length * 2;
    const revs = new Float64Array(n);
    revs.set(this.revs);
    const at = new Int32Array(n);
    at.set(this.valueAt);
    const len = new Int32Array(n);
    len.set(this.valueLen);
    this.revs = revs;
    this.valueAt = at;
    this.valueLen = len;
  }
}

function keyOf(seq: number): Buffer {
  return Buffer.from(`${PREFIX}${String(seq).padStart(9, '0')}`);
}

interface WriterResult {
  /** Answered OK puts from firstMeasured on, and when the last one was answered. */
  measuredOk: number;
  /** Latencies (ms) of the measured puts answered OK. */
  putLatencies: Float64Array;
  lastMeasuredAnswerAt: number;
  errors: number;
  firstError: unknown;
  /** performance.now() when put firstMeasured was sent. */
  measuredStart: number;
}

/**
 * Sends puts 0 … total−1 at `rate` per second, paced open loop, round-robin over the sessions;
 * onMeasuredStart runs as put firstMeasured leaves.
 */
async function write(sessions: http2.ClientHttp2Session[], total: number, firstMeasured: number, o: Options, onMeasuredStart: () => void): Promise<WriterResult> {
  const res: WriterResult = { measuredOk: 0, putLatencies: new Float64Array(total - firstMeasured), lastMeasuredAnswerAt: 0, errors: 0, firstError: undefined, measuredStart: NaN };
  let inFlight = 0;
  let sent = 0;
  let allAnswered: (() => void) | null = null;
  const send = (seq: number): void => {
    const value = Buffer.alloc(o.valueBytes, 0x76);
    value.writeUInt32LE(seq, 0);
    const at = performance.now();
    value.writeDoubleLE(at, 4);
    const request = PutRequest.encode({ key: keyOf(seq), value }).finish();
    if (seq === firstMeasured) {
      res.measuredStart = at;
      onMeasuredStart();
    }
    inFlight++;
    unaryCall(sessions[seq % sessions.length]!, PUT_PATH, request).then(
      () => {
        if (seq >= firstMeasured) {
          res.lastMeasuredAnswerAt = performance.now();
          res.putLatencies[res.measuredOk++] = res.lastMeasuredAnswerAt - at;
        }
      },
      (e: unknown) => {
        res.errors++;
        res.firstError ??= e;
      },
    ).finally(() => {
      inFlight--;
      if (inFlight === 0 && sent === total) allAnswered?.();
    });
  };
  const start = performance.now();
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) * o.rate) / 1000) + 1);
    while (sent < due && inFlight < o.maxInFlight) send(sent++);
    await new Promise((r) => setTimeout(r, PACE_TICK_MS));
  }
  if (inFlight > 0) await new Promise<void>((r) => (allAnswered = r));
  return res;
}

/**
 * Waits until every event arrived or none came for `quietS` seconds; onProgress runs whenever
 * events arrived since the last look (so that what it samples ends with the last delivery).
 */
async function drain(d: Deliveries, quietS: number, onProgress: () => void): Promise<void> {
  let seen = -1;
  for (;;) {
    if (d.delivered !== seen) {
      seen = d.delivered;
      onProgress();
    }
    if (d.delivered === d.expected) return;
    if (performance.now() - d.lastDeliveryAt > quietS * 1000) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** etcd_server_is_leader of each member. */
async function isLeader(cluster: ProcessCluster): Promise<boolean[]> {
  return Promise.all(
    cluster.members.map(async (m) => /^etcd_server_is_leader 1$/m.test(await (await fetch(`${m.clientUrl}/metrics`)).text())),
  );
}

/** Stream i's member: round-robin, as a client spreading its connections over the endpoints. */
function memberOfStream(i: number, members: number): number {
  return i % members;
}

export async function runSystem(system: Flavour, o: Options, round: number): Promise<RunResult> {
  const cluster: ProcessCluster = await startCluster(system, 3, { flags: { ...TIMING } });
  const sessions: http2.ClientHttp2Session[] = [];
  const clients: WatchClient[] = [];
  try {
    const warmupPuts = Math.round(o.warmup * o.rate);
    const totalPuts = warmupPuts + Math.round(o.seconds * o.rate);
    const deliveries = new Deliveries(o.watchers, totalPuts, warmupPuts, o.valueBytes);
    const writers = await Promise.all(cluster.members.map((m) => connectH2(m.clientUrl)));
    sessions.push(...writers);
    let first = 0;
    for (let s = 0; s < o.streams; s++) {
      const member = memberOfStream(s, cluster.members.length);
      const session = await connectH2(cluster.members[member]!.clientUrl);
      sessions.push(session);
      const count = Math.floor(((s + 1) * o.watchers) / o.streams) - first;
      clients.push(new WatchClient(session, member, first, count, deliveries));
      first += count;
    }
    const t0 = performance.now();
    await Promise.race([
      Promise.all(clients.map((c) => c.createWatchers())),
      new Promise((_r, reject) => setTimeout(() => reject(new Error(`bench watch: watchers not created within ${CREATE_TIMEOUT_MS} ms`)), CREATE_TIMEOUT_MS).unref()),
    ]);
    console.log(`${system}: ${o.watchers} watchers created on ${o.streams} streams in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    if (o.waitQuiet > 0 && !(await waitQuiet(cluster, o.waitQuiet))) console.log(`${system}: the machine did not get quiet within ${o.waitQuiet} s; measuring anyway`);

    let elu0 = performance.eventLoopUtilization();
    let meter = cpuMeter(cluster);
    const w = await write(writers, totalPuts, warmupPuts, o, () => {
      elu0 = performance.eventLoopUtilization();
      meter = cpuMeter(cluster);
    });
    // CPU and event-loop use from the window's start to the last delivery.
    let cpu = meter.read();
    let elu: EventLoopUtilization = performance.eventLoopUtilization(elu0);
    await drain(deliveries, o.drain, () => {
      cpu = meter.read();
      elu = performance.eventLoopUtilization(elu0);
    });
    const seconds = (Math.max(deliveries.lastMeasuredAt, w.lastMeasuredAnswerAt) - w.measuredStart) / 1000;
    if (w.errors > 0) console.log(`${system}: ${w.errors} puts failed, first: ${String(w.firstError)}`);
    const canceled = clients.reduce((n, c) => n + c.canceled, 0);
    if (canceled > 0) console.log(`${system}: ${canceled} watchers were canceled by the server`);
    if (deliveries.foreign > 0) console.log(`${system}: ${deliveries.foreign} events that are not this run's puts`);

    const puts = w.putLatencies.subarray(0, w.measuredOk).sort();
    const leaders = await isLeader(cluster);
    const byMember = cluster.members.map((_, i) => {
      const mine = new Float32Array(deliveries.latencyCount);
      let n = 0;
      for (let j = 0; j < deliveries.latencyCount; j++) if (deliveries.latencyMembers[j] === i) mine[n++] = deliveries.latencies[j]!;
      const sorted = mine.subarray(0, n).sort();
      return `m${i}${leaders[i] ? ' (leader)' : ''} ${percentile(sorted, 0.5).toFixed(0)}/${percentile(sorted, 0.99).toFixed(0)}`;
    });
    console.log(`${system}: put latency p50/p99 ${percentile(puts, 0.5).toFixed(2)}/${percentile(puts, 0.99).toFixed(2)} ms; delivery p50/p99 by the member serving the stream (ms): ${byMember.join(', ')}`);
    const lat = deliveries.latencies.subarray(0, deliveries.latencyCount).sort();
    const measuredEvents = deliveries.latencyCount;
    const result: RunResult = {
      system,
      round,
      putsPerS: w.measuredOk / ((w.lastMeasuredAnswerAt - w.measuredStart) / 1000),
      putErrors: w.errors,
      eventsPerS: measuredEvents / ((deliveries.lastMeasuredAt - w.measuredStart) / 1000),
      p50: percentile(lat, 0.5),
      p99: percentile(lat, 0.99),
      p999: percentile(lat, 0.999),
      missing: deliveries.expected - deliveries.delivered,
      duplicates: deliveries.duplicates,
      outOfOrder: deliveries.outOfOrder,
      memberCpuUsPerEvent: (cpu.memberCpu * 1e6) / measuredEvents,
      clientCpuUsPerEvent: (cpu.clientCpu * 1e6) / measuredEvents,
      clientBusy: elu.utilization,
      otherCores: cpu.otherCpu / seconds,
      leaderChanges: await leaderChanges(cluster),
    };
    console.log(`${system}: ${row(result)}`);
    return result;
  } finally {
    for (const c of clients) c.close();
    for (const s of sessions) s.close();
    await stopCluster(cluster);
  }
}

const HEADER =
  `${pad('system', 12, true)}${pad('puts/s', 8)}${pad('events/s', 10)}${pad('p50 ms', 9)}${pad('p99 ms', 9)}${pad('p999 ms', 9)}` +
  `${pad('missing', 9)}${pad('dup', 5)}${pad('order', 6)}${pad('put err', 8)}${pad('srv µs/ev', 10)}${pad('cli µs/ev', 10)}${pad('cli busy', 9)}${pad('other', 7)}`;

function row(r: RunResult, label: string = r.system): string {
  return (
    `${pad(label, 12, true)}${pad(r.putsPerS.toFixed(0), 8)}${pad(r.eventsPerS.toFixed(0), 10)}${pad(r.p50.toFixed(2), 9)}${pad(r.p99.toFixed(2), 9)}${pad(r.p999.toFixed(2), 9)}` +
    `${pad(String(r.missing), 9)}${pad(String(r.duplicates), 5)}${pad(String(r.outOfOrder), 6)}${pad(String(r.putErrors), 8)}` +
    `${pad(r.memberCpuUsPerEvent.toFixed(2), 10)}${pad(r.clientCpuUsPerEvent.toFixed(2), 10)}${pad(`${(r.clientBusy * 100).toFixed(0)}%`, 9)}${pad(r.otherCores.toFixed(2), 7)}`
  );
}

/** Each figure's median over the rounds of one system; the counts of failures are summed. */
export function medianOf(runs: RunResult[]): RunResult {
  const m = (f: (r: RunResult) => number): number => median(runs.map(f));
  const sum = (f: (r: RunResult) => number): number => runs.reduce((n, r) => n + f(r), 0);
  return {
    system: runs[0]!.system,
    round: -1,
    putsPerS: m((r) => r.putsPerS),
    putErrors: sum((r) => r.putErrors),
    eventsPerS: m((r) => r.eventsPerS),
    p50: m((r) => r.p50),
    p99: m((r) => r.p99),
    p999: m((r) => r.p999),
    missing: sum((r) => r.missing),
    duplicates: sum((r) => r.duplicates),
    outOfOrder: sum((r) => r.outOfOrder),
    memberCpuUsPerEvent: m((r) => r.memberCpuUsPerEvent),
    clientCpuUsPerEvent: m((r) => r.clientCpuUsPerEvent),
    clientBusy: m((r) => r.clientBusy),
    otherCores: m((r) => r.otherCores),
    leaderChanges: runs[0]!.leaderChanges,
  };
}

function printTable(results: RunResult[], o: Options): void {
  console.log('');
  console.log(
    `3 members each on loopback, heartbeat ${TIMING['heartbeat-interval']} ms / election ${TIMING['election-timeout']} ms; ` +
      `${o.watchers} watchers of one prefix on ${o.streams} streams (one HTTP/2 connection each, stream i on member i mod 3); ` +
      `${o.rate} puts/s of ${o.valueBytes}-byte values round-robin over the members, ${o.seconds} s measured after ${o.warmup} s warm-up` +
      (o.rounds > 1 ? `; ${o.rounds} rounds, alternating which system goes first` : ''),
  );
  if (o.rounds > 1) {
    console.log('Each round:');
    console.log(HEADER.replace('system      ', 'round       '));
    for (const r of results) console.log(row(r, `${r.round + 1} ${r.system}`));
    console.log('');
    console.log('Median over the rounds (missing, dup, order and put errors: summed):');
  }
  console.log(HEADER);
  const summary = new Map<Flavour, RunResult>();
  for (const system of o.systems) {
    const runs = results.filter((r) => r.system === system);
    if (runs.length === 0) continue;
    summary.set(system, medianOf(runs));
    console.log(row(summary.get(system)!));
  }
  const e = summary.get('etcd');
  const c = summary.get('conclave');
  if (e !== undefined && c !== undefined) {
    console.log('');
    console.log(`${pad('Conclave/etcd', 15, true)}${pad('events/s', 10)}${pad('p50', 7)}${pad('p99', 7)}${pad('p999', 7)}${pad('srv CPU/ev', 12)}`);
    console.log(
      `${pad('', 15, true)}${pad(ratio(c.eventsPerS, e.eventsPerS), 10)}${pad(ratio(c.p50, e.p50), 7)}${pad(ratio(c.p99, e.p99), 7)}${pad(ratio(c.p999, e.p999), 7)}${pad(ratio(c.memberCpuUsPerEvent, e.memberCpuUsPerEvent), 12)}`,
    );
  }
  console.log('Leader changes seen per member (1 = the first election only):');
  for (const r of results) console.log(`${pad(o.rounds > 1 ? `${r.round + 1} ${r.system}` : r.system, 12, true)}${r.leaderChanges.join(' / ')}`);
}

export default async function benchWatch(args: string[]): Promise<void> {
  const o = parse(args);
  if (o.systems.includes('etcd') && !etcdAvailable()) throw new Error('bench watch: /usr/bin/etcd and /usr/bin/etcdctl are needed');
  printTable(await alternating(o.systems, o.rounds, (system, round) => runSystem(system, o, round)), o);
}
