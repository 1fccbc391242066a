/**
 * etcd's Election service (v3electionpb.Election), served as etcd serves it: by its Election
 * recipe, run here over the member's KV, Watch and Lease paths (see concurrency.ts for the
 * shared steps). The leader is the contender whose key <name>/<lease hex> has the smallest
 * create revision; its value is the leader's proclamation; the key's create revision names
 * the term (a LeaderKey's `rev`).
 *
 *  - Campaign puts the key with the value if absent (a contender campaigning again with another
 *    value proclaims it), then waits for its predecessors to be deleted; a call that ends early
 *    resigns. Unlike etcd (3.4 and later), a contender whose own key died while it waited (its
 *    lease ended) is told "election: not leader" rather than that it won.
 *  - Proclaim puts the new value only while the key exists with the LeaderKey's create revision
 *    ("election: not leader" otherwise); Resign deletes it on the same condition, silently.
 *  - Leader answers the leader's kv ("election: no leader" when nobody campaigns).
 *  - Observe streams the leader's kv now and on every change: each new value of the leader's
 *    key, then the next leader once that key is deleted. It ends (status OK, as in etcd) if a
 *    read or watch fails.
 * As in etcd, Proclaim and Resign open a session on the LeaderKey's lease: lease 0 gets a new
 * lease (Proclaim then puts the value under it).
 */
import type { Service } from 'protobufjs';
import { serverStream, type CallContext, type ServerStream, type ServiceImpl } from '../grpc/index.ts';
import { prefixEnd, type KeyValue, type TxnResponse } from '../../mvcc/index.ts';
import { ServerError } from '../../server/errors.ts';
import { assert } from '../../util/assert.ts';
import { big, bytes, keyValue, num, type Int64, type PbHeader, type PbKeyValue } from './convert.ts';
import { Concurrency, contenderKey, contenderRevision, contendersPrefix, RecipeError } from './concurrency.ts';
import { recipeHandler } from './errors.ts';

export interface PbLeaderKey {
  name: Uint8Array;
  key: Uint8Array;
  rev: Int64;
  lease: Int64;
}
export interface PbCampaignRequest {
  name: Uint8Array;
  lease: Int64;
  value: Uint8Array;
}
export interface PbProclaimRequest {
  leader: PbLeaderKey | null;
  value: Uint8Array;
}
export interface PbLeaderRequest {
  name: Uint8Array;
}
export interface PbResignRequest {
  leader: PbLeaderKey | null;
}
export interface PbLeaderResponse {
  header: PbHeader;
  kv: PbKeyValue;
}
export interface PbCampaignResponse {
  header: PbHeader;
  leader: { name: Uint8Array; key: Uint8Array; rev: number; lease: string };
}

function leaderKeyOf(pb: { leader: PbLeaderKey | null }): PbLeaderKey {
  if (pb.leader === null || pb.leader === undefined) throw new RecipeError('LEADER_KEY_MISSING');
  return pb.leader;
}

export class ElectionApi {
  constructor(private readonly c: Concurrency) {}

  async campaign(pb: PbCampaignRequest, call: CallContext): Promise<PbCampaignResponse> {
    const signal = call.signal;
    const lease = await this.c.session(big(pb.lease), call);
    const name = bytes(pb.name);
    const prefix = contendersPrefix(name);
    const key = contenderKey(prefix, lease);
    const value = bytes(pb.value);
    const txn = await this.c.kv.txnStore({
      compare: [{ target: 'CREATE', result: 'EQUAL', key, createRevision: 0 }],
      success: [{ op: 'put', request: { key, value, lease } }],
      failure: [{ op: 'range', request: { key } }],
    }, false, call);
    const rev = contenderRevision(txn);
    const resign = (): Promise<void> => this.c.cleanUp(`resigning ${Buffer.from(key).toString()} of a Campaign that did not complete`, () => this.resignKey(key, rev, call));
    if (!txn.succeeded) {
      const existing = txn.responses[0];
      assert(existing?.op === 'range' && existing.response.kvs[0] !== undefined, 'campaign txn: the existing key was not read');
      if (!Buffer.from(existing.response.kvs[0].value).equals(value)) {
        try {
          await this.proclaimKey(key, rev, lease, value, call);
        } catch (e) {
          await resign();
          throw e;
        }
      }
    }
    if (signal.aborted) {
      // The caller is gone before it heard of the key: a key this call made must not campaign.
      if (txn.succeeded) void resign();
      signal.throwIfAborted();
    }
    try {
      await this.c.waitDeletes(prefix, rev - 1, call);
    } catch (e) {
      if (signal.aborted) void resign();
      throw e;
    }
    const now = await this.c.get(key, call);
    if (now.kvs[0]?.createRevision !== rev) throw new RecipeError('ELECTION_NOT_LEADER');
    if (signal.aborted) {
      void resign();
      signal.throwIfAborted();
    }
    // etcd answers the header of the campaign's txn, not of the moment it won.
    return { header: this.c.header(txn.revision), leader: { name, key, rev, lease: lease.toString() } };
  }

  async proclaim(pb: PbProclaimRequest, call: CallContext) {
    const leader = leaderKeyOf(pb);
    const lease = await this.c.session(big(leader.lease), call);
    const txn = await this.proclaimKey(bytes(leader.key), num(leader.rev), lease, bytes(pb.value), call);
    return { header: this.c.header(txn.revision) };
  }

  async leader(pb: PbLeaderRequest, call: CallContext): Promise<PbLeaderResponse> {
    const res = await this.c.firstCreated(contendersPrefix(bytes(pb.name)), call);
    const kv = res.kvs[0];
    if (kv === undefined) throw new RecipeError('ELECTION_NO_LEADER');
    return { header: this.c.header(res.revision), kv: keyValue(kv) };
  }

  async resign(pb: PbResignRequest, call: CallContext) {
    const leader = leaderKeyOf(pb);
    await this.c.session(big(leader.lease), call); // etcd's session, unused by the delete
    const txn = await this.resignKey(bytes(leader.key), num(leader.rev), call);
    return { header: this.c.header(txn.revision) };
  }

  /**
   * The leader's kv now and after every change, until the call's signal aborts (then throws its reason);
   * ends when a read or watch fails (etcd's Observe then ends the stream).
   */
  async *observe(pb: PbLeaderRequest, call: CallContext): AsyncGenerator<PbLeaderResponse> {
    const signal = call.signal;
    const prefix = contendersPrefix(bytes(pb.name));
    try {
      for (;;) {
        const current = await this.c.firstCreated(prefix, call);
        let kv: KeyValue | undefined = current.kvs[0];
        let revision = current.revision;
        if (kv === undefined) {
          // Nobody campaigns: the first put under the prefix is the next leader.
          for await (const batch of this.c.watch({ key: prefix, rangeEnd: prefixEnd(prefix), startRevision: current.revision }, signal)) {
            kv = batch.events.find((e) => e.type === 'PUT')?.kv;
            if (kv !== undefined) break;
          }
          assert(kv !== undefined, 'observe: the watch for a leader ended without one');
          revision = kv.modRevision;
        }
        yield { header: this.c.header(revision), kv: keyValue(kv) };
        yield* this.followLeader(kv.key, revision, signal);
      }
    } catch (e) {
      signal.throwIfAborted();
      if (e instanceof ServerError) return;
      throw e;
    }
  }

  /** Every new value of the leader's key after `revision`, until the key is deleted. */
  private async *followLeader(key: Uint8Array, revision: number, signal: AbortSignal): AsyncGenerator<PbLeaderResponse> {
    for await (const batch of this.c.watch({ key, startRevision: revision + 1 }, signal)) {
      for (const e of batch.events) {
        if (e.type === 'DELETE') return;
        yield { header: this.c.header(batch.revision), kv: keyValue(e.kv) };
      }
    }
  }

  private async proclaimKey(key: Uint8Array, rev: number, lease: bigint, value: Uint8Array, call: CallContext): Promise<TxnResponse> {
    const txn = await this.c.kv.txnStore({
      compare: [{ target: 'CREATE', result: 'EQUAL', key, createRevision: rev }],
      success: [{ op: 'put', request: { key, value, lease } }],
      failure: [],
    }, false, call);
    if (!txn.succeeded) throw new RecipeError('ELECTION_NOT_LEADER');
    return txn;
  }

  private resignKey(key: Uint8Array, rev: number, call: CallContext): Promise<TxnResponse> {
    return this.c.kv.txnStore({
      compare: [{ target: 'CREATE', result: 'EQUAL', key, createRevision: rev }],
      success: [{ op: 'deleteRange', request: { key } }],
      failure: [],
    }, false, call);
  }
}

export function electionService(api: ElectionApi, service: Service): [Service, ServiceImpl] {
  return [
    service,
    {
      Campaign: recipeHandler((r: PbCampaignRequest, call) => api.campaign(r, call)),
      Proclaim: recipeHandler((r: PbProclaimRequest, call) => api.proclaim(r, call)),
      Leader: recipeHandler((r: PbLeaderRequest, call) => api.leader(r, call)),
      Observe: serverStream(async (r: PbLeaderRequest, call: ServerStream<PbLeaderResponse>) => {
        for await (const m of api.observe(r, call)) await call.write(m);
      }),
      Resign: recipeHandler((r: PbResignRequest, call) => api.resign(r, call)),
    },
  ];
}
