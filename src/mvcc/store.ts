/**
 * MvccStore: etcd's revisioned key space on LMDB. See codec.ts for the on-disk layout, txn.ts for
 * request semantics, key-index.ts for generations and compaction, compactor.ts for physical
 * compaction, hash.ts for consistency hashes and snapshot.ts for the snapshot stream.
 *
 * Writes are synchronous: each write request is one LMDB write transaction and, if it changes
 * anything, one main revision. The Raft apply step calls `apply(index, request)` (or
 * `write(index, fn)` to combine kv changes with meta namespaces): the entry's index is stored in
 * the same transaction as its data, and an entry at or below the stored index is skipped, so
 * replaying the log after a crash applies every entry exactly once. Committed revisions are then
 * reported to commit listeners (the watch layer's hook).
 */
import { mkdir, rm } from 'node:fs/promises';
import { assert } from './assert.ts';
import { Backend } from './backend.ts';
import {
  decodeRevKey,
  decodeU64,
  decodePutMeta,
  encodeU64,
  isValidNamespace,
  metaKeys,
  namespacePrefix,
  recordKeyString,
  storeFormatVersion,
  asBuffer,
} from './codec.ts';
import { Compactor } from './compactor.ts';
import { defragPaths, recoverDefrag, swapIn, writeCompactCopy } from './defrag.ts';
import { CompactedError, FutureRevisionError, InvalidArgumentError, MvccError, StoreClosedError } from './errors.ts';
import { hashAll, hashKV } from './hash.ts';
import { readHistory } from './history.ts';
import type { HistoryBatch, HistoryRequest } from './history.ts';
import { resolveLimits } from './limits.ts';
import type { MvccLimits } from './limits.ts';
import { restoreSnapshot, sizedSnapshot, snapshotStream, type SizedSnapshot } from './snapshot.ts';
import { SnapshotRegistry, StoreState } from './state.ts';
import { TreeIndex } from './tree-index.ts';
import { StoreTxn } from './txn.ts';
import { checkDeleteRequest, checkPutRequest, checkRangeRequest, checkTxnRequest, isTxnReadonly } from './txn-check.ts';
import type {
  CommitListener,
  CompactResponse,
  DeleteRangeRequest,
  DeleteRangeResponse,
  HashKVResult,
  HashResult,
  MvccRequest,
  MvccResponse,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  RequestOp,
  TxnRequest,
  TxnResponse,
} from './types.ts';

export interface StoreOptions {
  readonly limits?: Partial<MvccLimits>;
  /** Consulted for puts that attach a lease; absent = every lease is accepted. */
  readonly leaseExists?: (lease: bigint) => boolean;
}

export interface MetaEntry {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

/** Read access to the opaque meta namespaces other layers keep in the store. */
export interface MetaReader {
  get(namespace: string, key: Uint8Array): Uint8Array | undefined;
  /** Every entry of a namespace, in key order. */
  entries(namespace: string): MetaEntry[];
}

export interface MetaWriter extends MetaReader {
  put(namespace: string, key: Uint8Array, value: Uint8Array): void;
  delete(namespace: string, key: Uint8Array): boolean;
}

/** What a write callback gets: the store as of this write, one main revision for all its changes. */
export interface WriteTxn {
  /** The revision reads see: the current one, or this write's once it changed something. */
  readonly revision: number;
  range(r: RangeRequest): RangeResponse;
  put(r: PutRequest): PutResponse;
  deleteRange(r: DeleteRangeRequest): DeleteRangeResponse;
  txn(r: TxnRequest): TxnResponse;
  readonly meta: MetaWriter;
}

export type WriteResult<T> =
  /** index ≤ consistentIndex: the entry was applied before; nothing happened. */
  | { readonly status: 'skipped' }
  | { readonly status: 'applied'; readonly value: T };

export type ApplyResult =
  | { readonly status: 'skipped' }
  | { readonly status: 'applied'; readonly response: MvccResponse }
  /** The request failed with an expected error; the index was still recorded (nothing else changed). */
  | { readonly status: 'failed'; readonly error: MvccError };

export interface StoreStats {
  readonly revision: number;
  readonly compactRevision: number;
  readonly consistentIndex: number;
  /** Keys in the index (live or with uncompacted history). */
  readonly indexedKeys: number;
  /** Records in the kv database. */
  readonly kvRecords: number;
  /** Records freed by physical compaction since open. */
  readonly compactionFreed: number;
  /** Size of the LMDB file up to its last allocated page. */
  readonly dbBytes: number;
  /** The part of dbBytes in pages that hold data; the rest is free pages (see defragment()). */
  readonly dbBytesInUse: number;
}

export interface DefragmentResult {
  /** dbBytes before and after. */
  readonly beforeBytes: number;
  readonly afterBytes: number;
}

class Meta implements MetaWriter {
  constructor(private readonly s: StoreState) {}

  private get backend(): Backend {
    return this.s.backend;
  }

  private get limits(): MvccLimits {
    return this.s.limits;
  }

  private fullKey(ns: string, key: Uint8Array): Buffer {
    if (!isValidNamespace(ns)) throw new InvalidArgumentError(`meta namespace ${JSON.stringify(ns)}`);
    if (key.byteLength > this.limits.metaKeyBytesMax) throw new InvalidArgumentError(`meta key of ${key.byteLength} bytes`);
    return Buffer.concat([namespacePrefix(ns), key]);
  }

  get(ns: string, key: Uint8Array): Uint8Array | undefined {
    return this.backend.metaGetRaw(this.fullKey(ns, key));
  }

  entries(ns: string): MetaEntry[] {
    const prefix = this.fullKey(ns, new Uint8Array(0));
    const end = Buffer.from(prefix);
    end[end.length - 1]!++;
    const out: MetaEntry[] = [];
    for (const { key, value } of this.backend.metaRange({ start: prefix, end })) {
      out.push({ key: Buffer.from(key.subarray(prefix.length)), value: Buffer.from(value) });
    }
    return out;
  }

  put(ns: string, key: Uint8Array, value: Uint8Array): void {
    this.backend.metaPut(this.fullKey(ns, key), Buffer.from(asBuffer(value)));
  }

  delete(ns: string, key: Uint8Array): boolean {
    return this.backend.metaRemove(this.fullKey(ns, key));
  }
}

class WriteTxnFacade implements WriteTxn {
  constructor(
    private readonly t: StoreTxn,
    readonly meta: MetaWriter,
    private readonly limits: MvccLimits,
  ) {}
  get revision(): number {
    return this.t.revision;
  }
  range(r: RangeRequest): RangeResponse {
    checkRangeRequest(r, this.limits);
    return this.t.range(r);
  }
  put(r: PutRequest): PutResponse {
    checkPutRequest(r, this.limits);
    this.t.checkLease(r.lease);
    return this.t.put(r);
  }
  deleteRange(r: DeleteRangeRequest): DeleteRangeResponse {
    checkDeleteRequest(r, this.limits);
    return this.t.deleteRange(r);
  }
  txn(r: TxnRequest): TxnResponse {
    return this.t.txn(r);
  }
}

function checkIndex(index: number): void {
  if (!Number.isSafeInteger(index) || index < 1) throw new InvalidArgumentError(`raft index ${index}`);
}

function dispatch(tx: WriteTxn, req: RequestOp): MvccResponse {
  switch (req.op) {
    case 'range':
      return { op: 'range', response: tx.range(req.request) };
    case 'put':
      return { op: 'put', response: tx.put(req.request) };
    case 'deleteRange':
      return { op: 'deleteRange', response: tx.deleteRange(req.request) };
    case 'txn':
      return { op: 'txn', response: tx.txn(req.request) };
  }
}

function isThenable(v: unknown): boolean {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

export class MvccStore {
  private readonly s: StoreState;
  private readonly compactor: Compactor;
  private readonly snapshots = new SnapshotRegistry();
  private readonly metaAccess: Meta;
  /** The defragmentation in progress (close() waits for it). */
  private defragmenting: Promise<DefragmentResult> | null = null;
  /** Backends replaced by a defragmentation, closing once their pinned readers are done. */
  private readonly retiring = new Set<Promise<void>>();

  private constructor(s: StoreState) {
    this.s = s;
    this.compactor = new Compactor(s);
    this.metaAccess = new Meta(s);
  }

  /**
   * Opens (creating if needed) the store in `dir` and rebuilds the key index from it. A store
   * whose defragmentation a crash interrupted is put back together first (see defrag.ts).
   */
  static async open(dir: string, options: StoreOptions = {}): Promise<MvccStore> {
    const limits = resolveLimits(options.limits);
    await recoverDefrag(dir);
    await mkdir(dir, { recursive: true });
    const backend = Backend.open(dir);
    try {
      const store = new MvccStore(new StoreState(backend, new TreeIndex(), limits, options.leaseExists));
      store.load();
      return store;
    } catch (e) {
      await backend.close();
      throw e;
    }
  }

  /** Restores a snapshot stream (from `snapshot()`) into a new store directory; open it afterwards. */
  static async restore(dir: string, source: AsyncIterable<Uint8Array>, options: StoreOptions = {}): Promise<void> {
    await restoreSnapshot(dir, source, resolveLimits(options.limits));
  }

  private load(): void {
    const { backend, index } = this.s;
    const format = backend.metaGet(metaKeys.format);
    if (format === undefined) {
      backend.write(() => {
        backend.metaPut(metaKeys.format, encodeU64(storeFormatVersion));
        backend.metaPut(metaKeys.currentRevision, encodeU64(1));
      });
    } else {
      const v = decodeU64(format);
      if (v !== storeFormatVersion) throw new InvalidArgumentError(`store format ${v} is not supported (expected ${storeFormatVersion})`);
    }
    const u64 = (key: string, absent: number): number => {
      const b = backend.metaGet(key);
      return b === undefined ? absent : decodeU64(b);
    };
    this.s.consistentIndex = u64(metaKeys.consistentIndex, 0);
    this.s.currentRev = u64(metaKeys.currentRevision, 1);
    const scheduled = u64(metaKeys.scheduledCompact, -1);
    const finished = u64(metaKeys.finishedCompact, -1);
    this.s.compactRev = Math.max(scheduled, finished);

    let maxMain = 0;
    for (const { key, value } of backend.kvRange({})) {
      const r = decodeRevKey(key);
      maxMain = r.main;
      const k = recordKeyString(value);
      const ki = index.keyIndex(k);
      if (r.tombstone) {
        if (ki === undefined) index.restoreTombstone(k, r.main, r.sub);
        else if (ki.exists()) index.tombstone(k, r.main, r.sub);
        // else: a tombstone whose put was already freed by an interrupted compaction; the
        // resumed compaction frees it too.
      } else {
        const m = decodePutMeta(value);
        assert(m.modRevision === r.main, `record under revision ${r.main} claims mod revision ${m.modRevision}`);
        index.put(k, r.main, r.sub, m.createRevision, m.version);
      }
    }
    assert(maxMain <= this.s.currentRev, `backend holds revision ${maxMain} beyond the current revision ${this.s.currentRev}`);
    if (scheduled > finished) {
      index.compact(scheduled);
      this.compactor.schedule(scheduled);
    }
  }

  private live(): void {
    if (this.s.closed) throw new StoreClosedError();
  }

  /** The current revision (1 for an empty store; the first write is revision 2, as in etcd). */
  get revision(): number {
    return this.s.currentRev;
  }

  /** Reads below this fail with CompactedError; -1 before the first compaction. */
  get compactRevision(): number {
    return this.s.compactRev;
  }

  /** The Raft index of the last applied entry (0 when none). */
  consistentIndex(): number {
    return this.s.consistentIndex;
  }

  /**
   * Forgets the applied Raft index (consistentIndex() becomes 0), keeping the data, revisions
   * and compaction state: for a store restored from a snapshot to seed a new cluster, whose log
   * starts again at index 1.
   */
  resetConsistentIndex(): void {
    this.live();
    const s = this.s;
    s.backend.write(() => s.backend.metaRemove(metaKeys.consistentIndex));
    s.consistentIndex = 0;
  }

  get meta(): MetaReader {
    return this.metaAccess;
  }

  range(r: RangeRequest): RangeResponse {
    this.live();
    checkRangeRequest(r, this.s.limits);
    return new StoreTxn(this.s, false).range(r);
  }

  put(r: PutRequest): PutResponse {
    return this.unwrap(this.write(undefined, (tx) => tx.put(r)));
  }

  deleteRange(r: DeleteRangeRequest): DeleteRangeResponse {
    return this.unwrap(this.write(undefined, (tx) => tx.deleteRange(r)));
  }

  txn(r: TxnRequest): TxnResponse {
    this.live();
    if (isTxnReadonly(r)) {
      checkTxnRequest(r, this.s.limits);
      return new StoreTxn(this.s, false).txn(r);
    }
    return this.unwrap(this.write(undefined, (tx) => tx.txn(r)));
  }

  /** Compacts at rev: reads below rev fail from now on; old records are freed in the background. */
  compact(rev: number): CompactResponse {
    return this.compactAt(rev, undefined);
  }

  private unwrap<T>(r: WriteResult<T>): T {
    assert(r.status === 'applied', 'a write without an index cannot be skipped');
    return r.value;
  }

  /**
   * Runs fn in one write transaction (one main revision if it changes keys). With an index, the
   * index is stored with the data, and an index ≤ consistentIndex() skips fn entirely. If fn
   * throws, nothing of it is kept (and the index is not recorded: see apply()).
   */
  write<T>(index: number | undefined, fn: (tx: WriteTxn) => T): WriteResult<T> {
    this.live();
    if (index !== undefined) {
      checkIndex(index);
      if (index <= this.s.consistentIndex) return { status: 'skipped' };
    }
    const s = this.s;
    const t = new StoreTxn(s, true);
    const facade = new WriteTxnFacade(t, this.metaAccess, s.limits);
    let value: T;
    try {
      value = s.backend.write(() => {
        const v = fn(facade);
        assert(!isThenable(v), 'write callbacks must be synchronous');
        if (t.changes.length > 0) s.backend.metaPut(metaKeys.currentRevision, encodeU64(t.beginRev + 1));
        if (index !== undefined) s.backend.metaPut(metaKeys.consistentIndex, encodeU64(index));
        return v;
      });
    } catch (e) {
      t.revertIndex();
      throw e;
    }
    if (index !== undefined) s.consistentIndex = index;
    if (t.changes.length > 0) {
      s.currentRev = t.beginRev + 1;
      if (s.listeners.length > 0) {
        const events = t.events();
        for (const l of [...s.listeners]) l(s.currentRev, events);
      }
    }
    return { status: 'applied', value };
  }

  /**
   * The Raft apply entry point: runs one request at log index `index`, exactly once. Expected
   * failures (compacted, key not found, duplicate key…) come back as `failed` with the index
   * recorded, like etcd, which advances its consistent index for failed requests too.
   */
  apply(index: number, req: MvccRequest): ApplyResult {
    this.live();
    checkIndex(index);
    if (index <= this.s.consistentIndex) return { status: 'skipped' };
    try {
      if (req.op === 'compact') return { status: 'applied', response: { op: 'compact', response: this.compactAt(req.revision, index) } };
      const r = this.write(index, (tx) => dispatch(tx, req));
      assert(r.status === 'applied', 'apply of an unapplied index was skipped');
      return { status: 'applied', response: r.value };
    } catch (e) {
      if (!(e instanceof MvccError) || e instanceof StoreClosedError) throw e;
      this.recordIndex(index);
      return { status: 'failed', error: e };
    }
  }

  /**
   * Applies a run of committed entries (ascending indexes) in as few LMDB write transactions as
   * possible: one per run between compactions. Each entry is still its own revision with its own
   * result, exactly as if apply() had been called for each; the last index is stored with the data.
   */
  applyBatch(entries: ReadonlyArray<{ readonly index: number; readonly request: MvccRequest }>): ApplyResult[] {
    this.live();
    const results: ApplyResult[] = [];
    let i = 0;
    while (i < entries.length) {
      const e = entries[i]!;
      if (e.request.op === 'compact') {
        results.push(this.apply(e.index, e.request));
        i++;
        continue;
      }
      let j = i;
      while (j < entries.length && entries[j]!.request.op !== 'compact') j++;
      results.push(...this.applyRun(entries.slice(i, j)));
      i = j;
    }
    return results;
  }

  private applyRun(run: ReadonlyArray<{ readonly index: number; readonly request: MvccRequest }>): ApplyResult[] {
    const s = this.s;
    const startRev = s.currentRev;
    const startIndex = s.consistentIndex;
    const results: ApplyResult[] = [];
    const committed: StoreTxn[] = [];
    let current: StoreTxn | null = null;
    let retrySingly = false;
    try {
      s.backend.write(() => {
        for (const e of run) {
          checkIndex(e.index);
          if (e.index <= s.consistentIndex) {
            results.push({ status: 'skipped' });
            continue;
          }
          const req = e.request;
          assert(req.op !== 'compact', 'compaction inside an apply run');
          const t = new StoreTxn(s, true);
          current = t;
          try {
            results.push({ status: 'applied', response: dispatch(new WriteTxnFacade(t, this.metaAccess, s.limits), req) });
          } catch (err) {
            // A request that fails before changing anything (every expected failure does) fails
            // alone; anything else aborts the run, which is then applied entry by entry.
            if (!(err instanceof MvccError) || err instanceof StoreClosedError) throw err;
            if (t.changes.length > 0) {
              retrySingly = true;
              throw err;
            }
            results.push({ status: 'failed', error: err });
          }
          current = null;
          committed.push(t);
          if (t.changes.length > 0) s.currentRev = t.beginRev + 1;
          s.consistentIndex = e.index;
        }
        if (s.currentRev !== startRev) s.backend.metaPut(metaKeys.currentRevision, encodeU64(s.currentRev));
        if (s.consistentIndex !== startIndex) s.backend.metaPut(metaKeys.consistentIndex, encodeU64(s.consistentIndex));
      });
    } catch (err) {
      (current as StoreTxn | null)?.revertIndex();
      for (let k = committed.length - 1; k >= 0; k--) committed[k]!.revertIndex();
      s.currentRev = startRev;
      s.consistentIndex = startIndex;
      if (retrySingly) return run.map((e) => this.apply(e.index, e.request));
      throw err;
    }
    if (s.listeners.length > 0) {
      for (const t of committed) {
        if (t.changes.length === 0) continue;
        const events = t.events();
        for (const l of [...s.listeners]) l(t.beginRev + 1, events);
      }
    }
    return results;
  }

  private recordIndex(index: number): void {
    const s = this.s;
    s.backend.write(() => s.backend.metaPut(metaKeys.consistentIndex, encodeU64(index)));
    s.consistentIndex = index;
  }

  private compactAt(rev: number, index: number | undefined): CompactResponse {
    this.live();
    const s = this.s;
    if (!Number.isSafeInteger(rev)) throw new InvalidArgumentError(`compact revision ${rev}`);
    if (rev <= s.compactRev) throw new CompactedError();
    if (rev > s.currentRev) throw new FutureRevisionError();
    s.backend.write(() => {
      s.backend.metaPut(metaKeys.scheduledCompact, encodeU64(rev));
      if (index !== undefined) s.backend.metaPut(metaKeys.consistentIndex, encodeU64(index));
    });
    s.compactRev = rev;
    if (index !== undefined) s.consistentIndex = index;
    s.index.compact(rev);
    this.compactor.schedule(rev);
    return { revision: s.currentRev };
  }

  /** Resolves once physical compaction has caught up with the last compaction (etcd's "physical"). */
  compactionDone(): Promise<void> {
    return this.compactor.idle();
  }

  /** Registers a listener for committed revisions; returns its unsubscribe function. */
  onCommit(listener: CommitListener): () => void {
    this.live();
    if (this.s.listeners.length >= this.s.limits.commitListenersMax) throw new InvalidArgumentError('too many commit listeners');
    this.s.listeners.push(listener);
    return () => {
      const i = this.s.listeners.indexOf(listener);
      if (i >= 0) this.s.listeners.splice(i, 1);
    };
  }

  /** Committed events of a key range from a revision on, one bounded batch per call (see history.ts). */
  history(r: HistoryRequest): HistoryBatch {
    this.live();
    return readHistory(this.s, r);
  }

  /** Hash of the whole backend except the consistent index (etcd's Hash). */
  hash(): Promise<HashResult> {
    return hashAll(this.s, this.snapshots);
  }

  /** etcd's HashKV: see hash.ts. revision 0 = current. */
  hashKV(revision = 0): Promise<HashKVResult> {
    return hashKV(this.s, this.snapshots, revision);
  }

  /** A point-in-time stream of the whole store; restore it with MvccStore.restore. */
  snapshot(): AsyncIterable<Uint8Array> {
    this.live();
    return snapshotStream(this.s, this.snapshots);
  }

  /** snapshot() with its length known up front (measured by a first pass over the same state). */
  sizedSnapshot(): Promise<SizedSnapshot> {
    this.live();
    return sizedSnapshot(this.s, this.snapshots);
  }

  stats(): StoreStats {
    this.live();
    return {
      revision: this.s.currentRev,
      compactRevision: this.s.compactRev,
      consistentIndex: this.s.consistentIndex,
      indexedKeys: this.s.index.size,
      kvRecords: this.s.backend.kvEntryCount(),
      dbBytes: this.s.backend.sizeBytes(),
      dbBytesInUse: this.s.backend.inUseBytes(),
      compactionFreed: this.compactor.freed,
    };
  }

  /**
   * Gives the backend file's free pages back to the file system (etcd's defragment): writes a
   * compacted copy of the store beside it, checks it and swaps it in; the store object, its key
   * index and its listeners stay as they are. The caller must keep writes away until this
   * resolves (the member pauses its apply loop; a write meanwhile fails an assertion);
   * background compaction pauses by itself and resumes on the copy. Reads go on throughout:
   * from the old file until the swap, then from the new one, while snapshot streams and hashes
   * already running finish on the old file, which is closed and removed after them.
   */
  defragment(): Promise<DefragmentResult> {
    this.live();
    if (this.defragmenting !== null) throw new InvalidArgumentError('a defragmentation of this store is already running');
    const run = this.runDefragment().finally(() => {
      this.defragmenting = null;
    });
    this.defragmenting = run;
    return run;
  }

  private async runDefragment(): Promise<DefragmentResult> {
    const s = this.s;
    const old = s.backend;
    const beforeBytes = old.sizeBytes();
    const paths = defragPaths(old.dir);
    await this.compactor.pause();
    old.freeze(true);
    let swapped = false;
    try {
      await writeCompactCopy(old, paths);
      await swapIn(paths);
      swapped = true;
      s.backend = Backend.open(old.dir);
    } finally {
      if (!swapped) old.freeze(false);
      if (!s.closed) this.compactor.resume();
    }
    this.retire(old, paths.old);
    return { beforeBytes, afterBytes: s.backend.sizeBytes() };
  }

  /** Closes a replaced backend once no pinned snapshot reads it, then removes its directory. */
  private retire(backend: Backend, dir: string): void {
    const done = this.snapshots
      .drained(backend)
      .then(() => backend.close())
      .then(() => rm(dir, { recursive: true, force: true }))
      // A directory left behind is removed when the store next opens (recoverDefrag).
      .catch(() => undefined)
      .finally(() => this.retiring.delete(done));
    this.retiring.add(done);
  }

  /** Bytes of the backend file in use (stats().dbBytes without the other counters): what the quota counts. */
  dbBytes(): number {
    this.live();
    return this.s.backend.sizeBytes();
  }

  /** Resolves once every write so far is committed to LMDB and fsynced (they are not, one by one). */
  sync(): Promise<void> {
    this.live();
    return this.s.backend.sync();
  }

  /** Stops background compaction (it resumes on the next open), releases snapshots, closes LMDB. */
  async close(): Promise<void> {
    if (this.s.closed) return;
    // A defragmentation holds the backend it copies from: let it finish (or fail) first.
    await this.defragmenting?.catch(() => undefined);
    if (this.s.closed) return;
    await this.compactor.stop();
    this.s.closed = true;
    this.snapshots.releaseAll();
    this.s.listeners.length = 0;
    await Promise.all([...this.retiring]);
    await this.s.backend.close();
  }
}
