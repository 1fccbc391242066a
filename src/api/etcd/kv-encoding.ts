/**
 * The KV service's responses (and the events and headers watch responses carry) written straight
 * to protobuf bytes from the store's results: the hot path of every get, put, delete and txn. Sizes are worked out first, then one buffer is
 * filled in one pass; no protobufjs object is built or walked. The same results still become
 * protobufjs objects (convert.ts) for the JSON gateway; a test holds the two encodings equal.
 *
 * Messages (etcdserverpb, mvccpb), fields at their proto3 default left out as etcd's encoder does:
 *   ResponseHeader { cluster_id = 1; member_id = 2; revision = 3; raft_term = 4 }
 *   KeyValue { key = 1; create_revision = 2; mod_revision = 3; version = 4; value = 5; lease = 6 }
 *   RangeResponse { header = 1; kvs = 2; more = 3; count = 4 }
 *   PutResponse { header = 1; prev_kv = 2 }
 *   DeleteRangeResponse { header = 1; deleted = 2; prev_kvs = 3 }
 *   TxnResponse { header = 1; succeeded = 2; responses = 3 }
 *   ResponseOp { oneof response_range = 1, response_put = 2, response_delete_range = 3, response_txn = 4 }
 *   Event { type = 1 (PUT = 0, DELETE = 1); kv = 2; prev_kv = 3 }
 * A txn's sub-responses carry a header holding only the revision, as etcd's do.
 */
import type { DeleteRangeResponse, KeyValue, MvccEvent, PutResponse, RangeResponse, ResponseOp, TxnResponse } from '../../mvcc/index.ts';
import type { ResponseHeader } from '../../server/member.ts';
import { Writer } from '../../util/binary.ts';
import type { UnaryEncoding } from '../grpc/index.ts';
import { deleteRangeResponse, header, putResponse, rangeResponse, txnResponse, type PbHeader } from './convert.ts';

/** A KV result with the answering member's header (whose revision is the result's). */
export interface KvReply<R> {
  readonly header: ResponseHeader;
  readonly response: R;
}

/** A field's key byte: field number << 3 | wire type (0 varint, 2 length-delimited); every field here is < 16. */
const VARINT = 0;
const LEN = 2;
function tag(field: number, wireType: number): number {
  return (field << 3) | wireType;
}

/** Bytes of a varint for 0 ≤ v < 2^53. */
function varintSize(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 0x80);
    n++;
  }
  return n;
}

/** A uint64 / non-negative int64 beyond 2^53 as varint bytes (lease ids, member and cluster ids). */
function bigVarint(v: bigint): Uint8Array {
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Uint8Array.from(out);
}

/** A scalar field's size when not at its default (0 / empty / false), else 0. */
function numberField(v: number): number {
  return v === 0 ? 0 : 1 + varintSize(v);
}
function bytesField(v: Uint8Array): number {
  return v.byteLength === 0 ? 0 : 1 + varintSize(v.byteLength) + v.byteLength;
}
function messageField(size: number): number {
  return 1 + varintSize(size) + size;
}

function writeNumber(w: Writer, field: number, v: number): void {
  if (v === 0) return;
  w.u8(tag(field, VARINT));
  w.uint(v);
}
function writeBytes(w: Writer, field: number, v: Uint8Array): void {
  if (v.byteLength === 0) return;
  w.u8(tag(field, LEN));
  w.bytes(v);
}
function writeMessageStart(w: Writer, field: number, size: number): void {
  w.u8(tag(field, LEN));
  w.uint(size);
}

// ---- ResponseHeader ---------------------------------------------------------------------------

/** The encoded cluster_id and member_id fields of the last header seen (constant per member). */
let idsOf: { clusterId: string; memberId: string; bytes: Uint8Array } | null = null;

function idFields(h: ResponseHeader): Uint8Array {
  if (idsOf === null || idsOf.clusterId !== h.clusterId || idsOf.memberId !== h.memberId) {
    const w = new Writer(32);
    for (const [field, hex] of [[1, h.clusterId], [2, h.memberId]] as const) {
      const id = BigInt(`0x${hex}`);
      if (id === 0n) continue;
      w.u8(tag(field, VARINT));
      w.raw(bigVarint(id));
    }
    idsOf = { clusterId: h.clusterId, memberId: h.memberId, bytes: w.finish().slice() };
  }
  return idsOf.bytes;
}

/** A member's header (ids and term), or a txn sub-response's (`h` null: the revision only). */
function headerSize(h: ResponseHeader | null, revision: number): number {
  return (h === null ? 0 : idFields(h).byteLength + numberField(h.raftTerm)) + numberField(revision);
}
function writeHeaderFields(w: Writer, h: ResponseHeader | null, revision: number): void {
  if (h !== null) w.raw(idFields(h));
  writeNumber(w, 3, revision);
  if (h !== null) writeNumber(w, 4, h.raftTerm);
}
function writeHeader(w: Writer, h: ResponseHeader | null, revision: number): void {
  writeMessageStart(w, 1, headerSize(h, revision));
  writeHeaderFields(w, h, revision);
}

// ---- KeyValue ---------------------------------------------------------------------------------

function leaseField(lease: bigint): number {
  if (lease === 0n) return 0;
  return 1 + (lease <= BigInt(Number.MAX_SAFE_INTEGER) ? varintSize(Number(lease)) : bigVarint(lease).byteLength);
}

function keyValueSize(kv: KeyValue): number {
  return bytesField(kv.key) + numberField(kv.createRevision) + numberField(kv.modRevision) + numberField(kv.version) + bytesField(kv.value) + leaseField(kv.lease);
}

function writeKeyValue(w: Writer, field: number, kv: KeyValue): void {
  writeMessageStart(w, field, keyValueSize(kv));
  writeBytes(w, 1, kv.key);
  writeNumber(w, 2, kv.createRevision);
  writeNumber(w, 3, kv.modRevision);
  writeNumber(w, 4, kv.version);
  writeBytes(w, 5, kv.value);
  if (kv.lease !== 0n) {
    w.u8(tag(6, VARINT));
    if (kv.lease <= BigInt(Number.MAX_SAFE_INTEGER)) w.uint(Number(kv.lease));
    else w.raw(bigVarint(kv.lease));
  }
}

function keyValuesSize(kvs: readonly KeyValue[]): number {
  let n = 0;
  for (const kv of kvs) n += messageField(keyValueSize(kv));
  return n;
}

// ---- responses --------------------------------------------------------------------------------

function rangeSize(r: RangeResponse, h: ResponseHeader | null): number {
  return messageField(headerSize(h, r.revision)) + keyValuesSize(r.kvs) + (r.more ? 2 : 0) + numberField(r.count);
}
function writeRange(w: Writer, r: RangeResponse, h: ResponseHeader | null): void {
  writeHeader(w, h, r.revision);
  for (const kv of r.kvs) writeKeyValue(w, 2, kv);
  if (r.more) {
    w.u8(tag(3, VARINT));
    w.u8(1);
  }
  writeNumber(w, 4, r.count);
}

function putSize(r: PutResponse, h: ResponseHeader | null): number {
  return messageField(headerSize(h, r.revision)) + (r.prevKv === undefined ? 0 : messageField(keyValueSize(r.prevKv)));
}
function writePut(w: Writer, r: PutResponse, h: ResponseHeader | null): void {
  writeHeader(w, h, r.revision);
  if (r.prevKv !== undefined) writeKeyValue(w, 2, r.prevKv);
}

function deleteSize(r: DeleteRangeResponse, h: ResponseHeader | null): number {
  return messageField(headerSize(h, r.revision)) + numberField(r.deleted) + keyValuesSize(r.prevKvs);
}
function writeDelete(w: Writer, r: DeleteRangeResponse, h: ResponseHeader | null): void {
  writeHeader(w, h, r.revision);
  writeNumber(w, 2, r.deleted);
  for (const kv of r.prevKvs) writeKeyValue(w, 3, kv);
}

/** A ResponseOp's oneof field and the size of the message in it. */
function responseOpSize(op: ResponseOp): number {
  switch (op.op) {
    case 'range':
      return rangeSize(op.response, null);
    case 'put':
      return putSize(op.response, null);
    case 'deleteRange':
      return deleteSize(op.response, null);
    case 'txn':
      return txnSize(op.response, null);
  }
}
const RESPONSE_OP_FIELD: Record<ResponseOp['op'], number> = { range: 1, put: 2, deleteRange: 3, txn: 4 };

function writeResponseOp(w: Writer, op: ResponseOp): void {
  const inner = responseOpSize(op);
  writeMessageStart(w, 3, messageField(inner));
  writeMessageStart(w, RESPONSE_OP_FIELD[op.op], inner);
  switch (op.op) {
    case 'range':
      return writeRange(w, op.response, null);
    case 'put':
      return writePut(w, op.response, null);
    case 'deleteRange':
      return writeDelete(w, op.response, null);
    case 'txn':
      return writeTxn(w, op.response, null);
  }
}

function txnSize(r: TxnResponse, h: ResponseHeader | null): number {
  let n = messageField(headerSize(h, r.revision)) + (r.succeeded ? 2 : 0);
  for (const op of r.responses) n += messageField(messageField(responseOpSize(op)));
  return n;
}
function writeTxn(w: Writer, r: TxnResponse, h: ResponseHeader | null): void {
  writeHeader(w, h, r.revision);
  if (r.succeeded) {
    w.u8(tag(2, VARINT));
    w.u8(1);
  }
  for (const op of r.responses) writeResponseOp(w, op);
}

// ---- what watch responses carry ---------------------------------------------------------------

/** A ResponseHeader's own bytes (without a field key): the member's ids and term at `revision`. */
export function encodeHeader(h: ResponseHeader, revision: number): Uint8Array {
  const w = new Writer(Buffer.allocUnsafe(headerSize(h, revision)));
  writeHeaderFields(w, h, revision);
  return w.finish();
}

/** An mvccpb.Event's bytes. */
export function encodeEvent(e: MvccEvent): Uint8Array {
  const isDelete = e.type === 'DELETE';
  const size = (isDelete ? 2 : 0) + messageField(keyValueSize(e.kv)) + (e.prevKv === undefined ? 0 : messageField(keyValueSize(e.prevKv)));
  const w = new Writer(Buffer.allocUnsafe(size));
  if (isDelete) {
    w.u8(tag(1, VARINT));
    w.u8(1);
  }
  writeKeyValue(w, 2, e.kv);
  if (e.prevKv !== undefined) writeKeyValue(w, 3, e.prevKv);
  return w.finish();
}

/**
 * A KV response's encoding: `size` and `write` give its bytes (exactly `size` of them, into a
 * buffer of that size); `toObject` the protobufjs object of the same response for the gateway.
 */
function kvEncoding<R extends { readonly revision: number }>(
  size: (r: R, h: ResponseHeader) => number,
  write: (w: Writer, r: R, h: ResponseHeader) => void,
  toObject: (r: R, h: PbHeader) => unknown,
): UnaryEncoding<KvReply<R>> {
  return {
    encode: (reply) => {
      const n = size(reply.response, reply.header);
      // Not zero-filled: every byte is written (checked below).
      const w = new Writer(Buffer.allocUnsafe(n));
      write(w, reply.response, reply.header);
      if (w.length !== n) throw new Error(`kv-encoding: wrote ${w.length} bytes of a ${n}-byte response`);
      return w.finish();
    },
    toMessage: (reply) => toObject(reply.response, header(reply.header, reply.response.revision)),
  };
}

export const RANGE_ENCODING = kvEncoding(rangeSize, writeRange, rangeResponse);
export const PUT_ENCODING = kvEncoding(putSize, writePut, putResponse);
export const DELETE_RANGE_ENCODING = kvEncoding(deleteSize, writeDelete, deleteRangeResponse);
export const TXN_ENCODING = kvEncoding(txnSize, writeTxn, txnResponse);
