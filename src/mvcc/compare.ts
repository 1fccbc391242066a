/**
 * Txn compare semantics, as etcd's applyCompare/compareKV (server/etcdserver/txn/txn.go):
 *  - a compare reads every key in [key, rangeEnd) at the txn's starting revision; all of them must
 *    satisfy it;
 *  - when no key is in the range, a VALUE compare is false whatever the operator (a missing value
 *    cannot be represented), and any other target compares against zero (version 0, create 0,
 *    mod 0, lease 0) — so "version = 0" / "create = 0" test for absence;
 *  - VALUE compares bytewise; the others compare integers.
 */
import type { Compare, KeyValue } from './types.ts';

function sign(n: number): number {
  return n < 0 ? -1 : n > 0 ? 1 : 0;
}

function compareBig(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Whether one key satisfies the compare (kv undefined: the key does not exist). */
export function compareKV(c: Compare, kv: KeyValue | undefined): boolean {
  let result: number;
  switch (c.target) {
    case 'VALUE':
      if (kv === undefined) return false;
      result = sign(Buffer.compare(kv.value, c.value));
      break;
    case 'VERSION':
      result = sign((kv?.version ?? 0) - c.version);
      break;
    case 'CREATE':
      result = sign((kv?.createRevision ?? 0) - c.createRevision);
      break;
    case 'MOD':
      result = sign((kv?.modRevision ?? 0) - c.modRevision);
      break;
    case 'LEASE':
      result = compareBig(kv?.lease ?? 0n, c.lease);
      break;
  }
  switch (c.result) {
    case 'EQUAL':
      return result === 0;
    case 'NOT_EQUAL':
      return result !== 0;
    case 'GREATER':
      return result > 0;
    case 'LESS':
      return result < 0;
  }
}

/** A compare over the kvs its range holds at the txn's starting revision. */
export function compareRange(c: Compare, kvs: readonly KeyValue[]): boolean {
  if (kvs.length === 0) return compareKV(c, undefined);
  for (const kv of kvs) if (!compareKV(c, kv)) return false;
  return true;
}
