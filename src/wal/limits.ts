/**
 * Every bound the WAL and snapshot files obey, in one place, with units last. Options given to
 * `Wal.create`/`Wal.open` override these; `checkLimits` rejects combinations that cannot work
 * before any file is touched.
 */
import { assert } from '../util/assert.ts';
import type { SyncFn } from './fsutil.ts';

export interface WalLimits {
  /** A segment is rolled once the next batch would not fit; preallocated to this size. */
  readonly segmentBytes: number;
  /** Largest single record (one entry with its data, or a segment's first record). */
  readonly recordBytesMax: number;
  /** Bytes accepted by `save` but not yet on disk; beyond it `save` refuses with WAL_QUEUE_FULL. */
  readonly queueBytesMax: number;
  /** Longest member id, cluster id or node id, in UTF-8 bytes. */
  readonly idBytesMax: number;
  /** Write zeros over a new segment before use, so appends never allocate blocks (see format.ts). */
  readonly preallocate: boolean;
  /** Zeros are written this many bytes at a time when preallocating or wiping a torn tail. */
  readonly zeroChunkBytes: number;
}

export const WAL_LIMITS_DEFAULT: WalLimits = {
  segmentBytes: 64 * 1024 * 1024,
  recordBytesMax: 16 * 1024 * 1024,
  queueBytesMax: 64 * 1024 * 1024,
  idBytesMax: 256,
  preallocate: true,
  zeroChunkBytes: 1024 * 1024,
};

/** Below this a segment could not hold its own first record with the largest ids. */
export const segmentBytesMin = 1024;
/** The format's length field is a u32; also bounds what a reader will believe. */
export const recordBytesFormatMax = 0xffff_ffff - 9;

export interface WalOptions extends Partial<WalLimits> {
  /**
   * Makes a file's data (kind 'data') or a directory's entries (kind 'directory') durable.
   * Defaults to fdatasync / fsync. Injectable so fault tests can slow it down or make it fail.
   */
  readonly sync?: SyncFn;
}

export function resolveLimits(options: WalOptions | undefined): WalLimits {
  const limits: WalLimits = {
    segmentBytes: options?.segmentBytes ?? WAL_LIMITS_DEFAULT.segmentBytes,
    recordBytesMax: options?.recordBytesMax ?? WAL_LIMITS_DEFAULT.recordBytesMax,
    queueBytesMax: options?.queueBytesMax ?? WAL_LIMITS_DEFAULT.queueBytesMax,
    idBytesMax: options?.idBytesMax ?? WAL_LIMITS_DEFAULT.idBytesMax,
    preallocate: options?.preallocate ?? WAL_LIMITS_DEFAULT.preallocate,
    zeroChunkBytes: options?.zeroChunkBytes ?? WAL_LIMITS_DEFAULT.zeroChunkBytes,
  };
  checkLimits(limits);
  return limits;
}

export function checkLimits(l: WalLimits): void {
  const int = (v: number): boolean => Number.isSafeInteger(v) && v > 0;
  assert(int(l.segmentBytes) && l.segmentBytes >= segmentBytesMin, `wal limits: segmentBytes ${l.segmentBytes} < ${segmentBytesMin}`);
  assert(int(l.recordBytesMax) && l.recordBytesMax <= recordBytesFormatMax, `wal limits: recordBytesMax ${l.recordBytesMax} outside 1..${recordBytesFormatMax}`);
  assert(int(l.idBytesMax) && l.idBytesMax <= 0xffff, `wal limits: idBytesMax ${l.idBytesMax} outside 1..65535 (u16 length field)`);
  assert(int(l.zeroChunkBytes), `wal limits: zeroChunkBytes ${l.zeroChunkBytes} must be positive`);
  // A batch is accepted whole, so the queue must take at least one record of the largest size.
  assert(int(l.queueBytesMax) && l.queueBytesMax >= l.recordBytesMax, `wal limits: queueBytesMax ${l.queueBytesMax} < recordBytesMax ${l.recordBytesMax}`);
}

/** Snapshot files: how many to keep, and the largest one a reader will load. */
export interface SnapshotLimits {
  readonly keep: number;
  readonly snapshotBytesMax: number;
}

export const SNAPSHOT_LIMITS_DEFAULT: SnapshotLimits = {
  keep: 5,
  snapshotBytesMax: 1024 * 1024 * 1024,
};
