/**
 * What the WAL must know about the log it holds, without holding the entries: the newest
 * snapshot marker, the last index, the term of every live index (as runs: Raft terms never
 * decrease along the log, so a handful of runs covers millions of entries) and which segment
 * wrote each live index (for `releaseTo`). Pure: the Wal keeps one for what it has accepted
 * and one for what is durable, and applies the same batches to both.
 */
import type { Entry, HardState, SnapshotMetadata } from '../raft/types.ts';
import { NONE } from '../raft/types.ts';

export interface Batch {
  readonly hardState: HardState | null;
  readonly entries: readonly Entry[];
  readonly snapshot: SnapshotMetadata | null;
  /** Decided by {@link LogShape.restartFor} when the batch was accepted. */
  readonly restart: boolean;
}

interface Run {
  /** First index of the run; it lasts until the next run's first index, or the last index. */
  first: number;
  term: number;
  seq: number;
}

/** A snapshot marker and the newest segment holding a copy of it. */
export interface MarkerPlace {
  readonly index: number;
  readonly term: number;
  seq: number;
}

export const EMPTY_HARD_STATE: HardState = { term: 0, vote: NONE, commit: 0 };

export class LogShape {
  snapIndex = 0;
  snapTerm = 0;
  /** max(snapIndex, index of the last live entry). */
  lastIndex = 0;
  hardState: HardState = EMPTY_HARD_STATE;
  snapshot: SnapshotMetadata | null = null;
  private runs: Run[] = [];
  private markers: MarkerPlace[] = [];

  /** Rebuilds the shape from a recovered log: entries contiguous from snapshot.index + 1. */
  static recovered(
    hardState: HardState,
    snapshot: SnapshotMetadata | null,
    entries: readonly Entry[],
    seqs: readonly number[],
    markers: readonly MarkerPlace[],
  ): LogShape {
    const s = new LogShape();
    s.hardState = hardState;
    s.snapshot = snapshot;
    s.snapIndex = snapshot?.index ?? 0;
    s.snapTerm = snapshot?.term ?? 0;
    s.lastIndex = s.snapIndex;
    for (let i = 0; i < entries.length; i++) s.push(entries[i]!, seqs[i]!);
    s.markers = markers.map((m) => ({ ...m }));
    return s;
  }

  /** Term of `index`, for snapIndex ≤ index ≤ lastIndex; undefined outside. */
  termAt(index: number): number | undefined {
    if (index === this.snapIndex) return this.snapTerm;
    const r = this.runAt(index);
    return r === undefined ? undefined : this.runs[r]!.term;
  }

  /** The segment that wrote live entry `index` (snapIndex < index ≤ lastIndex). */
  seqAt(index: number): number | undefined {
    const r = this.runAt(index);
    return r === undefined ? undefined : this.runs[r]!.seq;
  }

  private runAt(index: number): number | undefined {
    if (index <= this.snapIndex || index > this.lastIndex || this.runs.length === 0) return undefined;
    let lo = 0;
    let hi = this.runs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.runs[mid]!.first <= index) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Does a snapshot at (index, term) contradict the log, so that it replaces all of it? */
  restartFor(snap: SnapshotMetadata): boolean {
    return this.termAt(snap.index) !== snap.term;
  }

  /**
   * Why this batch would break the log's invariants, or null if it is valid. Checked when data is
   * written (a bug upstream must not reach the disk); replay checks the same things on the way back.
   */
  check(b: Omit<Batch, 'restart'>): string | null {
    let snapIndex = this.snapIndex;
    let lastIndex = this.lastIndex;
    let prevTerm: (i: number) => number | undefined = (i) => this.termAt(i);
    if (b.snapshot !== null) {
      const { index, term } = b.snapshot;
      if (!isU53(index) || !isU53(term)) return `snapshot (${index}, ${term}) is not a pair of non-negative integers`;
      if (index < this.snapIndex) return `snapshot at ${index} is older than the snapshot at ${this.snapIndex}`;
      if (index === this.snapIndex && this.snapshot !== null && term !== this.snapTerm) {
        return `snapshot at ${index} has term ${term}, but the snapshot there has term ${this.snapTerm}`;
      }
      if (term < this.snapTerm) return `snapshot term ${term} is below the previous snapshot's term ${this.snapTerm}`;
      const restart = this.restartFor(b.snapshot);
      snapIndex = index;
      lastIndex = restart ? index : Math.max(lastIndex, index);
      const base = prevTerm;
      prevTerm = (i) => (i === index ? term : restart ? undefined : base(i));
    }
    let prev: Entry | null = null;
    for (const e of b.entries) {
      if (!isU53(e.index) || !isU53(e.term) || e.index === 0) return `entry (${e.index}, ${e.term}) has an invalid index or term`;
      if (e.kind !== 0 && e.kind !== 1) return `entry ${e.index} has unknown kind ${String(e.kind)}`;
      if (prev === null) {
        if (e.index <= snapIndex) return `entry ${e.index} is at or below the snapshot at ${snapIndex}`;
        if (e.index > lastIndex + 1) return `entry ${e.index} leaves a gap after the last index ${lastIndex}`;
        if (e.index <= lastIndex && e.index <= this.hardState.commit) return `entry ${e.index} would replace a committed entry (commit ${this.hardState.commit})`;
        const before = prevTerm(e.index - 1);
        if (before !== undefined && e.term < before) return `entry ${e.index} has term ${e.term}, below the term ${before} of the entry before it`;
      } else {
        if (e.index !== prev.index + 1) return `entries are not contiguous: ${e.index} follows ${prev.index}`;
        if (e.term < prev.term) return `entry ${e.index} has term ${e.term}, below the term ${prev.term} of the entry before it`;
      }
      prev = e;
    }
    if (prev !== null) lastIndex = prev.index;
    if (b.hardState !== null) {
      const hs = b.hardState;
      if (!isU53(hs.term) || !isU53(hs.commit)) return `hard state (${hs.term}, ${hs.commit}) is not a pair of non-negative integers`;
      if (hs.term < this.hardState.term) return `hard state term ${hs.term} is below the saved term ${this.hardState.term}`;
    }
    // Committed entries are never replaced or dropped, and never committed before they are stored.
    const commit = (b.hardState ?? this.hardState).commit;
    if (commit > lastIndex) return `commit index ${commit} would be beyond the last index ${lastIndex}`;
    return null;
  }

  /** Applies a batch written to segment `seq`, in the record order: snapshot, entries, hard state. */
  apply(b: Batch, seq: number): void {
    if (b.snapshot !== null) this.applySnapshot(b.snapshot, b.restart, seq);
    if (b.entries.length > 0) {
      this.truncateFrom(b.entries[0]!.index);
      for (const e of b.entries) this.push(e, seq);
    }
    if (b.hardState !== null) this.hardState = b.hardState;
  }

  private applySnapshot(snap: SnapshotMetadata, restart: boolean, seq: number): void {
    if (restart) {
      this.runs = [];
      this.lastIndex = snap.index;
    } else {
      // Drop runs wholly at or below the snapshot; the one straddling it now starts after it.
      let k = 0;
      while (k + 1 < this.runs.length && this.runs[k + 1]!.first <= snap.index + 1) k++;
      this.runs = this.runs.slice(k);
      if (this.runs.length > 0) {
        const r = this.runs[0]!;
        if (r.first <= snap.index) r.first = snap.index + 1;
        if (r.first > this.lastIndex) this.runs = [];
      }
      this.lastIndex = Math.max(this.lastIndex, snap.index);
    }
    this.snapIndex = snap.index;
    this.snapTerm = snap.term;
    this.snapshot = snap;
    const last = this.markers[this.markers.length - 1];
    if (last !== undefined && last.index === snap.index && last.term === snap.term) last.seq = seq;
    else this.markers.push({ index: snap.index, term: snap.term, seq });
  }

  private truncateFrom(index: number): void {
    while (this.runs.length > 0 && this.runs[this.runs.length - 1]!.first >= index) this.runs.pop();
    this.lastIndex = Math.min(this.lastIndex, index - 1);
  }

  private push(e: Entry, seq: number): void {
    const last = this.runs[this.runs.length - 1];
    if (last === undefined || last.term !== e.term || last.seq !== seq) this.runs.push({ first: e.index, term: e.term, seq });
    this.lastIndex = e.index;
  }

  /** A new segment `seq` began with a copy of the newest snapshot marker in its first record. */
  noteRoll(seq: number): void {
    const last = this.markers[this.markers.length - 1];
    if (last !== undefined) last.seq = seq;
  }

  /**
   * The oldest segment still needed once the log may be cut at the newest snapshot marker at or
   * below `index`: it must hold that marker (or a copy) or a live entry after it. Null when no
   * such marker exists.
   */
  keepFrom(index: number): number | null {
    let m: MarkerPlace | undefined;
    for (let i = this.markers.length - 1; i >= 0; i--) {
      if (this.markers[i]!.index <= index) {
        m = this.markers[i]!;
        break;
      }
    }
    if (m === undefined) return null;
    const firstLive = Math.max(m.index, this.snapIndex) + 1;
    const liveSeq = this.seqAt(firstLive) ?? Number.POSITIVE_INFINITY;
    return Math.min(liveSeq, m.seq);
  }

  /** Forgets markers whose every copy was in a released segment. */
  forgetBefore(seq: number): void {
    this.markers = this.markers.filter((m) => m.seq >= seq);
  }
}

function isU53(v: number): boolean {
  return Number.isSafeInteger(v) && v >= 0;
}
