/**
 * End to end against real processes: a 3-member etcd 3.4 cluster (Debian's /usr/bin/etcd) and a
 * 3-member Conclave cluster (`bin/conclave serve`), each on loopback, one after the other (never
 * both at once, so they do not share the cores), driven by the same client and the same load.
 *
 * Client: one `etcd3` Etcd3 client (grpc-js) given all three client URLs; it spreads calls over
 * them, so followers forward proposals and ReadIndex requests to the leader, as in production.
 * Load: --concurrency calls in flight (default 64), --value-bytes values (default 256) on keys
 * drawn at random out of --keys (default 10,000). Every key is written once first (so every get
 * finds a value), then for each op a warm-up of --warmup seconds (default 2) and a measured run
 * of --seconds (default 10):
 *   put    — KV.Put of a random key (a Raft proposal, fsynced on a quorum before the answer);
 *   get    — KV.Range of one random key, linearizable (the etcd3 default: serializable=false);
 *   serget — the same, serializable (answered from the member's own applied state);
 *   txn    — KV.Txn: if the random key's version > 0 (always true), put it (a Raft proposal);
 *   range  — a linearizable KV.Range over RANGE_KEYS (100) consecutive keys from a random one.
 * (--ops picks which, in that order; default put,get.)
 * Both systems run with the same flags: --heartbeat-interval=50 --election-timeout=500 (the
 * test helper's defaults), everything else at its default (snapshot-count 100,000, 2 GiB quota).
 *
 * Printed: per system and op, ops/s and latency percentiles (ms); CPU time per op of the three
 * members together ("srv", from /proc/<pid>/stat) and of the client process ("cli": the cores
 * are shared, so a costlier client leaves less for the members); "other": cores busy with
 * anything else on the machine during the run (should be ≈ 0); the Conclave/etcd ratios; the
 * RSS of each member (VmRSS from /proc/<pid>/status) at the end of the system's run.
 *
 *   npm run bench -- cluster [--seconds S] [--concurrency C] [--value-bytes B] [--keys K]
 *                            [--warmup S] [--systems etcd,conclave] [--ops put,get,serget,txn,range] [--rounds N] [--wait-quiet S]
 * --rounds N runs each system N times, alternating which goes first, and prints each round and
 * the median of every figure over the rounds (a machine shared with other loads drifts);
 * --wait-quiet S waits up to S seconds before each op's warm-up for other loads to stop, and
 * measures an op again (at most 3 runs, the quietest kept) when they took > 0.1 core meanwhile.
 * Set CONCLAVE_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") to profile the members.
 */
import { Etcd3 } from 'etcd3';
import { etcdAvailable, startCluster, type Flavour } from '../test/helpers/processes.ts';
import { alternating, cpuMeter, leaderChanges, median, pad, percentile, QUIET_CORES, ratio, rssMiB, stopCluster, TIMING, waitQuiet } from './lib/measure.ts';

interface Options {
  seconds: number;
  warmup: number;
  concurrency: number;
  valueBytes: number;
  keys: number;
  systems: Flavour[];
  ops: Op[];
  rounds: number;
  /** Before each measured op, wait up to this many seconds for the machine to be idle (0: don't). */
  waitQuiet: number;
}

export type Op = 'put' | 'get' | 'serget' | 'txn' | 'range';
export const OPS: readonly Op[] = ['put', 'get', 'serget', 'txn', 'range'];
/** Keys per `range` op. */
const RANGE_KEYS = 100;

export interface OpResult {
  readonly system: Flavour;
  readonly op: Op;
  readonly ops: number;
  readonly errors: number;
  readonly seconds: number;
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  /** CPU time of all members together, and of this (client) process, per op (µs). */
  readonly memberCpuUs: number;
  readonly clientCpuUs: number;
  /** Cores busy with anything but the members and the client during the run (another load skews the figures). */
  readonly otherCores: number;
}

export interface SystemResult {
  readonly system: Flavour;
  readonly round: number;
  readonly ops: OpResult[];
  readonly rssMiB: number[];
  /** etcd_server_leader_changes_seen_total of each member at the end (1 = just the first election). */
  readonly leaderChanges: number[];
}

/** --wait-quiet: how many times at most a run during which other loads took more than QUIET_CORES is measured. */
const QUIET_ATTEMPTS = 3;

export function parse(args: string[]): Options {
  const o: Options = { seconds: 10, warmup: 2, concurrency: 64, valueBytes: 256, keys: 10_000, systems: ['etcd', 'conclave'], ops: ['put', 'get'], rounds: 1, waitQuiet: 0 };
  for (let i = 0; i < args.length; i++) {
    const v = args[i + 1];
    const num = (): number => {
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0) throw new Error(`bench cluster: ${args[i]} needs a number`);
      i++;
      return n;
    };
    switch (args[i]) {
      case '--seconds': o.seconds = num(); break;
      case '--warmup': o.warmup = num(); break;
      case '--concurrency': o.concurrency = Math.max(1, Math.floor(num())); break;
      case '--value-bytes': o.valueBytes = Math.floor(num()); break;
      case '--rounds': o.rounds = Math.max(1, Math.floor(num())); break;
      case '--wait-quiet': o.waitQuiet = num(); break;
      case '--keys': o.keys = Math.max(1, Math.floor(num())); break;
      case '--systems': {
        const list = (v ?? '').split(',').filter((s) => s !== '');
        for (const s of list) if (s !== 'etcd' && s !== 'conclave') throw new Error(`bench cluster: unknown system ${s}`);
        o.systems = list as Flavour[];
        i++;
        break;
      }
      case '--ops': {
        const list = (v ?? '').split(',').filter((s) => s !== '');
        for (const s of list) if (!OPS.includes(s as Op)) throw new Error(`bench cluster: unknown op ${s}`);
        o.ops = list as Op[];
        i++;
        break;
      }
      default:
        throw new Error(`bench cluster: unknown option ${args[i]}`);
    }
  }
  return o;
}

function keyName(n: number): string {
  return `bench/key-${String(n).padStart(6, '0')}`;
}

/** Runs `concurrency` loops of `call` until `ms` have passed; latencies in ms. */
async function drive(concurrency: number, ms: number, call: () => Promise<unknown>): Promise<{ latencies: Float64Array; errors: number; seconds: number; firstError: unknown }> {
  let latencies = new Float64Array(1 << 16);
  let n = 0;
  let errors = 0;
  let firstError: unknown = undefined;
  const start = performance.now();
  const end = start + ms;
  let last = start;
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      const t0 = performance.now();
      try {
        await call();
      } catch (e) {
        errors++;
        firstError ??= e;
        continue;
      }
      const t1 = performance.now();
      if (n === latencies.length) {
        const grown = new Float64Array(latencies.length * 2);
        grown.set(latencies);
        latencies = grown;
      }
      latencies[n++] = t1 - t0;
      last = t1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { latencies: latencies.slice(0, n).sort(), errors, seconds: (last - start) / 1000, firstError };
}

export async function runSystem(system: Flavour, o: Options, round: number): Promise<SystemResult> {
  const cluster = await startCluster(system, 3, { flags: { ...TIMING } });
  const client = new Etcd3({ hosts: cluster.members.map((m) => m.clientUrl) });
  try {
    const value = Buffer.alloc(o.valueBytes, 'v');
    const randomKey = (): string => keyName(Math.floor(Math.random() * o.keys));
    const put = (): Promise<unknown> => client.put(randomKey()).value(value).exec();
    const get = (): Promise<unknown> => client.get(randomKey()).exec();
    const serget = (): Promise<unknown> => client.get(randomKey()).serializable(true).exec();
    const txn = (): Promise<unknown> => {
      const key = randomKey();
      return client.if(key, 'Version', '>', 0).then(client.put(key).value(value)).commit();
    };
    const range = (): Promise<unknown> => {
      const first = Math.floor(Math.random() * (o.keys - RANGE_KEYS + 1));
      return client.getAll().inRange({ start: keyName(first), end: keyName(first + RANGE_KEYS) }).exec();
    };
    const calls: Record<Op, () => Promise<unknown>> = { put, get, serget, txn, range };

    // Every key once, so gets always find a value.
    let next = 0;
    const fill = async (): Promise<void> => {
      while (next < o.keys) await client.put(keyName(next++)).value(value).exec();
    };
    const t0 = performance.now();
    await Promise.all(Array.from({ length: o.concurrency }, fill));
    console.log(`${system}: wrote ${o.keys} keys in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    const ops: OpResult[] = [];
    for (const op of OPS) {
      if (!o.ops.includes(op)) continue;
      const call = calls[op];
      // With --wait-quiet, a run during which other loads took more than QUIET_CORES is measured
      // again (up to QUIET_ATTEMPTS times; the quietest run is kept).
      let best: OpResult | null = null;
      for (let attempt = 0; attempt < (o.waitQuiet > 0 ? QUIET_ATTEMPTS : 1); attempt++) {
        if (o.waitQuiet > 0 && !(await waitQuiet(cluster, o.waitQuiet))) console.log(`${system} ${op}: the machine did not get quiet within ${o.waitQuiet} s; measuring anyway`);
        if (o.warmup > 0) await drive(o.concurrency, o.warmup * 1000, call);
        const meter = cpuMeter(cluster);
        const r = await drive(o.concurrency, o.seconds * 1000, call);
        const cpu = meter.read();
        if (r.errors > 0) console.log(`${system} ${op}: ${r.errors} errors, first: ${String(r.firstError)}`);
        const result: OpResult = {
          system,
          op,
          ops: r.latencies.length,
          errors: r.errors,
          seconds: r.seconds,
          p50: percentile(r.latencies, 0.5),
          p99: percentile(r.latencies, 0.99),
          p999: percentile(r.latencies, 0.999),
          memberCpuUs: (cpu.memberCpu * 1e6) / r.latencies.length,
          clientCpuUs: (cpu.clientCpu * 1e6) / r.latencies.length,
          otherCores: cpu.otherCpu / r.seconds,
        };
        if (best === null || result.otherCores < best.otherCores) best = result;
        if (result.otherCores <= QUIET_CORES) break;
        if (o.waitQuiet > 0) console.log(`${system} ${op}: other loads took ${result.otherCores.toFixed(2)} cores during the run; measuring again`);
      }
      ops.push(best!);
      const last = ops[ops.length - 1]!;
      console.log(`${system} ${op}: ${(last.ops / last.seconds).toFixed(0)} ops/s, p50 ${last.p50.toFixed(2)} ms, p99 ${last.p99.toFixed(2)} ms`);
    }
    const rss = rssMiB(cluster);
    return { system, round, ops, rssMiB: rss, leaderChanges: await leaderChanges(cluster) };
  } finally {
    client.close();
    await stopCluster(cluster);
  }
}

const HEADER = `${pad('system', 12, true)}${pad('op', 7, true)}${pad('ops/s', 9)}${pad('p50 ms', 9)}${pad('p99 ms', 9)}${pad('p999 ms', 9)}${pad('errors', 8)}${pad('srv µs/op', 11)}${pad('cli µs/op', 11)}${pad('other', 7)}`;

function row(r: OpResult, label: string = r.system): string {
  return `${pad(label, 12, true)}${pad(r.op, 7, true)}${pad((r.ops / r.seconds).toFixed(0), 9)}${pad(r.p50.toFixed(2), 9)}${pad(r.p99.toFixed(2), 9)}${pad(r.p999.toFixed(2), 9)}${pad(String(r.errors), 8)}${pad(r.memberCpuUs.toFixed(0), 11)}${pad(r.clientCpuUs.toFixed(0), 11)}${pad(r.otherCores.toFixed(2), 7)}`;
}

/** Each figure's median over the rounds of one system and op (ops/s as ops over 1 s). */
export function medianOf(runs: OpResult[]): OpResult {
  const m = (f: (r: OpResult) => number): number => median(runs.map(f));
  return {
    system: runs[0]!.system,
    op: runs[0]!.op,
    ops: m((r) => r.ops / r.seconds),
    seconds: 1,
    errors: runs.reduce((n, r) => n + r.errors, 0),
    p50: m((r) => r.p50),
    p99: m((r) => r.p99),
    p999: m((r) => r.p999),
    memberCpuUs: m((r) => r.memberCpuUs),
    clientCpuUs: m((r) => r.clientCpuUs),
    otherCores: m((r) => r.otherCores),
  };
}

function printTable(results: SystemResult[], o: Options): void {
  console.log('');
  console.log(
    `3 members each on loopback, heartbeat ${TIMING['heartbeat-interval']} ms / election ${TIMING['election-timeout']} ms; ` +
      `etcd3 client, ${o.concurrency} in flight, ${o.valueBytes}-byte values, ${o.keys} keys, ${o.seconds} s per op after ${o.warmup} s warm-up` +
      (o.rounds > 1 ? `; ${o.rounds} rounds, alternating which system goes first` : ''),
  );
  if (o.rounds > 1) {
    console.log('Each round:');
    console.log(HEADER.replace('system      ', 'round       '));
    for (const s of results) for (const r of s.ops) console.log(row(r, `${s.round + 1} ${s.system}`));
    console.log('');
    console.log('Median over the rounds:');
  }
  console.log(HEADER);
  const summary = new Map<Flavour, OpResult[]>();
  for (const system of o.systems) {
    const runs = results.filter((s) => s.system === system);
    const ops = o.ops.filter((op) => runs.some((s) => s.ops.some((r) => r.op === op)));
    summary.set(system, ops.map((op) => medianOf(runs.flatMap((s) => s.ops.filter((r) => r.op === op)))));
    for (const r of summary.get(system)!) console.log(row(r));
  }
  const etcd = summary.get('etcd');
  const conclave = summary.get('conclave');
  if (etcd !== undefined && conclave !== undefined) {
    console.log('');
    console.log(`${pad('Conclave/etcd', 15, true)}${pad('ops/s', 9)}${pad('p50', 9)}${pad('p99', 9)}${pad('p999', 9)}${pad('srv CPU/op', 12)}`);
    for (const c of conclave) {
      const e = etcd.find((x) => x.op === c.op);
      if (e === undefined) continue;
      console.log(
        `${pad(c.op, 15, true)}${pad(ratio(c.ops / c.seconds, e.ops / e.seconds), 9)}${pad(ratio(c.p50, e.p50), 9)}${pad(ratio(c.p99, e.p99), 9)}${pad(ratio(c.p999, e.p999), 9)}${pad(ratio(c.memberCpuUs, e.memberCpuUs), 12)}`,
      );
    }
  }
  console.log('');
  console.log(`RSS per member at the end of each system's run (MiB)${o.rounds > 1 ? ', by round' : ''}:`);
  for (const s of results) console.log(`${pad(o.rounds > 1 ? `${s.round + 1} ${s.system}` : s.system, 12, true)}${s.rssMiB.map((r) => r.toFixed(0)).join(' / ')}`);
  console.log('Leader changes seen per member (1 = the first election only):');
  for (const s of results) console.log(`${pad(o.rounds > 1 ? `${s.round + 1} ${s.system}` : s.system, 12, true)}${s.leaderChanges.join(' / ')}`);
}

export default async function benchCluster(args: string[]): Promise<void> {
  const o = parse(args);
  if (o.systems.includes('etcd') && !etcdAvailable()) throw new Error('bench cluster: /usr/bin/etcd and /usr/bin/etcdctl are needed');
  printTable(await alternating(o.systems, o.rounds, (system, round) => runSystem(system, o, round)), o);
}
