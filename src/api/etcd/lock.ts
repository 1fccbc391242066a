/**
 * etcd's Lock service (v3lockpb.Lock), served as etcd serves it: by its Mutex recipe, run here
 * over the member's KV, Watch and Lease paths (see concurrency.ts for the shared steps).
 *
 * Lock(name, lease): one txn puts <name>/<lease hex> (empty value, under the lease) if it does
 * not exist yet, and reads the oldest key under <name>/ in the same step. The caller holds the
 * lock when its key is the oldest; otherwise it waits for its predecessors to be deleted (by
 * Unlock, or with their leases), then reads its own key once more: gone (its lease ended while
 * it waited) is "mutex: session is expired", as in etcd ≥ 3.5 (etcd 3.4 reported such a lock as
 * granted). A call that ends early (the client went away, a deadline) deletes its key, so no
 * lock is ever held for a caller that was not told. Locking again with the same lease answers
 * the same key.
 *
 * The key's create revision is the grant's fencing token: it grows with every grant of a lock.
 *
 * Unlock(key) deletes the key, whoever holds it, as etcd does.
 */
import type { Service } from 'protobufjs';
import type { CallContext, ServiceImpl } from '../grpc/index.ts';
import type { TxnResponse } from '../../mvcc/index.ts';
import { big, bytes, type Int64, type PbHeader } from './convert.ts';
import { Concurrency, contenderKey, contenderRevision, contendersPrefix, firstCreatedRange, RecipeError } from './concurrency.ts';
import { assert } from '../../util/assert.ts';
import { recipeHandler } from './errors.ts';

export interface PbLockRequest {
  name: Uint8Array;
  lease: Int64;
}
export interface PbLockResponse {
  header: PbHeader;
  key: Uint8Array;
}
export interface PbUnlockRequest {
  key: Uint8Array;
}

/** The oldest key under the prefix, as read by the txn's last operation. */
function ownerRevision(txn: TxnResponse): number | undefined {
  const owner = txn.responses[1];
  assert(owner?.op === 'range', 'lock txn: the owner was not read');
  return owner.response.kvs[0]?.createRevision;
}

export class LockApi {
  constructor(private readonly c: Concurrency) {}

  async lock(pb: PbLockRequest, call: CallContext): Promise<PbLockResponse> {
    const signal = call.signal;
    const lease = await this.c.session(big(pb.lease), call);
    const prefix = contendersPrefix(bytes(pb.name));
    const key = contenderKey(prefix, lease);
    const owner = { op: 'range', request: firstCreatedRange(prefix) } as const;
    const txn = await this.c.kv.txnStore({
      compare: [{ target: 'CREATE', result: 'EQUAL', key, createRevision: 0 }],
      success: [{ op: 'put', request: { key, value: new Uint8Array(0), lease } }, owner],
      failure: [{ op: 'range', request: { key } }, owner],
    }, false, call);
    const mine = contenderRevision(txn);
    const release = (): Promise<void> => this.c.cleanUp(`deleting the key ${Buffer.from(key).toString()} of a Lock that did not complete`, () => this.c.kv.deleteStore({ key }, call));
    if (signal.aborted) {
      // The caller is gone before it heard of the key: a key this call made must not hold the lock.
      if (txn.succeeded) void release();
      signal.throwIfAborted();
    }
    const first = ownerRevision(txn);
    if (first === undefined || first === mine) return { header: this.c.header(txn.revision), key };
    try {
      await this.c.waitDeletes(prefix, mine - 1, call);
    } catch (e) {
      void release();
      throw e;
    }
    let now;
    try {
      now = await this.c.get(key, call);
    } catch (e) {
      void release();
      throw e;
    }
    if (now.kvs.length === 0) throw new RecipeError('SESSION_EXPIRED');
    if (signal.aborted) {
      void release();
      signal.throwIfAborted();
    }
    return { header: this.c.header(now.revision), key };
  }

  async unlock(pb: PbUnlockRequest, call: CallContext) {
    const res = await this.c.kv.deleteStore({ key: bytes(pb.key) }, call);
    return { header: this.c.header(res.revision) };
  }
}

export function lockService(api: LockApi, service: Service): [Service, ServiceImpl] {
  return [
    service,
    {
      Lock: recipeHandler((r: PbLockRequest, call) => api.lock(r, call)),
      Unlock: recipeHandler((r: PbUnlockRequest, call) => api.unlock(r, call)),
    },
  ];
}
