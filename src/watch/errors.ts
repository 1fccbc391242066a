/**
 * The watch layer's expected failures, one class per condition, with a stable code never reused.
 * Messages are etcd's text where etcd has the condition (its gRPC layer answers a failed create
 * with created + canceled and that text as cancel_reason).
 */
export type WatchErrorCode =
  | 'WATCH_EMPTY_RANGE'
  | 'WATCH_DUPLICATE_ID'
  | 'WATCH_TOO_MANY_WATCHERS'
  | 'WATCH_STREAM_BACKLOGGED'
  | 'WATCH_STREAM_CLOSED'
  | 'WATCH_INVALID_ARGUMENT'
  | 'WATCH_DENIED';

export abstract class WatchError extends Error {
  abstract readonly code: WatchErrorCode;
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** rangeEnd ≤ key (etcd mvcc.ErrEmptyWatcherRange). */
export class EmptyWatcherRangeError extends WatchError {
  readonly code = 'WATCH_EMPTY_RANGE';
  constructor() {
    super('mvcc: watcher range is empty');
  }
}

/** A requested watch id is in use on the stream (etcd mvcc.ErrWatcherDuplicateID). */
export class DuplicateWatchIdError extends WatchError {
  readonly code = 'WATCH_DUPLICATE_ID';
  constructor() {
    super('mvcc: duplicate watch ID provided on the WatchStream');
  }
}

export class TooManyWatchersError extends WatchError {
  readonly code = 'WATCH_TOO_MANY_WATCHERS';
  constructor(max: number) {
    super(`watch: a stream holds at most ${max} watchers`);
  }
}

/** The client creates watchers faster than it reads the answers. */
export class StreamBackloggedError extends WatchError {
  readonly code = 'WATCH_STREAM_BACKLOGGED';
  constructor() {
    super('watch: too many undelivered control messages on the stream');
  }
}

export class StreamClosedError extends WatchError {
  readonly code = 'WATCH_STREAM_CLOSED';
  constructor() {
    super('watch: stream is closed');
  }
}

export class InvalidWatchArgumentError extends WatchError {
  readonly code = 'WATCH_INVALID_ARGUMENT';
  constructor(detail: string) {
    super(`watch: invalid argument: ${detail}`);
  }
}

/** The front end refused the watch (auth); the message is the cancel reason the client sees. */
export class WatchDeniedError extends WatchError {
  readonly code = 'WATCH_DENIED';
}
