/**
 * Simulated clients. Each runs one operation at a time against a member it picks: a write
 * ("c<client>-<seq>", acknowledged once that member has applied it; retried — possibly
 * elsewhere — after a timeout, so the same value may be committed twice and applies once) or
 * a linearizable read (ReadIndex, served once the member has applied the read's index).
 */
import type { NodeId } from '../../src/raft/types.ts';
import type { SimHost } from './host.ts';
import type { SimMember } from './member.ts';
import type { Prng } from './prng.ts';
import { encodeOp } from './state-machine.ts';

export interface ClientParams {
  readonly count: number;
  /** Time units between a client's operations. */
  readonly thinkMin: number;
  readonly thinkMax: number;
  readonly writeTimeout: number;
  readonly readTimeout: number;
  readonly readRatio: number;
}

type Pending =
  | { readonly kind: 'write'; readonly seq: number; member: NodeId; sentAt: number; readonly issuedAt: number }
  | { readonly kind: 'read'; readonly ctx: string; readonly member: NodeId; readonly sentAt: number };

interface ClientState {
  readonly id: number;
  seq: number;
  reads: number;
  pending: Pending | null;
  /** Liveness: when the first write issued after `measureFrom` was acknowledged. */
  measuredAckAt: number;
}

export interface ClientStats {
  writesAcked: number;
  readsServed: number;
  proposalsRefused: number;
  retries: number;
}

export class Clients {
  private readonly clients: ClientState[] = [];
  /** Candidates to talk to (set by the simulation: live members of the current config). */
  targets: () => SimMember[] = () => [];
  leader: () => SimMember | undefined = () => undefined;
  /** Writes issued at or after this time count for the liveness measurement. */
  measureFrom = Infinity;
  readonly stats: ClientStats = { writesAcked: 0, readsServed: 0, proposalsRefused: 0, retries: 0 };

  constructor(
    private readonly host: SimHost,
    private readonly prng: Prng,
    private readonly params: ClientParams,
  ) {
    for (let i = 1; i <= params.count; i++) this.clients.push({ id: i, seq: 0, reads: 0, pending: null, measuredAckAt: -1 });
  }

  start(): void {
    for (const c of this.clients) this.schedule(c);
  }

  private schedule(c: ClientState): void {
    this.host.queue.after(this.prng.int(this.params.thinkMin, this.params.thinkMax), () => {
      this.act(c);
      this.schedule(c);
    });
  }

  /** Whether every client has had a write issued after measureFrom acknowledged; the worst time. */
  measured(): { done: boolean; lastAckAt: number } {
    let last = 0;
    for (const c of this.clients) {
      if (c.measuredAckAt < 0) return { done: false, lastAckAt: -1 };
      last = Math.max(last, c.measuredAckAt);
    }
    return { done: true, lastAckAt: last };
  }

  private pickMember(): SimMember | undefined {
    const leader = this.leader();
    if (leader !== undefined && this.prng.chance(0.5)) return leader;
    const ts = this.targets();
    return ts.length === 0 ? undefined : this.prng.pick(ts);
  }

  private act(c: ClientState): void {
    const now = this.host.queue.now;
    const p = c.pending;
    if (p !== null) {
      if (p.kind === 'write' && now - p.sentAt >= this.params.writeTimeout) {
        this.stats.retries++;
        this.propose(c, p.seq, p.issuedAt);
      } else if (p.kind === 'read' && now - p.sentAt >= this.params.readTimeout) {
        this.host.member(p.member)?.reads.delete(p.ctx);
        c.pending = null;
      }
      return;
    }
    if (this.prng.chance(this.params.readRatio)) this.read(c);
    else this.propose(c, ++c.seq, now);
  }

  private propose(c: ClientState, seq: number, issuedAt: number): void {
    const now = this.host.queue.now;
    const m = this.pickMember();
    // Until accepted somewhere, the write stays pending and is retried on the next turn.
    c.pending = { kind: 'write', seq, member: m?.id ?? '', sentAt: -Infinity, issuedAt };
    if (m === undefined) return;
    const out = m.input((r) => r.propose([encodeOp({ client: c.id, seq })]));
    this.host.trace.on && this.host.trace.add(now, `client ${c.id} proposes c${c.id}-${seq} at ${m.id}: ${out === undefined ? 'down' : out.ok ? 'ok' : out.reason}`);
    if (out === undefined || !out.ok) {
      this.stats.proposalsRefused++;
      return;
    }
    c.pending = { kind: 'write', seq, member: m.id, sentAt: now, issuedAt };
    this.checkAck(c, m);
  }

  private read(c: ClientState): void {
    const m = this.pickMember();
    if (m === undefined) return;
    const ctx = `r${c.id}.${++c.reads}`;
    const ok = m.read(c.id, ctx);
    this.host.trace.on && this.host.trace.add(this.host.queue.now, `client ${c.id} reads ${ctx} at ${m.id}: ${ok ? 'ok' : 'refused'}`);
    if (ok && c.pending === null) c.pending = { kind: 'read', ctx, member: m.id, sentAt: this.host.queue.now };
  }

  /** Member `m` applied something: acknowledge writes it now reflects. */
  applied(m: SimMember): void {
    for (const c of this.clients) {
      const p = c.pending;
      if (p !== null && p.kind === 'write' && p.member === m.id) this.checkAck(c, m);
    }
  }

  private checkAck(c: ClientState, m: SimMember): void {
    const p = c.pending;
    if (p === null || p.kind !== 'write' || m.sm.seqOf(c.id) < p.seq) return;
    c.pending = null;
    this.stats.writesAcked++;
    this.host.checker.writeAcknowledged(c.id, p.seq, m.sm);
    const now = this.host.queue.now;
    this.host.trace.on && this.host.trace.add(now, `client ${c.id} write c${c.id}-${p.seq} acknowledged by ${m.id} at applied ${m.sm.index}`);
    if (c.measuredAckAt < 0 && p.issuedAt >= this.measureFrom) c.measuredAckAt = now;
  }

  readDone(client: number, ctx: string): void {
    const c = this.clients[client - 1];
    if (c === undefined) return;
    this.stats.readsServed++;
    if (c.pending !== null && c.pending.kind === 'read' && c.pending.ctx === ctx) c.pending = null;
  }
}
