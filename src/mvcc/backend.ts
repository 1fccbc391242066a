/**
 * The LMDB side of the store: one environment (the store directory) with the `kv` and `meta`
 * databases described in codec.ts. Writes happen only inside `write()`, a synchronous LMDB write
 * transaction that commits when the callback returns and aborts when it throws. Commits are not
 * fsynced (`noSync`): the WAL upstream is the source of truth, and `sync()` flushes on demand.
 */
import { open } from 'lmdb';
import type { Database, DatabaseOptions, RangeOptions, RootDatabase, Transaction } from 'lmdb';
import { assert } from './assert.ts';
import { readU64 } from './codec.ts';

/** An explicit LMDB read transaction: a consistent point-in-time view until `done()`. */
export interface ReadSnapshot {
  done(): void;
}

export interface RangeEntry {
  readonly key: Buffer;
  readonly value: Buffer;
}

/** Gets one kv record of a kvScan: a view of LMDB's reusable buffer, valid only during the call. */
export type ScanVisitor = (main: number, sub: number, record: Uint8Array, length: number) => boolean;

interface RootWithSync {
  sync(callback: (error?: unknown) => void): void;
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
  /** Syncs in flight, which close() waits for (a defragmented store closes its old backend in the background). */
  private readonly syncing = new Set<Promise<void>>();
  /** Set while a compacted copy of this backend is taken (see defrag.ts): a write then is a bug. */
  private frozen = false;
  /** sizeBytes() as of the last write transaction (getStats is a native call; quota checks ask per request). */
  private sizeCache: number | null = null;

  private constructor(readonly dir: string) {
    this.root = open<Buffer, Buffer>({
      path: dir,
      // The store is a directory even when its name has a dot (lmdb-js would take that as a file name).
      noSubdir: false,
      noSync: true,
      maxDbs: 4,
      cache: false,
      compression: false,
      encoding: 'binary',
      keyEncoding: 'binary',
      noMemInit: true,
      // No write map (useWritemap), although it saves a pwrite per dirty page: with noSync, LMDB
      // keeps a crashed file consistent (losing only the last transactions, which the WAL
      // replays) only when pages are written with write(); through a write map the kernel may
      // flush pages in any order and an OS crash or power loss can leave a corrupt database.
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

  /** Runs fn in one LMDB write transaction; commits on return, aborts (and rethrows) on throw. */
  write<T>(fn: () => T): T {
    assert(!this.closed, 'write on a closed backend');
    assert(!this.inWrite, 'nested backend write transaction');
    assert(!this.frozen, 'write to a backend while its compacted copy is taken');
    this.inWrite = true;
    try {
      return this.root.transactionSync(fn);
    } finally {
      this.inWrite = false;
      this.sizeCache = null;
    }
  }

  /**
   * The record at a revision key, as LMDB's reusable buffer: valid only until the next read.
   * Inside write() it sees that transaction's own writes.
   */
  kvGetFast(key: Buffer): Buffer | undefined {
    return this.kvDb.getBinaryFast(key);
  }

  /**
   * Visits the kv records from revision key `start` on, in revision order, until visit returns
   * false. The cheap way to read many records of nearby revisions: kvGetFast searches the tree
   * from its root for every record, kvRange copies every key and value.
   */
  kvScan(start: Buffer, visit: ScanVisitor): void {
    for (const { value } of this.kvScanDb.getRange({ start }) as Iterable<{ value: Uint8Array }>) {
      if (!visit(this.scanMain, this.scanSub, value, this.scanLength)) break;
    }
  }

  kvPut(key: Buffer, value: Buffer): void {
    assert(this.inWrite, 'kv put outside a write transaction');
    this.kvDb.putSync(key, value);
  }

  kvRemove(key: Buffer): boolean {
    assert(this.inWrite, 'kv remove outside a write transaction');
    return this.kvDb.removeSync(key);
  }

  /** kv entries with start ≤ key < end (end undefined: to the last), in key order. */
  kvRange(options: { start?: Buffer; end?: Buffer; limit?: number; exclusiveStart?: boolean; snapshot?: ReadSnapshot }): Iterable<RangeEntry> {
    return this.range(this.kvDb, options);
  }

  metaRange(options: { start?: Buffer; end?: Buffer; limit?: number; exclusiveStart?: boolean; snapshot?: ReadSnapshot }): Iterable<RangeEntry> {
    return this.range(this.metaDb, options);
  }

  private range(
    db: Database<Buffer, Buffer>,
    options: { start?: Buffer; end?: Buffer; limit?: number; exclusiveStart?: boolean; snapshot?: ReadSnapshot },
  ): Iterable<RangeEntry> {
    const o: RangeOptions = {};
    if (options.start !== undefined) o.start = options.start;
    if (options.end !== undefined) o.end = options.end;
    if (options.limit !== undefined) o.limit = options.limit;
    if (options.exclusiveStart === true) o.exclusiveStart = true;
    if (options.snapshot !== undefined) o.transaction = options.snapshot as Transaction;
    return db.getRange(o) as Iterable<RangeEntry>;
  }

  metaGet(key: string): Buffer | undefined {
    return this.metaDb.getBinary(Buffer.from(key, 'utf8'));
  }

  metaGetRaw(key: Buffer): Buffer | undefined {
    return this.metaDb.getBinary(key);
  }

  metaPut(key: string | Buffer, value: Buffer): void {
    assert(this.inWrite, 'meta put outside a write transaction');
    this.metaDb.putSync(typeof key === 'string' ? Buffer.from(key, 'utf8') : key, value);
  }

  metaRemove(key: string | Buffer): boolean {
    assert(this.inWrite, 'meta remove outside a write transaction');
    return this.metaDb.removeSync(typeof key === 'string' ? Buffer.from(key, 'utf8') : key);
  }

  /** Pins the current committed state for reads that span event-loop turns. Call done() after. */
  snapshot(): ReadSnapshot {
    return this.root.useReadTransaction();
  }

  kvEntryCount(): number {
    const stats = this.kvDb.getStats() as { entryCount?: number };
    assert(typeof stats.entryCount === 'number', 'LMDB stats without entryCount');
    return stats.entryCount;
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
    await this.root.backup(dir, true);
  }

  /** Forces everything committed so far to stable storage. */
  sync(): Promise<void> {
    assert(!this.closed, 'sync of a closed backend');
    const root = this.root as unknown as RootWithSync;
    const synced = new Promise<void>((resolve, reject) => {
      root.sync((error?: unknown) => (error ? reject(error instanceof Error ? error : new Error(String(error))) : resolve()));
    });
    this.syncing.add(synced);
    const forget = (): void => {
      this.syncing.delete(synced);
    };
    synced.then(forget, forget);
    return synced;
  }

  /** Closes the environment once the syncs in flight are done. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.syncing]);
    await this.root.close();
  }
}
