/**
 * One simulated run, fully determined by its seed: a cluster bootstrapped on simulated
 * members, a faulty phase (network faults, crashes, clock skew, membership changes, client
 * load), then a healthy phase in which liveness is measured. Invariants are checked after
 * every step; the first violation ends the run and is reported with its seed and step.
 */
import { AssertionError } from '../../src/util/assert.ts';
import { bootstrapStorage } from '../../src/raft/storage.ts';
import type { NodeId } from '../../src/raft/types.ts';
import { Admin } from './admin.ts';
import { Checker, Violation, logView } from './checker.ts';
import { Clients } from './clients.ts';
import { EventQueue } from './events.ts';
import { Faults } from './faults.ts';
import type { CrashPoint, SimHost } from './host.ts';
import { SimMember } from './member.ts';
import { members } from './membership.ts';
import { Network } from './network.ts';
import { Prng } from './prng.ts';
import { BASE_TICK, ELECTION_TICK, makeScenario, type Scenario, type ScenarioOptions } from './scenario.ts';
import { Trace } from './trace.ts';

/**
 * Liveness bounds, in nominal ticks counted from the moment all faults heal (an election
 * timeout is 10–20 ticks). Measured worst over seeds 1–20000: leader 230, writes 381, catch-up
 * 519 ticks — runs with one-entry messages, disks slow to sync and small apply batches, where
 * the new leader must first bring a quorum up to its log one entry per round trip.
 */
export const LIVENESS = {
  /** A leader that has committed an entry of its own term. */
  leaderTicksMax: 300,
  /** Every client has a write issued after the heal acknowledged (slow disks and one-entry messages included). */
  writeTicksMax: 600,
  /** A member still catching up must apply something at least this often. */
  catchUpStallTicksMax: 300,
  /** Every live member has applied what was committed when the writes were done. */
  catchUpTicksMax: 3000,
} as const;

/** A run longer than this many steps is reported as a runaway (a livelock or a message storm). */
export const STEPS_MAX = 3_000_000;

export interface RunViolation {
  readonly invariant: string;
  readonly detail: string;
  readonly step: number;
  readonly time: number;
}

export interface Liveness {
  readonly leaderTicks: number;
  readonly writeTicks: number;
  readonly catchUpTicks: number;
}

export interface RunResult {
  readonly seed: number;
  readonly scenario: Scenario;
  readonly steps: number;
  readonly violation: RunViolation | null;
  readonly liveness: Liveness | null;
  readonly stats: Record<string, number>;
  readonly trace: readonly string[];
}

export interface RunOptions extends ScenarioOptions {
  /** Record the trace (slower); `traceKeep` > 0 keeps only the newest lines. */
  readonly trace?: boolean;
  readonly traceKeep?: number;
}

class Simulation implements SimHost {
  readonly queue = new EventQueue();
  readonly trace: Trace;
  readonly checker = new Checker();
  readonly net: Network;
  readonly forgetVote: boolean;
  private readonly prng: Prng;
  private readonly all = new Map<NodeId, SimMember>();
  private readonly clients: Clients;
  private readonly admin: Admin;
  private readonly faults: Faults;
  private readonly everMember = new Set<NodeId>();
  private readonly removedAt = new Map<NodeId, number>();
  /** Members that applied their own removal and are about to stop. */
  private readonly leaving = new Set<NodeId>();
  private seenConfigIndex = -1;
  private phase: 'faulty' | 'final' | 'done' = 'faulty';
  steps = 0;
  private healAt = -1;
  private leaderAt = -1;
  private writesAt = -1;
  private catchUpTarget = -1;
  private catchUpAt = -1;
  /** Catch-up progress per member: applied index and when it last moved. */
  private readonly progress = new Map<NodeId, { index: number; at: number }>();

  constructor(readonly scenario: Scenario, opts: RunOptions) {
    this.trace = new Trace(opts.trace ?? false, opts.traceKeep ?? 0);
    this.prng = new Prng(scenario.seed);
    this.forgetVote = scenario.forgetVote;
    this.net = new Network(this, this.prng.fork('network'), scenario.faultNet);
    this.clients = new Clients(this, this.prng.fork('clients'), scenario.clients);
    this.clients.targets = () => this.targets();
    this.clients.leader = () => this.leader();
    this.admin = new Admin(
      this,
      this.prng.fork('admin'),
      { addMember: (id) => this.addMember(id, false), leader: () => this.leader(), live: () => this.targets() },
      scenario.members + 1,
      60 * BASE_TICK,
    );
    this.faults = new Faults(this, this.prng.fork('faults'), scenario.faults, {
      all: () => [...this.all.values()].filter((m) => !m.retired),
      leader: () => this.leader(),
      crash: (m) => this.crash(m),
      restart: (m) => this.restart(m),
    });
  }

  member(id: NodeId): SimMember | undefined {
    return this.all.get(id);
  }

  fail(invariant: string, detail: string): never {
    throw new Violation(invariant, detail);
  }

  crashPoint(m: SimMember, point: CrashPoint): void {
    this.faults.crashPoint(m, point);
  }

  private note(line: string): void {
    if (this.trace.on) this.trace.add(this.queue.now, line);
  }

  private addMember(id: NodeId, founding: boolean): SimMember {
    const s = this.scenario;
    const p = this.prng.fork(`member/${id}`);
    const m = new SimMember(
      id,
      this,
      {
        tickPeriod: p.int(s.tickMin, s.tickMax),
        persistDelayMax: s.persistDelayMax,
        applyDelayMax: s.applyDelayMax,
        snapshotEvery: s.snapshotEvery,
        compactKeep: s.compactKeep,
        raft: s.raft,
      },
      p,
      s.mutations,
    );
    this.all.set(id, m);
    if (founding) {
      bootstrapStorage(m.storage, Array.from({ length: s.members }, (_, i) => `n${i + 1}`));
      this.checker.bootstrap(m.storage.entries(1, m.storage.lastIndex() + 1, Infinity));
    }
    this.note(`${id} starts${founding ? ' (founding member)' : ' empty'}, tick period ${m.tickPeriod}`);
    m.start();
    return m;
  }

  private crash(m: SimMember): void {
    this.note(`CRASH ${m.id}`);
    m.crash();
  }

  private restart(m: SimMember): void {
    this.note(`RESTART ${m.id} from disk: snapshot ${m.storage.snapshot().metadata.index}, log to ${m.storage.lastIndex()}, hard state ${JSON.stringify(m.storage.hardState())}`);
    m.start();
  }

  /** Live members of the newest configuration. */
  private targets(): SimMember[] {
    const inConfig = members(this.checker.latestConfig());
    const out: SimMember[] = [];
    for (const m of this.all.values()) if (m.alive && !m.retired && inConfig.has(m.id)) out.push(m);
    return out;
  }

  /** The live leader of the highest term, if any. */
  leader(): SimMember | undefined {
    let best: SimMember | undefined;
    let bestTerm = -1;
    for (const m of this.all.values()) {
      if (m.raft === null) continue;
      const st = m.raft.status();
      if (st.role === 'leader' && st.term > bestTerm) {
        best = m;
        bestTerm = st.term;
      }
    }
    return best;
  }

  applied(m: SimMember): void {
    this.clients.applied(m);
    if (this.checker.latestConfigIndex() !== this.seenConfigIndex) {
      this.seenConfigIndex = this.checker.latestConfigIndex();
      for (const id of members(this.checker.latestConfig())) this.everMember.add(id);
    }
    // A member that applied its own removal shuts down, as etcd's members do: after a delay
    // (etcd's stopWithDelay, about an election timeout), so that what it already sent still
    // arrives. Stopping at once lost a removed leader's news that its removal was committed,
    // and the others then needed it, gone for good, in the old configuration's quorum.
    const removed = this.everMember.has(m.id) && !members(this.checker.latestConfig()).has(m.id);
    if (!m.retired && !this.leaving.has(m.id) && removed && !members(this.checker.configAt(m.sm.index)).has(m.id)) {
      this.leaving.add(m.id);
      this.queue.after(ELECTION_TICK * BASE_TICK, () => this.retire(m, 'applied its removal'));
    }
  }

  readDone(client: number, ctx: string): void {
    this.clients.readDone(client, ctx);
  }

  private retire(m: SimMember, why: string): void {
    if (m.retired) return;
    this.note(`RETIRE ${m.id}: ${why}`);
    m.crash();
    m.retired = true;
  }

  /** Every tick: retire removed members, drive the final phase. */
  private housekeeping(): void {
    const now = this.queue.now;
    const inConfig = members(this.checker.latestConfig());
    for (const m of this.all.values()) {
      if (m.retired || !this.everMember.has(m.id) || inConfig.has(m.id)) {
        this.removedAt.delete(m.id);
        continue;
      }
      const since = this.removedAt.get(m.id);
      if (since === undefined) this.removedAt.set(m.id, now);
      else if (!m.alive || now - since > 30 * BASE_TICK) this.retire(m, 'removed from the configuration');
    }
    if (this.phase === 'final') this.monitorLiveness();
  }

  private enterFinalPhase(): void {
    this.phase = 'final';
    this.faults.stopped = true;
    this.admin.changing = false;
    this.net.heal();
    this.net.policy = this.scenario.healthyNet;
    this.healAt = this.queue.now;
    this.clients.measureFrom = this.queue.now;
    this.note('=== HEAL: network healthy, no more faults; measuring liveness ===');
    const inConfig = members(this.checker.latestConfig());
    for (const m of this.all.values()) {
      if (m.alive || m.retired) continue;
      if (this.everMember.has(m.id) && !inConfig.has(m.id)) this.retire(m, 'removed while down');
      else this.restart(m);
    }
  }

  private stableLeader(): SimMember | undefined {
    const l = this.leader();
    if (l === undefined || l.raft === null) return undefined;
    const st = l.raft.status();
    return logView(l.raft).term(st.commit) === st.term ? l : undefined;
  }

  private monitorLiveness(): void {
    const now = this.queue.now;
    const ticks = (now - this.healAt) / BASE_TICK;
    if (this.leaderAt < 0 && this.stableLeader() !== undefined) this.leaderAt = now;
    if (this.writesAt < 0) {
      const w = this.clients.measured();
      if (w.done) {
        this.writesAt = w.lastAckAt;
        this.catchUpTarget = this.checker.knownCommitted;
      }
    }
    if (this.writesAt >= 0 && this.catchUpAt < 0) {
      const behind = this.targets().filter((m) => m.sm.index < this.catchUpTarget);
      if (behind.length === 0 && this.targets().length === members(this.checker.latestConfig()).size) {
        this.catchUpAt = now;
        this.phase = 'done';
      }
      for (const m of behind) {
        const seen = this.progress.get(m.id);
        if (seen === undefined || seen.index !== m.sm.index) this.progress.set(m.id, { index: m.sm.index, at: now });
        else if (now - seen.at > LIVENESS.catchUpStallTicksMax * BASE_TICK) {
          this.fail('Liveness', `${m.id} is stuck at applied ${m.sm.index} (target ${this.catchUpTarget}) for ${LIVENESS.catchUpStallTicksMax} ticks`);
        }
      }
    }
    if (this.leaderAt < 0 && ticks > LIVENESS.leaderTicksMax) {
      this.fail('Liveness', `no leader with a committed entry of its term ${LIVENESS.leaderTicksMax} ticks after the heal`);
    }
    if (this.writesAt < 0 && ticks > LIVENESS.writeTicksMax) {
      this.fail('Liveness', `not every client's write was acknowledged ${LIVENESS.writeTicksMax} ticks after the heal`);
    }
    if (this.catchUpAt < 0 && ticks > LIVENESS.catchUpTicksMax) {
      const behind = this.targets().map((m) => `${m.id}@${m.sm.index}`).join(' ');
      this.fail('Liveness', `members did not catch up to ${this.catchUpTarget} within ${LIVENESS.catchUpTicksMax} ticks of the heal: ${behind}`);
    }
  }

  liveness(): Liveness | null {
    if (this.catchUpAt < 0) return null;
    return {
      leaderTicks: (this.leaderAt - this.healAt) / BASE_TICK,
      writeTicks: (this.writesAt - this.healAt) / BASE_TICK,
      catchUpTicks: (this.catchUpAt - this.healAt) / BASE_TICK,
    };
  }

  run(): void {
    const s = this.scenario;
    for (let i = 1; i <= s.members; i++) this.addMember(`n${i}`, true);
    this.seenConfigIndex = -1;
    this.faults.start();
    this.clients.start();
    if (s.adminEvery > 0) {
      const adminPrng = this.prng.fork('admin-timer');
      const loop = (): void => {
        this.queue.after(adminPrng.int(1, 2 * s.adminEvery), () => {
          this.admin.act();
          if (this.phase !== 'done') loop();
        });
      };
      loop();
    }
    const hk = (): void => {
      this.queue.after(BASE_TICK, () => {
        this.housekeeping();
        if (this.phase !== 'done') hk();
      });
    };
    hk();
    this.queue.at(s.faultPhase, () => this.enterFinalPhase());
    while (this.phase !== 'done') {
      const ev = this.queue.pop();
      if (ev === undefined) this.fail('Liveness', 'nothing left to happen');
      this.steps++;
      if (this.steps > STEPS_MAX) this.fail('Liveness', `runaway: more than ${STEPS_MAX} steps`);
      ev();
    }
  }

  stats(): Record<string, number> {
    return {
      delivered: this.net.delivered,
      dropped: this.net.dropped,
      leaders: this.checker.leaderCount(),
      committed: this.checker.knownCommitted,
      crashes: this.faults.crashes,
      partitions: this.faults.partitions,
      confChanges: this.admin.changesProposed,
      writes: this.clients.stats.writesAcked,
      reads: this.clients.stats.readsServed,
      refused: this.clients.stats.proposalsRefused,
      retries: this.clients.stats.retries,
      members: this.all.size,
    };
  }
}

export function runSeed(seed: number, opts: RunOptions = {}): RunResult {
  const scenario = makeScenario(seed, opts);
  const sim = new Simulation(scenario, opts);
  let violation: RunViolation | null = null;
  try {
    sim.run();
  } catch (e) {
    if (e instanceof Violation) violation = { invariant: e.invariant, detail: e.detail, step: sim.steps, time: sim.queue.now };
    else if (e instanceof AssertionError) violation = { invariant: 'Raft assertion', detail: e.message, step: sim.steps, time: sim.queue.now };
    else if (e instanceof Error) violation = { invariant: `crash (${e.name})`, detail: `${e.message}\n${e.stack ?? ''}`, step: sim.steps, time: sim.queue.now };
    else throw e;
  }
  return { seed, scenario, steps: sim.steps, violation, liveness: violation === null ? sim.liveness() : null, stats: sim.stats(), trace: sim.trace.lines };
}
