/**
 * The Conclave (and etcd v3) client: key-value calls, transactions, watches and leases over
 * a list of endpoints. See rpc.ts for failover and retries, watch.ts and lease.ts for how
 * streams survive a member's loss.
 *
 *   const client = new Client({ endpoints: ['127.0.0.1:2379', '127.0.0.1:22379'] });
 *   await client.put('greeting', 'hello');
 *   const { kvs } = await client.get('greeting');
 *   client.close();
 */
import { hexId, num, type Int64 } from '../api/etcd/convert.ts';
import { Status } from '../api/grpc/status.ts';
import { LeaseNotFoundError } from './errors.ts';
import {
  deleteRequest,
  fromDeleteResponse,
  fromHeader,
  fromPutResponse,
  fromRangeResponse,
  putRequest,
  rangeRequest,
  type Bytes,
  type DeleteOptions,
  type DeleteResult,
  type GetOptions,
  type GetResult,
  type PbDeleteRangeResponseIn,
  type PbHeaderIn,
  type PbPutResponseIn,
  type PbRangeResponseIn,
  type PutOptions,
  type PutResult,
  type ResponseHeader,
} from './kv.ts';
import { Auth } from './auth.ts';
import { Cluster, type MemberInfo } from './cluster.ts';
import { snapshotStream, type SnapshotChunk } from './maintenance.ts';
import { grantLease, Lease, leaseTimeToLive, listLeases, revokeLease, type LeaseGrantResult, type LeaseTimeToLiveResult } from './lease.ts';
import { normalizeEndpoints, resolveLimits, type ClientLimits, type ClientOptions } from './options.ts';
import { method, Rpc, type CallOptions } from './rpc.ts';
import { fromTxnResponse, TxnBuilder, type PbTxnResponseIn } from './txn.ts';
import { Watcher, type WatchOptions } from './watch.ts';

const KV = {
  range: method('etcdserverpb.KV', 'Range'),
  put: method('etcdserverpb.KV', 'Put'),
  deleteRange: method('etcdserverpb.KV', 'DeleteRange'),
  txn: method('etcdserverpb.KV', 'Txn'),
  compact: method('etcdserverpb.KV', 'Compact'),
} as const;

const MAINTENANCE_STATUS = method('etcdserverpb.Maintenance', 'Status');

export interface StatusResult {
  header: ResponseHeader;
  version: string;
  dbSize: number;
  /** Bytes of the store in use (dbSize less its free pages). */
  dbSizeInUse: number;
  leader: string;
  raftIndex: number;
  raftTerm: number;
  raftAppliedIndex: number;
  isLearner: boolean;
  /** Alarms and other conditions the member reports. */
  errors: string[];
}

interface PbStatusResponseIn {
  header: PbHeaderIn | null;
  version: string;
  dbSize: Int64;
  dbSizeInUse: Int64;
  leader: Int64;
  raftIndex: Int64;
  raftTerm: Int64;
  raftAppliedIndex: Int64;
  isLearner: boolean;
  errors: string[];
}

export class Client {
  /** The transport and retry machinery, shared with the recipes. */
  readonly rpc: Rpc;
  /** Membership: list, add, remove, update, promote. */
  readonly cluster: Cluster;
  /** Auth management: enable/disable, users, roles and permissions. */
  readonly auth: Auth;

  constructor(options: ClientOptions) {
    const limits: ClientLimits = resolveLimits(options.limits);
    this.rpc = new Rpc(normalizeEndpoints(options.endpoints, options.tls !== undefined), options.tls, limits, options.auth);
    this.cluster = new Cluster(this.rpc);
    this.auth = new Auth(this.rpc);
  }

  /** The endpoints' URLs, in the order given. */
  get endpoints(): string[] {
    return this.rpc.endpoints.map((e) => e.url);
  }

  async get(key: Bytes, options?: GetOptions & CallOptions): Promise<GetResult> {
    const r = await this.rpc.unary<PbRangeResponseIn>(KV.range, rangeRequest(key, options), 'idempotent', options);
    return fromRangeResponse(r);
  }

  /** The value of one key as a UTF-8 string, or undefined if it does not exist. */
  async getString(key: Bytes, options?: GetOptions & CallOptions): Promise<string | undefined> {
    const r = await this.get(key, options);
    return r.kvs[0]?.value.toString('utf8');
  }

  /** A put. It is never sent twice: if its outcome is unknown it fails with IndeterminateError. */
  async put(key: Bytes, value: Bytes, options?: PutOptions & CallOptions): Promise<PutResult> {
    const r = await this.rpc.unary<PbPutResponseIn>(KV.put, putRequest(key, value, options), 'mutation', options);
    return fromPutResponse(r);
  }

  async delete(key: Bytes, options?: DeleteOptions & CallOptions): Promise<DeleteResult> {
    const r = await this.rpc.unary<PbDeleteRangeResponseIn>(KV.deleteRange, deleteRequest(key, options), 'mutation', options);
    return fromDeleteResponse(r);
  }

  /** Compacts the history up to `revision`; `physical` waits until the space is freed. */
  async compact(revision: number, options?: { physical?: boolean } & CallOptions): Promise<ResponseHeader> {
    const r = await this.rpc.unary<{ header: PbHeaderIn | null }>(KV.compact, { revision, physical: options?.physical === true }, 'mutation', options);
    return fromHeader(r.header);
  }

  txn(options?: CallOptions): TxnBuilder {
    return new TxnBuilder(async (request, writes) => {
      const r = await this.rpc.unary<PbTxnResponseIn>(KV.txn, request, writes ? 'mutation' : 'idempotent', options);
      return fromTxnResponse(r);
    });
  }

  /** Watches a key (or a prefix / range with `prefix` / `rangeEnd`); iterate the result for events. */
  watch(key: Bytes, options?: WatchOptions): Watcher {
    return new Watcher(this.rpc, key, options);
  }

  grant(ttlSeconds: number, options?: { id?: bigint }): Promise<LeaseGrantResult> {
    return grantLease(this.rpc, ttlSeconds, options?.id);
  }

  revoke(id: bigint): Promise<ResponseHeader> {
    return revokeLease(this.rpc, id);
  }

  timeToLive(id: bigint, options?: { keys?: boolean }): Promise<LeaseTimeToLiveResult> {
    return leaseTimeToLive(this.rpc, id, options?.keys === true);
  }

  leases(): Promise<{ header: ResponseHeader; ids: bigint[] }> {
    return listLeases(this.rpc);
  }

  /** Grants a lease and keeps it alive until it is closed, revoked or lost. */
  async lease(ttlSeconds: number, options?: { id?: bigint }): Promise<Lease> {
    const grantedAt = Date.now();
    const g = await this.grant(ttlSeconds, options);
    return new Lease(this.rpc, g.id, g.ttl, grantedAt);
  }

  /** Keeps an existing lease alive (as `etcdctl lease keep-alive`); fails if it does not exist. */
  async keepAlive(id: bigint): Promise<Lease> {
    const askedAt = Date.now();
    const ttl = await this.timeToLive(id);
    if (ttl.ttl <= 0) throw new LeaseNotFoundError(`etcdserver: requested lease not found`, Status.NOT_FOUND);
    return new Lease(this.rpc, id, ttl.grantedTtl, askedAt - (ttl.grantedTtl - ttl.ttl) * 1000);
  }

  /** A member's status (the next endpoint in turn answers). */
  async status(options?: CallOptions): Promise<StatusResult> {
    const r = await this.rpc.unary<PbStatusResponseIn>(MAINTENANCE_STATUS, {}, 'idempotent', options);
    return {
      header: fromHeader(r.header),
      version: r.version,
      dbSize: num(r.dbSize),
      dbSizeInUse: num(r.dbSizeInUse),
      leader: hexId(r.leader),
      raftIndex: num(r.raftIndex),
      raftTerm: num(r.raftTerm),
      raftAppliedIndex: num(r.raftAppliedIndex),
      isLearner: r.isLearner === true,
      errors: r.errors ?? [],
    };
  }

  async memberList(options?: CallOptions): Promise<MemberInfo[]> {
    return (await this.cluster.list(options)).members;
  }

  /** The member's store as a stream of chunks (etcdctl snapshot save); needs root with auth on. */
  snapshot(): AsyncGenerator<SnapshotChunk> {
    return snapshotStream(this.rpc);
  }

  /** Ends every call, watch and kept-alive lease of this client. */
  close(): void {
    this.rpc.close();
  }
}
