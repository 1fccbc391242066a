/**
 * The lessor's expected failures, one class per condition. `code` is stable and never reused.
 * `message` is the text of etcd's lease package where etcd has the condition; the API layer maps
 * codes to the gRPC status and the client-visible wording ("etcdserver: requested lease not
 * found", "etcdserver: lease already exists", "etcdserver: too large lease TTL").
 *
 * Nothing here is etcd-specific in meaning: a ZooKeeper or Consul front end maps the same codes to
 * its own protocol (SESSIONEXPIRED, "Session not found", …).
 */
export type LeaseErrorCode =
  | 'LEASE_NOT_FOUND'
  | 'LEASE_EXISTS'
  | 'LEASE_TTL_TOO_LARGE'
  | 'NOT_PRIMARY'
  | 'LEASE_EXPIRED'
  | 'LEASE_LIMIT'
  | 'LEASE_INVALID_ARGUMENT'
  | 'LEASE_STATE_CORRUPT';

export abstract class LeaseError extends Error {
  abstract readonly code: LeaseErrorCode;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** No lease with this id (etcd lease.ErrLeaseNotFound). */
export class LeaseNotFoundError extends LeaseError {
  readonly code = 'LEASE_NOT_FOUND';
  constructor(readonly leaseId: bigint) {
    super('lease not found');
  }
}

/** grant() of an id that is already in use (etcd lease.ErrLeaseExists). */
export class LeaseExistsError extends LeaseError {
  readonly code = 'LEASE_EXISTS';
  constructor(readonly leaseId: bigint) {
    super('lease already exists');
  }
}

/** grant() with a TTL above the maximum (etcd lease.ErrLeaseTTLTooLarge). */
export class LeaseTtlTooLargeError extends LeaseError {
  readonly code = 'LEASE_TTL_TOO_LARGE';
  constructor(
    readonly ttlSeconds: number,
    readonly ttlSecondsMax: number,
  ) {
    super('too large lease TTL');
  }
}

/**
 * A leader-only operation (renew) on a member whose lessor is not promoted (etcd
 * lease.ErrNotPrimary). The server forwards keep-alives to the leader, or retries after an election.
 */
export class NotPrimaryError extends LeaseError {
  readonly code = 'NOT_PRIMARY';
  constructor() {
    super('not a primary lessor');
  }
}

/**
 * renew() of a lease whose deadline has passed but whose revoke has not been applied yet. etcd's
 * Renew blocks in this state until the revoke applies (then answers "lease not found") or the
 * lessor is demoted (then "not a primary lessor", and a new leader may keep the lease alive). A
 * pure lessor cannot block, so it says which state it is in and the server does the waiting.
 */
export class LeaseExpiredError extends LeaseError {
  readonly code = 'LEASE_EXPIRED';
  constructor(readonly leaseId: bigint) {
    super('lease expired; its revocation is pending');
  }
}

/** grant() when the member already holds limits.leasesMax leases (our bound; etcd has none). */
export class LeaseLimitError extends LeaseError {
  readonly code = 'LEASE_LIMIT';
  constructor(readonly leasesMax: number) {
    super(`too many leases (at most ${leasesMax})`);
  }
}

/** An argument the lessor cannot interpret: lease id 0 or outside int64, a fractional TTL, … */
export class LeaseInvalidArgumentError extends LeaseError {
  readonly code = 'LEASE_INVALID_ARGUMENT';
  constructor(detail: string) {
    super(`lease: invalid argument: ${detail}`);
  }
}

/** restore() was given bytes that are not a lessor state this version can read. */
export class LeaseStateCorruptError extends LeaseError {
  readonly code = 'LEASE_STATE_CORRUPT';
  constructor(detail: string, options?: { cause?: unknown }) {
    super(`lease: serialized state is corrupt: ${detail}`, options);
  }
}

/**
 * A broken invariant inside the lessor: a bug, not an operating condition. It is thrown and not
 * meant to be caught, because a lessor that disagrees with itself could revoke the wrong leases.
 */
export class LeaseAssertionError extends Error {
  constructor(message: string) {
    super(`lease invariant violated: ${message}`);
    this.name = 'LeaseAssertionError';
  }
}

export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new LeaseAssertionError(message);
}
