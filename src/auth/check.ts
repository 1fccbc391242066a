/**
 * What a key-value request needs, checked against one AuthState the way etcd's auth applier
 * checks it: a range needs read on its range; a put write on its key (and, with prev_kv, read on
 * it; with a lease, write on every key already attached to that lease, since holding it lets the
 * user revoke them); a delete write on its range (and read with prev_kv); a txn read on every
 * compare's range and everything each of its operations needs, nested txns included.
 * Compaction needs nothing, as in etcd.
 *
 * (etcd 3.4 checks neither nested txns nor the prev_kv and lease of puts inside a txn; later
 * releases close the nested-txn hole. Conclave checks all of them alike.)
 */
import type { Compare, DeleteRangeRequest, MvccRequest, PutRequest, RequestOp } from '../mvcc/index.ts';
import type { AuthError } from './errors.ts';
import type { AuthState } from './state.ts';
import type { AuthInfo } from './types.ts';

/** The keys attached to a lease; undefined when there is no such lease. */
export type LeaseKeys = (lease: bigint) => readonly Uint8Array[] | undefined;

const NO_BYTES = new Uint8Array(0);

/** Write access to every key attached to `lease` (etcd's checkLeasePuts); a missing lease needs nothing. */
export function checkLeaseWrite(state: AuthState, info: AuthInfo, keys: readonly Uint8Array[] | undefined): AuthError | null {
  for (const key of keys ?? []) {
    const e = state.checkAccess(info, 'write', key, NO_BYTES);
    if (e !== null) return e;
  }
  return null;
}

/** Read access to every key attached to a lease (LeaseTimeToLive with keys, as etcd ≥ 3.4.26 checks it). */
export function checkLeaseRead(state: AuthState, info: AuthInfo, keys: readonly Uint8Array[] | undefined): AuthError | null {
  for (const key of keys ?? []) {
    const e = state.checkAccess(info, 'read', key, NO_BYTES);
    if (e !== null) return e;
  }
  return null;
}

function checkPut(state: AuthState, info: AuthInfo, r: PutRequest, leaseKeys: LeaseKeys): AuthError | null {
  return (
    state.checkAccess(info, 'write', r.key, NO_BYTES) ??
    (r.lease !== undefined && r.lease !== 0n ? checkLeaseWrite(state, info, leaseKeys(r.lease)) : null) ??
    (r.prevKv === true ? state.checkAccess(info, 'read', r.key, NO_BYTES) : null)
  );
}

function checkDelete(state: AuthState, info: AuthInfo, r: DeleteRangeRequest): AuthError | null {
  const rangeEnd = r.rangeEnd ?? NO_BYTES;
  return state.checkAccess(info, 'write', r.key, rangeEnd) ?? (r.prevKv === true ? state.checkAccess(info, 'read', r.key, rangeEnd) : null);
}

function checkCompare(state: AuthState, info: AuthInfo, c: Compare): AuthError | null {
  return state.checkAccess(info, 'read', c.key, c.rangeEnd ?? NO_BYTES);
}

function checkOp(state: AuthState, info: AuthInfo, op: RequestOp, leaseKeys: LeaseKeys): AuthError | null {
  switch (op.op) {
    case 'range':
      return state.checkAccess(info, 'read', op.request.key, op.request.rangeEnd ?? NO_BYTES);
    case 'put':
      return checkPut(state, info, op.request, leaseKeys);
    case 'deleteRange':
      return checkDelete(state, info, op.request);
    case 'txn': {
      const t = op.request;
      for (const c of t.compare) {
        const e = checkCompare(state, info, c);
        if (e !== null) return e;
      }
      for (const sub of [...t.success, ...t.failure]) {
        const e = checkOp(state, info, sub, leaseKeys);
        if (e !== null) return e;
      }
      return null;
    }
  }
}

/** Why `info` may not run `request` under `state`, or null when it may. */
export function checkRequest(state: AuthState, info: AuthInfo, request: MvccRequest, leaseKeys: LeaseKeys): AuthError | null {
  if (!state.enabled || request.op === 'compact') return null;
  return checkOp(state, info, request, leaseKeys);
}

/** Whether the request puts a key with a lease (its check then reads the lessor's attachments). */
export function putsWithLease(request: MvccRequest): boolean {
  switch (request.op) {
    case 'put':
      return request.request.lease !== undefined && request.request.lease !== 0n;
    case 'txn':
      return [...request.request.success, ...request.request.failure].some(putsWithLease);
    default:
      return false;
  }
}
