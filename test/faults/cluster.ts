/**
 * The cluster under test: real Conclave member processes (test/helpers/processes.ts) whose peer
 * links all pass through the harness's fault-injecting proxies (nemesis/proxy.ts), each with a
 * test-hooks file (src/util/test-hooks.ts) for slow or failing fsync and lease clock jumps.
 *
 * It knows each member's state (running, killed, paused, removed, crashed), watches for members
 * that exit when nobody asked them to (a crash is an anomaly unless the harness injected fsync
 * failures there), follows the leader by polling every member's Status, and carries out the
 * membership changes of the nemesis.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Etcd3 } from 'etcd3';
import { startCluster, waitHealthy, type ProcessCluster } from '../helpers/processes.ts';
import { freePort } from '../helpers/ports.ts';
import { TEST_HOOKS_ENV, type TestHookValues } from '../../src/util/test-hooks.ts';
import { connect, errorText, type Clock } from './client.ts';
import { Network } from './nemesis/proxy.ts';

export const CLUSTER_LIMITS = {
  /** Status polling interval for the leader history. */
  leaderPollMs: 200,
  /** Status call deadline (a paused member must not stall the poll). */
  statusTimeoutMs: 400,
  /** How long a removed member may take to exit by itself. */
  removedExitMs: 10_000,
  /** How long the cluster may take to be healthy again after the faults heal. */
  recoverMs: 60_000,
  /**
   * After its fsync failures are turned off, how long a member may still stop on one: a sync
   * that started before (and was delayed) fails after, and the exit takes a moment.
   */
  failingDiskGraceMs: 3_000,
} as const;

/**
 * Member flags of the runs: etcd's default timing, tolerant of a loaded machine; frequent
 * snapshots and a short log behind them, so members that were down catch up by snapshot.
 */
export const FAULT_CLUSTER_FLAGS = { 'heartbeat-interval': '100', 'election-timeout': '1000', 'snapshot-count': '1000', 'snapshot-catchup-entries': '200' } as const;
export const ELECTION_TIMEOUT_MS = Number(FAULT_CLUSTER_FLAGS['election-timeout']);

export type MemberState = 'running' | 'killed' | 'paused' | 'removed' | 'crashed';

export interface Crash {
  readonly member: string;
  readonly at: number;
  readonly code: number | null;
  readonly signal: string | null;
  /** Whether the harness made its fsyncs fail (then exiting is what it must do). */
  readonly expected: boolean;
  readonly output: string;
}

export interface LeaderObservation {
  readonly at: number;
  readonly leader: string | undefined;
  readonly term: number;
}

const noHooks: TestHookValues = { fsyncDelayMs: 0, fsyncFailProbability: 0, leaseClockOffsetMs: 0, killBeforeSnapshotInstall: 0 };

export class FaultCluster {
  readonly network: Network;
  readonly crashes: Crash[] = [];
  /** Every change of the leader (or of its term) the poller saw. */
  readonly leaders: LeaderObservation[] = [];
  private readonly states = new Map<string, MemberState>();
  private readonly hooks = new Map<string, TestHookValues>();
  /** When each member's injected fsync failures were last turned off. */
  private readonly failingDiskUntil = new Map<string, number>();
  private readonly ids = new Map<string, string>();
  private readonly clients = new Map<string, Etcd3>();
  /** Running members that answered a Status since they (re)started: their signal handlers are in place. */
  private readonly answering = new Set<string>();
  /** Members whose hooks changed before they were answering: they get the signal when they are. */
  private readonly signalPending = new Set<string>();
  private poller: NodeJS.Timeout | null = null;
  private polling = false;

  private constructor(
    readonly processes: ProcessCluster,
    network: Network,
    private readonly hookDir: string,
    private readonly clock: Clock,
  ) {
    this.network = network;
  }

  static async start(size: number, clock: Clock): Promise<FaultCluster> {
    const network = new Network();
    const hookDir = mkdtempSync(join(tmpdir(), 'conclave-faults-hooks-'));
    const hookFile = (name: string): string => join(hookDir, `${name}.json`);
    const processes = await startCluster('conclave', size, {
      flags: { ...FAULT_CLUSTER_FLAGS },
      advertisePeerUrl: async (name, peerUrl) => {
        writeFileSync(hookFile(name), JSON.stringify(noHooks));
        return network.addProxy(name, await freePort(), peerUrl);
      },
      env: (name) => ({ [TEST_HOOKS_ENV]: hookFile(name) }),
    });
    const cluster = new FaultCluster(processes, network, hookDir, clock);
    for (const m of processes.members) {
      cluster.states.set(m.name, 'running');
      cluster.hooks.set(m.name, noHooks);
      cluster.watchExit(m.name);
    }
    await cluster.learnIds();
    cluster.poller = setInterval(() => void cluster.pollLeader(), CLUSTER_LIMITS.leaderPollMs);
    return cluster;
  }

  // ---- who is who ------------------------------------------------------------------------

  names(): string[] {
    return this.processes.members.map((m) => m.name);
  }

  /** Members that belong to the cluster (not removed), whatever their process is doing. */
  members(): string[] {
    return this.names().filter((n) => this.states.get(n) !== 'removed');
  }

  state(name: string): MemberState {
    const s = this.states.get(name);
    if (s === undefined) throw new Error(`no member ${name}`);
    return s;
  }

  withState(state: MemberState): string[] {
    return this.names().filter((n) => this.states.get(n) === state);
  }

  private index(name: string): number {
    const i = this.processes.members.findIndex((m) => m.name === name);
    if (i < 0) throw new Error(`no member ${name}`);
    return i;
  }

  clientUrl(name: string): string {
    return this.processes.members[this.index(name)]!.clientUrl;
  }

  /**
   * A client of one member (one gRPC channel; calls are never retried), one per pool: the etcd3
   * client closes a member's channel when a call on it fails, failing every other call in
   * flight on it, so each workload keeps its own.
   */
  client(name: string, pool = 'harness'): Etcd3 {
    const key = `${pool} ${name}`;
    let c = this.clients.get(key);
    if (c === undefined) {
      c = connect(this.clientUrl(name));
      this.clients.set(key, c);
    }
    return c;
  }

  /** The leader as last polled, if any. */
  leader(): string | undefined {
    return this.leaders.at(-1)?.leader;
  }

  private async learnIds(): Promise<void> {
    const res = await this.client(this.members()[0]!).cluster.memberList({});
    for (const m of res.members) {
      const p = this.processes.members.find((x) => m.peerURLs.includes(x.advertisedPeerUrl));
      if (p !== undefined) this.nameId(p.name, m.ID);
    }
  }

  private nameId(name: string, decimalId: string): void {
    const hex = BigInt(decimalId).toString(16).padStart(16, '0');
    this.ids.set(name, decimalId);
    this.network.nameMember(hex, name);
  }

  private async pollLeader(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const seen = await Promise.all(
        this.withState('running').map(async (name) => {
          try {
            const s = await this.client(name).maintenance.status({ deadline: Date.now() + CLUSTER_LIMITS.statusTimeoutMs });
            this.nowAnswering(name);
            return { leader: s.leader, term: Number(s.raftTerm) };
          } catch {
            return undefined;
          }
        }),
      );
      // The highest term any member reports, and the leader named in it.
      let best: { leader: string; term: number } | undefined;
      for (const s of seen) if (s !== undefined && (best === undefined || s.term > best.term || (s.term === best.term && best.leader === '0'))) best = s;
      if (best === undefined) return;
      const leader = best.leader === '0' ? undefined : this.names().find((n) => this.ids.get(n) === best.leader);
      const last = this.leaders.at(-1);
      if (last === undefined || last.leader !== leader || last.term !== best.term) this.leaders.push({ at: this.clock(), leader, term: best.term });
    } finally {
      this.polling = false;
    }
  }

  /** Running members known to be up (answering), e.g. to carry out a membership change. */
  answeringMembers(): string[] {
    return this.withState('running').filter((n) => this.answering.has(n));
  }

  private nowAnswering(name: string): void {
    if (this.state(name) !== 'running' || this.answering.has(name)) return;
    this.answering.add(name);
    if (this.signalPending.delete(name)) this.signal(name, 'SIGUSR2');
  }

  // ---- processes -------------------------------------------------------------------------

  private watchExit(name: string): void {
    const child = this.processes.members[this.index(name)]!.child;
    child?.once('exit', (code, signal) => {
      if (this.states.get(name) !== 'running' && this.states.get(name) !== 'paused') return;
      const expected = (this.hooks.get(name)?.fsyncFailProbability ?? 0) > 0 || this.clock() <= (this.failingDiskUntil.get(name) ?? -Infinity);
      const output = this.processes.members[this.index(name)]!.output.split('\n').slice(-15).join('\n');
      this.crashes.push({ member: name, at: this.clock(), code, signal, expected, output });
      this.states.set(name, 'crashed');
      this.answering.delete(name);
    });
  }

  async kill(name: string): Promise<void> {
    if (this.state(name) === 'paused') this.signal(name, 'SIGCONT');
    this.states.set(name, 'killed');
    this.answering.delete(name);
    await this.processes.kill(this.index(name));
  }

  /** Starts a killed or crashed member again with its data. */
  async restart(name: string): Promise<void> {
    const s = this.state(name);
    if (s !== 'killed' && s !== 'crashed') throw new Error(`cannot restart ${name}: ${s}`);
    this.answering.delete(name);
    await this.processes.start(this.index(name));
    this.states.set(name, 'running');
    this.watchExit(name);
  }

  pause(name: string): void {
    if (this.state(name) !== 'running') return;
    this.signal(name, 'SIGSTOP');
    this.states.set(name, 'paused');
  }

  resume(name: string): void {
    if (this.state(name) !== 'paused') return;
    this.states.set(name, 'running');
    this.signal(name, 'SIGCONT');
  }

  private signal(name: string, sig: NodeJS.Signals): void {
    this.processes.members[this.index(name)]!.child?.kill(sig);
  }

  hookValues(name: string): TestHookValues {
    return this.hooks.get(name) ?? noHooks;
  }

  /** Changes a member's test hooks (a signal makes a running member re-read them). */
  setHooks(name: string, values: Partial<TestHookValues>): void {
    const next = { ...this.hookValues(name), ...values };
    if (this.hookValues(name).fsyncFailProbability > 0 && next.fsyncFailProbability === 0) this.failingDiskUntil.set(name, this.clock() + CLUSTER_LIMITS.failingDiskGraceMs);
    this.hooks.set(name, next);
    writeFileSync(join(this.hookDir, `${name}.json`), JSON.stringify(next));
    // A process reads the file when it starts; one that has started may still be loading its
    // modules, without the handler (SIGUSR2 would then end it): it is signalled once it answers.
    // A stopped process gets the signal when it continues.
    if (this.state(name) !== 'running' && this.state(name) !== 'paused') return;
    if (this.answering.has(name)) this.signal(name, 'SIGUSR2');
    else this.signalPending.add(name);
  }

  // ---- membership ------------------------------------------------------------------------

  /** Removes a member through the cluster and waits for its process to exit by itself. */
  async removeMember(name: string, via: string): Promise<void> {
    const id = this.ids.get(name);
    if (id === undefined) throw new Error(`no id known for ${name}`);
    await this.client(via).cluster.memberRemove({ ID: id });
    await this.retire(name);
  }

  /** The member was removed from the cluster: wait for it to exit, or stop it. */
  async retire(name: string): Promise<void> {
    const prev = this.state(name);
    this.states.set(name, 'removed');
    if (prev === 'paused') this.signal(name, 'SIGCONT');
    const child = this.processes.members[this.index(name)]!.child;
    if (child !== null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      const timer = setTimeout(() => child.kill('SIGKILL'), CLUSTER_LIMITS.removedExitMs);
      await exited;
      clearTimeout(timer);
    }
    for (const [key, c] of this.clients) {
      if (!key.endsWith(` ${name}`)) continue;
      c.close();
      this.clients.delete(key);
    }
  }

  /** Whether the cluster's member list still names `name`. */
  async isListed(name: string, via: string): Promise<boolean> {
    const id = this.ids.get(name);
    const res = await this.client(via).cluster.memberList({});
    return res.members.some((m) => m.ID === id);
  }

  /** Adds a fresh member (new data dir) through `via` and starts it; returns its name. */
  async addMember(via: string): Promise<string> {
    const withIdx = this.members().map((n) => this.index(n));
    const i = await this.processes.prepareJoin(withIdx);
    const m = this.processes.members[i]!;
    this.states.set(m.name, 'killed');
    this.hooks.set(m.name, noHooks);
    let id: string;
    try {
      id = (await this.client(via).cluster.memberAdd({ peerURLs: [m.advertisedPeerUrl] })).member.ID;
    } catch (e) {
      // Refused, or applied with the answer lost: the member list tells which.
      const listed = await this.client(via)
        .cluster.memberList({})
        .then((r) => r.members.find((x) => x.peerURLs.includes(m.advertisedPeerUrl)))
        .catch(() => undefined);
      if (listed === undefined) {
        this.states.set(m.name, 'removed');
        throw e;
      }
      id = listed.ID;
    }
    this.nameId(m.name, id);
    await this.restart(m.name);
    return m.name;
  }

  // ---- recovery --------------------------------------------------------------------------

  /** Heals every fault: the network, paused and stopped members, the hooks (clock offsets stay). */
  async healAll(): Promise<void> {
    this.network.heal();
    for (const name of this.withState('paused')) this.resume(name);
    for (const name of this.members()) {
      const h = this.hookValues(name);
      if (h.fsyncDelayMs > 0 || h.fsyncFailProbability > 0) this.setHooks(name, { fsyncDelayMs: 0, fsyncFailProbability: 0 });
    }
    // A member whose fsync failures were just turned off may still stop on one: wait that out.
    const graceEnd = Math.max(-Infinity, ...this.failingDiskUntil.values());
    if (graceEnd > this.clock()) await new Promise((r) => setTimeout(r, graceEnd - this.clock()));
    for (const name of [...this.withState('killed'), ...this.withState('crashed')]) await this.restart(name);
  }

  /** Waits until every member answers /health and one leader commits a write. */
  async waitRecovered(timeoutMs: number = CLUSTER_LIMITS.recoverMs): Promise<void> {
    const end = Date.now() + timeoutMs;
    await waitHealthy(this.processes, timeoutMs);
    for (;;) {
      try {
        await this.client(this.members()[0]!).put('faults/recovered').value(String(this.clock()));
        return;
      } catch (e) {
        if (Date.now() > end) throw new Error(`cluster not recovered after ${timeoutMs} ms: ${errorText(e)}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  async destroy(): Promise<void> {
    if (this.poller !== null) clearInterval(this.poller);
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
    for (const name of this.withState('paused')) this.signal(name, 'SIGCONT');
    await this.processes.destroy();
    await this.network.close();
    rmSync(this.hookDir, { recursive: true, force: true });
  }
}
