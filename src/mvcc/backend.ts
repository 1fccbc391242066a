/**
 * The LMDB side of the store: one environment (the store directory) with the `kv` and `meta`
 * databases described in codec.ts.
 *
 * Writes happen only inside `write()`, which lands them in a write buffer (write-buffer.ts):
 * readable at once, undone if the callback throws. The buffer is committed to LMDB in the
 * background, at most every BACKEND_LIMITS.commitIntervalMs or sooner when it holds
 * commitBytes, by lmdb-js's write thread with overlapping sync: each commit is fsynced after
 * it is made, off the event loop, and LMDB reuses no page of the last fsynced state until the
 * next fsync. So after a process crash LMDB holds every commit the OS received, and after an OS
 * crash or power loss it opens at the last fsynced commit (it tells them apart by the boot id),
 * consistent either way; the Raft WAL upstream replays what is missing. `sync()` waits until
 * everything written so far is committed and fsynced, which the WAL waits for before it
 * releases entries.
 */
import { open } from 'lmdb';
import type { Database, DatabaseOptions, RangeOptions, RootDatabase, Transaction } from 'lmdb';
import { assert } from './assert.ts';
import { readU64, revKeyBytes } from './codec.ts';
import { lookup, OpenGeneration, pendingInRange, type Generation, type GenerationList, type Pending, type TableName } from './write-buffer.ts';

export const BACKEND_LIMITS = {
  /** Longest a write waits in the write buffer before its commit to LMDB starts (etcd's backend batch interval is 100 ms). */
  commitIntervalMs: 100,
  /** Bytes in the write buffer that start a commit before the interval ends (bounds its memory). */
  commitBytes: 8 * 1024 * 1024,
} as const;

/** A consistent point-in-time view (an LMDB read transaction and the writes not yet in it) until `done()`. */
export interface ReadSnapshot {
  done(): void;
}

interface PinnedView extends ReadSnapshot {
  readonly txn: Transaction;
  readonly pending: GenerationList;
}

/** The backend stopped taking writes because a commit to LMDB failed. */
export class BackendFailedError extends Error {
  constructor(cause: unknown) {
    super(`the store's LMDB commit failed, so it takes no more writes: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'BackendFailedError';
  }
}

export interface RangeEntry {
  readonly key: Buffer;
  readonly value: Buffer;
}

/** Gets one kv record of a kvScan: a view of LMDB's reusable buffer, valid only during the call. */
export type ScanVisitor = (main: number, sub: number, record: Uint8Array, length: number) => boolean;

interface RootWithFlushed {
  /** Resolves once every commit so far is fsynced (overlapping sync). */
  readonly flushed: PromiseLike<unknown>;
}

/** The page counts LMDB reports for one B-tree (getStats). */
interface TreeStats {
  readonly treeBranchPageCount: number;
  readonly treeLeafPageCount: number;
  readonly overflowPages: number;
}

/** LMDB's two meta pages at the head of every file, always in use. */
const LMDB_META_PAGES = 2;

function treePages(t: Partial<TreeStats> | undefined, which: string): number {
  assert(
    t !== undefined && typeof t.treeBranchPageCount === 'number' && typeof t.treeLeafPageCount === 'number' && typeof t.overflowPages === 'number',
    `LMDB stats without page counts for ${which}`,
  );
  return t.treeBranchPageCount + t.treeLeafPageCount + t.overflowPages;
}

/** The options of kvRange and metaRange. */
export interface RangeRequestOptions {
  readonly start?: Buffer;
  readonly end?: Buffer;
  readonly limit?: number;
  readonly exclusiveStart?: boolean;
  readonly snapshot?: ReadSnapshot;
}

const NO_PENDING: GenerationList = [];

export class Backend {
  private readonly root: RootDatabase<Buffer, Buffer>;
  private readonly kvDb: Database<Buffer, Buffer>;
  private readonly metaDb: Database<Buffer, Buffer>;
  /** The kv database again, for kvScan: its key reader decodes the revision in place and its
   * value decoder hands over LMDB's reusable buffer, so a record costs no copy or allocation. */
  private readonly kvScanDb: Database<unknown, Buffer>;
  private scanMain = 0;
  private scanSub = 0;
  private scanLength = 0;
  private inWrite = false;
  private closed = false;
  /** The generation writes go to. */
  private readonly open = new OpenGeneration();
  /** Sealed generations not yet visible in LMDB, newest first. */
  private sealed: Generation[] = [];
  /** The commit to LMDB in progress, if any; sealed generations wait for it. */
  private committing: Promise<void> | null = null;
  private commitTimer: NodeJS.Timeout | null = null;
  private failure: BackendFailedError | null = null;
  private closing: Promise<void> | null = null;
  /** Set while a compacted copy of this backend is taken (see defrag.ts): a write then is a bug. */
  private frozen = false;
  /** sizeBytes() as of the last commit to LMDB (getStats is a native call; quota checks ask per request). */
  private sizeCache: number | null = null;

  private constructor(readonly dir: string) {
    this.root = open<Buffer, Buffer>({
      path: dir,
      // The store is a directory even when its name has a dot (lmdb-js would take that as a file name).
      noSubdir: false,
      overlappingSync: true,
      maxDbs: 4,
      cache: false,
      compression: false,
      encoding: 'binary',
      keyEncoding: 'binary',
      noMemInit: true,
      // No write map (useWritemap): through a write map the kernel may write pages back in any
      // order, before their commit is fsynced.
    });
    this.kvDb = this.root.openDB<Buffer, Buffer>({ name: 'kv', encoding: 'binary', keyEncoding: 'binary', cache: false, compression: false });
    this.metaDb = this.root.openDB<Buffer, Buffer>({ name: 'meta', encoding: 'binary', keyEncoding: 'binary', cache: false, compression: false });
    this.kvScanDb = this.root.openDB<unknown, Buffer>({
      name: 'kv',
      cache: false,
      compression: false,
      keyEncoder: {
        writeKey: (key: Buffer, target: Buffer, start: number): number => {
          target.set(key, start);
          return start + key.length;
        },
        readKey: (key: Buffer, start: number): number => {
          this.scanMain = readU64(key, start);
          this.scanSub = readU64(key, start + 8);
          return this.scanMain;
        },
      },
      encoder: {
        encode: (): never => {
          throw new Error('kvScan is read-only');
        },
        decode: (record: Uint8Array, length: number): Uint8Array => {
          this.scanLength = length;
          return record;
        },
      },
    } as DatabaseOptions & { name: string });
  }

  static open(dir: string): Backend {
    return new Backend(dir);
  }

  get writing(): boolean {
    return this.inWrite;
  }

  /**
   * Runs fn as one write transaction: its writes are readable as soon as it returns and are
   * committed to LMDB together (with later ones) in the background; if it throws, none is kept.
   */
  write<T>(fn: () => T): T {
    assert(!this.closed, 'write on a closed backend');
    assert(!this.inWrite, 'nested backend write transaction');
    assert(!this.frozen, 'write to a backend while its compacted copy is taken');
    if (this.failure !== null) throw this.failure;
    this.inWrite = true;
    this.open.begin();
    let value: T;
    try {
      value = fn();
    } catch (e) {
      this.open.rollback();
      throw e;
    } finally {
      this.inWrite = false;
    }
    this.open.end();
    this.scheduleCommit();
    return value;
  }

  /** The generations not yet visible in LMDB, newest first (empty when there are none). */
  private pendingNow(): GenerationList {
    const current = this.open.current;
    if (this.sealed.length === 0) return current.empty ? NO_PENDING : [current];
    return current.empty ? this.sealed : [current, ...this.sealed];
  }

  /** A pending write of `key`: its value or null for a removal; undefined when LMDB has the latest. */
  private pendingValue(table: TableName, key: Buffer): Pending | undefined {
    const pending = this.pendingNow();
    return pending.length === 0 ? undefined : lookup(pending, table, key.toString('latin1'));
  }

  /**
   * The record at a revision key: LMDB's reusable buffer (valid only until the next read) or a
   * pending write's. Inside write() it sees that transaction's own writes.
   */
  kvGetFast(key: Buffer): Buffer | undefined {
    const pending = this.pendingValue('kv', key);
    if (pending !== undefined) return pending ?? undefined;
    return this.kvDb.getBinaryFast(key);
  }

  /**
   * Visits the kv records from revision key `start` to the revision of `last` (inclusive) in revision order, until
   * visit returns false. The cheap way to read many records of nearby revisions: kvGetFast
   * searches the tree from its root for every record, kvRange copies every key and value.
   */
  kvScan(start: Buffer, last: Buffer, visit: ScanVisitor): void {
    const pending = this.pendingNow();
    // Up to the revision of `last`, its put or its tombstone: ids of latin1 characters (≤ \u00ff) sort below \u0100.
    const extra = pending.length === 0 ? [] : pendingInRange(pending, 'kv', start.toString('latin1'), last.toString('latin1', 0, revKeyBytes) + '\u0100');
    let i = 0;
    // Emits the pending records before (main, sub); true while visit wants more.
    const emitBefore = (main: number, sub: number): boolean => {
      for (; i < extra.length; i++) {
        const e = extra[i]!;
        const m = readU64(e.key, 0);
        const sb = readU64(e.key, 8);
        if (m > main || (m === main && sb >= sub)) return true;
        if (e.value !== null && !visit(m, sb, e.value, e.value.length)) return false;
      }
      return true;
    };
    for (const { value } of this.kvScanDb.getRange({ start }) as Iterable<{ value: Uint8Array }>) {
      const main = this.scanMain;
      const sub = this.scanSub;
      if (!emitBefore(main, sub)) return;
      const e = extra[i];
      if (e !== undefined && readU64(e.key, 0) === main && readU64(e.key, 8) === sub) {
        // A pending write of this record replaces LMDB's.
        i++;
        if (e.value !== null && !visit(main, sub, e.value, e.value.length)) return;
        continue;
      }
      if (!visit(main, sub, value, this.scanLength)) return;
    }
    emitBefore(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  }

  kvPut(key: Buffer, value: Buffer): void {
    assert(this.inWrite, 'kv put outside a write transaction');
    this.open.set('kv', key, value);
  }

  kvRemove(key: Buffer): boolean {
    assert(this.inWrite, 'kv remove outside a write transaction');
    const existed = this.kvGetFast(key) !== undefined;
    this.open.set('kv', key, null);
    return existed;
  }

  /** kv entries with start ≤ key < end (end undefined: to the last), in key order. */
  kvRange(options: RangeRequestOptions): Iterable<RangeEntry> {
    return this.range(this.kvDb, 'kv', options);
  }

  metaRange(options: RangeRequestOptions): Iterable<RangeEntry> {
    return this.range(this.metaDb, 'meta', options);
  }

  /** LMDB's entries merged with the pending writes (of the snapshot, when given), at most options.limit of them. */
  private *range(db: Database<Buffer, Buffer>, table: TableName, options: RangeRequestOptions): Generator<RangeEntry> {
    let left = options.limit ?? Infinity;
    if (left <= 0) return;
    for (const entry of this.merged(db, table, options)) {
      yield entry;
      if (--left === 0) return;
    }
  }

  /** Every entry of the range: LMDB's, with the pending writes put over them in key order. */
  private *merged(db: Database<Buffer, Buffer>, table: TableName, options: RangeRequestOptions): Generator<RangeEntry> {
    const view = options.snapshot as PinnedView | undefined;
    const pending = view?.pending ?? this.pendingNow();
    const o: RangeOptions = {};
    if (options.start !== undefined) o.start = options.start;
    if (options.end !== undefined) o.end = options.end;
    if (options.exclusiveStart === true) o.exclusiveStart = true;
    if (view !== undefined) o.transaction = view.txn;
    const startId = options.start?.toString('latin1');
    const extra =
      pending.length === 0 ? [] : pendingInRange(pending, table, startId, options.end?.toString('latin1')).filter((e) => !(options.exclusiveStart === true && e.id === startId));
    let i = 0;
    for (const entry of db.getRange(o) as Iterable<RangeEntry>) {
      for (; i < extra.length && Buffer.compare(extra[i]!.key, entry.key) < 0; i++) {
        const e = extra[i]!;
        if (e.value !== null) yield { key: e.key, value: e.value };
      }
      const e = extra[i];
      if (e === undefined || !e.key.equals(entry.key)) {
        yield entry;
        continue;
      }
      // A pending write of this key replaces LMDB's entry.
      i++;
      if (e.value !== null) yield { key: e.key, value: e.value };
    }
    for (; i < extra.length; i++) {
      const e = extra[i]!;
      if (e.value !== null) yield { key: e.key, value: e.value };
    }
  }

  metaGet(key: string): Buffer | undefined {
    return this.metaGetRaw(Buffer.from(key, 'utf8'));
  }

  metaGetRaw(key: Buffer): Buffer | undefined {
    const pending = this.pendingValue('meta', key);
    if (pending !== undefined) return pending ?? undefined;
    return this.metaDb.getBinary(key);
  }

  metaPut(key: string | Buffer, value: Buffer): void {
    assert(this.inWrite, 'meta put outside a write transaction');
    this.open.set('meta', typeof key === 'string' ? Buffer.from(key, 'utf8') : key, value);
  }

  metaRemove(key: string | Buffer): boolean {
    assert(this.inWrite, 'meta remove outside a write transaction');
    const k = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
    const existed = this.metaGetRaw(k) !== undefined;
    this.open.set('meta', k, null);
    return existed;
  }

  /** Pins the current state for reads that span event-loop turns. Call done() after. */
  snapshot(): ReadSnapshot {
    assert(!this.inWrite, 'snapshot inside a write transaction');
    // Sealed, the pending generations the view holds never change.
    if (!this.open.current.empty) this.sealOpen();
    const txn = this.root.useReadTransaction();
    const view: PinnedView = { txn, pending: [...this.sealed], done: () => txn.done() };
    return view;
  }

  private sealOpen(): void {
    this.sealed = [this.open.seal(), ...this.sealed];
  }

  private scheduleCommit(): void {
    if (this.open.current.bytes >= BACKEND_LIMITS.commitBytes) this.startCommit();
    else this.commitTimer ??= setTimeout(() => this.startCommit(), BACKEND_LIMITS.commitIntervalMs);
  }

  /** Seals the open generation and commits every sealed one to LMDB, unless a commit is running (then it follows). */
  private startCommit(): void {
    if (this.closed) return;
    if (this.commitTimer !== null) {
      clearTimeout(this.commitTimer);
      this.commitTimer = null;
    }
    if (!this.open.current.empty) this.sealOpen();
    if (this.committing !== null || this.sealed.length === 0 || this.failure !== null) return;
    const batch = this.sealed;
    const committed = this.root.batch(() => {
      for (let g = batch.length - 1; g >= 0; g--) {
        const gen = batch[g]!;
        for (const slot of gen.kv.values()) void (slot.value === null ? this.kvDb.remove(slot.key) : this.kvDb.put(slot.key, slot.value));
        for (const slot of gen.meta.values()) void (slot.value === null ? this.metaDb.remove(slot.key) : this.metaDb.put(slot.key, slot.value));
      }
    });
    this.committing = Promise.resolve(committed).then(
      () => {
        // Visible in LMDB now (lmdb-js renews its read transaction before this runs); generations
        // sealed meanwhile are newer, at the front.
        this.sealed = this.sealed.slice(0, this.sealed.length - batch.length);
        this.sizeCache = null;
        this.committing = null;
        if (this.sealed.length > 0) this.startCommit();
      },
      (e: unknown) => {
        this.failure = new BackendFailedError(e);
        this.committing = null;
      },
    );
  }

  /** Bytes written but not yet committed to LMDB. */
  pendingBytes(): number {
    let bytes = this.open.current.bytes;
    for (const g of this.sealed) bytes += g.bytes;
    return bytes;
  }

  /** Resolves once everything written so far is committed to LMDB (not necessarily fsynced). */
  async settle(): Promise<void> {
    this.startCommit();
    const target = this.sealed[0];
    while (target !== undefined && this.sealed.includes(target) && this.failure === null) await this.committing;
    if (this.failure !== null) throw this.failure;
  }

  kvEntryCount(): number {
    const stats = this.kvDb.getStats() as { entryCount?: number };
    assert(typeof stats.entryCount === 'number', 'LMDB stats without entryCount');
    let count = stats.entryCount;
    for (const e of pendingInRange(this.pendingNow(), 'kv', undefined, undefined)) {
      const inLmdb = this.kvDb.doesExist(e.key);
      if (e.value !== null && !inLmdb) count++;
      else if (e.value === null && inLmdb) count--;
    }
    return count;
  }

  /** Bytes of the LMDB file in use up to its last allocated page (what the quota counts). */
  sizeBytes(): number {
    if (this.sizeCache !== null) return this.sizeCache;
    const stats = this.root.getStats() as { pageSize?: number; lastPageNumber?: number };
    assert(typeof stats.pageSize === 'number' && typeof stats.lastPageNumber === 'number', 'LMDB stats without page counts');
    this.sizeCache = (stats.lastPageNumber + 1) * stats.pageSize;
    return this.sizeCache;
  }

  /**
   * Bytes of the pages that hold data: LMDB's meta pages and the pages of every B-tree (the main
   * one, the free-page list's own, kv, meta). The rest of sizeBytes() are free pages, reused by
   * later writes but given back to the file system only by a compacted copy (etcd's dbSizeInUse).
   */
  inUseBytes(): number {
    const root = this.root.getStats() as Partial<TreeStats> & { pageSize?: number; lastPageNumber?: number; free?: Partial<TreeStats> };
    assert(typeof root.pageSize === 'number' && typeof root.lastPageNumber === 'number', 'LMDB stats without page counts');
    const pages =
      LMDB_META_PAGES +
      treePages(root, 'the main tree') +
      treePages(root.free, 'the free-page list') +
      treePages(this.kvDb.getStats() as Partial<TreeStats>, 'kv') +
      treePages(this.metaDb.getStats() as Partial<TreeStats>, 'meta');
    assert(pages <= root.lastPageNumber + 1, `LMDB counts ${pages} pages in use in a file of ${root.lastPageNumber + 1}`);
    return pages * root.pageSize;
  }

  /**
   * Stops (or allows again) write transactions: while set, write() fails an assertion. For the
   * time a compacted copy is taken, whose caller keeps writers away.
   */
  freeze(on: boolean): void {
    assert(!this.inWrite, 'backend frozen inside a write transaction');
    this.frozen = on;
  }

  /**
   * Writes a copy of the committed state into the empty directory `dir` with only the pages in
   * use, renumbered (LMDB's compacting copy), as a store directory of its own. The copy is taken
   * from one read transaction; it is not synced (the caller syncs it before relying on it).
   */
  async compactCopy(dir: string): Promise<void> {
    assert(!this.closed, 'copy of a closed backend');
    assert(this.frozen, 'compacted copy of a backend that is not frozen');
    await this.settle();
    await this.root.backup(dir, true);
  }

  /** Resolves once everything written so far is committed to LMDB and fsynced. */
  async sync(): Promise<void> {
    assert(!this.closed, 'sync of a closed backend');
    await this.settle();
    await (this.root as unknown as RootWithFlushed).flushed;
  }

  /** Commits and fsyncs what is pending (unless a commit failed), then closes the environment; once, however often called. */
  close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  private async closeOnce(): Promise<void> {
    try {
      await this.sync();
    } catch (e) {
      if (!(e instanceof BackendFailedError)) throw e;
    } finally {
      this.closed = true;
      await this.root.close();
    }
  }
}
