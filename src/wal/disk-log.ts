/**
 * The WAL and the snapshot files together, in the shape the Raft driver persists through
 * (src/server's DurableLog, matched structurally so this layer imports nothing above it).
 *
 * The order is the point: a snapshot's file is durable before its marker enters the WAL, so
 * every marker has a file (a file without a marker, after a crash in between, is ignored by
 * passing `accept` to `loadNewest`); and segments are released only after the marker is durable.
 */
import type { Entry, HardState, Snapshot } from '../raft/types.ts';
import { saveSnapshot, type SnapshotterOptions } from './snapshotter.ts';
import type { Wal } from './wal.ts';

export class DiskLog {
  constructor(
    readonly wal: Wal,
    readonly snapDir: string,
    private readonly snapOptions?: SnapshotterOptions,
  ) {}

  /** One Ready: the received snapshot (if any) to its file, then one WAL batch with one sync. */
  async save(hardState: HardState | null, entries: readonly Entry[], snapshot: Snapshot | null): Promise<void> {
    if (snapshot !== null) await saveSnapshot(this.snapDir, snapshot, this.snapOptions);
    await this.wal.save(hardState, entries, snapshot?.metadata ?? null);
  }

  /** A snapshot the member took of its own state: file, marker, then release the log before it. */
  async saveSnapshot(snapshot: Snapshot): Promise<void> {
    await saveSnapshot(this.snapDir, snapshot, this.snapOptions);
    await this.wal.save(null, [], snapshot.metadata);
    await this.wal.releaseTo(snapshot.metadata.index);
  }
}
