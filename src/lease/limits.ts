/**
 * Every bound and interval the lessor uses, in one place. Names end with their unit. Defaults
 * follow etcd where etcd has the same knob (the etcd name is given beside it); the reasons are
 * etcd's too unless stated.
 */

/**
 * The largest TTL a lease may be granted, in seconds (etcd lease.MaxLeaseTTL). Larger requests are
 * refused with "too large lease TTL" rather than clamped. It also keeps every deadline we compute
 * (now + ttl·1000 + extension) well inside the safe-integer range of a JS number.
 */
export const leaseTtlSecondsMaxAbsolute = 9_000_000_000;

/** Leases revoked per second when many expire together (etcd leaseRevokeRate). */
export const leaseRevokeRatePerSecond = 1000;

/** Remaining-TTL checkpoints proposed per second (etcd leaseCheckpointRate). */
export const leaseCheckpointRatePerSecond = 1000;

/** Checkpoints carried by one LeaseCheckpoint proposal (etcd maxLeaseCheckpointBatchSize). */
export const leaseCheckpointBatchMax = 1000;

/**
 * How often the leader records a long lease's remaining TTL through Raft (etcd
 * defaultLeaseCheckpointInterval, --experimental-lease-checkpoint-interval). Leases whose TTL is
 * not longer than this are never checkpointed: a leader change can extend them by at most their
 * TTL plus the election timeout, which is the price of not writing the log for every lease.
 */
export const leaseCheckpointIntervalMs = 5 * 60 * 1000;

/**
 * After the lessor reports a lease as expired, it waits this long before reporting it again
 * (etcd defaultExpiredleaseRetryInterval): the revoke is normally in flight through Raft, and only
 * if it was lost (dropped proposal, leader change) should the server propose it again.
 */
export const leaseExpiredRetryMs = 3000;

/**
 * How often the server is expected to call expired() and checkpointsDue() (etcd's lessor loop
 * period). Only used to size a call's batch from the per-second rates; the lessor has no timer.
 */
export const leaseExpiryCheckIntervalMs = 500;

/**
 * Leases one member holds. etcd has no such bound; we keep one because every lease costs memory on
 * every member and a runaway client granting leases in a loop should hit a wall, not the heap
 * limit. Checked at apply time, so all members agree; the server should check before proposing.
 */
export const leasesMaxDefault = 1_000_000;

export interface LessorLimits {
  /** Grants below this are raised to it, not refused (etcd minLeaseTTL); see minLeaseTtlSeconds(). */
  readonly ttlSecondsMin: number;
  /** Grants above this are refused with LEASE_TTL_TOO_LARGE (etcd MaxLeaseTTL). */
  readonly ttlSecondsMax: number;
  readonly checkpointIntervalMs: number;
  readonly expiredRetryMs: number;
  readonly revokeRatePerSecond: number;
  readonly checkpointRatePerSecond: number;
  readonly checkpointBatchMax: number;
  readonly leasesMax: number;
}

/** Heartbeat and election timeout at etcd's (and our config's) defaults: 100 ms and 1000 ms. */
const defaultHeartbeatMs = 100;
const defaultElectionTimeoutMs = 1000;

/**
 * etcd's minimum lease TTL, derived from the Raft timing: 1.5 election timeouts, rounded up to
 * whole seconds. A shorter lease could expire merely because a leader election took its normal
 * time. etcd computes it in ticks with integer division — electionTicks = ⌊electionMs / tickMs⌋,
 * minTTL = ⌊3·electionTicks / 2⌋ · tickMs, then ⌈minTTL in seconds⌉ — and we reproduce that
 * arithmetic exactly so odd configurations give etcd's number. Defaults (100 ms, 1000 ms) give 2 s.
 */
export function minLeaseTtlSeconds(heartbeatIntervalMs: number, electionTimeoutMs: number): number {
  if (!Number.isSafeInteger(heartbeatIntervalMs) || heartbeatIntervalMs < 1) {
    throw new RangeError(`heartbeat interval must be a positive integer of milliseconds, got ${String(heartbeatIntervalMs)}`);
  }
  if (!Number.isSafeInteger(electionTimeoutMs) || electionTimeoutMs < 1) {
    throw new RangeError(`election timeout must be a positive integer of milliseconds, got ${String(electionTimeoutMs)}`);
  }
  const electionTicks = Math.floor(electionTimeoutMs / heartbeatIntervalMs);
  const minTtlMs = Math.floor((3 * electionTicks) / 2) * heartbeatIntervalMs;
  // A zero minimum (election timeout below one tick) would let a 0 s lease through; keep 1 s.
  return Math.max(1, Math.ceil(minTtlMs / 1000));
}

export const defaultLessorLimits: LessorLimits = Object.freeze({
  ttlSecondsMin: minLeaseTtlSeconds(defaultHeartbeatMs, defaultElectionTimeoutMs),
  ttlSecondsMax: leaseTtlSecondsMaxAbsolute,
  checkpointIntervalMs: leaseCheckpointIntervalMs,
  expiredRetryMs: leaseExpiredRetryMs,
  revokeRatePerSecond: leaseRevokeRatePerSecond,
  checkpointRatePerSecond: leaseCheckpointRatePerSecond,
  checkpointBatchMax: leaseCheckpointBatchMax,
  leasesMax: leasesMaxDefault,
});

/** Fills in defaults and checks the limits against each other; throws on a nonsensical setting. */
export function resolveLessorLimits(overrides: Partial<LessorLimits> = {}): LessorLimits {
  const l: LessorLimits = { ...defaultLessorLimits, ...overrides };
  for (const [name, v] of Object.entries(l)) {
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`lease limit ${name} must be a positive integer, got ${String(v)}`);
  }
  if (l.ttlSecondsMax > leaseTtlSecondsMaxAbsolute) {
    throw new RangeError(`lease limit ttlSecondsMax must not exceed ${leaseTtlSecondsMaxAbsolute} (etcd's MaxLeaseTTL)`);
  }
  if (l.ttlSecondsMin > l.ttlSecondsMax) throw new RangeError('lease limit ttlSecondsMin must not exceed ttlSecondsMax');
  if (l.checkpointBatchMax > l.checkpointRatePerSecond) {
    throw new RangeError('lease limit checkpointBatchMax must not exceed checkpointRatePerSecond (one batch would break the rate)');
  }
  return Object.freeze(l);
}

/**
 * How many leases one expired() call may return when the server calls it every `intervalMs`,
 * so that revokes stay within the per-second rate (etcd revokes rate/2 per 500 ms pass).
 */
export function revokeBatchMax(limits: LessorLimits, intervalMs: number = leaseExpiryCheckIntervalMs): number {
  return Math.max(1, Math.floor((limits.revokeRatePerSecond * intervalMs) / 1000));
}

/** Likewise for checkpointsDue(): checkpoints per call at the per-second checkpoint rate. */
export function checkpointCallMax(limits: LessorLimits, intervalMs: number = leaseExpiryCheckIntervalMs): number {
  return Math.max(1, Math.floor((limits.checkpointRatePerSecond * intervalMs) / 1000));
}
