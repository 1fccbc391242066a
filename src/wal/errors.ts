/**
 * The WAL's error catalogue. Each condition has its own class and a stable `code` that is never
 * reused for another meaning, so callers (and the API layer's mapping) branch on `code`, not on
 * message text. The underlying error, when there is one, is chained as `cause`.
 */

export abstract class WalError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * A record that cannot be trusted sits where an interrupted append cannot explain it: the member
 * must stop rather than serve a log with a hole in it. `file` and `offset` locate the record.
 */
export class WalCorruptError extends WalError {
  readonly code = 'WAL_CORRUPT';
  constructor(
    readonly file: string,
    readonly offset: number,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`wal: corrupt record in ${file} at byte offset ${offset}: ${reason}`, options);
  }
}

/** The segments belong to a different member or cluster than expected (or to each other). */
export class WalClusterMismatchError extends WalError {
  readonly code = 'WAL_CLUSTER_MISMATCH';
  constructor(
    readonly file: string,
    readonly expected: { readonly memberId: string; readonly clusterId: string },
    readonly found: { readonly memberId: string; readonly clusterId: string },
  ) {
    super(
      `wal: ${file} belongs to member ${found.memberId} of cluster ${found.clusterId}, ` +
        `expected member ${expected.memberId} of cluster ${expected.clusterId}`,
    );
  }
}

/** A segment was written by a newer format version than this code reads. */
export class WalVersionError extends WalError {
  readonly code = 'WAL_VERSION_UNSUPPORTED';
  constructor(
    readonly file: string,
    readonly version: number,
    readonly supported: number,
  ) {
    super(`wal: ${file} has format version ${version}; this build reads version ${supported}`);
  }
}

/** `Wal.create` refuses a directory that already holds files: it never overwrites a log. */
export class WalExistsError extends WalError {
  readonly code = 'WAL_EXISTS';
  constructor(readonly dir: string) {
    super(`wal: directory ${dir} is not empty; refusing to create a new WAL there`);
  }
}

/** `Wal.open` found no segment files. */
export class WalNotFoundError extends WalError {
  readonly code = 'WAL_NOT_FOUND';
  constructor(readonly dir: string) {
    super(`wal: no WAL segments in ${dir}`);
  }
}

/**
 * A write or sync failed. After a failed fsync the kernel may have dropped the dirty pages and
 * a retry can report success for data that is gone, so the WAL stops for good: every pending and
 * later save fails with this error, and the member must restart and recover from disk.
 */
export class WalFailedError extends WalError {
  readonly code = 'WAL_FAILED';
  constructor(message: string, options?: { cause?: unknown }) {
    super(`wal: stopped after an I/O failure: ${message}`, options);
  }
}

export class WalClosedError extends WalError {
  readonly code = 'WAL_CLOSED';
  constructor() {
    super('wal: closed');
  }
}

/** One record would exceed `recordBytesMax`. The batch is refused; the WAL stays usable. */
export class WalRecordTooLargeError extends WalError {
  readonly code = 'WAL_RECORD_TOO_LARGE';
  constructor(
    readonly bytes: number,
    readonly max: number,
  ) {
    super(`wal: record of ${bytes} bytes exceeds recordBytesMax ${max}`);
  }
}

/** More than `queueBytesMax` bytes are waiting for the disk. The batch is refused; retry later. */
export class WalQueueFullError extends WalError {
  readonly code = 'WAL_QUEUE_FULL';
  constructor(
    readonly queuedBytes: number,
    readonly max: number,
  ) {
    super(`wal: ${queuedBytes} bytes already queued for the disk (queueBytesMax ${max})`);
  }
}

/** A snapshot file failed its checksum or could not be decoded. */
export class SnapshotCorruptError extends WalError {
  readonly code = 'SNAP_CORRUPT';
  constructor(
    readonly file: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`snap: corrupt snapshot file ${file}: ${reason}`, options);
  }
}
