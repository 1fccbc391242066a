/**
 * Lease guarantees checked after the fact, pure. All times are the harness's monotonic clock.
 *
 * Not too early. A renewal (the grant, or a keep-alive answered with a TTL > 0) sent at time s
 * reached the leader at some s' ≥ s, which then held the lease at least until s' + TTL. So if the
 * lease is seen gone at t (a linearizable read that returned at t without the key, a keep-alive
 * answered TTL 0 at t), then t ≥ s + TTL for every successful renewal sent before t, unless the
 * client revoked it; less the forward lease-clock jumps the nemesis injected in between (a leader
 * whose clock jumps J ahead expires its leases J early: that is what a clock jump means).
 *
 * Not too late. Once renewals stop at time a (the last renewal's answer, or for one never
 * answered its sending plus how long a forwarded keep-alive may live), the keys must be gone by
 * a + TTL + election timeout + slack, a bound pushed out by what legitimately restarts the
 * countdown: a leader change at p (the new leader starts from at most the full TTL plus one
 * election timeout) and a fault in progress, which may end in one (the bound restarts at its
 * heal). A read invoked after the bound that still sees the key is an anomaly.
 *
 * Revoke. A read invoked after a revoke was acknowledged must not see the key.
 */

export interface Renewal {
  /** When the request left. */
  readonly sent: number;
  /** When the answer came, or null (timed out / failed: the leader may have renewed anyway). */
  readonly answered: number | null;
  /** The TTL answered: > 0 renewed, 0 the lease was gone. Null when unanswered. */
  readonly ttl: number | null;
}

export interface KeyRead {
  readonly call: number;
  readonly ret: number;
  readonly present: boolean;
}

export interface LeaseLog {
  readonly id: string;
  readonly key: string;
  readonly ttlMs: number;
  /** The grant, then each keep-alive. */
  readonly renewals: readonly Renewal[];
  /** When the put attaching the key was acknowledged; null if never (the key may not exist). */
  readonly keyWrittenAt: number | null;
  readonly reads: readonly KeyRead[];
  /** An acknowledged revoke. */
  readonly revoked: { readonly call: number; readonly ret: number } | null;
  /** A revoke was sent (acknowledged or not): from its call on, the lease may be gone. */
  readonly revokeSentAt: number | null;
}

export interface LeaseCheckContext {
  readonly electionTimeoutMs: number;
  /** Expiry check interval, commit and read latency on a loaded machine. */
  readonly slackMs: number;
  /** How long after it was sent an unanswered keep-alive may still renew the lease. */
  readonly unansweredRenewalMs: number;
  /** Times at which the leader (or its term) changed. */
  readonly leaderChanges: readonly number[];
  /** Faults that may stall expiry: [start, end]. */
  readonly faultIntervals: readonly (readonly [number, number])[];
  /** Forward lease-clock jumps: when, and by how much. */
  readonly clockJumps: readonly { readonly at: number; readonly ms: number }[];
}

export interface LeaseAnomaly {
  readonly kind: string;
  readonly details: string;
}

function jumpsBetween(ctx: LeaseCheckContext, from: number, to: number): number {
  let sum = 0;
  for (const j of ctx.clockJumps) if (j.at > from && j.at <= to) sum += j.ms;
  return sum;
}

/** When the lease's keys must be gone at the latest, its renewals having stopped at `stop`. */
export function expiryBound(ttlMs: number, stop: number, ctx: LeaseCheckContext): number {
  const restart = (t: number): number => t + ttlMs + ctx.electionTimeoutMs + ctx.slackMs;
  let bound = restart(stop);
  for (let changed = true; changed; ) {
    changed = false;
    for (const p of ctx.leaderChanges) {
      if (p > stop && p <= bound && restart(p) > bound) {
        bound = restart(p);
        changed = true;
      }
    }
    for (const [s, e] of ctx.faultIntervals) {
      if (e > stop && s <= bound && restart(e) > bound) {
        bound = restart(e);
        changed = true;
      }
    }
  }
  return bound;
}

function show(t: number): string {
  return `${(t / 1000).toFixed(3)} s`;
}

export function checkLease(l: LeaseLog, ctx: LeaseCheckContext): LeaseAnomaly[] {
  const anomalies: LeaseAnomaly[] = [];
  const renewed = l.renewals.filter((r) => r.ttl !== null && r.ttl > 0);
  const revokeFrom = l.revokeSentAt ?? Infinity;

  // Not too early.
  const goneSeen: { at: number; how: string }[] = [];
  for (const r of l.renewals) if (r.ttl === 0 && r.answered !== null) goneSeen.push({ at: r.answered, how: 'a keep-alive answered TTL 0' });
  const written = l.keyWrittenAt;
  if (written !== null) for (const r of l.reads) if (!r.present && r.call > written) goneSeen.push({ at: r.ret, how: `a read (${show(r.call)}..${show(r.ret)}) found no key` });
  for (const g of goneSeen) {
    if (g.at >= revokeFrom) continue;
    for (const r of renewed) {
      if (r.sent >= g.at) continue;
      const allowance = jumpsBetween(ctx, r.sent, g.at);
      const earliest = r.sent + l.ttlMs - allowance;
      if (g.at < earliest) {
        anomalies.push({
          kind: 'lease expired early',
          details: `lease ${l.id} (TTL ${l.ttlMs / 1000} s, key ${l.key}): renewed by a request sent at ${show(r.sent)}, so alive until at least ${show(earliest)}${allowance > 0 ? ` (allowing ${allowance} ms of clock jumps)` : ''}, but ${g.how} at ${show(g.at)}`,
        });
        break;
      }
    }
    if (anomalies.length > 0) break;
  }

  // Revoke.
  if (l.revoked !== null) {
    const after = l.reads.find((r) => r.present && r.call > l.revoked!.ret);
    if (after !== undefined) anomalies.push({ kind: 'key survived revoke', details: `lease ${l.id}: revoke acknowledged at ${show(l.revoked.ret)}, but a read at ${show(after.call)}..${show(after.ret)} found ${l.key}` });
    return anomalies;
  }

  // Not too late.
  if (renewed.length === 0 && l.renewals.every((r) => r.answered !== null)) return anomalies;
  const stop = Math.max(...l.renewals.map((r) => (r.answered !== null ? r.answered : r.sent + ctx.unansweredRenewalMs)));
  const bound = expiryBound(l.ttlMs, stop, ctx);
  const late = l.reads.find((r) => r.present && r.call > bound);
  if (late !== undefined) {
    anomalies.push({
      kind: 'key outlived its lease',
      details: `lease ${l.id} (TTL ${l.ttlMs / 1000} s): renewals stopped at ${show(stop)}, so ${l.key} had to be gone by ${show(bound)}, but a read at ${show(late.call)}..${show(late.ret)} found it`,
    });
  }
  return anomalies;
}
