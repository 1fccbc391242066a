/**
 * `conclave bench put|get|watch`: a load generator in the spirit of etcd's benchmark tool.
 * --clients workers (each with its own client, so its own connections) share --total requests,
 * paced to --rate per second overall when given; a progress bar runs on a terminal, and a table
 * summarizes throughput, latency percentiles and errors.
 *
 * watch: --clients watchers on the key prefix, one writer putting --total keys; an operation is
 * one event delivered to one watcher, its latency from the put's start to the delivery.
 */
import { Argument, Command, Option } from 'commander';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '../client/index.ts';
import { clientOptions, fail, UsageError, withGlobalOptions, type GlobalOptions } from './client-options.ts';
import { print, toJson } from './output.ts';
import { ProgressBar } from './progress.ts';
import { boxTable } from './table.ts';

export const BENCH_DEFAULTS = {
  clients: 8,
  total: 10_000,
  valueSize: 8,
  keySpace: 1_000,
  keyPrefix: 'bench/',
} as const;

export const BENCH_LIMITS = {
  /** How long a watch benchmark waits for its last events after the last put. */
  watchDrainMs: 10_000,
} as const;

interface BenchOpts extends GlobalOptions {
  clients: string;
  total: string;
  rate: string;
  valueSize: string;
  keySpace: string;
  keyPrefix: string;
  consistency: string;
}

export interface BenchSummary {
  operation: string;
  clients: number;
  total: number;
  errors: number;
  seconds: number;
  opsPerSecond: number;
  /** Latency percentiles in milliseconds. */
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  /** The first error text seen, if any. */
  firstError?: string;
}

function positive(text: string, name: string, allowZero = false): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1)) throw new UsageError(`--${name} must be a ${allowZero ? 'non-negative' : 'positive'} integer, got ${JSON.stringify(text)}`);
  return n;
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function summarize(operation: string, clients: number, latencies: number[], errors: number, seconds: number, firstError: string | undefined): BenchSummary {
  latencies.sort((a, b) => a - b);
  const total = latencies.length + errors;
  const s: BenchSummary = {
    operation,
    clients,
    total,
    errors,
    seconds,
    opsPerSecond: seconds > 0 ? latencies.length / seconds : 0,
    p50: percentile(latencies, 50),
    p90: percentile(latencies, 90),
    p99: percentile(latencies, 99),
    p999: percentile(latencies, 99.9),
  };
  if (firstError !== undefined) s.firstError = firstError;
  return s;
}

const ms = (x: number): string => `${x.toFixed(3)}ms`;

export function summaryTable(s: BenchSummary): string {
  return boxTable(
    ['OPERATION', 'CLIENTS', 'TOTAL', 'ERRORS', 'SECONDS', 'OPS/S', 'P50', 'P90', 'P99', 'P99.9'],
    [[s.operation, String(s.clients), String(s.total), String(s.errors), s.seconds.toFixed(3), s.opsPerSecond.toFixed(1), ms(s.p50), ms(s.p90), ms(s.p99), ms(s.p999)]],
  );
}

/** Runs `total` calls of `work` over the clients, paced by `rate` (0: as fast as they go). */
async function runPaced(clients: readonly Client[], total: number, rate: number, onDone: () => void, work: (client: Client, i: number) => Promise<void>): Promise<{ latencies: number[]; errors: number; firstError?: string }> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let next = 0;
  const started = performance.now();
  await Promise.all(
    clients.map(async (client) => {
      for (let i = next++; i < total; i = next++) {
        if (rate > 0) {
          const due = started + (i * 1000) / rate - performance.now();
          if (due > 0) await sleep(due);
        }
        const t0 = performance.now();
        try {
          await work(client, i);
          latencies.push(performance.now() - t0);
        } catch (e) {
          errors++;
          firstError ??= (e as Error).message;
        }
        onDone();
      }
    }),
  );
  return firstError === undefined ? { latencies, errors } : { latencies, errors, firstError };
}

function keyOf(o: BenchOpts, i: number): string {
  return `${o.keyPrefix}${String(i % positive(o.keySpace, 'key-space')).padStart(8, '0')}`;
}

async function benchKv(operation: 'put' | 'get', clients: readonly Client[], o: BenchOpts, progress: ProgressBar): Promise<BenchSummary> {
  const total = positive(o.total, 'total');
  const value = 'x'.repeat(positive(o.valueSize, 'value-size', true));
  if (operation === 'get') await clients[0]!.put(keyOf(o, 0), value);
  progress.begin(operation, total);
  const t0 = performance.now();
  const r = await runPaced(clients, total, positive(o.rate, 'rate', true), () => progress.advance(1), async (client, i) => {
    if (operation === 'put') await client.put(keyOf(o, i), value);
    else await client.get(keyOf(o, 0), { serializable: o.consistency === 's' });
  });
  const seconds = (performance.now() - t0) / 1000;
  progress.end();
  return summarize(operation, clients.length, r.latencies, r.errors, seconds, r.firstError);
}

async function benchWatch(clients: readonly Client[], writer: Client, o: BenchOpts, progress: ProgressBar): Promise<BenchSummary> {
  const total = positive(o.total, 'total');
  const value = 'x'.repeat(positive(o.valueSize, 'value-size', true));
  const prefix = `${o.keyPrefix}watch-${process.pid}-${Date.now()}/`;
  const putStarted = new Map<string, number>();
  const latencies: number[] = [];
  const watchers = clients.map((c) => c.watch(prefix, { prefix: true }));
  await Promise.all(watchers.map((w) => w.created));
  const expected = total * watchers.length;
  progress.begin('watch', expected);
  const t0 = performance.now();
  const consumers = watchers.map(async (w) => {
    let seen = 0;
    for await (const e of w) {
      const at = putStarted.get(e.kv.key.toString('utf8'));
      if (at !== undefined) latencies.push(performance.now() - at);
      progress.advance(1);
      if (++seen === total) break;
    }
  });
  const puts = await runPaced([writer], total, positive(o.rate, 'rate', true), () => {}, async (client, i) => {
    const key = `${prefix}${String(i).padStart(8, '0')}`;
    putStarted.set(key, performance.now());
    await client.put(key, value);
  });
  await Promise.race([Promise.all(consumers), sleep(BENCH_LIMITS.watchDrainMs)]);
  for (const w of watchers) w.close();
  const seconds = (performance.now() - t0) / 1000;
  progress.end();
  const missing = expected - latencies.length;
  await writer.delete(prefix, { prefix: true }).catch(() => {});
  return summarize('watch', clients.length, latencies, missing, seconds, puts.firstError ?? (missing > 0 ? `${missing} events not delivered` : undefined));
}

export function benchCommand(): Command {
  const cmd = new Command('bench')
    .description('Benchmarks puts, gets or watch event delivery, with a progress bar and a summary of throughput and latency percentiles')
    .addArgument(new Argument('<operation>', 'put, get or watch').choices(['put', 'get', 'watch']))
    .option('--clients <n>', 'concurrent clients (watch: watchers)', String(BENCH_DEFAULTS.clients))
    .option('--total <n>', 'total requests (watch: puts)', String(BENCH_DEFAULTS.total))
    .option('--rate <r>', 'maximum requests per second overall (0: unlimited)', '0')
    .option('--value-size <bytes>', 'value size of puts', String(BENCH_DEFAULTS.valueSize))
    .option('--key-space <n>', 'distinct keys put (put)', String(BENCH_DEFAULTS.keySpace))
    .option('--key-prefix <prefix>', 'prefix of the keys used', BENCH_DEFAULTS.keyPrefix)
    .addOption(new Option('--consistency <l|s>', 'linearizable (l) or serializable (s) gets').choices(['l', 's']).default('l'));
  return withGlobalOptions(cmd).action(async (operation: string, o: BenchOpts) => {
    const clients: Client[] = [];
    try {
      const n = positive(o.clients, 'clients');
      for (let i = 0; i < n; i++) clients.push(new Client(clientOptions(o)));
      const progress = new ProgressBar(process.stderr, (done, total) => `${done}/${total} ops`);
      let summary: BenchSummary;
      if (operation === 'watch') {
        const writer = new Client(clientOptions(o));
        clients.push(writer);
        summary = await benchWatch(clients.slice(0, n), writer, o, progress);
      } else {
        summary = await benchKv(operation as 'put' | 'get', clients, o, progress);
      }
      if (o.writeOut === 'json') print(`${toJson({ ...summary })}\n`);
      else print(summaryTable(summary));
      if (summary.firstError !== undefined) process.stderr.write(`first error: ${summary.firstError}\n`);
      if (summary.total > 0 && summary.errors === summary.total) process.exitCode = 1;
    } catch (e) {
      fail(e, o);
    } finally {
      for (const c of clients) c.close();
    }
  });
}
