/**
 * Request checks that need no store state, run before anything is applied: etcd runs them in its
 * gRPC layer (server/etcdserver/api/v3rpc/key.go: checkRangeRequest, checkPutRequest,
 * checkDeleteRequest, checkTxnRequest, checkIntervals). The API layer may call these before
 * proposing; the store runs them again so that no caller can bypass them.
 *
 * Duplicate keys (checkIntervals): within one branch (success or failure list), a put may not
 * hit a key that another put of the branch writes or that a delete range of the branch covers,
 * including puts and deletes inside nested txns; the success and failure branches of a nested
 * txn may put the same key (only one runs). Two deletes may overlap. Like etcd, a nested txn's
 * puts are checked against the deletes of this level and of the nested txns before it, and this
 * level's puts against all of them.
 * One deliberate difference: a delete whose range_end is "\0" (all keys ≥ key) covers every key
 * from key up. etcd builds the empty interval [key, "\0") there and misses the overlap
 * (etcd-io/etcd issues 22445 and 22376, fix proposed in PR 22395), which lets a txn delete and
 * re-create a key in one revision.
 */
import { keyString } from './codec.ts';
import {
  DuplicateKeyError,
  EmptyKeyError,
  KeyTooLargeError,
  LeaseProvidedError,
  TooManyOpsError,
  ValueProvidedError,
  ValueTooLargeError,
} from './errors.ts';
import type { MvccLimits } from './limits.ts';
import type { DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest } from './types.ts';

function checkKey(key: Uint8Array, limits: MvccLimits): void {
  if (key.byteLength === 0) throw new EmptyKeyError();
  if (key.byteLength > limits.keyBytesMax) throw new KeyTooLargeError(key.byteLength, limits.keyBytesMax);
}

export function checkRangeRequest(r: RangeRequest, limits: MvccLimits): void {
  checkKey(r.key, limits);
}

export function checkPutRequest(r: PutRequest, limits: MvccLimits): void {
  checkKey(r.key, limits);
  if (r.ignoreValue === true && r.value.byteLength !== 0) throw new ValueProvidedError();
  if (r.ignoreLease === true && (r.lease ?? 0n) !== 0n) throw new LeaseProvidedError();
  if (r.value.byteLength > limits.valueBytesMax) throw new ValueTooLargeError(r.value.byteLength, limits.valueBytesMax);
}

export function checkDeleteRequest(r: DeleteRangeRequest, limits: MvccLimits): void {
  checkKey(r.key, limits);
}

function checkRequestOp(op: RequestOp, opsMax: number, limits: MvccLimits): void {
  switch (op.op) {
    case 'range':
      return checkRangeRequest(op.request, limits);
    case 'put':
      return checkPutRequest(op.request, limits);
    case 'deleteRange':
      return checkDeleteRequest(op.request, limits);
    case 'txn':
      return checkTxnShape(op.request, opsMax, limits);
  }
}

/** etcd's checkTxnRequest: op counts (nested txns get what the parent left) and keys. */
function checkTxnShape(r: TxnRequest, opsMax: number, limits: MvccLimits): void {
  const opc = Math.max(r.compare.length, r.success.length, r.failure.length);
  if (opc > opsMax) throw new TooManyOpsError();
  for (const c of r.compare) if (c.key.byteLength === 0) throw new EmptyKeyError();
  for (const op of r.success) checkRequestOp(op, opsMax - opc, limits);
  for (const op of r.failure) checkRequestOp(op, opsMax - opc, limits);
}

/** [begin, end) over latin1 key strings; end null = no upper bound. */
interface Interval {
  readonly begin: string;
  readonly end: string | null;
}

function deleteInterval(r: DeleteRangeRequest): Interval {
  const begin = keyString(r.key);
  const re = r.rangeEnd;
  if (re === undefined || re.byteLength === 0) return { begin, end: begin + '\0' };
  if (re.byteLength === 1 && re[0] === 0) return { begin, end: null };
  return { begin, end: keyString(re) };
}

function covers(dels: readonly Interval[], key: string): boolean {
  for (const d of dels) if (d.begin <= key && (d.end === null || key < d.end)) return true;
  return false;
}

function checkIntervals(reqs: readonly RequestOp[]): { puts: Set<string>; dels: Interval[] } {
  const dels: Interval[] = [];
  for (const op of reqs) if (op.op === 'deleteRange') dels.push(deleteInterval(op.request));
  const puts = new Set<string>();
  for (const op of reqs) {
    if (op.op !== 'txn') continue;
    const then = checkIntervals(op.request.success);
    const els = checkIntervals(op.request.failure);
    for (const k of then.puts) {
      if (puts.has(k) || covers(dels, k)) throw new DuplicateKeyError();
      puts.add(k);
    }
    for (const k of els.puts) {
      if (puts.has(k) && !then.puts.has(k)) throw new DuplicateKeyError();
      if (covers(dels, k)) throw new DuplicateKeyError();
      puts.add(k);
    }
    dels.push(...then.dels, ...els.dels);
  }
  for (const op of reqs) {
    if (op.op !== 'put') continue;
    const k = keyString(op.request.key);
    if (puts.has(k) || covers(dels, k)) throw new DuplicateKeyError();
    puts.add(k);
  }
  return { puts, dels };
}

/** Every stateless check of a txn request, in etcd's order. Throws the first failure. */
export function checkTxnRequest(r: TxnRequest, limits: MvccLimits): void {
  checkTxnShape(r, limits.txnOpsMax, limits);
  checkIntervals(r.success);
  checkIntervals(r.failure);
}

/** etcd's IsTxnReadonly: only range ops at the top level of both branches. */
export function isTxnReadonly(r: TxnRequest): boolean {
  return r.success.every((op) => op.op === 'range') && r.failure.every((op) => op.op === 'range');
}
