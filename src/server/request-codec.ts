/**
 * The payload of a normal Raft entry: one client request, tagged with who proposed it.
 *
 *   u8 format (2) · proposer member id (8 bytes) · varint request id · who it runs as · u8 kind · the request
 *
 * Who it runs as: u8 0 for the member's own requests (lease expiry, alarms, publishing), which
 * auth never refuses; u8 1 · string user · varint auth revision for a client's (user "" and
 * revision 0: no credentials). The apply step checks permissions against them again, so a right
 * revoked between propose and apply is honoured. Format 1 (before auth) had no such field.
 *
 * Keys, values and ranges are length-prefixed bytes; revisions and counts varints; lease ids
 * 8-byte signed (etcd lease ids use all 64 bits). Requests are exactly what the apply step
 * needs, already validated by the member that proposed them. Only the proposer has a waiter
 * for the request id, so ids need only be unique per member.
 */
import type { Compare, CompareResult, MvccRequest, PutRequest, RangeRequest, DeleteRangeRequest, RequestOp, SortOrder, SortTarget, TxnRequest } from '../mvcc/types.ts';
import { CodecError, Reader, Writer } from '../util/binary.ts';
import { AUTH_OPS, isAuthRequest, type AuthInfo, type AuthRequest } from '../auth/index.ts';
import { readAuthRequest, writeAuthRequest } from './auth-codec.ts';

const FORMAT = 2;
/** Entries written before auth existed: no "runs as" field. */
const FORMAT_WITHOUT_AUTH = 1;
const AS_MEMBER = 0;
const AS_CLIENT = 1;

/** A member announces its name and client URLs after it starts (etcd's "publish"). */
export interface MemberAttributesRequest {
  readonly op: 'memberAttributes';
  readonly memberId: string;
  readonly name: string;
  readonly clientUrls: readonly string[];
}

/** Changes a member's peer URLs (etcd's MemberUpdate; Raft's voters do not change). */
export interface MemberUpdateRequest {
  readonly op: 'memberUpdate';
  readonly memberId: string;
  readonly peerUrls: readonly string[];
}

/** Raises or clears an alarm on a member (etcd's AlarmRequest; NOSPACE, CORRUPT). */
export interface AlarmRequest {
  readonly op: 'alarm';
  readonly action: AlarmAction;
  readonly memberId: string;
  readonly alarm: AlarmType;
}

export type AlarmAction = 'activate' | 'deactivate';
/** etcd's AlarmType names; NONE only appears in requests meaning "any". */
export type AlarmType = 'NONE' | 'NOSPACE' | 'CORRUPT';

/** Creates a lease; the id is chosen before proposing (by the client or the proposing member). */
export interface LeaseGrantRequest {
  readonly op: 'leaseGrant';
  readonly id: bigint;
  /** Seconds, already raised to the minimum TTL by the proposer. */
  readonly ttl: number;
}

/** Deletes a lease and every key attached to it, in one revision. */
export interface LeaseRevokeRequest {
  readonly op: 'leaseRevoke';
  readonly id: bigint;
}

/** The leader's record of leases' remaining TTLs (etcd's LeaseCheckpointRequest). */
export interface LeaseCheckpointRequest {
  readonly op: 'leaseCheckpoint';
  readonly checkpoints: ReadonlyArray<{ readonly id: bigint; readonly remainingTtl: number }>;
}

export type LeaseRequest = LeaseGrantRequest | LeaseRevokeRequest | LeaseCheckpointRequest;

export type InternalRequest = MvccRequest | MemberAttributesRequest | MemberUpdateRequest | AlarmRequest | LeaseRequest | AuthRequest;

export interface Envelope {
  /** Proposing member, 16 hex digits. */
  readonly proposer: string;
  readonly requestId: number;
  /** The client's credentials as the proposer resolved them; null for the member's own requests. */
  readonly as: AuthInfo | null;
  readonly request: InternalRequest;
}

const KINDS = ['range', 'put', 'deleteRange', 'txn', 'compact', 'memberAttributes', 'alarm', 'leaseGrant', 'leaseRevoke', 'leaseCheckpoint', 'memberUpdate', ...AUTH_OPS] as const;

const ALARM_ACTIONS: readonly AlarmAction[] = ['activate', 'deactivate'];
const ALARM_TYPES: readonly AlarmType[] = ['NONE', 'NOSPACE', 'CORRUPT'];
const SORT_ORDERS: readonly SortOrder[] = ['NONE', 'ASCEND', 'DESCEND'];
const SORT_TARGETS: readonly SortTarget[] = ['KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE'];
const COMPARE_RESULTS: readonly CompareResult[] = ['EQUAL', 'GREATER', 'LESS', 'NOT_EQUAL'];
const COMPARE_TARGETS = ['VERSION', 'CREATE', 'MOD', 'VALUE', 'LEASE'] as const;
const EMPTY = new Uint8Array(0);

function index<T>(list: readonly T[], i: number, what: string): T {
  const v = list[i];
  if (v === undefined) throw new CodecError(`unknown ${what} ${i}`);
  return v;
}

// ---- encoding ------------------------------------------------------------------------------

function writeRange(w: Writer, r: RangeRequest): void {
  w.bytes(r.key);
  w.bytes(r.rangeEnd ?? EMPTY);
  w.uint(Math.max(0, r.limit ?? 0));
  w.uint(Math.max(0, r.revision ?? 0));
  w.u8(SORT_ORDERS.indexOf(r.sortOrder ?? 'NONE'));
  w.u8(SORT_TARGETS.indexOf(r.sortTarget ?? 'KEY'));
  w.u8((r.keysOnly ? 1 : 0) | (r.countOnly ? 2 : 0));
  w.uint(r.minModRevision ?? 0);
  w.uint(r.maxModRevision ?? 0);
  w.uint(r.minCreateRevision ?? 0);
  w.uint(r.maxCreateRevision ?? 0);
}

function writePut(w: Writer, r: PutRequest): void {
  w.bytes(r.key);
  w.bytes(r.value);
  w.int64(r.lease ?? 0n);
  w.u8((r.prevKv ? 1 : 0) | (r.ignoreValue ? 2 : 0) | (r.ignoreLease ? 4 : 0));
}

function writeDelete(w: Writer, r: DeleteRangeRequest): void {
  w.bytes(r.key);
  w.bytes(r.rangeEnd ?? EMPTY);
  w.bool(r.prevKv ?? false);
}

function writeCompare(w: Writer, c: Compare): void {
  w.u8(COMPARE_RESULTS.indexOf(c.result));
  w.u8(COMPARE_TARGETS.indexOf(c.target));
  w.bytes(c.key);
  w.bytes(c.rangeEnd ?? EMPTY);
  switch (c.target) {
    case 'VERSION':
      w.uint(c.version);
      break;
    case 'CREATE':
      w.uint(c.createRevision);
      break;
    case 'MOD':
      w.uint(c.modRevision);
      break;
    case 'VALUE':
      w.bytes(c.value);
      break;
    case 'LEASE':
      w.int64(c.lease);
      break;
  }
}

function writeOps(w: Writer, ops: readonly RequestOp[]): void {
  w.uint(ops.length);
  for (const op of ops) writeRequest(w, op);
}

function writeTxn(w: Writer, t: TxnRequest): void {
  w.uint(t.compare.length);
  for (const c of t.compare) writeCompare(w, c);
  writeOps(w, t.success);
  writeOps(w, t.failure);
}

function writeRequest(w: Writer, r: InternalRequest): void {
  w.u8(KINDS.indexOf(r.op));
  if (isAuthRequest(r)) return writeAuthRequest(w, r);
  switch (r.op) {
    case 'range':
      return writeRange(w, r.request);
    case 'put':
      return writePut(w, r.request);
    case 'deleteRange':
      return writeDelete(w, r.request);
    case 'txn':
      return writeTxn(w, r.request);
    case 'compact':
      return w.uint(r.revision);
    case 'memberAttributes':
      w.string(r.memberId);
      w.string(r.name);
      return w.strings(r.clientUrls);
    case 'memberUpdate':
      w.string(r.memberId);
      return w.strings(r.peerUrls);
    case 'alarm':
      w.u8(ALARM_ACTIONS.indexOf(r.action));
      w.string(r.memberId);
      return w.u8(ALARM_TYPES.indexOf(r.alarm));
    case 'leaseGrant':
      w.int64(r.id);
      return w.uint(r.ttl);
    case 'leaseRevoke':
      return w.int64(r.id);
    case 'leaseCheckpoint':
      w.uint(r.checkpoints.length);
      for (const c of r.checkpoints) {
        w.int64(c.id);
        w.uint(c.remainingTtl);
      }
      return;
  }
}

/** A member id's 8 bytes (a member proposes with one id; a few at most are ever seen). */
const proposerBytes = new Map<string, Buffer>();

/** Bytes a put's encoding needs besides key and value (so the writer never grows). */
const PUT_OVERHEAD_BYTES = 64;

export function encodeEnvelope(e: Envelope): Uint8Array {
  const r = e.request;
  const asBytes = e.as === null ? 0 : e.as.user.length * 3;
  const w = new Writer(r.op === 'put' ? PUT_OVERHEAD_BYTES + asBytes + r.request.key.byteLength + r.request.value.byteLength : 64);
  w.u8(FORMAT);
  let proposer = proposerBytes.get(e.proposer);
  if (proposer === undefined) {
    proposer = Buffer.from(e.proposer.padStart(16, '0'), 'hex');
    if (proposerBytes.size < 64) proposerBytes.set(e.proposer, proposer);
  }
  w.raw(proposer);
  w.uint(e.requestId);
  if (e.as === null) {
    w.u8(AS_MEMBER);
  } else {
    w.u8(AS_CLIENT);
    w.string(e.as.user);
    w.uint(e.as.revision);
  }
  writeRequest(w, e.request);
  return w.finish();
}

// ---- decoding ------------------------------------------------------------------------------

function readRange(r: Reader): RangeRequest {
  const key = r.bytes();
  const rangeEnd = r.bytes();
  const limit = r.uint();
  const revision = r.uint();
  const sortOrder = index(SORT_ORDERS, r.u8(), 'sort order');
  const sortTarget = index(SORT_TARGETS, r.u8(), 'sort target');
  const flags = r.u8();
  return {
    key,
    rangeEnd,
    limit,
    revision,
    sortOrder,
    sortTarget,
    keysOnly: (flags & 1) !== 0,
    countOnly: (flags & 2) !== 0,
    minModRevision: r.uint(),
    maxModRevision: r.uint(),
    minCreateRevision: r.uint(),
    maxCreateRevision: r.uint(),
  };
}

function readPut(r: Reader): PutRequest {
  const key = r.bytes();
  const value = r.bytes();
  const lease = r.int64();
  const flags = r.u8();
  return { key, value, lease, prevKv: (flags & 1) !== 0, ignoreValue: (flags & 2) !== 0, ignoreLease: (flags & 4) !== 0 };
}

function readDelete(r: Reader): DeleteRangeRequest {
  return { key: r.bytes(), rangeEnd: r.bytes(), prevKv: r.bool() };
}

function readCompare(r: Reader): Compare {
  const result = index(COMPARE_RESULTS, r.u8(), 'compare result');
  const target = index(COMPARE_TARGETS, r.u8(), 'compare target');
  const key = r.bytes();
  const rangeEnd = r.bytes();
  switch (target) {
    case 'VERSION':
      return { result, target, key, rangeEnd, version: r.uint() };
    case 'CREATE':
      return { result, target, key, rangeEnd, createRevision: r.uint() };
    case 'MOD':
      return { result, target, key, rangeEnd, modRevision: r.uint() };
    case 'VALUE':
      return { result, target, key, rangeEnd, value: r.bytes() };
    case 'LEASE':
      return { result, target, key, rangeEnd, lease: r.int64() };
  }
}

function readOps(r: Reader): RequestOp[] {
  const n = r.uint();
  const ops: RequestOp[] = [];
  for (let i = 0; i < n; i++) {
    const op = readRequest(r);
    if (op.op !== 'range' && op.op !== 'put' && op.op !== 'deleteRange' && op.op !== 'txn') throw new CodecError(`${op.op} inside a txn`);
    ops.push(op);
  }
  return ops;
}

function readTxn(r: Reader): TxnRequest {
  const n = r.uint();
  const compare: Compare[] = [];
  for (let i = 0; i < n; i++) compare.push(readCompare(r));
  return { compare, success: readOps(r), failure: readOps(r) };
}

function readRequest(r: Reader): InternalRequest {
  const op = index(KINDS, r.u8(), 'request kind');
  switch (op) {
    case 'authEnable':
    case 'authDisable':
    case 'authenticate':
    case 'userAdd':
    case 'userDelete':
    case 'userChangePassword':
    case 'userGrantRole':
    case 'userRevokeRole':
    case 'roleAdd':
    case 'roleDelete':
    case 'roleGrantPermission':
    case 'roleRevokePermission':
      return readAuthRequest(r, op);
    case 'range':
      return { op, request: readRange(r) };
    case 'put':
      return { op, request: readPut(r) };
    case 'deleteRange':
      return { op, request: readDelete(r) };
    case 'txn':
      return { op, request: readTxn(r) };
    case 'compact':
      return { op, revision: r.uint() };
    case 'memberAttributes':
      return { op, memberId: r.string(), name: r.string(), clientUrls: r.strings() };
    case 'memberUpdate':
      return { op, memberId: r.string(), peerUrls: r.strings() };
    case 'alarm':
      return { op, action: index(ALARM_ACTIONS, r.u8(), 'alarm action'), memberId: r.string(), alarm: index(ALARM_TYPES, r.u8(), 'alarm type') };
    case 'leaseGrant':
      return { op, id: r.int64(), ttl: r.uint() };
    case 'leaseRevoke':
      return { op, id: r.int64() };
    case 'leaseCheckpoint': {
      const n = r.uint();
      const checkpoints: Array<{ id: bigint; remainingTtl: number }> = [];
      for (let i = 0; i < n; i++) checkpoints.push({ id: r.int64(), remainingTtl: r.uint() });
      return { op, checkpoints };
    }
  }
}

export function decodeEnvelope(data: Uint8Array): Envelope {
  const r = new Reader(data);
  const format = r.u8();
  if (format !== FORMAT && format !== FORMAT_WITHOUT_AUTH) throw new CodecError(`unknown entry format ${format}`);
  const proposer = r.hex(8);
  const requestId = r.uint();
  let as: AuthInfo | null = null;
  if (format === FORMAT) {
    const kind = r.u8();
    if (kind === AS_CLIENT) as = { user: r.string(), revision: r.uint() };
    else if (kind !== AS_MEMBER) throw new CodecError(`unknown requester kind ${kind}`);
  }
  const request = readRequest(r);
  r.done();
  return { proposer, requestId, as, request };
}
