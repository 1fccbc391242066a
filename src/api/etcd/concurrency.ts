/**
 * What etcd's Lock and Election services share. etcd serves both by running its client-side
 * concurrency recipes (Session, Mutex, Election) inside the server, over its own KV, Watch and
 * Lease; we do the same over the member's request paths, each step as the calling user, with
 * these common steps:
 *
 *  - a contender's key is <name>/<lease id in hex>, created by a txn only if absent
 *    (create_revision = 0), under the caller's lease; a call naming lease 0 gets a new lease of
 *    CONCURRENCY_LIMITS.sessionTtlSeconds that nobody keeps alive (etcd's orphaned session);
 *  - the owner (lock holder, election leader) is the key under <name>/ with the smallest create
 *    revision, so the create revision orders the contenders;
 *  - a contender waits only for the deletion of its predecessor, the key with the largest create
 *    revision below its own, then looks again (etcd's waitDeletes): when the owner leaves, only
 *    the next contender wakes, not all of them.
 */
import type { Logger, Member } from '../../server/member.ts';
import { serverError, ServerError } from '../../server/errors.ts';
import { prefixEnd, type MvccEvent, type RangeRequest, type RangeResponse, type TxnResponse } from '../../mvcc/index.ts';
import { StreamClosedError, type WatcherSpec, type WatchHub } from '../../watch/index.ts';
import { assert } from '../../util/assert.ts';
import { header, type PbHeader } from './convert.ts';
import type { CallContext } from '../grpc/index.ts';
import { callerOf } from './auth.ts';
import type { KvApi } from './kv.ts';

export const CONCURRENCY_LIMITS = {
  /** TTL of the lease made for a Lock or Campaign that names none (etcd's defaultSessionTTL). */
  sessionTtlSeconds: 60,
} as const;

/** The recipes' own conditions, with etcd's texts (errors.ts sends them as etcd does). */
export const RECIPE_ERRORS = {
  /** Proclaim by a contender whose key is gone or was re-created (etcd's ErrElectionNotLeader). */
  ELECTION_NOT_LEADER: 'election: not leader',
  /** Leader of an election without contenders (etcd's ErrElectionNoLeader). */
  ELECTION_NO_LEADER: 'election: no leader',
  /** The waiter's own key died (its lease expired or was revoked) before it got the lock (etcd's ErrSessionExpired). */
  SESSION_EXPIRED: 'mutex: session is expired',
  /** Proclaim or Resign without a leader key (etcd's v3election ErrMissingLeaderKey). */
  LEADER_KEY_MISSING: '"leader" field must be provided',
} as const;

export type RecipeErrorCode = keyof typeof RECIPE_ERRORS;

export class RecipeError extends Error {
  constructor(readonly code: RecipeErrorCode) {
    super(RECIPE_ERRORS[code]);
    this.name = 'RecipeError';
  }
}

const SLASH = Buffer.from('/');

/** <name>/: the keys of a lock's or election's contenders. */
export function contendersPrefix(name: Uint8Array): Buffer {
  return Buffer.concat([name, SLASH]);
}

/** <name>/<lease id in hex>, as etcd's recipes name a contender's key (Go's %x of the lease id). */
export function contenderKey(prefix: Uint8Array, lease: bigint): Buffer {
  return Buffer.concat([prefix, Buffer.from(lease.toString(16))]);
}

/** The owner's key under `prefix`: the one with the smallest create revision (etcd's WithFirstCreate). */
export function firstCreatedRange(prefix: Uint8Array): RangeRequest {
  return { key: prefix, rangeEnd: prefixEnd(prefix), sortTarget: 'CREATE', sortOrder: 'ASCEND', limit: 1 };
}

/**
 * Create revision of a contender's key after its txn: the txn's revision if it made the key,
 * else the existing key's, as the failure branch's first operation read it.
 */
export function contenderRevision(txn: TxnResponse): number {
  if (txn.succeeded) return txn.revision;
  const mine = txn.responses[0];
  assert(mine?.op === 'range' && mine.response.kvs[0] !== undefined, 'contender txn: the existing key was not read');
  return mine.response.kvs[0].createRevision;
}

/**
 * The events of one watcher on a stream of its own, until the consumer stops iterating or
 * `signal` aborts (then the abort reason is thrown). A watcher canceled by compaction, refused,
 * or ended by the hub closing throws the server condition etcd's client would see.
 */
async function* watchEvents(hub: WatchHub, spec: WatcherSpec, signal: AbortSignal): AsyncGenerator<{ revision: number; events: readonly MvccEvent[] }> {
  signal.throwIfAborted();
  let stream;
  try {
    stream = hub.openStream();
  } catch (e) {
    if (e instanceof StreamClosedError) throw serverError('STOPPED');
    throw e;
  }
  const close = (): void => stream.close();
  signal.addEventListener('abort', close);
  try {
    stream.watch(spec);
    for await (const m of stream) {
      if (m.type === 'events') yield { revision: m.revision, events: m.events };
      else if (m.type === 'canceled') throw serverError('COMPACTED');
      else if (m.type === 'rejected') throw serverError('INVALID_ARGUMENT', m.error.message, m.error);
    }
    signal.throwIfAborted();
    // The hub closed the stream: the member is stopping.
    throw serverError('STOPPED');
  } finally {
    signal.removeEventListener('abort', close);
    stream.close();
  }
}

/** The member's KV, Watch and Lease paths as the recipes use them. */
export class Concurrency {
  constructor(
    private readonly member: Member,
    readonly kv: KvApi,
    private readonly log: Logger,
  ) {}

  /** A response header at `revision`. */
  header(revision: number): PbHeader {
    return header(this.member.header(), revision);
  }

  /** The caller's lease; for 0, a new one that nobody keeps alive (etcd's orphaned session). */
  async session(lease: bigint, call: CallContext): Promise<bigint> {
    if (lease !== 0n) return lease;
    const granted = await this.member.leaseGrant(0n, CONCURRENCY_LIMITS.sessionTtlSeconds, await callerOf(this.member, call));
    return granted.id;
  }

  /** The owner's key under `prefix`, linearizably. */
  firstCreated(prefix: Uint8Array, call: CallContext): Promise<RangeResponse> {
    return this.kv.rangeStore(firstCreatedRange(prefix), false, call);
  }

  /** One key, linearizably. */
  get(key: Uint8Array, call: CallContext): Promise<RangeResponse> {
    return this.kv.rangeStore({ key }, false, call);
  }

  /**
   * Waits until no key under `prefix` with a create revision ≤ maxCreateRevision is left,
   * watching only the newest such key at a time (etcd's waitDeletes).
   */
  async waitDeletes(prefix: Uint8Array, maxCreateRevision: number, call: CallContext): Promise<void> {
    const signal = call.signal;
    // 0 would mean "no filter"; the first revision that can create a key is 2.
    assert(maxCreateRevision > 0, `waitDeletes below create revision ${maxCreateRevision}`);
    for (;;) {
      signal.throwIfAborted();
      const predecessor = await this.kv.rangeStore(
        { key: prefix, rangeEnd: prefixEnd(prefix), sortTarget: 'CREATE', sortOrder: 'DESCEND', limit: 1, maxCreateRevision },
        false,
        call,
      );
      const kv = predecessor.kvs[0];
      if (kv === undefined) return;
      assert(kv.createRevision <= maxCreateRevision, `predecessor created at ${kv.createRevision}, after ${maxCreateRevision}`);
      await this.waitDelete(kv.key, predecessor.revision, signal);
    }
  }

  /** Waits for a delete of `key` at `fromRevision` or later (it existed at fromRevision). */
  private async waitDelete(key: Uint8Array, fromRevision: number, signal: AbortSignal): Promise<void> {
    for await (const batch of this.watch({ key, startRevision: fromRevision }, signal)) {
      if (batch.events.some((e) => e.type === 'DELETE')) return;
    }
  }

  /** The events of one watcher on this member (see watchEvents). */
  watch(spec: WatcherSpec, signal: AbortSignal): AsyncGenerator<{ revision: number; events: readonly MvccEvent[] }> {
    return watchEvents(this.member.watches(), spec, signal);
  }

  /**
   * The clean-up of a call that failed or ended early (its client went away). As in etcd, a
   * failure leaves the key to its lease, so it is only logged; the promise never rejects for it.
   */
  async cleanUp(what: string, step: () => Promise<unknown>): Promise<void> {
    try {
      await step();
    } catch (e) {
      if (!(e instanceof ServerError)) throw e;
      this.log.warn(`${what}: ${e.message}; the key stays until its lease ends`);
    }
  }
}
