/**
 * Real server processes for end-to-end tests: Conclave members (`bin/conclave serve`) and, to
 * compare behaviour, real etcd 3.4 members (Debian's etcd-server). Every server listens on
 * 127.0.0.1 on ports picked free, keeps its data in a temporary directory, and is stopped by
 * stop() (SIGTERM, then SIGKILL after a grace period) by its PID.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import https from 'node:https';
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
  /** Starts (again) a stopped member with its data dir; `flags` add to or override the cluster's. */
  start(i: number, flags?: Record<string, string>): Promise<void>;
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
  /** Extra flags for single members (by index), over `flags`. */
  memberFlags?: Record<number, Record<string, string>>;
  /** https:// client or peer URLs (the certificates are flags: cert-file, peer-cert-file, …). */
  clientScheme?: 'http' | 'https';
  peerScheme?: 'http' | 'https';
  /** What the health check presents to https:// client URLs: the CA, and a client certificate if required. */
  clientTls?: ClientTlsFiles;
  /** Members that must be healthy before startCluster returns (default: all). */
  expectHealthy?: readonly number[];
  /**
   * Runs before the members first start, e.g. to fill their data dirs (snapshot restore), with
   * the members and the cluster flags they will get.
   */
  beforeStart?: (members: readonly ServerProcess[], cluster: { readonly initialCluster: string; readonly token: string }) => Promise<void>;
  /**
   * The peer URL a member advertises instead of its listening one, e.g. a fault-injecting proxy
   * that forwards to `peerUrl` (test/faults). Called once per member, joining members too.
   */
  advertisePeerUrl?: (name: string, peerUrl: string) => Promise<string>;
  /** Extra environment of a member's process, read at each start. */
  env?: (name: string) => Record<string, string>;
}

/** PEM files a client uses to reach a TLS client port. */
export interface ClientTlsFiles {
  /** The CA to verify the server with; without it, the server's certificate is not verified (--auto-tls). */
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

export async function startCluster(flavour: Flavour, size: number, options: ClusterOptions = {}): Promise<ProcessCluster> {
  const base = mkdtempSync(join(tmpdir(), `${flavour}-cluster-`));
  const ports = await freePorts(2 * size);
  const advertise = options.advertisePeerUrl ?? ((_name: string, url: string) => Promise.resolve(url));
  /** Member i, not started, on the given ports. */
  const newMember = async (i: number, clientPort: number, peerPort: number): Promise<ServerProcess> => {
    const peerUrl = `${options.peerScheme ?? 'http'}://127.0.0.1:${peerPort}`;
    return {
      name: `m${i}`,
      clientUrl: `${options.clientScheme ?? 'http'}://127.0.0.1:${clientPort}`,
      peerUrl,
      advertisedPeerUrl: await advertise(`m${i}`, peerUrl),
      dataDir: join(base, `m${i}`),
      ownFlags: {},
      child: null,
      output: '',
    };
  };
  const members: ServerProcess[] = [];
  for (let i = 0; i < size; i++) members.push(await newMember(i, ports[2 * i]!, ports[2 * i + 1]!));
  const initialCluster = members.map((m) => `${m.name}=${m.advertisedPeerUrl}`).join(',');
  const token = `${flavour}-test`;
  const flags = (m: ServerProcess, i: number, extra: Record<string, string>): string[] => {
    const all: Record<string, string> = {
      name: m.name,
      'data-dir': m.dataDir,
      'listen-client-urls': m.clientUrl,
      'advertise-client-urls': m.clientUrl,
      'listen-peer-urls': m.peerUrl,
      'initial-advertise-peer-urls': m.advertisedPeerUrl,
      'initial-cluster': initialCluster,
      'initial-cluster-token': token,
      'heartbeat-interval': '50',
      'election-timeout': '500',
      ...options.flags,
      ...m.ownFlags,
      ...options.memberFlags?.[i],
      ...extra,
    };
    return Object.entries(all).map(([k, v]) => `--${k}=${v}`);
  };
  const start = async (i: number, extra: Record<string, string> = {}): Promise<void> => {
    const m = members[i]!;
    if (m.child !== null) throw new Error(`${m.name} is already running`);
    // CONCLAVE_NODE_ARGS: extra node options for Conclave members (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
    const nodeArgs = (process.env.CONCLAVE_NODE_ARGS ?? '').split(/\s+/).filter((a) => a !== '');
    const [cmd, args] = flavour === 'conclave' ? [process.execPath, [...nodeArgs, CONCLAVE_BIN, 'serve', ...flags(m, i, extra)]] : [ETCD_BIN, flags(m, i, extra)];
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
    const m = await newMember(i, clientPort!, peerPort!);
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
    await options.beforeStart?.(members, { initialCluster, token });
    for (let i = 0; i < size; i++) await start(i);
    await waitHealthy(cluster, PROCESS_LIMITS.startTimeoutMs, options.clientTls, options.expectHealthy);
  } catch (e) {
    const logs = members.map((m) => `--- ${m.name}\n${m.output}`).join('\n');
    await cluster.destroy();
    throw new Error(`${flavour} cluster did not start: ${(e as Error).message}\n${logs}`);
  }
  return cluster;
}

/** GET of a URL, over https with the given CA and client certificate; resolves with the status and body. */
export function httpsGet(url: string, files: ClientTlsFiles, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolvePromise, reject) => {
    const req = https.get(
      url,
      {
        ca: files.ca === undefined ? undefined : readFileSync(files.ca),
        rejectUnauthorized: files.ca !== undefined,
        cert: files.cert === undefined ? undefined : readFileSync(files.cert),
        key: files.key === undefined ? undefined : readFileSync(files.key),
        timeout: timeoutMs,
        // A connection of its own: a TLS check happens at the handshake, not on a reused connection.
        agent: false,
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

/**
 * Waits until every running member (or those of `only`) answers GET /health with 200; https://
 * client URLs are checked with `tls`.
 */
export async function waitHealthy(cluster: ProcessCluster, timeoutMs: number = PROCESS_LIMITS.startTimeoutMs, tls?: ClientTlsFiles, only?: readonly number[]): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (const [i, m] of cluster.members.entries()) {
    if (m.child === null || (only !== undefined && !only.includes(i))) continue;
    let last = 'no answer';
    for (;;) {
      try {
        // etcd holds requests until it is ready (a member without quorum never is): bound the wait.
        const left = Math.max(1, end - Date.now());
        const url = `${m.clientUrl}/health`;
        const status = url.startsWith('https:') && tls !== undefined ? (await httpsGet(url, tls, left)).status : (await fetch(url, { signal: AbortSignal.timeout(left) })).status;
        if (status === 200) break;
        last = `HTTP ${status}`;
      } catch (e) {
        // not listening yet, or not answering in time
        last = e instanceof Error ? e.message : String(e);
      }
      if (Date.now() > end) throw new Error(`${m.name} not healthy after ${timeoutMs} ms (last: ${last}); its output ends:\n${m.output.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Restarts every member that is not running and waits until all are healthy. */
export async function restartStopped(cluster: ProcessCluster): Promise<void> {
  for (let i = 0; i < cluster.members.length; i++) if (cluster.members[i]!.child === null) await cluster.start(i);
  await waitHealthy(cluster);
}

export interface EtcdctlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** The final "Error: …" line of etcdctl's stderr (warnings before it name random client ids). */
export function etcdctlErrorLine(stderr: string): string {
  return stderr.split('\n').filter((l) => l.startsWith('Error:')).pop() ?? '';
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
