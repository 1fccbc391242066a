/**
 * The store's expected failures, one class per condition. `code` is stable and never reused;
 * `message` is etcd's text where etcd has the condition, because etcd clients recognise errors
 * by their exact message (the API layer maps codes to gRPC status codes).
 */
export type MvccErrorCode =
  | 'MVCC_COMPACTED'
  | 'MVCC_FUTURE_REVISION'
  | 'MVCC_KEY_NOT_FOUND'
  | 'MVCC_DUPLICATE_KEY'
  | 'MVCC_TOO_MANY_OPS'
  | 'MVCC_EMPTY_KEY'
  | 'MVCC_VALUE_PROVIDED'
  | 'MVCC_LEASE_PROVIDED'
  | 'MVCC_LEASE_NOT_FOUND'
  | 'MVCC_KEY_TOO_LARGE'
  | 'MVCC_VALUE_TOO_LARGE'
  | 'MVCC_SNAPSHOT_CORRUPT'
  | 'MVCC_CLOSED'
  | 'MVCC_INVALID_ARGUMENT';

export abstract class MvccError extends Error {
  abstract readonly code: MvccErrorCode;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The requested revision is below the compaction revision (etcd mvcc.ErrCompacted). */
export class CompactedError extends MvccError {
  readonly code = 'MVCC_COMPACTED';
  constructor() {
    super('mvcc: required revision has been compacted');
  }
}

/** The requested revision is above the current revision (etcd mvcc.ErrFutureRev). */
export class FutureRevisionError extends MvccError {
  readonly code = 'MVCC_FUTURE_REVISION';
  constructor() {
    super('mvcc: required revision is a future revision');
  }
}

/** put with ignore_value / ignore_lease on a key that does not exist (etcd ErrKeyNotFound). */
export class KeyNotFoundError extends MvccError {
  readonly code = 'MVCC_KEY_NOT_FOUND';
  constructor() {
    super('etcdserver: key not found');
  }
}

/** A txn branch writes the same key twice (etcd ErrGRPCDuplicateKey). */
export class DuplicateKeyError extends MvccError {
  readonly code = 'MVCC_DUPLICATE_KEY';
  constructor() {
    super('etcdserver: duplicate key given in txn request');
  }
}

/** A txn has more compares or ops per branch than txnOpsMax (etcd ErrGRPCTooManyOps). */
export class TooManyOpsError extends MvccError {
  readonly code = 'MVCC_TOO_MANY_OPS';
  constructor() {
    super('etcdserver: too many operations in txn request');
  }
}

/** A request (or txn op/compare) has an empty key (etcd ErrGRPCEmptyKey). */
export class EmptyKeyError extends MvccError {
  readonly code = 'MVCC_EMPTY_KEY';
  constructor() {
    super('etcdserver: key is not provided');
  }
}

/** put with ignore_value and a non-empty value (etcd ErrGRPCValueProvided). */
export class ValueProvidedError extends MvccError {
  readonly code = 'MVCC_VALUE_PROVIDED';
  constructor() {
    super('etcdserver: value is provided');
  }
}

/** put with ignore_lease and a lease (etcd ErrGRPCLeaseProvided). */
export class LeaseProvidedError extends MvccError {
  readonly code = 'MVCC_LEASE_PROVIDED';
  constructor() {
    super('etcdserver: lease is provided');
  }
}

/** put attaching a lease the lease checker does not know (etcd ErrGRPCLeaseNotFound's text). */
export class LeaseNotFoundError extends MvccError {
  readonly code = 'MVCC_LEASE_NOT_FOUND';
  constructor() {
    super('etcdserver: requested lease not found');
  }
}

export class KeyTooLargeError extends MvccError {
  readonly code = 'MVCC_KEY_TOO_LARGE';
  constructor(bytes: number, max: number) {
    super(`mvcc: key of ${bytes} bytes exceeds the limit of ${max} bytes`);
  }
}

export class ValueTooLargeError extends MvccError {
  readonly code = 'MVCC_VALUE_TOO_LARGE';
  constructor(bytes: number, max: number) {
    super(`mvcc: value of ${bytes} bytes exceeds the limit of ${max} bytes`);
  }
}

/** A snapshot stream is truncated, altered or not a snapshot at all. */
export class SnapshotCorruptError extends MvccError {
  readonly code = 'MVCC_SNAPSHOT_CORRUPT';
  constructor(detail: string, options?: { cause?: unknown }) {
    super(`mvcc: snapshot is corrupt: ${detail}`, options);
  }
}

export class StoreClosedError extends MvccError {
  readonly code = 'MVCC_CLOSED';
  constructor() {
    super('mvcc: store is closed');
  }
}

/** A caller passed something the store cannot interpret (bad namespace name, negative index...). */
export class InvalidArgumentError extends MvccError {
  readonly code = 'MVCC_INVALID_ARGUMENT';
  constructor(detail: string) {
    super(`mvcc: invalid argument: ${detail}`);
  }
}
