/** The WAL module's public surface: the log, snapshot files, limits and the error catalogue. */
export { Wal, type OpenOptions, type TailRepair, type WalMetadata, type WalRecovery, type WalStats } from './wal.ts';
export { DiskLog } from './disk-log.ts';
export { saveSnapshot, loadNewest, listSnapshots, snapshotFileName, type BrokenSnapshot, type LoadedSnapshot, type SnapshotterOptions } from './snapshotter.ts';
export { WAL_LIMITS_DEFAULT, SNAPSHOT_LIMITS_DEFAULT, type WalLimits, type WalOptions, type SnapshotLimits } from './limits.ts';
export type { SyncFn, SyncKind } from './fsutil.ts';
export * from './errors.ts';
