/**
 * Linearizable reads with one ReadIndex round per batch: every read that arrives while a round
 * is in flight joins the next round; when a round's read index is known and this member has
 * applied up to it, the whole batch may read its local state. A read thus sees every write
 * acknowledged before it started, without going through the log.
 */
import type { Outcome, ReadState } from '../raft/types.ts';
import { serverError, type ServerError } from './errors.ts';

interface Reader {
  resolve(): void;
  reject(e: ServerError): void;
}

export interface ReadIndexSource {
  readIndex(context: Uint8Array): Outcome;
  applied(): number;
}

export class LinearizableReads {
  private queued: Reader[] = [];
  private round: { context: string; readers: Reader[]; timer: NodeJS.Timeout } | null = null;
  private waitingApply: { index: number; readers: Reader[] }[] = [];
  private counter = 0;

  /** `memberId` (hex) prefixes every context: the leader queues reads of all members by context. */
  constructor(
    private readonly source: ReadIndexSource,
    private readonly memberId: string,
    private readonly timeoutMs: number,
  ) {}

  /** Resolves once local state reflects every write committed before this call. */
  wait(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queued.push({ resolve, reject });
      if (this.round === null) this.startRound();
    });
  }

  onReadStates(states: readonly ReadState[]): void {
    const round = this.round;
    if (round === null) return;
    for (const s of states) {
      if (Buffer.from(s.context).toString('hex') !== round.context) continue;
      clearTimeout(round.timer);
      this.round = null;
      this.waitingApply.push({ index: s.index, readers: round.readers });
      this.onApplied(this.source.applied());
      if (this.queued.length > 0) this.startRound();
      return;
    }
  }

  onApplied(applied: number): void {
    if (this.waitingApply.length === 0) return;
    const still: typeof this.waitingApply = [];
    for (const w of this.waitingApply) {
      if (w.index <= applied) for (const r of w.readers) r.resolve();
      else still.push(w);
    }
    this.waitingApply = still;
  }

  /**
   * The leader changed or was lost: the ReadIndex request in flight went to the old leader and
   * may never be answered, so its reads fail now with LEADER_CHANGED (as etcd's do) instead of
   * waiting out the timeout; clients retry them. Reads queued behind it get a new round.
   */
  onLeaderChanged(): void {
    const round = this.round;
    if (round === null) return;
    clearTimeout(round.timer);
    this.round = null;
    const e = serverError('LEADER_CHANGED');
    for (const r of round.readers) r.reject(e);
    if (this.queued.length > 0) this.startRound();
  }

  /** Fails every pending read (the member is stopping). */
  failAll(e: ServerError): void {
    const all = [...this.queued, ...(this.round?.readers ?? []), ...this.waitingApply.flatMap((w) => w.readers)];
    if (this.round !== null) clearTimeout(this.round.timer);
    this.queued = [];
    this.round = null;
    this.waitingApply = [];
    for (const r of all) r.reject(e);
  }

  private startRound(): void {
    const readers = this.queued;
    this.queued = [];
    const ctx = Buffer.alloc(16);
    ctx.write(this.memberId.padStart(16, '0').slice(-16), 0, 8, 'hex');
    ctx.writeDoubleBE(++this.counter, 8);
    const outcome = this.source.readIndex(ctx);
    if (!outcome.ok) {
      const e = serverError(outcome.reason === 'noLeader' ? 'NO_LEADER' : 'PROPOSAL_DROPPED');
      for (const r of readers) r.reject(e);
      return;
    }
    const timer = setTimeout(() => {
      if (this.round?.context !== ctx.toString('hex')) return;
      this.round = null;
      for (const r of readers) r.reject(serverError('TIMEOUT'));
      if (this.queued.length > 0) this.startRound();
    }, this.timeoutMs);
    this.round = { context: ctx.toString('hex'), readers, timer };
  }
}
