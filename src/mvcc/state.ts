/**
 * The store's shared internals: backend, index, revisions, limits and listeners, plus the one
 * hot-path read (a revision's KeyValue). Owned by MvccStore; read and written by StoreTxn,
 * the compactor, hashing and snapshots.
 */
import { assert } from './assert.ts';
import type { Backend, ReadSnapshot } from './backend.ts';
import { decodePutRecord, revKeyBytes } from './codec.ts';
import { readArenaBytes } from './limits.ts';
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

  constructor(
    readonly backend: Backend,
    readonly index: TreeIndex,
    readonly limits: MvccLimits,
    readonly leaseExists: ((lease: bigint) => boolean) | undefined,
  ) {}

  /** A Uint8Array over the whole of LMDB's reusable read buffer (re-made if lmdb-js replaces it). */
  private lmdbView: Uint8Array = new Uint8Array(0);

  /** The record at (main, sub) in LMDB's reusable buffer, as a view valid until the next read. */
  private fetch(main: number, sub: number): Uint8Array {
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
    if (fast.buffer !== this.lmdbView.buffer) this.lmdbView = new Uint8Array(fast.buffer);
    // lmdb-js reports the value's length in `length` while the buffer spans a larger area.
    return this.lmdbView.subarray(fast.byteOffset, fast.byteOffset + fast.length);
  }

  /** The put stored at (main, sub); the index says it exists, so absence is corruption. */
  readKv(main: number, sub: number, keysOnly: boolean): KeyValue {
    const src = this.fetch(main, sub);
    const rec = Buffer.allocUnsafe(src.length);
    rec.set(src);
    return decodePutRecord(rec, main, keysOnly);
  }

  /**
   * Many puts at once (the range read path): records are copied side by side into shared arenas
   * of readArenaBytes, so one allocation serves hundreds of kvs.
   */
  readKvs(revs: readonly number[], keysOnly: boolean): KeyValue[] {
    const out: KeyValue[] = new Array<KeyValue>(revs.length >>> 1);
    let arena = Buffer.allocUnsafe(0);
    let pos = 0;
    for (let i = 0; i < revs.length; i += 2) {
      const main = revs[i]!;
      const src = this.fetch(main, revs[i + 1]!);
      const len = src.length;
      if (pos + len > arena.length) {
        arena = Buffer.allocUnsafe(Math.max(readArenaBytes, len));
        pos = 0;
      }
      arena.set(src, pos);
      out[i >>> 1] = decodePutRecord(arena.subarray(pos, pos + len), main, keysOnly);
      pos += len;
    }
    return out;
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
