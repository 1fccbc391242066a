/**
 * The store's shared internals: backend, index, revisions, limits and listeners, plus the one
 * hot-path read (a revision's KeyValue). Owned by MvccStore; read and written by StoreTxn,
 * the compactor, hashing and snapshots.
 */
import { assert } from './assert.ts';
import type { Backend, ReadSnapshot } from './backend.ts';
import { decodePutRecord, revKeyBytes, writeRevKey } from './codec.ts';
import type { MvccLimits } from './limits.ts';
import type { TreeIndex } from './tree-index.ts';
import type { CommitListener, KeyValue } from './types.ts';

export class StoreState {
  /** Main revision of the last committed change; 1 for an empty store, as in etcd. */
  currentRev = 1;
  /** Reads below this revision fail; -1 until the first compaction, as in etcd. */
  compactRev = -1;
  /** Raft index of the last applied entry, persisted with its data. */
  consistentIndex = 0;
  readonly listeners: CommitListener[] = [];
  closed = false;
  private readonly scratch = Buffer.alloc(revKeyBytes);

  constructor(
    readonly backend: Backend,
    readonly index: TreeIndex,
    readonly limits: MvccLimits,
    readonly leaseExists: ((lease: bigint) => boolean) | undefined,
  ) {}

  /** The put stored at (main, sub); the index says it exists, so absence is corruption. */
  readKv(main: number, sub: number, keysOnly: boolean): KeyValue {
    writeRevKey(this.scratch, main, sub);
    const fast = this.backend.kvGetFast(this.scratch);
    assert(fast !== undefined, `revision ${main}.${sub} is in the index but not in the backend`);
    // LMDB's reusable buffer reports the value's length but spans a larger area: copy just the value.
    const rec = Buffer.from(fast.subarray(0, fast.length));
    return decodePutRecord(rec, main, keysOnly);
  }
}

/** Tracks LMDB read snapshots held across event-loop turns so close() can release them. */
export class SnapshotRegistry {
  private readonly open = new Set<{ done(): void }>();

  pin(s: StoreState): { snap: ReadSnapshot; release(): void } {
    const snap = s.backend.snapshot();
    let released = false;
    const handle = {
      done: (): void => {
        if (released) return;
        released = true;
        this.open.delete(handle);
        snap.done();
      },
    };
    this.open.add(handle);
    return { snap, release: handle.done };
  }

  releaseAll(): void {
    for (const h of [...this.open]) h.done();
  }
}
