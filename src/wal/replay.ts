/**
 * Rebuilds the log from verified records, in write order. Replay may start at any retained
 * segment (older ones can be released), so it accepts a first entry at any index and checks at
 * the end that what remains is one contiguous run right after the snapshot marker: a gap there
 * means records are missing, which no crash can cause.
 */
import type { Entry, HardState, SnapshotMetadata } from '../raft/types.ts';
import type { SnapshotRecord } from './format.ts';
import { EMPTY_HARD_STATE, LogShape, type MarkerPlace } from './log-shape.ts';

/** A replayed record broke an invariant the writer checks. Rethrown as WalCorruptError with its place. */
export class ReplayError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReplayError';
  }
}

export class Replay {
  hardState: HardState = EMPTY_HARD_STATE;
  snapshot: SnapshotMetadata | null = null;
  private entries: Entry[] = [];
  /** The segment each entry came from, parallel to `entries`. */
  private seqs: number[] = [];
  private markers: MarkerPlace[] = [];

  private get snapIndex(): number {
    return this.snapshot?.index ?? 0;
  }

  entry(e: Entry, seq: number): void {
    if (e.index <= this.snapIndex) throw new ReplayError(`entry ${e.index} is at or below the snapshot at ${this.snapIndex}`);
    const n = this.entries.length;
    if (n > 0) {
      const first = this.entries[0]!.index;
      const last = this.entries[n - 1]!.index;
      if (e.index > last + 1) throw new ReplayError(`entry ${e.index} leaves a gap after entry ${last}`);
      if (e.index <= last) {
        const keep = Math.max(0, e.index - first);
        this.entries.length = keep;
        this.seqs.length = keep;
      }
    }
    const before = this.entries.length > 0 ? this.entries[this.entries.length - 1]!.term : e.index === this.snapIndex + 1 && this.snapshot ? this.snapshot.term : 0;
    if (e.term < before) throw new ReplayError(`entry ${e.index} has term ${e.term}, below the term ${before} before it`);
    this.entries.push(e);
    this.seqs.push(seq);
  }

  hard(hs: HardState): void {
    this.hardState = hs;
  }

  marker(rec: SnapshotRecord, seq: number): void {
    const snap = rec.metadata;
    if (this.snapshot !== null && snap.index < this.snapshot.index) {
      throw new ReplayError(`snapshot marker at ${snap.index} follows a newer one at ${this.snapshot.index}`);
    }
    if (rec.restart) {
      this.entries = [];
      this.seqs = [];
    } else {
      let k = 0;
      while (k < this.entries.length && this.entries[k]!.index <= snap.index) k++;
      if (k > 0) {
        this.entries = this.entries.slice(k);
        this.seqs = this.seqs.slice(k);
      }
    }
    this.snapshot = snap;
    const last = this.markers[this.markers.length - 1];
    if (last !== undefined && last.index === snap.index && last.term === snap.term) last.seq = seq;
    else this.markers.push({ index: snap.index, term: snap.term, seq });
  }

  /** Checks the end state and returns the entries after the snapshot, and the writer's shape. */
  finish(): { entries: Entry[]; shape: () => LogShape } {
    const n = this.entries.length;
    if (n > 0 && this.entries[0]!.index !== this.snapIndex + 1) {
      throw new ReplayError(`entries start at ${this.entries[0]!.index}, but the snapshot is at ${this.snapIndex}: entries in between are missing`);
    }
    const last = n > 0 ? this.entries[n - 1]!.index : this.snapIndex;
    if (this.hardState.commit > last) {
      throw new ReplayError(`hard state commit ${this.hardState.commit} is beyond the last entry ${last}: committed entries are missing`);
    }
    const entries = this.entries;
    const seqs = this.seqs;
    return {
      entries,
      shape: () => LogShape.recovered(this.hardState, this.snapshot, entries, seqs, this.markers),
    };
  }
}
