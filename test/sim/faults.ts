/**
 * The fault injector of the faulty phase: partitions (symmetric splits, one-way cuts, the
 * leader isolated), heals, crashes at arbitrary points of a member's Ready pipeline followed by
 * restarts, forced elections and leadership transfers. Message loss, duplication and delays
 * are the network policy's business.
 */
import type { NodeId } from '../../src/raft/types.ts';
import type { CrashPoint, SimHost } from './host.ts';
import type { SimMember } from './member.ts';
import type { Prng } from './prng.ts';

export interface FaultParams {
  /** Mean time units between partition changes (0: never). */
  readonly partitionEvery: number;
  readonly partitionMax: number;
  /** Mean time units between crashes (0: never). */
  readonly crashEvery: number;
  readonly downMin: number;
  readonly downMax: number;
  /** Mean time units between forced campaigns / leadership transfers (0: never). */
  readonly campaignEvery: number;
  /** Probability of crashing right after a member persisted and announced a vote / new entries. */
  readonly crashAfterVote: number;
  readonly crashAfterAppend: number;
  /** Probability of crashing a leader right after its commit index advanced. */
  readonly crashAfterCommit: number;
  readonly transferEvery: number;
}

export interface FaultHooks {
  /** Members that exist and are not retired. */
  all(): SimMember[];
  leader(): SimMember | undefined;
  crash(m: SimMember): void;
  restart(m: SimMember): void;
}

export class Faults {
  stopped = false;
  crashes = 0;
  partitions = 0;
  private generation = 0;

  constructor(
    private readonly host: SimHost,
    private readonly prng: Prng,
    private readonly params: FaultParams,
    private readonly hooks: FaultHooks,
  ) {}

  start(): void {
    const p = this.params;
    if (p.partitionEvery > 0) this.every(p.partitionEvery, () => this.partition());
    if (p.crashEvery > 0) this.every(p.crashEvery, () => this.crash());
    if (p.campaignEvery > 0) this.every(p.campaignEvery, () => this.campaign());
    if (p.transferEvery > 0) this.every(p.transferEvery, () => this.transfer());
  }

  private every(mean: number, fn: () => void): void {
    this.host.queue.after(this.prng.int(1, 2 * mean), () => {
      if (this.stopped) return;
      fn();
      this.every(mean, fn);
    });
  }

  private ids(): NodeId[] {
    return this.hooks.all().map((m) => m.id);
  }

  private note(line: string): void {
    if (this.host.trace.on) this.host.trace.add(this.host.queue.now, line);
  }

  private partition(): void {
    const net = this.host.net;
    const ids = this.ids();
    net.heal();
    this.partitions++;
    const gen = ++this.generation;
    const kind = this.prng.int(0, 5);
    const leader = this.hooks.leader()?.id;
    switch (kind) {
      case 0: {
        const side = this.prng.subset(ids, 0.5);
        net.partition([side, ids.filter((x) => !side.includes(x))]);
        break;
      }
      case 1:
        if (leader !== undefined) net.partition([[leader], ids.filter((x) => x !== leader)]);
        break;
      case 2: {
        // Asymmetric: a few one-way cuts.
        const n = this.prng.int(1, ids.length);
        for (let i = 0; i < n; i++) {
          const a = this.prng.pick(ids);
          const b = this.prng.pick(ids);
          if (a !== b) net.cutOneWay(a, b);
        }
        break;
      }
      case 3: {
        // One member can hear but not speak (or speak but not hear).
        const x = leader !== undefined && this.prng.chance(0.5) ? leader : this.prng.pick(ids);
        const outbound = this.prng.chance(0.5);
        for (const y of ids) if (y !== x) (outbound ? net.cutOneWay(x, y) : net.cutOneWay(y, x));
        break;
      }
      case 4: {
        // Three groups.
        const groups: NodeId[][] = [[], [], []];
        for (const x of ids) groups[this.prng.int(0, 2)]!.push(x);
        net.partition(groups);
        break;
      }
      default:
        break; // healed
    }
    this.note(`partition: ${net.describeCuts() || 'healed'}`);
    const last = this.prng.int(1, this.params.partitionMax);
    this.host.queue.after(last, () => {
      if (this.stopped || gen !== this.generation) return;
      net.heal();
      this.note('partition healed');
    });
  }

  private mayCrash(): boolean {
    const all = this.hooks.all();
    const down = all.filter((m) => !m.alive).length;
    return !this.stopped && down < Math.floor(all.length / 2);
  }

  private crash(): void {
    const alive = this.hooks.all().filter((m) => m.alive);
    if (alive.length === 0 || !this.mayCrash()) return;
    const leader = this.hooks.leader();
    const victim = leader !== undefined && this.prng.chance(0.4) ? leader : this.prng.pick(alive);
    this.crashAndRestart(victim, this.prng.int(this.params.downMin, this.params.downMax));
  }

  private crashAndRestart(victim: SimMember, downtime: number): void {
    this.crashes++;
    this.hooks.crash(victim);
    this.host.queue.after(downtime, () => {
      if (!victim.alive && !victim.retired) this.hooks.restart(victim);
    });
  }

  /** Called at interesting points of a member's pipeline: maybe crash it right there. */
  crashPoint(m: SimMember, point: CrashPoint): void {
    const p = point === 'vote' ? this.params.crashAfterVote : point === 'append' ? this.params.crashAfterAppend : this.params.crashAfterCommit;
    if (!this.prng.chance(p) || !this.mayCrash()) return;
    const down = point === 'commit' ? this.prng.int(this.params.downMin, this.params.downMax) : this.prng.int(this.params.downMin, 3 * this.params.downMin);
    this.note(`crash point: ${m.id} after ${point}`);
    this.crashAndRestart(m, down);
  }

  private campaign(): void {
    const alive = this.hooks.all().filter((m) => m.alive);
    if (alive.length === 0) return;
    const m = this.prng.pick(alive);
    this.note(`${m.id} campaigns (forced)`);
    m.input((r) => r.campaign());
  }

  private transfer(): void {
    const leader = this.hooks.leader();
    const others = this.hooks.all().filter((m) => m !== leader);
    if (leader === undefined || others.length === 0) return;
    const to = this.prng.pick(others);
    this.note(`${leader.id} transfers leadership to ${to.id}`);
    leader.input((r) => r.transferLeadership(to.id));
  }
}
