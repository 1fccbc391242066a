/**
 * Key-value requests and responses: the client's types, and their conversion to and from the
 * etcd protobuf messages (snake_case names, 64-bit integers as decimal strings going out and
 * Longs coming in, bytes as Buffers).
 *
 * Revisions, versions and counts are JS numbers (they stay far below 2^53); lease ids use all
 * 64 bits and are bigints.
 */
import { big, bytes, hexId, num, type Int64 } from '../api/etcd/convert.ts';

/** A key or value: a string (UTF-8) or raw bytes. */
export type Bytes = string | Uint8Array;

export function toBytes(b: Bytes): Buffer {
  return typeof b === 'string' ? Buffer.from(b, 'utf8') : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** The end of the range of keys starting with `prefix` (etcd's rule; "\0" = no end). */
export function prefixEnd(prefix: Uint8Array): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

export interface ResponseHeader {
  /** Cluster and member ids as 16 hex digits. */
  clusterId: string;
  memberId: string;
  revision: number;
  raftTerm: number;
}

export interface KeyValue {
  key: Buffer;
  value: Buffer;
  createRevision: number;
  modRevision: number;
  version: number;
  /** 0n: no lease. */
  lease: bigint;
}

/** Which keys: one key (default), every key with the prefix, [key, rangeEnd), or every key ≥ key. */
export interface KeySelector {
  prefix?: boolean;
  rangeEnd?: Bytes;
  fromKey?: boolean;
}

export type SortTarget = 'KEY' | 'VERSION' | 'CREATE' | 'MOD' | 'VALUE';
export type SortOrder = 'NONE' | 'ASCEND' | 'DESCEND';

export interface GetOptions extends KeySelector {
  limit?: number;
  /** Read at this revision (0: the latest). */
  revision?: number;
  sort?: { target: SortTarget; order: SortOrder };
  /** Answer from the member's local state without a quorum round (may be stale). */
  serializable?: boolean;
  keysOnly?: boolean;
  countOnly?: boolean;
  minModRevision?: number;
  maxModRevision?: number;
  minCreateRevision?: number;
  maxCreateRevision?: number;
}

export interface PutOptions {
  /** Attach the key to this lease (0n or absent: none). */
  lease?: bigint;
  prevKv?: boolean;
  /** Keep the key's current value (the key must exist). */
  ignoreValue?: boolean;
  /** Keep the key's current lease (the key must exist). */
  ignoreLease?: boolean;
}

export interface DeleteOptions extends KeySelector {
  prevKv?: boolean;
}

export interface GetResult {
  header: ResponseHeader;
  kvs: KeyValue[];
  more: boolean;
  count: number;
}

export interface PutResult {
  header: ResponseHeader;
  prevKv?: KeyValue;
}

export interface DeleteResult {
  header: ResponseHeader;
  deleted: number;
  prevKvs: KeyValue[];
}

// ---- wire shapes -------------------------------------------------------------------------

export interface PbHeaderIn {
  cluster_id: Int64;
  member_id: Int64;
  revision: Int64;
  raft_term: Int64;
}

export interface PbKeyValueIn {
  key: Buffer;
  create_revision: Int64;
  mod_revision: Int64;
  version: Int64;
  value: Buffer;
  lease: Int64;
}

export interface PbRangeResponseIn {
  header: PbHeaderIn | null;
  kvs: PbKeyValueIn[];
  more: boolean;
  count: Int64;
}

export interface PbPutResponseIn {
  header: PbHeaderIn | null;
  prev_kv: PbKeyValueIn | null;
}

export interface PbDeleteRangeResponseIn {
  header: PbHeaderIn | null;
  deleted: Int64;
  prev_kvs: PbKeyValueIn[];
}

const SORT_TARGETS: readonly SortTarget[] = ['KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE'];
const SORT_ORDERS: readonly SortOrder[] = ['NONE', 'ASCEND', 'DESCEND'];

/**
 * The [key, range_end) pair of a selector, with etcd's conventions for prefix and from-key.
 * A single key has no range_end at all: etcd reads a range_end that is present but empty as
 * "every key from key on" (Go clients never send one: proto3 omits empty bytes, protobufjs
 * writes whatever field is set).
 */
export function keyRange(key: Bytes, sel: KeySelector = {}): { key: Buffer; range_end?: Buffer } {
  let k = toBytes(key);
  const chosen = [sel.prefix === true, sel.rangeEnd !== undefined, sel.fromKey === true].filter(Boolean).length;
  if (chosen > 1) throw new TypeError('choose one of prefix, rangeEnd and fromKey');
  if (sel.prefix === true) {
    if (k.length === 0) return { key: Buffer.from([0]), range_end: Buffer.from([0]) };
    return { key: k, range_end: prefixEnd(k) };
  }
  if (sel.fromKey === true) {
    if (k.length === 0) k = Buffer.from([0]);
    return { key: k, range_end: Buffer.from([0]) };
  }
  const end = sel.rangeEnd === undefined ? undefined : toBytes(sel.rangeEnd);
  return end === undefined || end.length === 0 ? { key: k } : { key: k, range_end: end };
}

export function rangeRequest(key: Bytes, o: GetOptions = {}): object {
  return {
    ...keyRange(key, o),
    limit: o.limit ?? 0,
    revision: o.revision ?? 0,
    sort_order: SORT_ORDERS.indexOf(o.sort?.order ?? 'NONE'),
    sort_target: SORT_TARGETS.indexOf(o.sort?.target ?? 'KEY'),
    serializable: o.serializable === true,
    keys_only: o.keysOnly === true,
    count_only: o.countOnly === true,
    min_mod_revision: o.minModRevision ?? 0,
    max_mod_revision: o.maxModRevision ?? 0,
    min_create_revision: o.minCreateRevision ?? 0,
    max_create_revision: o.maxCreateRevision ?? 0,
  };
}

export function putRequest(key: Bytes, value: Bytes, o: PutOptions = {}): object {
  return {
    key: toBytes(key),
    value: toBytes(value),
    lease: (o.lease ?? 0n).toString(),
    prev_kv: o.prevKv === true,
    ignore_value: o.ignoreValue === true,
    ignore_lease: o.ignoreLease === true,
  };
}

export function deleteRequest(key: Bytes, o: DeleteOptions = {}): object {
  return { ...keyRange(key, o), prev_kv: o.prevKv === true };
}

export function fromHeader(h: PbHeaderIn | null | undefined): ResponseHeader {
  if (h === null || h === undefined) return { clusterId: hexId(0), memberId: hexId(0), revision: 0, raftTerm: 0 };
  return { clusterId: hexId(h.cluster_id), memberId: hexId(h.member_id), revision: num(h.revision), raftTerm: num(h.raft_term) };
}

export function fromKeyValue(kv: PbKeyValueIn): KeyValue {
  return {
    key: Buffer.from(bytes(kv.key)),
    value: Buffer.from(bytes(kv.value)),
    createRevision: num(kv.create_revision),
    modRevision: num(kv.mod_revision),
    version: num(kv.version),
    lease: big(kv.lease),
  };
}

export function fromRangeResponse(r: PbRangeResponseIn): GetResult {
  return { header: fromHeader(r.header), kvs: (r.kvs ?? []).map(fromKeyValue), more: r.more === true, count: num(r.count) };
}

export function fromPutResponse(r: PbPutResponseIn): PutResult {
  const out: PutResult = { header: fromHeader(r.header) };
  if (r.prev_kv) out.prevKv = fromKeyValue(r.prev_kv);
  return out;
}

export function fromDeleteResponse(r: PbDeleteRangeResponseIn): DeleteResult {
  return { header: fromHeader(r.header), deleted: num(r.deleted), prevKvs: (r.prev_kvs ?? []).map(fromKeyValue) };
}
