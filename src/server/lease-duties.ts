/**
 * What the leader does for leases, driving the pure lessor as its doc asks: promote on applying
 * the first entry of its own term, demote on losing leadership, and while primary, every
 * leaseExpiryCheckIntervalMs, propose revokes for expired leases and checkpoints of long ones.
 * Proposals are fire-and-forget: a lost one is reported again by the lessor after its retry
 * interval (expired) or at the next checkpoint interval.
 */
import { checkpointCallMax, leaseExpiryCheckIntervalMs, revokeBatchMax, type LeaseId, type Lessor } from '../lease/index.ts';
import { ServerError } from './errors.ts';
import type { LeaseRequest } from './request-codec.ts';
import { hookedMonotonicClock } from '../util/test-hooks.ts';

/** The monotonic clock lease deadlines are kept on (a test-only hook may offset it: src/util/test-hooks.ts). */
export const leaseClock: () => number = hookedMonotonicClock;

export interface LeaseDutiesOptions {
  /** True when this member is the leader and `term` is its current term. */
  isLeaderOfTerm(term: number): boolean;
  /** Added to every deadline on promotion: no keep-alive could arrive during an election. */
  readonly electionTimeoutMs: number;
  /**
   * Proposes a lease request only while this member leads in `term`: a leader deposed since it
   * decided (a stopped leader that continues, say) must not have the new leader commit its
   * expiries, checkpoints or renewals (RaftDriver.proposeBatched).
   */
  propose(request: LeaseRequest, term: number): Promise<unknown>;
  readonly log: { debug(msg: string): void; warn(msg: string): void };
  readonly checkIntervalMs?: number;
}

export class LeaseDuties {
  private timer: NodeJS.Timeout | null = null;
  private readonly intervalMs: number;
  /** The term this member was promoted in (its proposals are valid only while it leads in it). */
  private term = 0;

  constructor(
    private readonly lessor: Lessor,
    private readonly opts: LeaseDutiesOptions,
  ) {
    this.intervalMs = opts.checkIntervalMs ?? leaseExpiryCheckIntervalMs;
  }

  /** An empty entry of `term` was applied: if it is this leader's own, take over the leases. */
  onEmptyEntry(term: number): void {
    if (this.lessor.isPrimary || !this.opts.isLeaderOfTerm(term)) return;
    this.lessor.promote(leaseClock(), this.opts.electionTimeoutMs);
    this.term = term;
    this.timer ??= setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
  }

  demote(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    if (this.lessor.isPrimary) this.lessor.demote();
  }

  /** A keep-alive made a checkpointed remaining TTL stale: clear it through the log. */
  clearCheckpoint(id: LeaseId): void {
    this.send({ op: 'leaseCheckpoint', checkpoints: [{ id, remainingTtl: 0 }] });
  }

  stop(): void {
    this.demote();
  }

  private tick(): void {
    if (!this.lessor.isPrimary) return;
    const now = leaseClock();
    for (const id of this.lessor.expired(now, revokeBatchMax(this.lessor.limits, this.intervalMs))) this.send({ op: 'leaseRevoke', id });
    const due = this.lessor.checkpointsDue(now, checkpointCallMax(this.lessor.limits, this.intervalMs));
    for (let i = 0; i < due.length; i += this.lessor.limits.checkpointBatchMax) {
      this.send({ op: 'leaseCheckpoint', checkpoints: due.slice(i, i + this.lessor.limits.checkpointBatchMax) });
    }
  }

  private send(request: LeaseRequest): void {
    this.opts.propose(request, this.term).catch((e: unknown) => {
      if (!(e instanceof ServerError)) throw e;
      // Revoking a lease already revoked (a retry whose first try applied) is expected.
      if (e.code !== 'LEASE_NOT_FOUND') this.opts.log.warn(`lease ${request.op} proposal failed: ${e.message}`);
    });
  }
}
