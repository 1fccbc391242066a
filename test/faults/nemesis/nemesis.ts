/**
 * The nemesis: injects one fault at a time into the running cluster, holds it, heals it, rests,
 * and goes again until told to stop, every choice drawn from the run's seed. Fault kinds:
 *
 *   kill       SIGKILL a minority (the leader half of the time), now and then a majority or
 *              every member at once (acknowledged writes must survive), restart them at the heal;
 *   pause      SIGSTOP members chosen alike, SIGCONT at the heal; now and then the leader
 *              alone, cut off from the others while it is stopped and for a moment after it
 *              continues (a stale leader that still believes it leads, serving its clients);
 *   partition  cut the peer network (partitions.ts: majority/minority, isolated leader, bridge,
 *              one-way), heal it;
 *   disk       slow the fsyncs of one member, or make them fail now and then (the member must
 *              then stop; it is restarted at the heal), through its test hooks;
 *   clock      jump one member's lease clock forward (never back: it is a monotonic clock),
 *              at most clockJumpMaxMs at a time;
 *   member     remove a member under load, then add a fresh one in its place.
 *
 * The leader comes from the cluster's Status poller, so "the leader" may be a step behind; the
 * log says whom each fault hit. Everything is healed by healAll() at the end.
 */
import type { Prng } from '../../sim/prng.ts';
import { errorText, type Clock } from '../client.ts';
import { CLUSTER_LIMITS, type FaultCluster } from '../cluster.ts';
import { PARTITION_KINDS, planPartition } from './partitions.ts';

export const NEMESIS_KINDS = ['kill', 'pause', 'partition', 'disk', 'clock', 'member'] as const;
export type NemesisKind = (typeof NEMESIS_KINDS)[number];

export const NEMESIS_LIMITS = {
  /** Tries at adding a member back after a removal. */
  memberAddAttempts: 8,
  /** How long a membership change waits for every member to be up before it is skipped (ms). */
  memberUpWaitMs: 5_000,
  /** How long a paused, cut-off leader runs on cut off before the heal (ms). */
  staleLeaderMs: [500, 2_000] as [number, number],
} as const;

export interface NemesisTiming {
  /** A fault is held for a duration drawn from this range (ms). */
  readonly holdMs: readonly [number, number];
  /** Rest between faults (ms). */
  readonly restMs: readonly [number, number];
  /** Largest single forward jump of a lease clock; the lease checker allows for it. */
  readonly clockJumpMaxMs: number;
}

export const NEMESIS_DEFAULTS: NemesisTiming = {
  holdMs: [2_000, 6_000],
  restMs: [1_500, 4_000],
  clockJumpMaxMs: 600,
};

export interface FaultRecord {
  readonly kind: NemesisKind;
  readonly start: number;
  /** When it was healed (for an instant fault like a clock jump, its start). */
  end: number;
  readonly detail: string;
  /** For a clock jump: the member and how far. */
  readonly jump?: { readonly member: string; readonly ms: number };
  /** The fault could not be applied as planned (e.g. a membership change was refused). */
  error?: string;
}

export class Nemesis {
  readonly log: FaultRecord[] = [];
  private stopped = false;
  private wake: (() => void) | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly cluster: FaultCluster,
    private readonly kinds: readonly NemesisKind[],
    private readonly rng: Prng,
    private readonly clock: Clock,
    private readonly timing: NemesisTiming = NEMESIS_DEFAULTS,
    private readonly say: (line: string) => void = () => {},
  ) {}

  start(): void {
    this.running = this.loop();
  }

  /** Stops after healing the fault in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.running;
  }

  /** How many faults of each kind were injected. */
  counts(): Map<NemesisKind, number> {
    const c = new Map<NemesisKind, number>();
    for (const f of this.log) c.set(f.kind, (c.get(f.kind) ?? 0) + 1);
    return c;
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }

  private async loop(): Promise<void> {
    // Kinds come round in a shuffled order, so a short run still sees every one of them.
    let queue: NemesisKind[] = [];
    while (!this.stopped) {
      await this.sleep(this.rng.int(...this.timing.restMs));
      if (this.stopped) break;
      if (queue.length === 0) queue = this.rng.shuffle(this.kinds);
      const kind = queue.shift()!;
      const record: FaultRecord = { kind, start: this.clock(), end: this.clock(), detail: '' };
      try {
        await this.inject(kind, record);
      } catch (e) {
        record.error = errorText(e);
      }
      record.end = this.clock();
      this.log.push(record);
      this.say(`nemesis ${kind}: ${record.detail}${record.error === undefined ? '' : ` (error: ${record.error})`} [${(record.start / 1000).toFixed(1)}–${(record.end / 1000).toFixed(1)} s]`);
    }
  }

  private hold(): Promise<void> {
    return this.sleep(this.rng.int(...this.timing.holdMs));
  }

  /**
   * Running members to hit: usually a minority (so the rest carry on), with the leader in it
   * half of the time; sometimes a majority, or all of them.
   */
  private victims(): string[] {
    const running = this.cluster.withState('running');
    const size = this.cluster.members().length;
    const minority = Math.max(1, Math.floor((size - 1) / 2));
    const roll = this.rng.next();
    const n = roll < 0.7 ? this.rng.int(1, minority) : roll < 0.85 ? minority + 1 : size;
    const leader = this.cluster.leader();
    const first = leader !== undefined && running.includes(leader) && this.rng.chance(0.5) ? [leader] : [];
    const rest = this.rng.shuffle(running.filter((m) => !first.includes(m)));
    return [...first, ...rest].slice(0, Math.min(n, running.length));
  }

  private leaderOrAny(): string | undefined {
    const running = this.cluster.withState('running');
    const leader = this.cluster.leader();
    if (leader !== undefined && running.includes(leader) && this.rng.chance(0.5)) return leader;
    return running.length === 0 ? undefined : this.rng.pick(running);
  }

  private tag(names: readonly string[]): string {
    const leader = this.cluster.leader();
    return names.map((n) => (n === leader ? `${n}(leader)` : n)).join(' ');
  }

  private async inject(kind: NemesisKind, record: { detail: string; jump?: { member: string; ms: number } }): Promise<void> {
    const c = this.cluster;
    switch (kind) {
      case 'kill': {
        const victims = this.victims();
        record.detail = `kill ${this.tag(victims)}`;
        for (const v of victims) await c.kill(v);
        await this.hold();
        for (const v of victims) if (c.state(v) === 'killed') await c.restart(v);
        return;
      }
      case 'pause': {
        const leader = c.leader();
        if (leader !== undefined && c.state(leader) === 'running' && this.rng.chance(0.35)) {
          await this.staleLeader(leader, record);
          return;
        }
        const victims = this.victims();
        record.detail = `pause ${this.tag(victims)}`;
        for (const v of victims) c.pause(v);
        await this.hold();
        for (const v of victims) c.resume(v);
        return;
      }
      case 'partition': {
        const shape = this.rng.pick(PARTITION_KINDS);
        const p = planPartition(shape, c.members(), c.leader(), this.rng);
        record.detail = `${shape}: ${p.description}`;
        c.network.setBlocked(p.blocked);
        await this.hold();
        c.network.heal();
        return;
      }
      case 'disk': {
        const victim = this.leaderOrAny();
        if (victim === undefined) return;
        const failing = this.rng.chance(0.3);
        const delay = this.rng.int(20, 250);
        const values = failing ? { fsyncDelayMs: delay, fsyncFailProbability: 0.05 } : { fsyncDelayMs: delay };
        record.detail = `${this.tag([victim])} fsync ${failing ? `fails 5% and takes ${delay} ms` : `takes ${delay} ms`}`;
        c.setHooks(victim, values);
        await this.hold();
        c.setHooks(victim, { fsyncDelayMs: 0, fsyncFailProbability: 0 });
        // A sync that started failing before the reset may end the member just after it.
        if (failing) await this.sleep(CLUSTER_LIMITS.failingDiskGraceMs);
        if (c.state(victim) === 'crashed') {
          record.detail += ' (it stopped on a failed fsync; restarted)';
          await c.restart(victim);
        }
        return;
      }
      case 'clock': {
        const victim = this.leaderOrAny();
        if (victim === undefined) return;
        const ms = this.rng.int(Math.ceil(this.timing.clockJumpMaxMs / 4), this.timing.clockJumpMaxMs);
        c.setHooks(victim, { leaseClockOffsetMs: c.hookValues(victim).leaseClockOffsetMs + ms });
        record.detail = `${this.tag([victim])} lease clock jumps +${ms} ms`;
        record.jump = { member: victim, ms };
        return;
      }
      case 'member': {
        await this.replaceMember(record);
        return;
      }
    }
  }

  /**
   * Stops the leader and cuts it off; the others elect a new leader meanwhile. The old one
   * continues still cut off, believing it leads until its quorum check, then the network heals.
   */
  private async staleLeader(leader: string, record: { detail: string }): Promise<void> {
    const c = this.cluster;
    const others = c.members().filter((m) => m !== leader);
    record.detail = `pause ${leader}(leader) cut off, continue it cut off, then heal`;
    c.pause(leader);
    c.network.setBlocked(others.flatMap((o): [string, string][] => [[leader, o], [o, leader]]));
    // Longer than a usual hold: long enough for the others to elect, and expire short leases.
    await this.sleep(this.timing.holdMs[1] + this.rng.int(2_000, 4_000));
    c.resume(leader);
    await this.sleep(this.rng.int(...NEMESIS_LIMITS.staleLeaderMs));
    c.network.heal();
  }

  /** Removes a member (the leader now and then) and adds a fresh one in its place. */
  private async replaceMember(record: { detail: string }): Promise<void> {
    const c = this.cluster;
    // Members are removed only from a healthy cluster: the leader refuses changes that could
    // cost the quorum anyway, and the point is a change under load, not under other faults.
    // One restarted by the last fault may still be starting: give it a moment.
    for (let waited = 0; c.answeringMembers().length !== c.members().length && waited < NEMESIS_LIMITS.memberUpWaitMs; waited += 250) await this.sleep(250);
    const running = c.answeringMembers();
    if (running.length !== c.members().length || running.length < 3) throw new Error('skipped: not every member is up');
    const victim = this.rng.chance(0.3) && c.leader() !== undefined ? c.leader()! : this.rng.pick(running);
    const via = this.rng.pick(running.filter((m) => m !== victim));
    record.detail = `remove ${this.tag([victim])}`;
    try {
      await c.removeMember(victim, via);
    } catch (e) {
      // The answer was lost or refused: the member list says what happened.
      if (await c.isListed(victim, via).catch(() => true)) {
        record.detail += ` refused (${errorText(e)})`;
        return;
      }
      await c.retire(victim);
    }
    // The leader refuses an add until the members it has are active again: try for a while.
    for (let attempt = 1; ; attempt++) {
      await this.sleep(this.rng.int(500, 2_000));
      try {
        const added = await c.addMember(this.rng.pick(c.answeringMembers()));
        record.detail += `, add ${added}`;
        return;
      } catch (e) {
        if (attempt >= NEMESIS_LIMITS.memberAddAttempts) throw e;
      }
    }
  }
}
