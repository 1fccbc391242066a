/**
 * A deliberately naive reference for the MVCC store: the full list of revisions, with every read
 * answered by replaying that list. No index, no generations, no LMDB — if the store and this
 * agree on random operation sequences, the store's index, compaction and storage are right.
 * Request-level rules (etcd's, see src/mvcc/range.ts and txn.ts) are restated here directly.
 */
import { checkDeleteRequest, checkPutRequest, checkRangeRequest, checkTxnRequest, CompactedError, FutureRevisionError, KeyNotFoundError, resolveLimits } from '../../src/mvcc/index.ts';
import type {
  Compare,
  DeleteRangeRequest,
  DeleteRangeResponse,
  KeyValue,
  MvccRequest,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  ResponseOp,
  TxnRequest,
  TxnResponse,
} from '../../src/mvcc/index.ts';

interface Rec {
  readonly main: number;
  readonly sub: number;
  readonly key: string; // latin1
  readonly kv: KeyValue | null; // null = tombstone
}

const limits = resolveLimits();

function ks(u: Uint8Array): string {
  return Buffer.from(u).toString('latin1');
}

function inRange(k: string, key: Uint8Array, end: Uint8Array | undefined): boolean {
  const start = ks(key);
  if (end === undefined || end.length === 0) return k === start;
  if (end.length === 1 && end[0] === 0) return k >= start;
  return k >= start && k < ks(end);
}

export class Model {
  readonly recs: Rec[] = [];
  currentRev = 1;
  compactRev = -1;
  /** State after every record (a cache: reads at the newest revision are the common case). */
  private latest = new Map<string, KeyValue>();

  push(r: Rec): void {
    this.recs.push(r);
    if (r.kv === null) this.latest.delete(r.key);
    else this.latest.set(r.key, r.kv);
  }

  truncate(len: number): void {
    this.recs.length = len;
    this.latest = new Map();
    for (const r of this.recs) {
      if (r.kv === null) this.latest.delete(r.key);
      else this.latest.set(r.key, r.kv);
    }
  }

  /** key → kv live at rev (keys sorted). */
  stateAt(rev: number): Map<string, KeyValue> {
    let m: Map<string, KeyValue>;
    if (this.recs.length === 0 || this.recs[this.recs.length - 1]!.main <= rev) {
      m = this.latest;
    } else {
      m = new Map<string, KeyValue>();
      for (const r of this.recs) {
        if (r.main > rev) break;
        if (r.kv === null) m.delete(r.key);
        else m.set(r.key, r.kv);
      }
    }
    return new Map([...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  range(r: RangeRequest): RangeResponse {
    checkRangeRequest(r, limits);
    return new ModelTxn(this, false).range(r);
  }

  put(r: PutRequest): PutResponse {
    checkPutRequest(r, limits);
    const t = new ModelTxn(this, true);
    const res = t.put(r);
    t.commit();
    return res;
  }

  deleteRange(r: DeleteRangeRequest): DeleteRangeResponse {
    checkDeleteRequest(r, limits);
    const t = new ModelTxn(this, true);
    const res = t.deleteRange(r);
    t.commit();
    return res;
  }

  txn(r: TxnRequest): TxnResponse {
    const t = new ModelTxn(this, true);
    const res = t.txn(r);
    t.commit();
    return res;
  }

  /** Applies one Raft-log request the way MvccStore.apply does; errors become {error}. */
  apply(req: MvccRequest): unknown {
    try {
      switch (req.op) {
        case 'range':
          return this.range(req.request);
        case 'put':
          return this.put(req.request);
        case 'deleteRange':
          return this.deleteRange(req.request);
        case 'txn':
          return this.txn(req.request);
        case 'compact':
          return this.compact(req.revision);
      }
    } catch (e) {
      return { error: (e as Error).message };
    }
  }

  compact(rev: number): { revision: number } {
    if (rev <= this.compactRev) throw new CompactedError();
    if (rev > this.currentRev) throw new FutureRevisionError();
    this.compactRev = rev;
    return { revision: this.currentRev };
  }
}

class ModelTxn {
  readonly begin: number;
  n = 0;
  private readonly startLen: number;

  constructor(
    private readonly m: Model,
    readonly writable: boolean,
  ) {
    this.begin = m.currentRev;
    this.startLen = m.recs.length;
  }

  get view(): number {
    return this.n > 0 ? this.begin + 1 : this.begin;
  }

  commit(): void {
    if (this.n > 0) this.m.currentRev = this.begin + 1;
  }

  private abort(): void {
    this.m.truncate(this.startLen);
    this.n = 0;
  }

  private live(key: Uint8Array, end: Uint8Array | undefined, rev: number): KeyValue[] {
    return [...this.m.stateAt(rev).entries()].filter(([k]) => inRange(k, key, end)).map(([, kv]) => kv);
  }

  range(r: RangeRequest): RangeResponse {
    let rev = r.revision ?? 0;
    if (rev > this.view) throw new FutureRevisionError();
    if (rev <= 0) rev = this.view;
    if (rev < this.m.compactRev) throw new CompactedError();
    const all = this.live(r.key, r.rangeEnd, rev);
    const count = all.length;
    const target = r.sortTarget ?? 'KEY';
    const order0 = r.sortOrder ?? 'NONE';
    const filters = !!(r.minModRevision || r.maxModRevision || r.minCreateRevision || r.maxCreateRevision);
    const limit = r.limit ?? 0;
    let kvs = r.countOnly ? [] : all;
    // etcd fetches limit+1 keys unless it must sort or filter first.
    const defaultOrder = order0 === 'NONE' || (target === 'KEY' && order0 === 'ASCEND');
    if (limit > 0 && defaultOrder && !filters) kvs = kvs.slice(0, limit + 1);
    kvs = kvs.filter(
      (kv) =>
        !(r.maxModRevision && kv.modRevision > r.maxModRevision) &&
        !(r.minModRevision && kv.modRevision < r.minModRevision) &&
        !(r.maxCreateRevision && kv.createRevision > r.maxCreateRevision) &&
        !(r.minCreateRevision && kv.createRevision < r.minCreateRevision),
    );
    const order = target !== 'KEY' && order0 === 'NONE' ? 'ASCEND' : order0;
    if (order !== 'NONE') {
      const key = (kv: KeyValue): number | string =>
        target === 'KEY' ? ks(kv.key) : target === 'VALUE' ? ks(kv.value) : target === 'VERSION' ? kv.version : target === 'CREATE' ? kv.createRevision : kv.modRevision;
      const idx = kvs.map((kv, i) => ({ kv, i }));
      idx.sort((a, b) => {
        const x = key(a.kv);
        const y = key(b.kv);
        const c = x < y ? -1 : x > y ? 1 : 0;
        return (order === 'DESCEND' ? -c : c) || (target === 'KEY' ? 0 : a.i - b.i);
      });
      kvs = idx.map((e) => e.kv);
    }
    let more = false;
    if (limit > 0 && kvs.length > limit) {
      kvs = kvs.slice(0, limit);
      more = true;
    }
    if (r.keysOnly) kvs = kvs.map((kv) => ({ ...kv, value: new Uint8Array(0) }));
    return { revision: this.view, kvs, more, count };
  }

  private writePut(key: Uint8Array, value: Uint8Array, lease: bigint): number {
    const main = this.begin + 1;
    const prev = this.m.stateAt(main).get(ks(key));
    const kv: KeyValue = {
      key: Buffer.from(key),
      value: Buffer.from(value),
      createRevision: prev ? prev.createRevision : main,
      modRevision: main,
      version: prev ? prev.version + 1 : 1,
      lease,
    };
    this.m.push({ main, sub: this.n++, key: ks(key), kv });
    return main;
  }

  put(r: PutRequest): PutResponse {
    const needPrev = r.ignoreValue || r.ignoreLease || r.prevKv;
    const prev = needPrev ? this.live(r.key, undefined, this.view)[0] : undefined;
    if ((r.ignoreValue || r.ignoreLease) && !prev) throw new KeyNotFoundError();
    const revision = this.writePut(r.key, r.ignoreValue ? prev!.value : r.value, r.ignoreLease ? prev!.lease : (r.lease ?? 0n));
    return r.prevKv && prev ? { revision, prevKv: prev } : { revision };
  }

  deleteRange(r: DeleteRangeRequest): DeleteRangeResponse {
    const victims = this.live(r.key, r.rangeEnd, this.view);
    const prevKvs = r.prevKv ? victims : [];
    const main = this.begin + 1;
    for (const kv of victims) this.m.push({ main, sub: this.n++, key: ks(kv.key), kv: null });
    return { revision: victims.length > 0 || this.n > 0 ? main : this.begin, deleted: victims.length, prevKvs };
  }

  private cmp(c: Compare): boolean {
    const kvs = this.live(c.key, c.rangeEnd, this.view);
    const one = (kv: KeyValue | undefined): boolean => {
      let d: number;
      if (c.target === 'VALUE') {
        if (!kv) return false;
        d = Buffer.compare(Buffer.from(kv.value), Buffer.from(c.value));
      } else if (c.target === 'LEASE') {
        const a = kv?.lease ?? 0n;
        d = a < c.lease ? -1 : a > c.lease ? 1 : 0;
      } else {
        const a = c.target === 'VERSION' ? (kv?.version ?? 0) : c.target === 'CREATE' ? (kv?.createRevision ?? 0) : (kv?.modRevision ?? 0);
        const bb = c.target === 'VERSION' ? c.version : c.target === 'CREATE' ? c.createRevision : c.modRevision;
        d = Math.sign(a - bb);
      }
      return c.result === 'EQUAL' ? d === 0 : c.result === 'NOT_EQUAL' ? d !== 0 : c.result === 'GREATER' ? d > 0 : d < 0;
    };
    return kvs.length === 0 ? one(undefined) : kvs.every(one);
  }

  /** Compares for every txn along the path, all evaluated before anything runs (etcd's compareToPath). */
  private decide(r: TxnRequest, out: Map<TxnRequest, boolean>): void {
    const ok = r.compare.every((c) => this.cmp(c));
    out.set(r, ok);
    for (const op of ok ? r.success : r.failure) if (op.op === 'txn') this.decide(op.request, out);
  }

  private check(r: TxnRequest, path: Map<TxnRequest, boolean>): void {
    for (const op of path.get(r) ? r.success : r.failure) {
      if (op.op === 'range') {
        const rev = op.request.revision ?? 0;
        if (rev !== 0 && rev > this.view) throw new FutureRevisionError();
        if (rev !== 0 && rev < this.m.compactRev) throw new CompactedError();
      } else if (op.op === 'put' && (op.request.ignoreValue || op.request.ignoreLease)) {
        if (this.live(op.request.key, undefined, this.view).length === 0) throw new KeyNotFoundError();
      } else if (op.op === 'txn') this.check(op.request, path);
    }
  }

  private run(r: TxnRequest, path: Map<TxnRequest, boolean>): TxnResponse {
    const succeeded = path.get(r)!;
    const responses: ResponseOp[] = (succeeded ? r.success : r.failure).map((op): ResponseOp => {
      switch (op.op) {
        case 'range':
          return { op: 'range', response: this.range(op.request) };
        case 'put':
          return { op: 'put', response: this.put(op.request) };
        case 'deleteRange':
          return { op: 'deleteRange', response: this.deleteRange(op.request) };
        case 'txn':
          return { op: 'txn', response: this.run(op.request, path) };
      }
    });
    return { revision: 0, succeeded, responses };
  }

  txn(r: TxnRequest): TxnResponse {
    checkTxnRequest(r, limits);
    const path = new Map<TxnRequest, boolean>();
    this.decide(r, path);
    this.check(r, path);
    try {
      const res = this.run(r, path);
      return { ...res, revision: this.view };
    } catch (e) {
      this.abort();
      throw e;
    }
  }
}
