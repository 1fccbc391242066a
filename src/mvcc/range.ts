/**
 * etcd's range semantics split the way etcd splits them: the storage layer walks the index at a
 * revision and counts every live key in the range (count ignores limit and the revision
 * filters), then the server layer filters, sorts and cuts to the limit. This module is the
 * server-layer half plus the key-range conventions; it is pure.
 *
 * Verified against etcd's server/etcdserver/txn/range.go and txn.go (executeRange) and
 * server/storage/mvcc/kvstore_txn.go (rangeKeys):
 *  - the storage fetch is limited to limit+1 only when no revision filter is set and the ordering
 *    is the default one (sortOrder NONE, or KEY/ASCEND); otherwise everything is fetched;
 *  - filters drop kvs with modRevision > maxModRevision, < minModRevision, createRevision >
 *    maxCreateRevision, < minCreateRevision (0 = no filter);
 *  - a sortTarget other than KEY with sortOrder NONE sorts ASCEND; KEY/ASCEND is the index order;
 *    KEY/DESCEND reverses. Note the quirk this gives: a non-KEY target with order NONE and a limit
 *    sorts only the first limit+1 keys (the fetch was limited) — kept for compatibility;
 *  - more = (kvs after filtering and sorting) > limit; then kvs are cut to limit;
 *  - keysOnly empties values; countOnly returns no kvs and the count.
 * etcd sorts with Go's unstable sort; here ties keep key order (a stable sort), which is what
 * Go's sort also yields for small inputs.
 */
import { emptyBytes, keyString } from './codec.ts';
import type { KeyValue, RangeRequest, RangeResponse, SortOrder, SortTarget } from './types.ts';

export interface KeyBounds {
  readonly start: string;
  /** Exclusive end; null = no upper bound. */
  readonly end: string | null;
  /** Only `start` itself. */
  readonly single: boolean;
}

/** Interprets [key, rangeEnd) with etcd's conventions (see RangeRequest). */
export function keyBounds(key: Uint8Array, rangeEnd: Uint8Array | undefined): KeyBounds {
  const start = keyString(key);
  if (rangeEnd === undefined || rangeEnd.byteLength === 0) return { start, end: null, single: true };
  if (rangeEnd.byteLength === 1 && rangeEnd[0] === 0) return { start, end: null, single: false };
  return { start, end: keyString(rangeEnd), single: false };
}

/**
 * The range end that makes [prefix, end) every key starting with `prefix` (etcd's
 * GetPrefixRangeEnd): the prefix with its last byte below 0xff incremented and the bytes after it
 * dropped; a prefix of only 0xff bytes (or none) has no such end, so the range reaches the last key.
 */
export function prefixEnd(prefix: Uint8Array): Uint8Array {
  for (let i = prefix.byteLength - 1; i >= 0; i--) {
    if (prefix[i]! < 0xff) {
      const end = Uint8Array.from(prefix.subarray(0, i + 1)); // a copy, also when prefix is a Buffer
      end[i] = prefix[i]! + 1;
      return end;
    }
  }
  return new Uint8Array([0]);
}

function isDefaultOrdering(target: SortTarget, order: SortOrder): boolean {
  return order === 'NONE' || (target === 'KEY' && order === 'ASCEND');
}

function hasRevisionFilters(r: RangeRequest): boolean {
  return (r.minModRevision ?? 0) !== 0 || (r.maxModRevision ?? 0) !== 0 || (r.minCreateRevision ?? 0) !== 0 || (r.maxCreateRevision ?? 0) !== 0;
}

/** How many kvs the storage layer should fetch (0 = all). */
export function storageFetchLimit(r: RangeRequest): number {
  let limit = r.limit ?? 0;
  if (!isDefaultOrdering(r.sortTarget ?? 'KEY', r.sortOrder ?? 'NONE') || hasRevisionFilters(r)) limit = 0;
  return limit > 0 ? limit + 1 : 0;
}

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

type Cmp = (a: KeyValue, b: KeyValue) => number;

const comparators: Record<SortTarget, Cmp> = {
  KEY: (a, b) => compareBytes(a.key, b.key),
  VERSION: (a, b) => a.version - b.version,
  CREATE: (a, b) => a.createRevision - b.createRevision,
  MOD: (a, b) => a.modRevision - b.modRevision,
  VALUE: (a, b) => compareBytes(a.value, b.value),
};

/** Applies filters, sorting, limit and keysOnly to the storage layer's result. */
export function finishRange(r: RangeRequest, fetched: KeyValue[], count: number, revision: number): RangeResponse {
  let kvs = fetched;
  const maxMod = r.maxModRevision ?? 0;
  const minMod = r.minModRevision ?? 0;
  const maxCreate = r.maxCreateRevision ?? 0;
  const minCreate = r.minCreateRevision ?? 0;
  if (maxMod !== 0 || minMod !== 0 || maxCreate !== 0 || minCreate !== 0) {
    kvs = kvs.filter(
      (kv) =>
        !(maxMod !== 0 && kv.modRevision > maxMod) &&
        !(minMod !== 0 && kv.modRevision < minMod) &&
        !(maxCreate !== 0 && kv.createRevision > maxCreate) &&
        !(minCreate !== 0 && kv.createRevision < minCreate),
    );
  }
  const target = r.sortTarget ?? 'KEY';
  let order = r.sortOrder ?? 'NONE';
  if (target !== 'KEY' && order === 'NONE') order = 'ASCEND';
  if (!isDefaultOrdering(target, order)) {
    if (target === 'KEY' && order === 'DESCEND') {
      kvs.reverse();
    } else {
      const cmp = comparators[target];
      kvs.sort(order === 'DESCEND' ? (a, b) => cmp(b, a) : cmp);
    }
  }
  const limit = r.limit ?? 0;
  let more = false;
  if (limit > 0 && kvs.length > limit) {
    kvs = kvs.slice(0, limit);
    more = true;
  }
  if (r.keysOnly === true) kvs = kvs.map((kv) => (kv.value.byteLength === 0 ? kv : { ...kv, value: emptyBytes }));
  return { revision, kvs, more, count };
}

/** Whether the storage fetch may skip values (they are still needed to sort by value). */
export function fetchKeysOnly(r: RangeRequest): boolean {
  return r.keysOnly === true && r.sortTarget !== 'VALUE';
}
