/**
 * The durable log as Raft reads it. Raft never writes here: the application persists what a
 * Ready hands it (to the WAL, then into a LogStorage it keeps in memory) and Raft reads it back.
 *
 * Layout of a LogStorage: a snapshot at (snapshotIndex, snapshotTerm) followed by the entries
 * snapshotIndex+1 … lastIndex. firstIndex() = snapshotIndex + 1; term(snapshotIndex) is still
 * known (it anchors the log-matching check of the first stored entry).
 *
 * A new cluster starts with `bootstrapStorage`: its initial membership is written as committed
 * configuration entries at the head of the log (as etcd does), so a member added later learns
 * the whole membership history from the log like everything else.
 */
import { assert } from '../util/assert.ts';
import { encodeConfChange } from './confchange.ts';
import type { ConfState, Entry, HardState, NodeId, Snapshot } from './types.ts';
import { EntryKind, NONE } from './types.ts';

export interface InitialState {
  readonly hardState: HardState;
  readonly confState: ConfState;
}

/** Reads fail with this when the requested index was compacted into a snapshot. */
export class CompactedError extends Error {
  constructor(index: number, firstIndex: number) {
    super(`raft: index ${index} is compacted (first index ${firstIndex})`);
    this.name = 'CompactedError';
  }
}

export interface LogStorage {
  initialState(): InitialState;
  /** Entries [lo, hi), stopping early once `maxBytes` of data is reached (always at least one). */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /** Term of entry `index`; valid for snapshotIndex ≤ index ≤ lastIndex. */
  term(index: number): number;
  firstIndex(): number;
  lastIndex(): number;
  snapshot(): Snapshot;
}

export const EMPTY_CONF_STATE: ConfState = {
  voters: [],
  votersOutgoing: [],
  learners: [],
  learnersNext: [],
  autoLeave: false,
};

export const EMPTY_SNAPSHOT: Snapshot = {
  metadata: { index: 0, term: 0, confState: EMPTY_CONF_STATE },
  data: new Uint8Array(0),
};

export function entryBytes(e: Entry): number {
  return e.data.byteLength;
}

/**
 * An in-memory LogStorage. The server keeps one in front of the WAL (filled after each sync);
 * the simulator uses it as each member's "disk".
 */
export class MemoryStorage implements LogStorage {
  private hard: HardState = { term: 0, vote: NONE, commit: 0 };
  private snap: Snapshot = EMPTY_SNAPSHOT;
  /** log[0] is a dummy at the snapshot's (index, term); real entries follow. */
  private log: Entry[] = [{ term: 0, index: 0, kind: 0, data: new Uint8Array(0) }];

  initialState(): InitialState {
    return { hardState: this.hard, confState: this.snap.metadata.confState };
  }

  setHardState(hs: HardState): void {
    this.hard = hs;
  }

  hardState(): HardState {
    return this.hard;
  }

  firstIndex(): number {
    return this.log[0]!.index + 1;
  }

  lastIndex(): number {
    return this.log[0]!.index + this.log.length - 1;
  }

  term(index: number): number {
    const offset = this.log[0]!.index;
    if (index < offset) throw new CompactedError(index, offset + 1);
    const e = this.log[index - offset];
    assert(e !== undefined, `raft storage: term(${index}) beyond last index ${this.lastIndex()}`);
    return e.term;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const offset = this.log[0]!.index;
    if (lo <= offset) throw new CompactedError(lo, offset + 1);
    assert(hi <= this.lastIndex() + 1, `raft storage: entries(${lo}, ${hi}) beyond last index ${this.lastIndex()}`);
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.log[i - offset]!;
      bytes += entryBytes(e);
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Stores entries, replacing any stored entries from entries[0].index on. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    const offset = this.log[0]!.index;
    assert(first > offset, `raft storage: append at ${first} overwrites the snapshot at ${offset}`);
    assert(first <= this.lastIndex() + 1, `raft storage: append at ${first} leaves a gap after ${this.lastIndex()}`);
    this.log.length = first - offset;
    for (const e of entries) this.log.push(e);
  }

  /** Replaces the whole log with a snapshot received from the leader. */
  applySnapshot(snap: Snapshot): void {
    const { index, term } = snap.metadata;
    assert(index >= this.log[0]!.index, `raft storage: snapshot at ${index} is older than ${this.log[0]!.index}`);
    this.snap = snap;
    this.log = [{ term, index, kind: 0, data: new Uint8Array(0) }];
  }

  /** Records a snapshot the application took of its own state at `index` (≤ last index). */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    assert(index <= this.lastIndex(), `raft storage: snapshot at ${index} beyond last index ${this.lastIndex()}`);
    if (index <= this.snap.metadata.index) return this.snap;
    this.snap = { metadata: { index, term: this.term(index), confState }, data };
    return this.snap;
  }

  /** Drops entries before `index`; entry `index` becomes the dummy that anchors the log. */
  compact(index: number): void {
    const offset = this.log[0]!.index;
    if (index <= offset) return;
    assert(index <= this.lastIndex(), `raft storage: compact(${index}) beyond last index ${this.lastIndex()}`);
    const anchor = this.log[index - offset]!;
    this.log = [{ term: anchor.term, index, kind: 0, data: new Uint8Array(0) }, ...this.log.slice(index - offset + 1)];
  }
}

/**
 * Prepares an empty storage for a member of a new cluster: entries 1…n (term 1) add each
 * initial voter, already committed, with `contexts` (if given) as each change's context.
 * Every founding member must be given the same voters and contexts. Returns the entries.
 */
export function bootstrapStorage(
  storage: MemoryStorage,
  voters: readonly NodeId[],
  contexts: ReadonlyMap<NodeId, Uint8Array> = new Map(),
): readonly Entry[] {
  assert(storage.lastIndex() === 0, 'raft storage: bootstrap of a non-empty log');
  assert(voters.length > 0 && new Set(voters).size === voters.length, 'raft storage: bootstrap needs distinct voters');
  const entries = [...voters].sort().map((nodeId, i): Entry => ({
    term: 1,
    index: i + 1,
    kind: EntryKind.ConfChange,
    data: encodeConfChange({ transition: 'auto', changes: [{ type: 'addVoter', nodeId }], context: contexts.get(nodeId) ?? new Uint8Array(0) }),
  }));
  storage.append(entries);
  storage.setHardState({ term: 1, vote: NONE, commit: entries.length });
  return entries;
}
