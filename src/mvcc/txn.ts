/**
 * One view of the store at a revision, and (when writable) one main revision's worth of
 * changes inside one LMDB write transaction: etcd's storeTxnRead/storeTxnWrite plus the apply
 * layer's put/deleteRange/range/txn (server/etcdserver/txn/txn.go), which is where etcd's
 * request semantics live.
 *
 * Within a write, every change gets revision (beginRev + 1, n) with n counting changes, and
 * reads see the write's earlier changes (the index and LMDB's write transaction are updated in
 * place, as in etcd 3.5/3.6). The store's own currentRev only moves on commit.
 */
import { assert } from './assert.ts';
import { decodePutRecord, emptyBytes, encodePutRecord, encodeTombstoneRecord, keyBytes, keyString, revKey } from './codec.ts';
import { compareRange } from './compare.ts';
import { CompactedError, FutureRevisionError, KeyNotFoundError, LeaseNotFoundError } from './errors.ts';
import { fetchKeysOnly, finishRange, keyBounds, storageFetchLimit } from './range.ts';
import type { StoreState } from './state.ts';
import { checkTxnRequest } from './txn-check.ts';
import type {
  Compare,
  DeleteRangeRequest,
  DeleteRangeResponse,
  KeyValue,
  MvccEvent,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  ResponseOp,
  TxnRequest,
  TxnResponse,
} from './types.ts';

/** One change made by a write, kept for index rollback and commit events. */
interface Change {
  readonly keyStr: string;
  readonly main: number;
  readonly sub: number;
  /** The stored put record, or null for a tombstone. */
  readonly record: Buffer | null;
  readonly prevKv: KeyValue | undefined;
}

interface StorageRange {
  readonly kvs: KeyValue[];
  readonly count: number;
  /** Header revision: the view's current revision. */
  readonly rev: number;
}

/** Cursor over the compare outcomes of a txn and its nested txns, in etcd's txnPath order. */
class PathCursor {
  private i = 0;
  constructor(private readonly path: readonly boolean[]) {}
  next(): boolean {
    assert(this.i < this.path.length, 'txn path exhausted');
    return this.path[this.i++]!;
  }
}

export class StoreTxn {
  readonly beginRev: number;
  readonly changes: Change[] = [];

  constructor(
    private readonly s: StoreState,
    readonly writable: boolean,
  ) {
    this.beginRev = s.currentRev;
  }

  /** The revision reads see: beginRev, or the write's own revision once it changed something. */
  get revision(): number {
    return this.changes.length > 0 ? this.beginRev + 1 : this.beginRev;
  }

  // ---- storage layer (etcd rangeKeys) ----

  private rangeKeys(key: Uint8Array, rangeEnd: Uint8Array | undefined, revision: number, limit: number, countOnly: boolean, keysOnly: boolean): StorageRange {
    const curRev = this.revision;
    let rev = revision;
    if (rev > curRev) throw new FutureRevisionError();
    if (rev <= 0) rev = curRev;
    if (rev < this.s.compactRev) throw new CompactedError();
    const b = keyBounds(key, rangeEnd);
    if (b.single) {
      const r = this.s.index.get(b.start, rev);
      const kvs = r === null || countOnly ? [] : [this.s.readKv(r.main, r.sub, keysOnly)];
      return { kvs, count: r === null ? 0 : 1, rev: curRev };
    }
    const revs: number[] | null = countOnly ? null : [];
    const count = this.s.index.collectLive(b.start, b.end, rev, limit, revs);
    const kvs = revs === null ? [] : this.s.readKvs(revs, keysOnly);
    return { kvs, count, rev: curRev };
  }

  // ---- request layer (etcd apply) ----

  range(r: RangeRequest): RangeResponse {
    const rr = this.rangeKeys(r.key, r.rangeEnd, r.revision ?? 0, storageFetchLimit(r), r.countOnly === true, fetchKeysOnly(r));
    return finishRange(r, rr.kvs, rr.count, rr.rev);
  }

  put(r: PutRequest): PutResponse {
    assert(this.writable, 'put in a read-only view');
    const ignoreValue = r.ignoreValue === true;
    const ignoreLease = r.ignoreLease === true;
    let prev: KeyValue | undefined;
    if (ignoreValue || ignoreLease || r.prevKv === true) prev = this.rangeKeys(r.key, undefined, 0, 0, false, false).kvs[0];
    if ((ignoreValue || ignoreLease) && prev === undefined) throw new KeyNotFoundError();
    const value = ignoreValue ? prev!.value : r.value;
    const lease = ignoreLease ? prev!.lease : (r.lease ?? 0n);
    const revision = this.writePut(r.key, value, lease);
    return r.prevKv === true && prev !== undefined ? { revision, prevKv: prev } : { revision };
  }

  deleteRange(r: DeleteRangeRequest): DeleteRangeResponse {
    assert(this.writable, 'deleteRange in a read-only view');
    let prevKvs: KeyValue[] = [];
    if (r.prevKv === true) prevKvs = this.rangeKeys(r.key, r.rangeEnd, 0, 0, false, false).kvs;
    const deleted = this.deleteKeys(r.key, r.rangeEnd);
    const revision = deleted !== 0 || this.changes.length > 0 ? this.beginRev + 1 : this.beginRev;
    return { revision, deleted, prevKvs };
  }

  /** A whole txn request: checks, compares at the starting revision, then the chosen branch. */
  txn(r: TxnRequest): TxnResponse {
    checkTxnRequest(r, this.s.limits);
    const path: boolean[] = [];
    this.compareToPath(r, path);
    this.checkTxn(r, new PathCursor(path));
    const resp = this.executeTxn(r, new PathCursor(path));
    return { ...resp, revision: this.revision };
  }

  /** Lease existence check for a put outside a txn (etcd checks it before the write). */
  checkLease(lease: bigint | undefined): void {
    const l = lease ?? 0n;
    if (l !== 0n && this.s.leaseExists !== undefined && !this.s.leaseExists(l)) throw new LeaseNotFoundError();
  }

  private applyCompare(c: Compare): boolean {
    let kvs: KeyValue[];
    try {
      kvs = this.rangeKeys(c.key, c.rangeEnd, 0, 0, false, c.target !== 'VALUE').kvs;
    } catch {
      return false;
    }
    return compareRange(c, kvs);
  }

  private compareToPath(r: TxnRequest, out: boolean[]): void {
    const ok = r.compare.every((c) => this.applyCompare(c));
    out.push(ok);
    for (const op of ok ? r.success : r.failure) if (op.op === 'txn') this.compareToPath(op.request, out);
  }

  /** etcd's checkTxn: range revisions and put preconditions along the chosen path, before any write. */
  private checkTxn(r: TxnRequest, path: PathCursor): void {
    const ops = path.next() ? r.success : r.failure;
    for (const op of ops) {
      switch (op.op) {
        case 'range': {
          const rev = op.request.revision ?? 0;
          if (rev === 0) break;
          if (rev > this.revision) throw new FutureRevisionError();
          if (rev < this.s.compactRev) throw new CompactedError();
          break;
        }
        case 'put': {
          const p = op.request;
          if (p.ignoreValue === true || p.ignoreLease === true) {
            if (this.rangeKeys(p.key, undefined, 0, 0, true, true).count === 0) throw new KeyNotFoundError();
          }
          this.checkLease(p.lease);
          break;
        }
        case 'deleteRange':
          break;
        case 'txn':
          this.checkTxn(op.request, path);
          break;
      }
    }
  }

  /** Runs the chosen branch. Nested txn responses carry revision 0, as etcd leaves their header unset. */
  private executeTxn(r: TxnRequest, path: PathCursor): TxnResponse {
    const succeeded = path.next();
    const responses: ResponseOp[] = [];
    for (const op of succeeded ? r.success : r.failure) {
      switch (op.op) {
        case 'range':
          responses.push({ op: 'range', response: this.range(op.request) });
          break;
        case 'put':
          responses.push({ op: 'put', response: this.put(op.request) });
          break;
        case 'deleteRange':
          responses.push({ op: 'deleteRange', response: this.deleteRange(op.request) });
          break;
        case 'txn':
          responses.push({ op: 'txn', response: this.executeTxn(op.request, path) });
          break;
      }
    }
    return { revision: 0, succeeded, responses };
  }

  // ---- writes ----

  private writePut(key: Uint8Array, value: Uint8Array, lease: bigint): number {
    const s = this.s;
    const main = this.beginRev + 1;
    const sub = this.changes.length;
    const k = keyString(key);
    const ki = s.index.keyIndex(k);
    const live = ki !== undefined && ki.exists();
    const created = live ? ki.created : main;
    const version = live ? ki.ver + 1 : 1;
    let prevKv: KeyValue | undefined;
    if (live && s.listeners.length > 0) prevKv = s.readKv(ki.lastMain, ki.lastSub, false);
    const record = encodePutRecord(key, value, created, main, version, lease);
    s.backend.kvPut(revKey(main, sub, false), record);
    s.index.put(k, main, sub);
    this.changes.push({ keyStr: k, main, sub, record, prevKv });
    return main;
  }

  private deleteKeys(key: Uint8Array, rangeEnd: Uint8Array | undefined): number {
    const s = this.s;
    const b = keyBounds(key, rangeEnd);
    const victims: Array<{ key: string; main: number; sub: number }> = [];
    s.index.visitLive(b.start, b.end, b.single, this.revision, (k, r) => {
      victims.push({ key: k, main: r.main, sub: r.sub });
    });
    const main = this.beginRev + 1;
    for (const v of victims) {
      const sub = this.changes.length;
      const prevKv = s.listeners.length > 0 ? s.readKv(v.main, v.sub, false) : undefined;
      s.backend.kvPut(revKey(main, sub, true), encodeTombstoneRecord(keyBytes(v.key)));
      s.index.tombstone(v.key, main, sub);
      this.changes.push({ keyStr: v.key, main, sub, record: null, prevKv });
    }
    return victims.length;
  }

  /** Undoes this write's index changes after its LMDB transaction aborted. */
  revertIndex(): void {
    const main = this.beginRev + 1;
    for (let i = this.changes.length - 1; i >= 0; i--) this.s.index.revert(this.changes[i]!.keyStr, main);
  }

  /** The commit events of this write (after it committed). */
  events(): MvccEvent[] {
    return this.changes.map((c): MvccEvent => {
      if (c.record !== null) {
        const kv = decodeOwned(c.record, c.main);
        return c.prevKv !== undefined ? { type: 'PUT', kv, prevKv: c.prevKv } : { type: 'PUT', kv };
      }
      const kv: KeyValue = { key: keyBytes(c.keyStr), createRevision: 0, modRevision: c.main, version: 0, value: emptyBytes, lease: 0n };
      return c.prevKv !== undefined ? { type: 'DELETE', kv, prevKv: c.prevKv } : { type: 'DELETE', kv };
    });
  }
}

function decodeOwned(record: Buffer, main: number): KeyValue {
  return decodePutRecord(record, record.length, main, false, null);
}
