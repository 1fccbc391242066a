/**
 * What every workload of the fault harness is: workers issuing operations over real client
 * connections while the nemesis runs, then (after every fault is healed) final reads and a
 * check of what was recorded. Counting follows Jepsen: an operation is ok (the client saw its
 * outcome), failed (it certainly did not take effect) or indeterminate (it may have).
 */
import type { Etcd3 } from 'etcd3';
import type { Prng } from '../../sim/prng.ts';
import { errorText, type Clock } from '../client.ts';
import type { FaultCluster } from '../cluster.ts';
import type { FaultRecord, NemesisTiming } from '../nemesis/nemesis.ts';

export interface WorkloadContext {
  readonly cluster: FaultCluster;
  readonly rng: Prng;
  readonly clock: Clock;
  /** The faults injected so far (complete once the run is over). */
  readonly faults: () => readonly FaultRecord[];
  readonly timing: NemesisTiming;
  readonly say: (line: string) => void;
}

export interface Anomaly {
  /** A short name of what is wrong, e.g. "not linearizable", "lost append", "G1c". */
  readonly kind: string;
  /** The evidence: the smallest offending sub-history or the cycle, as readable lines. */
  readonly details: string;
}

export interface WorkloadReport {
  readonly workload: string;
  readonly ops: number;
  readonly ok: number;
  readonly failed: number;
  readonly indeterminate: number;
  readonly anomalies: readonly Anomaly[];
  /** Figures worth printing (checker effort, keys, …). */
  readonly notes: readonly string[];
}

export interface Workload {
  readonly name: string;
  /** Runs the workers until `stopping()` says so. */
  run(stopping: () => boolean): Promise<void>;
  /** After the heal: final reads, then the checks. */
  check(): Promise<WorkloadReport>;
}

export class Counts {
  ops = 0;
  ok = 0;
  failed = 0;
  indeterminate = 0;
  /** How often each error text was seen (numbers blanked out so that like errors add up). */
  private readonly errors = new Map<string, number>();

  /** Counts an error that made an operation failed or indeterminate. */
  error(e: unknown): void {
    const text = errorText(e).replace(/\d+/g, 'N').slice(0, 100);
    this.errors.set(text, (this.errors.get(text) ?? 0) + 1);
  }

  report(workload: string, anomalies: readonly Anomaly[], notes: readonly string[]): WorkloadReport {
    const top = [...this.errors].sort((a, b) => b[1] - a[1]).slice(0, 3);
    const errors = top.length === 0 ? [] : [`errors: ${top.map(([t, n]) => `${n}× ${t}`).join(' | ')}`];
    return { workload, ops: this.ops, ok: this.ok, failed: this.failed, indeterminate: this.indeterminate, anomalies, notes: [...notes, ...errors] };
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The member worker `w` talks to now (members come and go with the membership faults). */
export function memberFor(cluster: FaultCluster, w: number): string {
  const members = cluster.members();
  return members[w % members.length]!;
}

/** The client worker `w` of `workload` uses now: the workload's own channel to the worker's member. */
export function clientFor(ctx: WorkloadContext, workload: string, w: number): Etcd3 {
  return ctx.cluster.client(memberFor(ctx.cluster, w), workload);
}

/**
 * Runs `workers` copies of `body` until stopping(), each with its own random stream and pausing
 * `thinkMs` between operations.
 */
export async function runWorkers(workers: number, stopping: () => boolean, thinkMs: readonly [number, number], rng: Prng, body: (w: number, rng: Prng) => Promise<void>): Promise<void> {
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      const r = rng.fork(`worker${w}`);
      while (!stopping()) {
        await body(w, r);
        await sleep(r.int(...thinkMs));
      }
    }),
  );
}
