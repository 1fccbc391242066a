/**
 * The store's shared internals: backend, index, revisions, limits and listeners, plus the
 * hot-path reads (the KeyValues at given revisions). Owned by MvccStore; read and written by
 * StoreTxn, the compactor, hashing and snapshots.
 */
import { ReadArena } from './arena.ts';
import { assert } from './assert.ts';
import type { Backend, ReadSnapshot } from './backend.ts';
import { decodePutRecord, revKey, revKeyBytes } from './codec.ts';
import { scanRecordsMin, scanSpanPerRecordMax } from './limits.ts';
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
  private readonly scratchView = new DataView(this.scratch.buffer, this.scratch.byteOffset, revKeyBytes);
  private readonly arena = new ReadArena();

  constructor(
    /** Replaced (by a copy holding the same state) when the store is defragmented. */
    public backend: Backend,
    readonly index: TreeIndex,
    readonly limits: MvccLimits,
    readonly leaseExists: ((lease: bigint) => boolean) | undefined,
  ) {}

  /** The put stored at (main, sub); the index says it exists, so absence is corruption. */
  readKv(main: number, sub: number, keysOnly: boolean): KeyValue {
    // Revision numbers come from the index, which only holds safe integers (asserted on write).
    const v = this.scratchView;
    const mh = Math.floor(main / 4294967296);
    v.setUint32(0, mh);
    v.setUint32(4, main - mh * 4294967296);
    const sh = Math.floor(sub / 4294967296);
    v.setUint32(8, sh);
    v.setUint32(12, sub - sh * 4294967296);
    const fast = this.backend.kvGetFast(this.scratch);
    assert(fast !== undefined, `revision ${main}.${sub} is in the index but not in the backend`);
    // lmdb-js reports the value's length in `length` while the buffer spans a larger area.
    return decodePutRecord(fast, fast.length, main, keysOnly, this.arena);
  }

  /**
   * The puts at flat (main, sub) pairs, in that order (the range read path). Records are read in
   * revision order: with one scan of the kv table when the revisions lie close together (keys
   * written together), else one lookup each.
   */
  readKvs(revs: readonly number[], keysOnly: boolean): KeyValue[] {
    const n = revs.length >>> 1;
    const out = new Array<KeyValue>(n);
    if (n < scanRecordsMin) {
      for (let i = 0; i < n; i++) out[i] = this.readKv(revs[i * 2]!, revs[i * 2 + 1]!, keysOnly);
      return out;
    }
    const order = revisionOrder(revs);
    const span = revs[order[n - 1]! * 2]! - revs[order[0]! * 2]! + 1;
    if (span <= n * scanSpanPerRecordMax) {
      this.scanInto(revs, order, keysOnly, out);
    } else {
      for (const i of order) out[i] = this.readKv(revs[i * 2]!, revs[i * 2 + 1]!, keysOnly);
    }
    return out;
  }

  /** Reads the pairs in `order` with one forward scan from the first, skipping records not wanted. */
  private scanInto(revs: readonly number[], order: readonly number[], keysOnly: boolean, out: KeyValue[]): void {
    let j = 0;
    let want = order[0]!;
    let wantMain = revs[want * 2]!;
    let wantSub = revs[want * 2 + 1]!;
    const last = order[order.length - 1]!;
    this.backend.kvScan(revKey(wantMain, wantSub, false), revKey(revs[last * 2]!, revs[last * 2 + 1]!, false), (main, sub, record, length) => {
      if (main !== wantMain || sub !== wantSub) {
        // Another key's revision or a tombstone; passing the wanted revision means it is missing.
        assert(main < wantMain || (main === wantMain && sub < wantSub), `revision ${wantMain}.${wantSub} is in the index but not in the backend`);
        return true;
      }
      out[want] = decodePutRecord(record, length, main, keysOnly, this.arena);
      if (++j === order.length) return false;
      want = order[j]!;
      wantMain = revs[want * 2]!;
      wantSub = revs[want * 2 + 1]!;
      return true;
    });
    assert(j === order.length, `revision ${wantMain}.${wantSub} is in the index but not in the backend`);
  }
}

/** Pair indexes of flat (main, sub) pairs in ascending revision order (usually already so). */
function revisionOrder(revs: readonly number[]): number[] {
  const n = revs.length >>> 1;
  const order = new Array<number>(n);
  let sorted = true;
  for (let i = 0; i < n; i++) {
    order[i] = i;
    if (i > 0 && !revisionBefore(revs, i - 1, i)) sorted = false;
  }
  if (!sorted) order.sort((a, b) => (revisionBefore(revs, a, b) ? -1 : 1));
  return order;
}

function revisionBefore(revs: readonly number[], a: number, b: number): boolean {
  const am = revs[a * 2]!;
  const bm = revs[b * 2]!;
  return am < bm || (am === bm && revs[a * 2 + 1]! < revs[b * 2 + 1]!);
}

/** A pinned read snapshot and the backend it belongs to (reads must go to that one). */
export interface Pinned {
  readonly backend: Backend;
  readonly snap: ReadSnapshot;
  release(): void;
}

/**
 * Tracks LMDB read snapshots held across event-loop turns, so close() can release them and a
 * defragmented store's previous backend can be closed once its last reader is done.
 */
export class SnapshotRegistry {
  private readonly open = new Map<{ done(): void }, Backend>();
  private readonly drainWaiters: Array<{ backend: Backend; resolve: () => void }> = [];

  pin(s: StoreState): Pinned {
    const backend = s.backend;
    const snap = backend.snapshot();
    let released = false;
    const handle = {
      done: (): void => {
        if (released) return;
        released = true;
        this.open.delete(handle);
        snap.done();
        this.wakeDrained();
      },
    };
    this.open.set(handle, backend);
    return { backend, snap, release: handle.done };
  }

  /** Resolves once no snapshot of `backend` is pinned. */
  drained(backend: Backend): Promise<void> {
    return new Promise((resolve) => {
      this.drainWaiters.push({ backend, resolve });
      this.wakeDrained();
    });
  }

  private wakeDrained(): void {
    const pinned = new Set(this.open.values());
    for (let i = this.drainWaiters.length - 1; i >= 0; i--) {
      const w = this.drainWaiters[i]!;
      if (pinned.has(w.backend)) continue;
      this.drainWaiters.splice(i, 1);
      w.resolve();
    }
  }

  releaseAll(): void {
    for (const h of [...this.open.keys()]) h.done();
  }
}
