/**
 * What the end-to-end benchmarks (cluster, watch) measure about the processes they run: CPU
 * time of the members and of the client, how busy the rest of the machine is, RSS, leader
 * changes, latency percentiles; and the cluster timing both systems run with.
 */
import { readFileSync } from 'node:fs';
import type { ProcessCluster } from '../../test/helpers/processes.ts';

/** Heartbeat and election timeout for both systems (ms). */
export const TIMING = { 'heartbeat-interval': '50', 'election-timeout': '500' } as const;

/** Cores busy with other loads below which the machine counts as quiet. */
export const QUIET_CORES = 0.1;

/** The q-quantile of ascending values (nearest rank); NaN when there are none. */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

/** a / b with two decimals: a Conclave/etcd ratio as the tables print it. */
export function ratio(a: number, b: number): string {
  return (a / b).toFixed(2);
}

/**
 * Runs `run` for each system, `rounds` times, alternating which goes first (so a drift in machine
 * load hits both alike); the results in the order they were taken.
 */
export async function alternating<S, T>(systems: readonly S[], rounds: number, run: (system: S, round: number) => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  for (let round = 0; round < rounds; round++) {
    for (const system of round % 2 === 0 ? systems : [...systems].reverse()) results.push(await run(system, round));
  }
  return results;
}

export function mean(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

export function median(values: number[]): number {
  const v = [...values].sort((a, b) => a - b);
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

/** User + system CPU seconds of a process so far (/proc/<pid>/stat, in clock ticks of 1/100 s). */
export function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** CPU seconds the whole machine has been busy (/proc/stat: all but idle and iowait). */
export function machineBusy(): number {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
  return (total - cpu[3]! - cpu[4]!) / 100;
}

/** CPU seconds of all running members together. */
export function membersCpu(cluster: ProcessCluster): number {
  return cluster.members.reduce((sum, m) => sum + cpuSeconds(m.child?.pid), 0);
}

/** CPU seconds of this (client) process. */
export function clientCpu(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/**
 * Waits (up to `seconds`) until the rest of the machine is idle: over one second, cores busy
 * with anything but this cluster and this process stay under QUIET_CORES. Returns whether it
 * got there.
 */
export async function waitQuiet(cluster: ProcessCluster, seconds: number): Promise<boolean> {
  const end = performance.now() + seconds * 1000;
  for (;;) {
    const busy0 = machineBusy();
    const ours0 = membersCpu(cluster) + clientCpu();
    await new Promise((r) => setTimeout(r, 1000));
    const others = machineBusy() - busy0 - (membersCpu(cluster) + clientCpu() - ours0);
    if (others < QUIET_CORES) return true;
    if (performance.now() > end) return false;
  }
}

export interface CpuUse {
  /** CPU seconds of the members together, of this process, and of everything else on the machine. */
  readonly memberCpu: number;
  readonly clientCpu: number;
  readonly otherCpu: number;
}

/** Starts counting CPU time; read() gives each part's CPU seconds since the start. */
export function cpuMeter(cluster: ProcessCluster): { read(): CpuUse } {
  const members0 = membersCpu(cluster);
  const client0 = clientCpu();
  const busy0 = machineBusy();
  return {
    read() {
      const memberCpu = membersCpu(cluster) - members0;
      const clientCpuS = clientCpu() - client0;
      return { memberCpu, clientCpu: clientCpuS, otherCpu: Math.max(0, machineBusy() - busy0 - memberCpu - clientCpuS) };
    },
  };
}

/** etcd_server_leader_changes_seen_total of each member (1 = just the first election). */
export async function leaderChanges(cluster: ProcessCluster): Promise<number[]> {
  return Promise.all(
    cluster.members.map(async (m) => {
      const text = await (await fetch(`${m.clientUrl}/metrics`)).text();
      const line = /^etcd_server_leader_changes_seen_total (\S+)$/m.exec(text);
      return line === null ? NaN : Number(line[1]);
    }),
  );
}

/** VmRSS of each member (MiB). */
export function rssMiB(cluster: ProcessCluster): number[] {
  return cluster.members.map((m) => {
    const pid = m.child?.pid;
    if (pid === undefined) return NaN;
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return kb === null ? NaN : Number(kb[1]) / 1024;
  });
}

/** Stops every member with SIGTERM first (so they exit cleanly and write --cpu-prof profiles), then removes the data. */
export async function stopCluster(cluster: ProcessCluster): Promise<void> {
  for (let i = 0; i < cluster.members.length; i++) await cluster.stop(i);
  await cluster.destroy();
}

/** s padded to n columns, right-aligned unless `left`. */
export function pad(s: string, n: number, left = false): string {
  return left ? s.padEnd(n) : s.padStart(n);
}
