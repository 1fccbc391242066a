/**
 * Conclave against a real etcd 3.4 on this machine, everything issue 9 names, in one run: a
 * 3-member etcd cluster (Debian's /usr/bin/etcd) and a 3-member Conclave cluster on loopback,
 * never both at once, driven by the same clients and loads one after the other. Each part starts
 * fresh clusters and runs each system in turn (alternating which goes first between rounds):
 *
 *   ops    — the cluster bench (bench/cluster.ts): put, linearizable get, serializable get,
 *            txn (compare + put) and a 100-key range; etcd3 client, --concurrency in flight,
 *            256-byte values; ops/s and p50/p99/p999 latency;
 *   watch  — the watch bench (bench/watch.ts): 1,000 watchers on 10 streams, 1,000 puts/s;
 *            delivered events/s and delivery latency;
 *   memory — --memory-keys (1,000,000) keys of 256 bytes written into a fresh 3-member cluster
 *            in txns of 100 puts (the memory bench's load, bench/memory.ts); then each
 *            member's VmRSS and its data dir's allocated size on disk;
 *   perf   — `etcdctl check perf --load=m` and `--load=l` (60 s each: 1,000 and 8,000 writes/s
 *            targets from 200 and 500 clients) against a fresh cluster; etcdctl's verdicts.
 *
 * (srv µs/op: CPU time of the three members together per op, etcd's / Conclave's: the cores are
 * shared with the client, so what the members spend limits what the client gets done.)
 * The summary puts each figure beside etcd's with the Conclave/etcd ratio and issue 9's target:
 * ops/s ≥ 1.5× etcd's for put and ≥ 1.2× for the other ops, p99 ≤ etcd's for each, watch
 * events/s ≥ etcd's, RSS per member ≤ etcd's, check perf --load=m PASS on Conclave.
 *
 *   npm run bench -- compare [--parts ops,watch,memory,perf] [--rounds N] [--seconds S]
 *                            [--concurrency C] [--memory-keys N] [--wait-quiet S]
 * --rounds applies to ops and watch (medians over the rounds); --seconds to each op of `ops`.
 */
import { Etcd3 } from 'etcd3';
import { etcdAvailable, etcdctl, startCluster, type Flavour } from '../test/helpers/processes.ts';
import * as cluster from './cluster.ts';
import { alternating, mean, median, pad, ratio, rssMiB, stopCluster, TIMING } from './lib/measure.ts';
import * as memory from './memory.ts';
import * as watch from './watch.ts';

type Part = 'ops' | 'watch' | 'memory' | 'perf';
const PARTS: readonly Part[] = ['ops', 'watch', 'memory', 'perf'];
const SYSTEMS: readonly Flavour[] = ['etcd', 'conclave'];

/** `etcdctl check perf` loads run, and how long etcdctl may take for one (it measures 60 s, then cleans up). */
const PERF_LOADS = ['m', 'l'] as const;
const PERF_TIMEOUT_MS = 300_000;

/** How long the members may take, after the memory load, to all have applied it. */
const CATCH_UP_TIMEOUT_MS = 60_000;

/** Issue 9's targets: Conclave ops/s at least this many times etcd's. */
const THROUGHPUT_TARGET: Record<cluster.Op, number> = { put: 1.5, get: 1.2, serget: 1.2, txn: 1.2, range: 1.2 };

interface Options {
  parts: Part[];
  rounds: number;
  seconds: number;
  concurrency: number;
  memoryKeys: number;
  waitQuiet: number;
}

function parse(args: string[]): Options {
  const o: Options = { parts: [...PARTS], rounds: 1, seconds: 10, concurrency: 64, memoryKeys: 1_000_000, waitQuiet: 0 };
  for (let i = 0; i < args.length; i++) {
    const v = args[i + 1];
    const num = (): number => {
      const n = Number(v);
      if (!Number.isFinite(n) || n < 1) throw new Error(`bench compare: ${args[i]} needs a number ≥ 1`);
      i++;
      return Math.floor(n);
    };
    switch (args[i]) {
      case '--rounds': o.rounds = num(); break;
      case '--seconds': o.seconds = num(); break;
      case '--concurrency': o.concurrency = num(); break;
      case '--memory-keys': o.memoryKeys = num(); break;
      case '--wait-quiet': o.waitQuiet = num(); break;
      case '--parts': {
        const list = (v ?? '').split(',').filter((s) => s !== '');
        for (const p of list) if (!PARTS.includes(p as Part)) throw new Error(`bench compare: unknown part ${p} (${PARTS.join(', ')})`);
        o.parts = list as Part[];
        i++;
        break;
      }
      default:
        throw new Error(`bench compare: unknown option ${args[i]}`);
    }
  }
  return o;
}

interface MemoryResult {
  readonly system: Flavour;
  readonly loadSeconds: number;
  /** Per member, MiB. */
  readonly rss: number[];
  readonly disk: number[];
}

async function measureMemory(system: Flavour, keys: number): Promise<MemoryResult> {
  const o = memory.parse(['--keys', String(keys)]);
  const c = await startCluster(system, 3, { flags: { ...TIMING } });
  const client = new Etcd3({ hosts: c.members.map((m) => m.clientUrl) });
  try {
    const t0 = performance.now();
    await memory.load(client, o);
    const loadSeconds = (performance.now() - t0) / 1000;
    // Every member has applied the load before it is measured: a serializable count on each.
    const deadline = performance.now() + CATCH_UP_TIMEOUT_MS;
    for (const m of c.members) {
      const one = new Etcd3({ hosts: m.clientUrl });
      try {
        for (;;) {
          const n = await one.getAll().prefix('key/').serializable(true).count();
          if (n === keys) break;
          if (performance.now() > deadline) throw new Error(`bench compare: ${system} ${m.name} holds ${n} of ${keys} keys after ${CATCH_UP_TIMEOUT_MS} ms`);
          await new Promise((r) => setTimeout(r, 200));
        }
      } finally {
        one.close();
      }
    }
    await new Promise((r) => setTimeout(r, 1000));
    const rss = rssMiB(c);
    const disk = c.members.map((m) => memory.files(m.dataDir).reduce((s, f) => s + f.bytes, 0) / (1 << 20));
    console.log(`${system}: ${keys.toLocaleString('en-US')} keys in ${loadSeconds.toFixed(1)} s; RSS ${rss.map((r) => r.toFixed(0)).join(' / ')} MiB; disk ${disk.map((d) => d.toFixed(0)).join(' / ')} MiB`);
    return { system, loadSeconds, rss, disk };
  } finally {
    client.close();
    await stopCluster(c);
  }
}

interface PerfResult {
  readonly system: Flavour;
  readonly load: (typeof PERF_LOADS)[number];
  /** etcdctl's verdict lines (e.g. "PASS: Throughput is 992 writes/s"), and the overall PASS / FAIL. */
  readonly lines: string[];
  readonly verdict: string;
}

async function checkPerf(system: Flavour): Promise<PerfResult[]> {
  const results: PerfResult[] = [];
  for (const load of PERF_LOADS) {
    // A fresh cluster for each load, as check perf expects an empty key space under its prefix.
    const c = await startCluster(system, 3, { flags: { ...TIMING } });
    try {
      const r = await Promise.race([
        etcdctl(c.endpoints, ['check', 'perf', `--load=${load}`]),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`etcdctl check perf --load=${load} against ${system} took over ${PERF_TIMEOUT_MS} ms`)), PERF_TIMEOUT_MS).unref()),
      ]);
      // The progress bar redraws with \r; the verdicts are whole lines after it.
      const lines = r.stdout.split(/[\r\n]/).map((l) => l.trim()).filter((l) => /^(PASS|FAIL)|took too long/.test(l));
      const verdict = lines.find((l) => l === 'PASS' || l === 'FAIL') ?? `no verdict (exit ${r.code}: ${r.stderr.trim().split('\n').pop() ?? ''})`;
      const detail = lines.filter((l) => l !== 'PASS' && l !== 'FAIL');
      console.log(`${system} check perf --load=${load}: ${verdict}; ${detail.join('; ')}`);
      results.push({ system, load, lines: detail, verdict });
    } finally {
      await stopCluster(c);
    }
  }
  return results;
}

function verdict(ok: boolean): string {
  return ok ? 'met' : 'MISSED';
}

function printOps(results: cluster.SystemResult[]): void {
  const summary = (system: Flavour, op: cluster.Op): cluster.OpResult =>
    cluster.medianOf(results.filter((s) => s.system === system).flatMap((s) => s.ops.filter((r) => r.op === op)));
  console.log(`${pad('op', 8, true)}${pad('etcd ops/s', 12)}${pad('p50', 7)}${pad('p99', 7)}${pad('p999', 7)}${pad('Conclave ops/s', 16)}${pad('p50', 7)}${pad('p99', 7)}${pad('p999', 7)}${pad('ops ×', 7)}${pad('p99 ×', 7)}${pad('srv µs/op', 11)}  target`);
  for (const op of cluster.OPS) {
    const e = summary('etcd', op);
    const c = summary('conclave', op);
    const throughput = c.ops / c.seconds / (e.ops / e.seconds);
    const ms = (n: number): string => pad(n.toFixed(1), 7);
    console.log(
      `${pad(op, 8, true)}${pad((e.ops / e.seconds).toFixed(0), 12)}${ms(e.p50)}${ms(e.p99)}${ms(e.p999)}${pad((c.ops / c.seconds).toFixed(0), 16)}${ms(c.p50)}${ms(c.p99)}${ms(c.p999)}` +
        `${pad(throughput.toFixed(2), 7)}${pad(ratio(c.p99, e.p99), 7)}${pad(`${e.memberCpuUs.toFixed(0)}/${c.memberCpuUs.toFixed(0)}`, 11)}  ops ≥ ${THROUGHPUT_TARGET[op]}×: ${verdict(throughput >= THROUGHPUT_TARGET[op])}, p99 ≤ etcd's: ${verdict(c.p99 <= e.p99)}`,
    );
  }
}

function printWatch(results: watch.RunResult[]): void {
  const e = watch.medianOf(results.filter((r) => r.system === 'etcd'));
  const c = watch.medianOf(results.filter((r) => r.system === 'conclave'));
  const line = (r: watch.RunResult): string =>
    `${r.eventsPerS.toFixed(0)} events/s, p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms, p999 ${r.p999.toFixed(1)} ms, missing/dup/order ${r.missing}/${r.duplicates}/${r.outOfOrder}`;
  console.log(`watch    etcd:     ${line(e)}`);
  console.log(`         Conclave: ${line(c)}`);
  const faithful = c.missing + c.duplicates + c.outOfOrder === 0;
  console.log(`         events/s ×${ratio(c.eventsPerS, e.eventsPerS)}, p99 ×${ratio(c.p99, e.p99)}  target events/s ≥ etcd's: ${verdict(c.eventsPerS >= e.eventsPerS)}, p99 ≤ etcd's: ${verdict(c.p99 <= e.p99)}, every event once in order: ${verdict(faithful)}`);
}

function printMemory(results: MemoryResult[], keys: number): void {
  const e = results.find((r) => r.system === 'etcd')!;
  const c = results.find((r) => r.system === 'conclave')!;
  const list = (v: number[]): string => `${v.map((x) => x.toFixed(0)).join(' / ')} MiB`;
  console.log(`memory   after ${keys.toLocaleString('en-US')} keys (loaded in ${e.loadSeconds.toFixed(1)} s by etcd, ${c.loadSeconds.toFixed(1)} s by Conclave)`);
  console.log(`         RSS per member:  etcd ${list(e.rss)}, Conclave ${list(c.rss)}; ×${ratio(mean(c.rss), mean(e.rss))}  target ≤ etcd's: ${verdict(mean(c.rss) <= mean(e.rss))}`);
  console.log(`         disk per member: etcd ${list(e.disk)}, Conclave ${list(c.disk)}; ×${ratio(mean(c.disk), mean(e.disk))}`);
}

function printPerf(results: PerfResult[]): void {
  for (const load of PERF_LOADS) {
    for (const system of SYSTEMS) {
      const r = results.find((x) => x.system === system && x.load === load)!;
      console.log(`${pad(system === 'etcd' ? `perf ${load}` : '', 9, true)}${pad(system, 10, true)}${pad(r.verdict, 5, true)} ${r.lines.join('; ')}`);
    }
  }
  const m = results.find((x) => x.system === 'conclave' && x.load === 'm')!;
  console.log(`         target check perf --load=m PASS on Conclave: ${verdict(m.verdict === 'PASS')}`);
}

export default async function benchCompare(args: string[]): Promise<void> {
  const o = parse(args);
  if (!etcdAvailable()) throw new Error('bench compare: /usr/bin/etcd and /usr/bin/etcdctl are needed (Debian: etcd-server, etcd-client)');
  const quiet = o.waitQuiet > 0 ? ['--wait-quiet', String(o.waitQuiet)] : [];
  const opsOptions = cluster.parse(['--ops', cluster.OPS.join(','), '--seconds', String(o.seconds), '--concurrency', String(o.concurrency), ...quiet]);
  const watchOptions = watch.parse(quiet);

  const opsResults = o.parts.includes('ops') ? await alternating(SYSTEMS, o.rounds, (s, round) => cluster.runSystem(s, opsOptions, round)) : [];
  const watchResults = o.parts.includes('watch') ? await alternating(SYSTEMS, o.rounds, (s, round) => watch.runSystem(s, watchOptions, round)) : [];
  const memoryResults = o.parts.includes('memory') ? await alternating(SYSTEMS, 1, (s) => measureMemory(s, o.memoryKeys)) : [];
  const perfResults = o.parts.includes('perf') ? (await alternating(SYSTEMS, 1, checkPerf)).flat() : [];

  console.log('');
  console.log(
    `Conclave vs etcd 3.4, 3 members each on loopback (heartbeat ${TIMING['heartbeat-interval']} ms, election ${TIMING['election-timeout']} ms), one system at a time; ` +
      `latencies in ms${o.rounds > 1 ? `; ops and watch: medians of ${o.rounds} rounds` : ''}`,
  );
  if (opsResults.length > 0) {
    console.log(`ops: etcd3 client, ${opsOptions.concurrency} in flight, ${opsOptions.valueBytes}-byte values over ${opsOptions.keys} keys, ${opsOptions.seconds} s each`);
    printOps(opsResults);
  }
  if (watchResults.length > 0) printWatch(watchResults);
  if (memoryResults.length > 0) printMemory(memoryResults, o.memoryKeys);
  if (perfResults.length > 0) printPerf(perfResults);
  if (opsResults.length > 0) {
    console.log('RSS per member after the ops (MiB): ' + SYSTEMS.map((s) => `${s} ${median(opsResults.filter((r) => r.system === s).flatMap((r) => r.rssMiB)).toFixed(0)}`).join(', '));
  }
}
