/**
 * Every bound the MVCC store enforces, in one place. Names end with their unit. The defaults
 * follow etcd where etcd has the same knob (its flag is named beside it).
 */
export interface MvccLimits {
  /** Largest of len(compare), len(success), len(failure) in one txn (etcd --max-txn-ops). */
  readonly txnOpsMax: number;
  /** Revisions examined per LMDB write transaction by background compaction (etcd --compaction-batch-limit). */
  readonly compactionBatchLimit: number;
  /** Pause between two compaction batches so that writes are not stalled (etcd --compaction-sleep-interval). */
  readonly compactionSleepIntervalMs: number;
  /** Bytes buffered before a snapshot stream yields a chunk. */
  readonly snapshotChunkBytes: number;
  /** Entries written per LMDB transaction while restoring a snapshot. */
  readonly restoreBatchEntries: number;
  /** Entries hashed per slice before hash()/hashKV() yield to the event loop. */
  readonly hashSliceEntries: number;
  /** Largest key or value of one record a snapshot stream may carry (guards against a corrupt length). */
  readonly snapshotRecordBytesMax: number;
  /** Largest user key; LMDB itself does not see user keys, the bound keeps records and the index sane. */
  readonly keyBytesMax: number;
  /** Largest value; the request size limit upstream (1.5 MiB) is far below this. */
  readonly valueBytesMax: number;
  /** Longest key of a meta namespace entry (LMDB's key limit is 1978 bytes, minus the namespace prefix). */
  readonly metaKeyBytesMax: number;
  /** Most commit listeners (watch layer hooks) a store accepts. */
  readonly commitListenersMax: number;
}

export const defaultMvccLimits: MvccLimits = Object.freeze({
  txnOpsMax: 128,
  compactionBatchLimit: 1000,
  compactionSleepIntervalMs: 10,
  snapshotChunkBytes: 1 << 20,
  restoreBatchEntries: 10_000,
  hashSliceEntries: 10_000,
  snapshotRecordBytesMax: 64 << 20,
  keyBytesMax: 64 << 10,
  valueBytesMax: 16 << 20,
  metaKeyBytesMax: 1024,
  commitListenersMax: 1024,
});

/** Fills in defaults and checks the limits against each other; throws on a nonsensical setting. */
export function resolveLimits(overrides: Partial<MvccLimits> = {}): MvccLimits {
  const l: MvccLimits = { ...defaultMvccLimits, ...overrides };
  for (const [name, v] of Object.entries(l)) {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`mvcc limit ${name} must be a non-negative integer, got ${String(v)}`);
  }
  if (l.txnOpsMax < 1) throw new RangeError('mvcc limit txnOpsMax must be at least 1');
  if (l.compactionBatchLimit < 1) throw new RangeError('mvcc limit compactionBatchLimit must be at least 1');
  if (l.hashSliceEntries < 1 || l.restoreBatchEntries < 1) throw new RangeError('mvcc slice/batch limits must be at least 1');
  if (l.snapshotChunkBytes < 64) throw new RangeError('mvcc limit snapshotChunkBytes must be at least 64');
  if (l.snapshotRecordBytesMax < l.keyBytesMax + l.valueBytesMax + 64) {
    throw new RangeError('mvcc limit snapshotRecordBytesMax must hold the largest key plus the largest value');
  }
  if (l.metaKeyBytesMax > 1900) throw new RangeError('mvcc limit metaKeyBytesMax must stay below LMDB\'s key size limit');
  return l;
}

/**
 * Fan-out of the in-memory B+ tree (entries per leaf, children per inner node). Structural rather
 * than a per-store setting: 64 keeps nodes within a few cache lines of pointers and splices short.
 */
export const btreeNodeEntriesMax = 64;

/**
 * Size of the slabs reads copy records into (many kvs share one, see arena.ts). Bigger means
 * fewer allocations; a kv kept long after its read keeps its slab alive, so not too big.
 */
export const readArenaBytes = 64 << 10;

/**
 * When a range read scans the kv table instead of looking each record up: at least
 * scanRecordsMin records (starting a scan costs about one lookup), spread over at most
 * scanSpanPerRecordMax main revisions each (a record skipped costs a third of a lookup).
 */
export const scanRecordsMin = 4;
export const scanSpanPerRecordMax = 3;
