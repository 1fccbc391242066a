/**
 * One fault run: start a cluster behind the proxies, run the workloads while the nemesis injects
 * faults, heal everything, check that the cluster recovers and keeps serving, let each workload
 * do its final reads and checks, compare the members' key spaces, and print what happened.
 *
 * Checks at the cluster level (besides each workload's):
 *   - no member exits unless the harness killed, removed or failed its disk;
 *   - after the heal the cluster elects a leader and commits within CLUSTER_LIMITS.recoverMs;
 *   - every member's HashKV at one revision is the same (replicas agree byte for byte).
 */
import { Prng } from '../sim/prng.ts';
import { errorText, hashKV } from './client.ts';
import { FaultCluster } from './cluster.ts';
import { Nemesis, NEMESIS_DEFAULTS, type FaultRecord, type NemesisKind, type NemesisTiming } from './nemesis/nemesis.ts';
import { createWorkload, type WorkloadName } from './workloads/index.ts';
import { sleep, type Anomaly, type Workload, type WorkloadContext, type WorkloadReport } from './workloads/workload.ts';

export const RUN_LIMITS = {
  /** After the heal, workloads keep going this long: the recovered cluster must serve them. */
  afterHealMs: 4_000,
  /** How long the members may take to reach one revision for the HashKV comparison. */
  hashAgreeMs: 20_000,
} as const;

export interface RunOptions {
  readonly timeS: number;
  readonly seed: number;
  readonly members: number;
  readonly nemesis: readonly NemesisKind[];
  readonly workloads: readonly WorkloadName[];
  readonly timing?: NemesisTiming;
  /** Progress lines as the run goes (stdout for the CLI). */
  readonly say?: (line: string) => void;
}

export interface RunResult {
  readonly ok: boolean;
  readonly seed: number;
  readonly reports: readonly WorkloadReport[];
  readonly clusterAnomalies: readonly Anomaly[];
  readonly faults: readonly FaultRecord[];
  /** The summary and, on failure, the evidence. */
  readonly text: string;
}

export async function runFaults(options: RunOptions): Promise<RunResult> {
  const say = options.say ?? (() => {});
  const timing = options.timing ?? NEMESIS_DEFAULTS;
  const origin = performance.now();
  const clock = (): number => Math.round((performance.now() - origin) * 1000) / 1000;
  const rng = new Prng(options.seed);
  const cluster = await FaultCluster.start(options.members, clock);
  const clusterAnomalies: Anomaly[] = [];
  let nemesis: Nemesis | undefined;
  try {
    nemesis = new Nemesis(cluster, options.nemesis, rng.fork('nemesis'), clock, timing, say);
    const faults = nemesis.log;
    const ctx: WorkloadContext = { cluster, rng: rng.fork('workloads'), clock, faults: () => faults, timing, say };
    const workloads: Workload[] = options.workloads.map((name) => createWorkload(name, ctx));
    say(`seed ${options.seed}: ${options.members} members, ${options.timeS} s, nemesis ${options.nemesis.join(',') || 'none'}, workloads ${options.workloads.join(',')}`);

    let stopping = false;
    const running = workloads.map((w) => w.run(() => stopping));
    if (options.nemesis.length > 0) nemesis.start();
    await sleep(options.timeS * 1000);
    await nemesis.stop();
    await cluster.healAll();
    say(`healed at ${(clock() / 1000).toFixed(1)} s`);
    try {
      await cluster.waitRecovered();
    } catch (e) {
      clusterAnomalies.push({ kind: 'no recovery', details: errorText(e) });
    }
    await sleep(RUN_LIMITS.afterHealMs);
    stopping = true;
    await Promise.all(running);

    const reports: WorkloadReport[] = [];
    for (const w of workloads) {
      say(`checking ${w.name}…`);
      reports.push(await w.check());
    }
    clusterAnomalies.push(...(await compareHashes(cluster)));
    for (const c of cluster.crashes) {
      if (c.expected) continue;
      clusterAnomalies.push({ kind: 'member crashed', details: `${c.member} exited at ${(c.at / 1000).toFixed(1)} s (code ${c.code}, signal ${c.signal}):\n${c.output}` });
    }
    const ok = clusterAnomalies.length === 0 && reports.every((r) => r.anomalies.length === 0);
    const text = summarize(options, ok, reports, clusterAnomalies, nemesis, cluster);
    return { ok, seed: options.seed, reports, clusterAnomalies, faults, text };
  } finally {
    await nemesis?.stop();
    await cluster.destroy();
  }
}

/** Every member's HashKV at one revision that all of them applied. */
async function compareHashes(cluster: FaultCluster): Promise<Anomaly[]> {
  const members = cluster.members();
  const end = Date.now() + RUN_LIMITS.hashAgreeMs;
  let revision: string | undefined;
  for (let attempt = 0; revision === undefined; attempt++) {
    try {
      revision = (await cluster.client(members[attempt % members.length]!).kv.put({ key: Buffer.from('faults/hash'), value: Buffer.from('x') })).header.revision;
    } catch (e) {
      if (Date.now() > end) return [{ kind: 'no recovery', details: `a put for the hash comparison failed: ${errorText(e)}` }];
      await sleep(200);
    }
  }
  const hashes = new Map<string, string>();
  for (const m of members) {
    for (;;) {
      try {
        hashes.set(m, await hashKV(cluster.clientUrl(m), revision));
        break;
      } catch (e) {
        // "required revision is a future revision": the member has not applied it yet.
        if (Date.now() > end) return [{ kind: 'replicas diverge', details: `${m} gave no HashKV at revision ${revision}: ${errorText(e)}` }];
        await sleep(200);
      }
    }
  }
  if (new Set(hashes.values()).size <= 1) return [];
  return [{ kind: 'replicas diverge', details: `HashKV at revision ${revision}: ${[...hashes].map(([m, h]) => `${m}=${h}`).join(' ')}` }];
}

function pad(s: string | number, n: number): string {
  return String(s).padStart(n);
}

function summarize(options: RunOptions, ok: boolean, reports: readonly WorkloadReport[], clusterAnomalies: readonly Anomaly[], nemesis: Nemesis, cluster: FaultCluster): string {
  const lines: string[] = [];
  const counts = [...nemesis.counts()].map(([k, n]) => `${k} ${n}`).join(', ');
  const failedFaults = nemesis.log.filter((f) => f.error !== undefined).length;
  lines.push(`faults injected: ${counts || 'none'}${failedFaults > 0 ? ` (${failedFaults} could not be applied as planned)` : ''}`);
  const dropped = [...cluster.network.dropped.values()].reduce((a, b) => a + b, 0);
  lines.push(`peer frames dropped by partitions: ${dropped}; leader changes seen: ${Math.max(0, cluster.leaders.length - 1)}; member crashes on injected fsync failures: ${cluster.crashes.filter((c) => c.expected).length}`);
  lines.push(`${'workload'.padEnd(10)} ${pad('ops', 7)} ${pad('ok', 7)} ${pad('failed', 7)} ${pad('indet.', 7)} ${pad('anomalies', 9)}`);
  const total = { ops: 0, ok: 0, failed: 0, indeterminate: 0, anomalies: 0 };
  for (const r of reports) {
    lines.push(`${r.workload.padEnd(10)} ${pad(r.ops, 7)} ${pad(r.ok, 7)} ${pad(r.failed, 7)} ${pad(r.indeterminate, 7)} ${pad(r.anomalies.length, 9)}   ${r.notes.join('; ')}`);
    total.ops += r.ops;
    total.ok += r.ok;
    total.failed += r.failed;
    total.indeterminate += r.indeterminate;
    total.anomalies += r.anomalies.length;
  }
  lines.push(`${'total'.padEnd(10)} ${pad(total.ops, 7)} ${pad(total.ok, 7)} ${pad(total.failed, 7)} ${pad(total.indeterminate, 7)} ${pad(total.anomalies + clusterAnomalies.length, 9)}`);
  const all = [...clusterAnomalies.map((a) => ({ workload: 'cluster', ...a })), ...reports.flatMap((r) => r.anomalies.map((a) => ({ workload: r.workload, ...a })))];
  for (const a of all) lines.push('', `ANOMALY [${a.workload}] ${a.kind}:`, a.details);
  if (ok) {
    lines.push(`PASS (seed ${options.seed})`);
  } else {
    lines.push(
      '',
      `FAIL (seed ${options.seed}): npm run faults -- --time ${options.timeS} --seed ${options.seed} --members ${options.members} --nemesis ${options.nemesis.join(',')} --workload ${options.workloads.join(',')}`,
    );
  }
  return lines.join('\n');
}
