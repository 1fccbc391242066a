/**
 * etcd's KV service: Range, Put, DeleteRange, Txn, Compact. Requests are checked here as etcd
 * checks them before proposing (empty key, txn size and duplicate keys, ignore_* flags), so a
 * bad request never reaches the log. Reads are linearizable unless `serializable` is set;
 * a read-only Txn is served like a read, without a proposal.
 */
import type { Service } from 'protobufjs';
import { unary, type CallContext, type ServiceImpl, type UnaryEncoding } from '../grpc/index.ts';
import type { AuthInfo } from '../../auth/index.ts';
import {
  checkDeleteRequest,
  checkPutRequest,
  checkRangeRequest,
  checkTxnRequest,
  isTxnReadonly,
  resolveLimits,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  type MvccLimits,
  type PutResponse,
  type RangeRequest,
  type RangeResponse,
  type TxnRequest,
  type TxnResponse,
} from '../../mvcc/index.ts';
import { fromMvccError } from '../../server/apply.ts';
import { storeGrowth } from '../../server/alarms.ts';
import type { Member } from '../../server/member.ts';
import {
  header,
  num,
  toDeleteRangeRequest,
  toPutRequest,
  toRangeRequest,
  toTxnRequest,
  type PbCompactionRequest,
  type PbDeleteRangeRequest,
  type PbPutRequest,
  type PbRangeRequest,
  type PbTxnRequest,
} from './convert.ts';
import { toGrpcError } from './errors.ts';
import { DELETE_RANGE_ENCODING, PUT_ENCODING, RANGE_ENCODING, TXN_ENCODING, type KvReply } from './kv-encoding.ts';
import { callerOf } from './auth.ts';

/** Runs a store check and turns its failure into the server condition etcd reports. */
function check(fn: () => void): void {
  try {
    fn();
  } catch (e) {
    throw fromMvccError(e);
  }
}

/** The KV operations shared by the gRPC service and the JSON gateway. */
export class KvApi {
  private readonly limits: MvccLimits;

  constructor(private readonly member: Member) {
    this.limits = resolveLimits({ txnOpsMax: member.config.maxTxnOps, keyBytesMax: member.config.maxRequestBytes });
  }

  /** Who the call runs as (after a linearizable read's barrier, as etcd resolves it). */
  private caller(call: CallContext): Promise<AuthInfo> {
    return callerOf(this.member, call);
  }

  async range(pb: PbRangeRequest, call: CallContext): Promise<KvReply<RangeResponse>> {
    const response = await this.rangeStore(toRangeRequest(pb), pb.serializable === true, call);
    return { header: this.member.header(), response };
  }

  async put(pb: PbPutRequest, call: CallContext): Promise<KvReply<PutResponse>> {
    const r = toPutRequest(pb);
    check(() => checkPutRequest(r, this.limits));
    await this.member.checkQuota(r.key.byteLength + r.value.byteLength);
    const res = await this.member.write({ op: 'put', request: r }, await this.caller(call));
    if (res?.op !== 'put') throw new Error('put applied as something else');
    return { header: this.member.header(), response: res.response };
  }

  async deleteRange(pb: PbDeleteRangeRequest, call: CallContext): Promise<KvReply<DeleteRangeResponse>> {
    const response = await this.deleteStore(toDeleteRangeRequest(pb), call);
    return { header: this.member.header(), response };
  }

  async txn(pb: PbTxnRequest, call: CallContext): Promise<KvReply<TxnResponse>> {
    const serializable = [...(pb.success ?? []), ...(pb.failure ?? [])].every((op) => op.request_range?.serializable === true);
    const response = await this.txnStore(toTxnRequest(pb), serializable, call);
    return { header: this.member.header(), response };
  }

  // The same operations in the store's shapes, for the services built on KV (Lock, Election);
  // each runs as the calling user, as etcd's recipes do.

  async rangeStore(r: RangeRequest, serializable: boolean, call: CallContext): Promise<RangeResponse> {
    check(() => checkRangeRequest(r, this.limits));
    if (!serializable) await this.member.linearizableBarrier();
    this.member.auth.checkRequest(await this.caller(call), { op: 'range', request: r });
    // Linearizable already: the barrier was passed above.
    return this.member.range(r, true);
  }

  async deleteStore(r: DeleteRangeRequest, call: CallContext): Promise<DeleteRangeResponse> {
    check(() => checkDeleteRequest(r, this.limits));
    const res = await this.member.write({ op: 'deleteRange', request: r }, await this.caller(call));
    if (res?.op !== 'deleteRange') throw new Error('delete applied as something else');
    return res.response;
  }

  /** A read-only txn is served like a read, without a proposal (`serializable`: every range asked for it). */
  async txnStore(r: TxnRequest, serializable: boolean, call: CallContext): Promise<TxnResponse> {
    check(() => checkTxnRequest(r, this.limits));
    if (isTxnReadonly(r)) {
      if (!serializable) await this.member.linearizableBarrier();
      this.member.auth.checkRequest(await this.caller(call), { op: 'txn', request: r });
      try {
        return this.member.mvcc().txn(r);
      } catch (e) {
        throw fromMvccError(e);
      }
    }
    const growth = storeGrowth({ op: 'txn', request: r });
    if (growth !== null) await this.member.checkQuota(growth);
    const res = await this.member.write({ op: 'txn', request: r }, await this.caller(call));
    if (res?.op !== 'txn') throw new Error('txn applied as something else');
    return res.response;
  }

  async compact(pb: PbCompactionRequest, call: CallContext) {
    // etcd checks no permission for compaction (only the credentials themselves).
    const res = await this.member.write({ op: 'compact', revision: num(pb.revision) }, await this.caller(call));
    if (res?.op !== 'compact') throw new Error('compact applied as something else');
    // physical: answer once the compacted revisions are gone from the backend, as etcd does.
    if (pb.physical === true) await this.member.mvcc().compactionDone();
    return { header: header(this.member.header(), res.response.revision) };
  }
}

/**
 * Wraps an operation so that server conditions leave as etcd's gRPC status and text (`mapError`:
 * toGrpcError, or toRawAuthGrpcError where etcd passes auth errors through unconverted).
 */
export function grpcHandler<Req, Res>(fn: (req: Req, call: CallContext) => Promise<Res>, mapError: (e: unknown) => unknown = toGrpcError, encoding?: UnaryEncoding<Res>) {
  return unary<Req, Res>(async (req, call) => {
    try {
      return await fn(req, call);
    } catch (e) {
      throw mapError(e);
    }
  }, encoding);
}

export function kvService(kv: KvApi, service: Service): [Service, ServiceImpl] {
  return [
    service,
    {
      Range: grpcHandler((r: PbRangeRequest, call) => kv.range(r, call), toGrpcError, RANGE_ENCODING),
      Put: grpcHandler((r: PbPutRequest, call) => kv.put(r, call), toGrpcError, PUT_ENCODING),
      DeleteRange: grpcHandler((r: PbDeleteRangeRequest, call) => kv.deleteRange(r, call), toGrpcError, DELETE_RANGE_ENCODING),
      Txn: grpcHandler((r: PbTxnRequest, call) => kv.txn(r, call), toGrpcError, TXN_ENCODING),
      Compact: grpcHandler((r: PbCompactionRequest, call) => kv.compact(r, call)),
    },
  ];
}
