/**
 * Between etcd's protobuf messages (as the gRPC layer decodes them: Long for 64-bit integers,
 * Buffer for bytes, enums as numbers, snake_case names) and the store's request and response
 * types. Responses are plain objects the encoder takes directly; 64-bit values that may exceed
 * 2^53 (lease and member ids) go out as decimal strings.
 */
import type { Long } from 'protobufjs';
import type {
  Compare,
  CompareResult,
  DeleteRangeRequest,
  DeleteRangeResponse,
  KeyValue,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  RequestOp,
  ResponseOp,
  SortOrder,
  SortTarget,
  TxnRequest,
  TxnResponse,
} from '../../mvcc/types.ts';
import type { ResponseHeader } from '../../server/member.ts';
import { idToUint64, type Uint64Halves } from '../../server/ids.ts';
import { serverError } from '../../server/errors.ts';

/** A 64-bit integer as decoded: a Long, or a plain number/string when built from JSON. */
export type Int64 = Long | number | string;

export interface PbRangeRequest {
  key: Uint8Array;
  range_end: Uint8Array;
  limit: Int64;
  revision: Int64;
  sort_order: number;
  sort_target: number;
  serializable: boolean;
  keys_only: boolean;
  count_only: boolean;
  min_mod_revision: Int64;
  max_mod_revision: Int64;
  min_create_revision: Int64;
  max_create_revision: Int64;
}

export interface PbPutRequest {
  key: Uint8Array;
  value: Uint8Array;
  lease: Int64;
  prev_kv: boolean;
  ignore_value: boolean;
  ignore_lease: boolean;
}

export interface PbDeleteRangeRequest {
  key: Uint8Array;
  range_end: Uint8Array;
  prev_kv: boolean;
}

export interface PbCompare {
  result: number;
  target: number;
  key: Uint8Array;
  version?: Int64 | null;
  create_revision?: Int64 | null;
  mod_revision?: Int64 | null;
  value?: Uint8Array | null;
  lease?: Int64 | null;
  range_end: Uint8Array;
}

export interface PbRequestOp {
  request_range?: PbRangeRequest | null;
  request_put?: PbPutRequest | null;
  request_delete_range?: PbDeleteRangeRequest | null;
  request_txn?: PbTxnRequest | null;
}

export interface PbTxnRequest {
  compare: PbCompare[];
  success: PbRequestOp[];
  failure: PbRequestOp[];
}

export interface PbCompactionRequest {
  revision: Int64;
  physical: boolean;
}

const SORT_ORDERS: readonly SortOrder[] = ['NONE', 'ASCEND', 'DESCEND'];
const SORT_TARGETS: readonly SortTarget[] = ['KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE'];
const COMPARE_RESULTS: readonly CompareResult[] = ['EQUAL', 'GREATER', 'LESS', 'NOT_EQUAL'];

/** A 64-bit integer field as a JS number (revisions, counts: far below 2^53). */
export function num(v: Int64 | null | undefined): number {
  if (v === null || v === undefined) return 0;
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return Number(v);
  return (v.unsigned ? v.high >>> 0 : v.high) * 2 ** 32 + (v.low >>> 0);
}

/** A uint64 member id as decoded, in the server's form (16 hex digits). */
export function hexId(v: Int64 | null | undefined): string {
  return BigInt(String(v ?? 0)).toString(16).padStart(16, '0');
}

/** A 64-bit integer field exactly, as a signed bigint (lease ids use all 64 bits). */
export function big(v: Int64 | null | undefined): bigint {
  if (v === null || v === undefined) return 0n;
  if (typeof v === 'number' || typeof v === 'string') return BigInt(v);
  return BigInt.asIntN(64, (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0));
}

const NO_BYTES = new Uint8Array(0);

/** An unset bytes field reads protobufjs's prototype default, a plain empty array: normalize it. */
export function bytes(v: Uint8Array | null | undefined): Uint8Array {
  return v instanceof Uint8Array ? v : NO_BYTES;
}

function pick<T>(list: readonly T[], i: number, what: string): T {
  const v = list[i];
  if (v === undefined) throw serverError('INVALID_ARGUMENT', `invalid ${what} ${i}`);
  return v;
}

/**
 * etcd skips sorting for a sort order it does not know, leaving the results in key order (and
 * applies the limit after fetching, as for any sort): the same as ascending by key.
 */
function sortOf(order: number, target: number): { sortOrder: SortOrder; sortTarget: SortTarget } {
  const sortOrder = SORT_ORDERS[order];
  if (sortOrder === undefined) return { sortOrder: 'ASCEND', sortTarget: 'KEY' };
  return { sortOrder, sortTarget: pick(SORT_TARGETS, target, 'sort target') };
}

export function toRangeRequest(r: PbRangeRequest): RangeRequest {
  return {
    key: bytes(r.key),
    rangeEnd: bytes(r.range_end),
    limit: num(r.limit),
    revision: num(r.revision),
    ...sortOf(r.sort_order ?? 0, r.sort_target ?? 0),
    keysOnly: r.keys_only === true,
    countOnly: r.count_only === true,
    minModRevision: num(r.min_mod_revision),
    maxModRevision: num(r.max_mod_revision),
    minCreateRevision: num(r.min_create_revision),
    maxCreateRevision: num(r.max_create_revision),
  };
}

export function toPutRequest(r: PbPutRequest): PutRequest {
  return {
    key: bytes(r.key),
    value: bytes(r.value),
    lease: big(r.lease),
    prevKv: r.prev_kv === true,
    ignoreValue: r.ignore_value === true,
    ignoreLease: r.ignore_lease === true,
  };
}

export function toDeleteRangeRequest(r: PbDeleteRangeRequest): DeleteRangeRequest {
  return { key: bytes(r.key), rangeEnd: bytes(r.range_end), prevKv: r.prev_kv === true };
}

function toCompare(c: PbCompare): Compare {
  const base = { result: pick(COMPARE_RESULTS, c.result ?? 0, 'compare result'), key: bytes(c.key), rangeEnd: bytes(c.range_end) };
  switch (c.target ?? 0) {
    case 0:
      return { ...base, target: 'VERSION', version: num(c.version) };
    case 1:
      return { ...base, target: 'CREATE', createRevision: num(c.create_revision) };
    case 2:
      return { ...base, target: 'MOD', modRevision: num(c.mod_revision) };
    case 3:
      return { ...base, target: 'VALUE', value: bytes(c.value) };
    case 4:
      return { ...base, target: 'LEASE', lease: big(c.lease) };
    default:
      throw serverError('INVALID_ARGUMENT', `invalid compare target ${c.target}`);
  }
}

function toRequestOp(op: PbRequestOp): RequestOp {
  if (op.request_range) return { op: 'range', request: toRangeRequest(op.request_range) };
  if (op.request_put) return { op: 'put', request: toPutRequest(op.request_put) };
  if (op.request_delete_range) return { op: 'deleteRange', request: toDeleteRangeRequest(op.request_delete_range) };
  if (op.request_txn) return { op: 'txn', request: toTxnRequest(op.request_txn) };
  // etcd treats an empty RequestOp as an empty range request, which fails its key check.
  return { op: 'range', request: { key: NO_BYTES } };
}

export function toTxnRequest(r: PbTxnRequest): TxnRequest {
  return {
    compare: (r.compare ?? []).map(toCompare),
    success: (r.success ?? []).map(toRequestOp),
    failure: (r.failure ?? []).map(toRequestOp),
  };
}

// ---- responses -------------------------------------------------------------------------

export interface PbHeader {
  /** The ids' 32-bit halves: protobufjs encodes them as they are (a decimal string it parses per message). */
  cluster_id?: Uint64Halves;
  member_id?: Uint64Halves;
  revision: number;
  raft_term?: number;
}

export function header(h: ResponseHeader, revision = h.revision): PbHeader {
  return { cluster_id: idToUint64(h.clusterId), member_id: idToUint64(h.memberId), revision, raft_term: h.raftTerm };
}

export interface PbKeyValue {
  key: Uint8Array;
  create_revision: number;
  mod_revision: number;
  version: number;
  value: Uint8Array;
  lease: string;
}

export function keyValue(kv: KeyValue): PbKeyValue {
  return {
    key: kv.key,
    create_revision: kv.createRevision,
    mod_revision: kv.modRevision,
    version: kv.version,
    value: kv.value,
    lease: kv.lease.toString(),
  };
}

export function rangeResponse(r: RangeResponse, h: PbHeader | null) {
  return { header: h, kvs: r.kvs.map(keyValue), more: r.more, count: r.count };
}

export function putResponse(r: PutResponse, h: PbHeader | null) {
  return { header: h, prev_kv: r.prevKv === undefined ? null : keyValue(r.prevKv) };
}

export function deleteRangeResponse(r: DeleteRangeResponse, h: PbHeader | null) {
  return { header: h, deleted: r.deleted, prev_kvs: r.prevKvs.map(keyValue) };
}

/** A txn's sub-response: etcd gives each a header holding only the revision. */
function responseOp(op: ResponseOp) {
  const h = { revision: op.response.revision };
  switch (op.op) {
    case 'range':
      return { response_range: rangeResponse(op.response, h) };
    case 'put':
      return { response_put: putResponse(op.response, h) };
    case 'deleteRange':
      return { response_delete_range: deleteRangeResponse(op.response, h) };
    case 'txn':
      return { response_txn: txnResponse(op.response, h) };
  }
}

export interface PbTxnResponse {
  header: PbHeader | null;
  succeeded: boolean;
  responses: ReturnType<typeof responseOp>[];
}

export function txnResponse(r: TxnResponse, h: PbHeader | null): PbTxnResponse {
  return { header: h, succeeded: r.succeeded, responses: r.responses.map(responseOp) };
}
