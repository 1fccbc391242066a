/**
 * Every bound the watch layer enforces, in one place; names end with their unit. etcd's
 * equivalents are named beside them.
 */
export interface WatchLimits {
  /**
   * Events a stream holds undelivered before its watchers stop being fed from commits and fall
   * back to catching up from the store (etcd: chanBufLen, 128 responses per stream). A revision
   * is never split, so one with more events or bytes than the room left may go beyond the limits:
   * alone into an empty buffer, or as the first revision of a catch-up batch.
   */
  readonly streamBufferEventsMax: number;
  /** The same bound in bytes (as eventBytes counts them). */
  readonly streamBufferBytesMax: number;
  /** Control messages (created, canceled, progress) a stream holds before it refuses new watchers. */
  readonly streamControlMessagesMax: number;
  /** Watchers on one stream. */
  readonly watchersPerStreamMax: number;
  /** History records one catch-up batch examines (etcd: watchBatchMaxRevs, 1000). */
  readonly catchUpBatchRecords: number;
  /** Event bytes one catch-up batch delivers, unless a single revision is larger. */
  readonly catchUpBatchBytes: number;
  /** Catch-up batches (history reads) per event-loop turn, so that catching up never holds the loop long. */
  readonly catchUpBatchesPerTurn: number;
  /** Unsynced watchers served from one catch-up batch read (etcd: maxWatchersPerSync, 512). */
  readonly catchUpWatchersPerBatch: number;
  /**
   * Latest revisions whose events the hub keeps in memory, so that watchers a little behind catch
   * up without reading the store (0 < revisions; etcd reads the store for every catch-up).
   */
  readonly recentRevisionsMax: number;
  /** The same bound in event bytes (as eventBytes counts them); at least one revision is kept. */
  readonly recentBytesMax: number;
  /** Interval of progress notifications to idle watchers that asked for them (etcd: 10 minutes). */
  readonly progressNotifyIntervalMs: number;
}

export const defaultWatchLimits: WatchLimits = Object.freeze({
  streamBufferEventsMax: 4096,
  streamBufferBytesMax: 8 << 20,
  streamControlMessagesMax: 256,
  watchersPerStreamMax: 10_000,
  catchUpBatchRecords: 1000,
  catchUpBatchBytes: 1 << 20,
  catchUpBatchesPerTurn: 8,
  catchUpWatchersPerBatch: 512,
  recentRevisionsMax: 4096,
  recentBytesMax: 16 << 20,
  progressNotifyIntervalMs: 10 * 60 * 1000,
});

/** Fills in defaults and checks the limits against each other; throws on a nonsensical setting. */
export function resolveWatchLimits(overrides: Partial<WatchLimits> = {}): WatchLimits {
  const l: WatchLimits = { ...defaultWatchLimits, ...overrides };
  for (const [name, v] of Object.entries(l)) {
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`watch limit ${name} must be a positive integer, got ${String(v)}`);
  }
  // A catch-up batch is only read when the stream has room for all of it, so it must fit at all.
  if (l.catchUpBatchRecords > l.streamBufferEventsMax) throw new RangeError('watch limit catchUpBatchRecords must not exceed streamBufferEventsMax');
  if (l.catchUpBatchBytes > l.streamBufferBytesMax) throw new RangeError('watch limit catchUpBatchBytes must not exceed streamBufferBytesMax');
  return l;
}
