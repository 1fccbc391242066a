/**
 * Raft's view of its log: what the application has persisted (LogStorage) followed by what
 * Raft has appended but not yet handed out or seen persisted (the unstable tail, possibly
 * starting with a snapshot received from the leader).
 *
 * Indexes: firstIndex-1 ≤ applied ≤ applying ≤ committed ≤ lastIndex. `applying` is the last
 * committed entry handed to the application; `applied` is confirmed by advance().
 */
import { assert } from '../util/assert.ts';
import { CompactedError, entryBytes, type LogStorage } from './storage.ts';
import type { Entry, Snapshot } from './types.ts';

export class RaftLog {
  /** Entries not yet persisted, starting at `offset`. */
  private unstable: Entry[] = [];
  private offset: number;
  /** A snapshot received from the leader and not yet persisted. */
  private pendingSnapshot: Snapshot | null = null;
  /** The last index known to be durable locally (the leader counts itself only up to here). */
  persisted: number;
  committed: number;
  applying: number;
  applied: number;

  constructor(
    readonly storage: LogStorage,
    applied: number,
  ) {
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.offset = last + 1;
    this.persisted = last;
    const commit = storage.initialState().hardState.commit;
    this.committed = Math.max(commit, first - 1);
    assert(this.committed <= last, `raft log: commit ${this.committed} beyond last index ${last}`);
    const start = Math.max(applied, first - 1);
    assert(start <= this.committed, `raft log: applied ${applied} beyond commit ${this.committed}`);
    this.applied = start;
    this.applying = start;
  }

  firstIndex(): number {
    return this.pendingSnapshot !== null ? this.pendingSnapshot.metadata.index + 1 : this.storage.firstIndex();
  }

  lastIndex(): number {
    if (this.unstable.length > 0) return this.offset + this.unstable.length - 1;
    if (this.pendingSnapshot !== null) return this.pendingSnapshot.metadata.index;
    return this.storage.lastIndex();
  }

  /** The term of entry `index`, or undefined when it is compacted or beyond the last index. */
  term(index: number): number | undefined {
    if (index > this.lastIndex()) return undefined;
    if (index >= this.offset) return this.unstable[index - this.offset]!.term;
    const snap = this.pendingSnapshot;
    if (snap !== null) return index === snap.metadata.index ? snap.metadata.term : undefined;
    if (index < this.storage.firstIndex() - 1) return undefined;
    return this.storage.term(index);
  }

  lastTerm(): number {
    const t = this.term(this.lastIndex());
    assert(t !== undefined, 'raft log: term of the last index is unknown');
    return t;
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Follower side of an append. Returns the last index of the appended entries when the log
   * matches at (prevIndex, prevTerm), otherwise undefined.
   */
  maybeAppend(prevIndex: number, prevTerm: number, leaderCommit: number, entries: readonly Entry[]): number | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNew = prevIndex + entries.length;
    const conflict = this.findConflict(entries);
    if (conflict !== 0) {
      assert(conflict > this.committed, `raft log: conflict at ${conflict} rewrites committed entries (commit ${this.committed})`);
      this.append(entries.slice(conflict - (prevIndex + 1)));
    }
    this.commitTo(Math.min(leaderCommit, lastNew));
    return lastNew;
  }

  /** First entry that is not already in the log with the same term; 0 when all are. */
  private findConflict(entries: readonly Entry[]): number {
    for (const e of entries) if (!this.matchTerm(e.index, e.term)) return e.index;
    return 0;
  }

  /**
   * The fast back-off hint: the largest index ≤ `index` whose term is ≤ `term`, with its term.
   * Everything after it may differ from a log whose entry at `index` has term `term`.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    let i = Math.min(index, this.lastIndex());
    for (;;) {
      const t = this.term(i);
      if (t === undefined) return { index: i, term: 0 };
      if (t <= term) return { index: i, term: t };
      i--;
    }
  }

  /** Appends entries, replacing any unstable or stored entries from entries[0].index on. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    assert(first > this.committed, `raft log: append at ${first} would rewrite committed ${this.committed}`);
    assert(first <= this.lastIndex() + 1, `raft log: append at ${first} leaves a gap after ${this.lastIndex()}`);
    if (first === this.offset + this.unstable.length) {
      for (const e of entries) this.unstable.push(e);
    } else if (first <= this.offset) {
      // Replaces the whole unstable tail (and shadows stored entries from `first` on).
      this.offset = first;
      this.unstable = [...entries];
    } else {
      this.unstable = [...this.unstable.slice(0, first - this.offset), ...entries];
    }
    this.persisted = Math.min(this.persisted, first - 1);
  }

  /** Entries [lo, hi) up to `maxBytes` (at least one), from storage and the unstable tail. */
  slice(lo: number, hi: number, maxBytes: number): Entry[] | undefined {
    if (lo >= hi) return [];
    if (lo < this.firstIndex()) return undefined;
    assert(hi <= this.lastIndex() + 1, `raft log: slice(${lo}, ${hi}) beyond last index ${this.lastIndex()}`);
    let out: Entry[] = [];
    let bytes = 0;
    if (lo < this.offset) {
      try {
        out = this.storage.entries(lo, Math.min(hi, this.offset), maxBytes);
      } catch (e) {
        if (e instanceof CompactedError) return undefined;
        throw e;
      }
      if (out.length < Math.min(hi, this.offset) - lo) return out;
      for (const e of out) bytes += entryBytes(e);
    }
    for (let i = Math.max(lo, this.offset); i < hi; i++) {
      const e = this.unstable[i - this.offset]!;
      bytes += entryBytes(e);
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    assert(index <= this.lastIndex(), `raft log: commit ${index} beyond last index ${this.lastIndex()}`);
    this.committed = index;
  }

  /** Leader side: commit `index` if it is from the current term (Raft §5.4.2). */
  maybeCommit(index: number, term: number, allowPreviousTerm: boolean): boolean {
    if (index <= this.committed) return false;
    if (!allowPreviousTerm && this.term(index) !== term) return false;
    this.commitTo(index);
    return true;
  }

  hasPendingSnapshot(): boolean {
    return this.pendingSnapshot !== null;
  }

  unstableSnapshot(): Snapshot | null {
    return this.pendingSnapshot;
  }

  unstableEntries(): readonly Entry[] {
    return this.unstable;
  }

  /** Committed entries not yet handed to the application (none while a snapshot is pending). */
  nextCommittedEntries(maxBytes: number): readonly Entry[] {
    if (this.pendingSnapshot !== null) return [];
    const lo = Math.max(this.applying + 1, this.firstIndex());
    const entries = this.slice(lo, this.committed + 1, maxBytes);
    assert(entries !== undefined, `raft log: committed entries from ${lo} are compacted`);
    return entries;
  }

  hasNextCommittedEntries(): boolean {
    return this.pendingSnapshot === null && this.committed > this.applying;
  }

  /** The entries up to (index, term) are durable: drop them from the unstable tail. */
  stableTo(index: number, term: number): void {
    if (this.term(index) !== term || index < this.offset) return;
    this.unstable = this.unstable.slice(index + 1 - this.offset);
    this.offset = index + 1;
    this.persisted = Math.max(this.persisted, index);
  }

  stableSnapshotTo(index: number): void {
    if (this.pendingSnapshot !== null && this.pendingSnapshot.metadata.index === index) this.pendingSnapshot = null;
  }

  /** The newest snapshot: a pending one from the leader, else the storage's. */
  snapshot(): Snapshot {
    return this.pendingSnapshot ?? this.storage.snapshot();
  }

  /** Replaces the whole log with a snapshot from the leader. */
  restore(snap: Snapshot): void {
    const { index } = snap.metadata;
    assert(index > this.committed, `raft log: restoring snapshot ${index} at or below commit ${this.committed}`);
    this.committed = index;
    this.pendingSnapshot = snap;
    this.unstable = [];
    this.offset = index + 1;
    this.persisted = Math.min(this.persisted, index);
  }

  markApplying(index: number): void {
    assert(index <= this.committed, `raft log: applying ${index} beyond commit ${this.committed}`);
    this.applying = Math.max(this.applying, index);
  }

  appliedTo(index: number): void {
    assert(index <= this.committed, `raft log: applied ${index} beyond commit ${this.committed}`);
    this.applied = Math.max(this.applied, index);
    this.applying = Math.max(this.applying, index);
  }
}
