/**
 * The simulated network: every message gets a delivery delay (so messages reorder), may be
 * lost or duplicated, and is dropped when its link is cut — at send time or while in flight.
 * Links are one-way, so partitions can be symmetric or asymmetric. Messages to or from a
 * member that crashed after they were sent are lost with it. Whoever sent a snapshot hears
 * whether it arrived (reportSnapshot), as a real transport would tell it.
 */
import type { Message, NodeId } from '../../src/raft/types.ts';
import type { SimHost } from './host.ts';
import type { Prng } from './prng.ts';
import { describeMessage } from './trace.ts';

export interface NetworkPolicy {
  /** Probability that a message is lost. */
  loss: number;
  /** Probability that a message is delivered twice. */
  duplicate: number;
  /** Delivery delay range, in sim time units. */
  delayMin: number;
  delayMax: number;
  /** Probability of an extra long delay (a slow packet overtaken by later ones). */
  spike: number;
  spikeMax: number;
}

export class Network {
  private readonly cut = new Set<string>();
  delivered = 0;
  dropped = 0;

  constructor(
    private readonly host: SimHost,
    private readonly prng: Prng,
    public policy: NetworkPolicy,
  ) {}

  isCut(from: NodeId, to: NodeId): boolean {
    return this.cut.size > 0 && this.cut.has(`${from}>${to}`);
  }

  cutOneWay(from: NodeId, to: NodeId): void {
    this.cut.add(`${from}>${to}`);
  }

  /** Splits the members into groups that cannot reach each other (both ways). */
  partition(groups: readonly (readonly NodeId[])[]): void {
    for (let a = 0; a < groups.length; a++) {
      for (let b = 0; b < groups.length; b++) {
        if (a === b) continue;
        for (const x of groups[a]!) for (const y of groups[b]!) this.cutOneWay(x, y);
      }
    }
  }

  heal(): void {
    this.cut.clear();
  }

  describeCuts(): string {
    return [...this.cut].sort().join(' ');
  }

  send(m: Message): void {
    const from = this.host.member(m.from);
    const to = this.host.member(m.to);
    if (from === undefined) return;
    const fromInc = from.incarnation;
    const p = this.policy;
    const lost = to === undefined || to.retired || this.isCut(m.from, m.to) || this.prng.chance(p.loss);
    if (lost) {
      this.drop(m, fromInc, 'lost');
      if (to !== undefined && m.type === 'app' && this.isCut(m.from, m.to) && this.prng.chance(0.3)) {
        // The transport noticed the peer is unreachable.
        this.host.queue.after(this.delay(), () => {
          if (from.incarnation === fromInc) from.input((r) => r.reportUnreachable(m.to));
        });
      }
      return;
    }
    const toInc = to.incarnation;
    this.schedule(m, fromInc, toInc);
    if (this.prng.chance(p.duplicate)) this.schedule(m, fromInc, toInc);
  }

  private delay(): number {
    const p = this.policy;
    let d = this.prng.int(p.delayMin, p.delayMax);
    if (this.prng.chance(p.spike)) d += this.prng.int(0, p.spikeMax);
    return d;
  }

  private schedule(m: Message, fromInc: number, toInc: number): void {
    this.host.queue.after(this.delay(), () => {
      const from = this.host.member(m.from)!;
      const to = this.host.member(m.to)!;
      if (to.incarnation !== toInc || !to.alive || to.retired || from.incarnation !== fromInc || this.isCut(m.from, m.to)) {
        this.drop(m, fromInc, 'lost in flight');
        return;
      }
      this.delivered++;
      this.host.trace.add(this.host.queue.now, describeMessage(m));
      to.deliver(m);
      if (m.type === 'snap' && from.incarnation === fromInc) from.input((r) => r.reportSnapshot(m.to, true));
    });
  }

  private drop(m: Message, fromInc: number, why: string): void {
    this.dropped++;
    if (this.host.trace.on) this.host.trace.add(this.host.queue.now, `✗ ${why}: ${describeMessage(m)}`);
    if (m.type !== 'snap') return;
    const from = this.host.member(m.from);
    if (from === undefined) return;
    this.host.queue.after(this.delay(), () => {
      if (from.incarnation === fromInc) from.input((r) => r.reportSnapshot(m.to, false));
    });
  }
}
