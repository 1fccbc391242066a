/**
 * Real server processes for end-to-end tests: Conclave members (`bin/conclave serve`) and, to
 * compare behaviour, real etcd 3.4 members (Debian's etcd-server). Every server listens on
 * 127.0.0.1 on ports picked free, keeps its data in a temporary directory, and is stopped by
 * stop() (SIGTERM, then SIGKILL after a grace period) by its PID.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { freePorts } from './ports.ts';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
export const CONCLAVE_BIN = join(ROOT, 'bin/conclave');
export const ETCD_BIN = '/usr/bin/etcd';
export const ETCDCTL_BIN = '/usr/bin/etcdctl';

export const PROCESS_LIMITS = {
  /** How long a cluster may take to elect a leader and answer /health. */
  startTimeoutMs: 20_000,
  /** SIGTERM grace before SIGKILL on stop. */
  stopGraceMs: 5_000,
} as const;

export type Flavour = 'conclave' | 'etcd';

export interface ServerProcess {
  readonly name: string;
  readonly clientUrl: string;
  /** Where the member listens for peers. */
  readonly peerUrl: string;
  /** The peer URL it advertises (--initial-cluster, member add): peerUrl, or a proxy in front of it. */
  readonly advertisedPeerUrl: string;
  readonly dataDir: string;
  /** Flags of this member that differ from the cluster's (a member joining later). */
  readonly ownFlags: Record<string, string>;
  child: ChildProcess | null;
  output: string;
}

export interface ProcessCluster {
  readonly flavour: Flavour;
  readonly members: ServerProcess[];
  /** Comma-separated client URLs, for etcdctl --endpoints. */
  readonly endpoints: string;
  /** Starts (again) a stopped member with its data dir. */
  start(i: number): Promise<void>;
  /**
   * A new member (free ports, own data dir) that will join this running cluster: not started;
   * add it (etcdctl member add <name> --peer-urls=<peerUrl>) and then start(i) it. Its
   * --initial-cluster names `with` (the members it joins) and itself.
   */
  prepareJoin(withMembers: readonly number[]): Promise<number>;
  /** SIGKILL, no clean shutdown. */
  kill(i: number): Promise<void>;
  /** SIGTERM and wait for the exit (SIGKILL after the grace period). */
  stop(i: number): Promise<void>;
  /** Stops every member and removes the data. */
  destroy(): Promise<void>;
}

export function etcdAvailable(): boolean {
  return existsSync(ETCD_BIN) && existsSync(ETCDCTL_BIN);
}

export interface ClusterOptions {
  /** Extra flags for every member, e.g. { 'quota-backend-bytes': '65536' }. */
  flags?: Record<string, string>;
  /**
   * The peer URL a member advertises instead of its listening one, e.g. a fault-injecting proxy
   * that forwards to `peerUrl` (test/faults). Called once per member, joining members too.
   */
  advertisePeerUrl?: (name: string, peerUrl: string) => Promise<string>;
  /** Extra environment of a member's process, read at each start. */
  env?: (name: string) => Record<string, string>;
}

export async function startCluster(flavour: Flavour, size: number, options: ClusterOptions = {}): Promise<ProcessCluster> {
  const base = mkdtempSync(join(tmpdir(), `${flavour}-cluster-`));
  const ports = await freePorts(2 * size);
  const advertise = options.advertisePeerUrl ?? ((_name: string, url: string) => Promise.resolve(url));
  const members: ServerProcess[] = [];
  for (let i = 0; i < size; i++) {
    const peerUrl = `http://127.0.0.1:${ports[2 * i + 1]}`;
    members.push({
      name: `m${i}`,
      clientUrl: `http://127.0.0.1:${ports[2 * i]}`,
      peerUrl,
      advertisedPeerUrl: await advertise(`m${i}`, peerUrl),
      dataDir: join(base, `m${i}`),
      ownFlags: {},
      child: null,
      output: '',
    });
  }
  const initialCluster = members.map((m) => `${m.name}=${m.advertisedPeerUrl}`).join(',');
  const flags = (m: ServerProcess): string[] => {
    const all: Record<string, string> = {
      name: m.name,
      'data-dir': m.dataDir,
      'listen-client-urls': m.clientUrl,
      'advertise-client-urls': m.clientUrl,
      'listen-peer-urls': m.peerUrl,
      'initial-advertise-peer-urls': m.advertisedPeerUrl,
      'initial-cluster': initialCluster,
      'initial-cluster-token': `${flavour}-test`,
      'heartbeat-interval': '50',
      'election-timeout': '500',
      ...options.flags,
      ...m.ownFlags,
    };
    return Object.entries(all).map(([k, v]) => `--${k}=${v}`);
  };
  const start = async (i: number): Promise<void> => {
    const m = members[i]!;
    if (m.child !== null) throw new Error(`${m.name} is already running`);
    // CONCLAVE_NODE_ARGS: extra node options for Conclave members (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
    const nodeArgs = (process.env.CONCLAVE_NODE_ARGS ?? '').split(/\s+/).filter((a) => a !== '');
    const [cmd, args] = flavour === 'conclave' ? [process.execPath, [...nodeArgs, CONCLAVE_BIN, 'serve', ...flags(m)]] : [ETCD_BIN, flags(m)];
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CONCLAVE_LOG_LEVEL: 'warn', ...options.env?.(m.name) } });
    m.child = child;
    m.output = '';
    const keep = (b: Buffer): void => {
      m.output = (m.output + b.toString()).slice(-20_000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    child.once('exit', () => {
      if (m.child === child) m.child = null;
    });
  };
  const signal = async (i: number, sig: NodeJS.Signals): Promise<void> => {
    const m = members[i]!;
    const child = m.child;
    if (child === null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill(sig);
    const timer = setTimeout(() => child.kill('SIGKILL'), PROCESS_LIMITS.stopGraceMs);
    await exited;
    clearTimeout(timer);
    m.child = null;
  };
  const prepareJoin = async (withMembers: readonly number[]): Promise<number> => {
    const [clientPort, peerPort] = await freePorts(2);
    const i = members.length;
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    const m: ServerProcess = {
      name: `m${i}`,
      clientUrl: `http://127.0.0.1:${clientPort}`,
      peerUrl,
      advertisedPeerUrl: await advertise(`m${i}`, peerUrl),
      dataDir: join(base, `m${i}`),
      ownFlags: {},
      child: null,
      output: '',
    };
    const cluster = [...withMembers.map((j) => members[j]!), m].map((x) => `${x.name}=${x.advertisedPeerUrl}`).join(',');
    Object.assign(m.ownFlags, { 'initial-cluster': cluster, 'initial-cluster-state': 'existing' });
    members.push(m);
    return i;
  };
  const cluster: ProcessCluster = {
    flavour,
    members,
    endpoints: members.map((m) => m.clientUrl).join(','),
    start,
    prepareJoin,
    kill: (i) => signal(i, 'SIGKILL'),
    stop: (i) => signal(i, 'SIGTERM'),
    destroy: async () => {
      await Promise.all(members.map((_, i) => signal(i, 'SIGKILL')));
      rmSync(base, { recursive: true, force: true });
    },
  };
  try {
    for (let i = 0; i < size; i++) await start(i);
    await waitHealthy(cluster);
  } catch (e) {
    const logs = members.map((m) => `--- ${m.name}\n${m.output}`).join('\n');
    await cluster.destroy();
    throw new Error(`${flavour} cluster did not start: ${(e as Error).message}\n${logs}`);
  }
  return cluster;
}

/** Waits until every running member answers GET /health with 200. */
export async function waitHealthy(cluster: ProcessCluster, timeoutMs: number = PROCESS_LIMITS.startTimeoutMs): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (const m of cluster.members) {
    if (m.child === null) continue;
    for (;;) {
      try {
        // etcd holds requests until it is ready (a member without quorum never is): bound the wait.
        const res = await fetch(`${m.clientUrl}/health`, { signal: AbortSignal.timeout(Math.max(1, end - Date.now())) });
        if (res.status === 200) break;
      } catch {
        // not listening yet, or not answering in time
      }
      if (Date.now() > end) throw new Error(`${m.name} not healthy after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export interface EtcdctlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs etcdctl (API v3) against the endpoints; never throws on a non-zero exit. */
export async function etcdctl(endpoints: string, args: string[], input?: string): Promise<EtcdctlResult> {
  const env = { ...process.env, ETCDCTL_API: '3', ETCDCTL_ENDPOINTS: endpoints, ETCDCTL_DIAL_TIMEOUT: '3s' };
  if (input !== undefined) {
    return new Promise((resolvePromise) => {
      const child = spawn(ETCDCTL_BIN, args, { env });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      child.on('close', (code) => resolvePromise({ code: code ?? 1, stdout, stderr }));
      child.stdin.end(input);
    });
  }
  try {
    const r = await run(ETCDCTL_BIN, args, { env });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : 1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}
