/**
 * On-disk format of the MVCC store. One LMDB environment per store directory (committed in the
 * background and fsynced after each commit, see backend.ts; the Raft WAL is the source of truth
 * for what is not yet), holding two databases:
 *
 * `kv` — every revision of every key, ordered by revision.
 *   key   = main (8 bytes, big-endian) ‖ sub (8 bytes, big-endian) [‖ 't' (0x74) for a tombstone]
 *           Big-endian makes LMDB's bytewise key order equal revision order, so a revision range is
 *           a cursor range. The tombstone marker lets compaction and index rebuild tell a delete
 *           from a put without decoding the value (as etcd's bbolt "key" bucket does).
 *   value = record:
 *           u8  recordFormat (1)
 *           u8  kind (0 = put, 1 = tombstone; must agree with the key's marker)
 *           u32 keyLength, key bytes
 *           — for a put only —
 *           u64 createRevision, u64 modRevision (= the key's main), u64 version,
 *           i64 lease (0 = none), u32 valueLength, value bytes
 *           Integers are big-endian; the record must end exactly after the last field.
 *
 * `meta` — small named values, keys are UTF-8 strings:
 *   "sys:format"            u32   store format version (1)
 *   "sys:consistentIndex"   u64   Raft index of the last applied entry; written in the same LMDB
 *                                 transaction as that entry's data, so replay is exactly-once
 *   "sys:currentRevision"   u64   the store's current main revision (1 for an empty store)
 *   "sys:scheduledCompact"  u64   revision of the last compaction accepted (absent: none)
 *   "sys:finishedCompact"   u64   revision whose physical compaction completed (absent: none);
 *                                 scheduled > finished on open means a compaction to resume
 *   "ns:<namespace>:<key>"  opaque values owned by other layers (leases, auth, members);
 *                                 <namespace> matches /^[a-z][a-z0-9_-]{0,31}$/, <key> is raw bytes
 */
import type { ReadArena } from './arena.ts';
import { assert, MvccAssertionError } from './assert.ts';
import type { KeyValue } from './types.ts';

export const storeFormatVersion = 1;
export const recordFormatVersion = 1;
export const revKeyBytes = 16;
export const tombstoneMarker = 0x74; // 't'

const KIND_PUT = 0;
const KIND_TOMBSTONE = 1;
const TWO32 = 4294967296;

export const metaKeys = {
  format: 'sys:format',
  consistentIndex: 'sys:consistentIndex',
  currentRevision: 'sys:currentRevision',
  scheduledCompact: 'sys:scheduledCompact',
  finishedCompact: 'sys:finishedCompact',
} as const;

const namespacePattern = /^[a-z][a-z0-9_-]{0,31}$/;

export function isValidNamespace(ns: string): boolean {
  return namespacePattern.test(ns);
}

export function namespacePrefix(ns: string): Buffer {
  return Buffer.from(`ns:${ns}:`, 'utf8');
}

export function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/** The index's representation of a key: one latin1 char per byte, so string order = byte order. */
export function keyString(key: Uint8Array): string {
  return asBuffer(key).toString('latin1', 0, key.byteLength);
}

export function keyBytes(key: string): Buffer {
  return Buffer.from(key, 'latin1');
}

export function writeU64(buf: Buffer, off: number, n: number): void {
  assert(Number.isSafeInteger(n) && n >= 0, `u64 field out of range: ${n}`);
  const hi = Math.floor(n / TWO32);
  buf.writeUInt32BE(hi, off);
  buf.writeUInt32BE(n - hi * TWO32, off + 4);
}

function u32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

/** A big-endian u64 at off; the caller has checked that the 8 bytes are there. */
export function readU64(b: Uint8Array, off: number): number {
  const hi = u32(b, off);
  assert(hi < 0x200000, 'u64 field beyond 2^53');
  const lo = u32(b, off + 4);
  // Not hi * 2^32 + lo when hi is 0: that float arithmetic gives V8 a heap number where the small
  // integer lo stays unboxed, and index objects holding heap numbers cost 16 bytes more per field.
  return hi === 0 ? lo : hi * TWO32 + lo;
}

export function encodeU64(n: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  writeU64(b, 0, n);
  return b;
}

export function decodeU64(b: Buffer): number {
  assert(b.length === 8, `meta u64 of ${b.length} bytes`);
  return readU64(b, 0);
}

/** Writes the 16-byte revision into buf (which must be 16 or 17 bytes). */
export function writeRevKey(buf: Buffer, main: number, sub: number): void {
  writeU64(buf, 0, main);
  writeU64(buf, 8, sub);
}

export function revKey(main: number, sub: number, tombstone: boolean): Buffer {
  const b = Buffer.allocUnsafe(tombstone ? revKeyBytes + 1 : revKeyBytes);
  writeRevKey(b, main, sub);
  if (tombstone) b[revKeyBytes] = tombstoneMarker;
  return b;
}

export interface DecodedRevKey {
  readonly main: number;
  readonly sub: number;
  readonly tombstone: boolean;
}

export function decodeRevKey(k: Buffer): DecodedRevKey {
  assert(
    k.length === revKeyBytes || (k.length === revKeyBytes + 1 && k[revKeyBytes] === tombstoneMarker),
    `malformed kv key of ${k.length} bytes`,
  );
  return { main: readU64(k, 0), sub: readU64(k, 8), tombstone: k.length === revKeyBytes + 1 };
}

/** The 16 revision bytes as a latin1 string: a compact set member for hashKV's keep set. */
export function revKeyString(main: number, sub: number): string {
  return revKey(main, sub, false).toString('latin1', 0, revKeyBytes);
}

export function encodePutRecord(key: Uint8Array, value: Uint8Array, createRevision: number, modRevision: number, version: number, lease: bigint): Buffer {
  const kl = key.byteLength;
  const vl = value.byteLength;
  const b = Buffer.allocUnsafe(2 + 4 + kl + 32 + 4 + vl);
  b[0] = recordFormatVersion;
  b[1] = KIND_PUT;
  b.writeUInt32BE(kl, 2);
  b.set(key, 6);
  let o = 6 + kl;
  writeU64(b, o, createRevision);
  writeU64(b, o + 8, modRevision);
  writeU64(b, o + 16, version);
  b.writeBigInt64BE(lease, o + 24);
  b.writeUInt32BE(vl, o + 32);
  o += 36;
  b.set(value, o);
  return b;
}

export function encodeTombstoneRecord(key: Uint8Array): Buffer {
  const kl = key.byteLength;
  const b = Buffer.allocUnsafe(6 + kl);
  b[0] = recordFormatVersion;
  b[1] = KIND_TOMBSTONE;
  b.writeUInt32BE(kl, 2);
  b.set(key, 6);
  return b;
}

function checkHeader(rec: Buffer): number {
  assert(rec.length >= 6 && rec[0] === recordFormatVersion, 'kv record with unknown format');
  const kl = rec.readUInt32BE(2);
  assert(6 + kl <= rec.length, 'kv record key overruns the record');
  return kl;
}

export function recordIsTombstone(rec: Buffer): boolean {
  checkHeader(rec);
  return rec[1] === KIND_TOMBSTONE;
}

/** The key of a record as an index string, without decoding the rest. */
export function recordKeyString(rec: Buffer): string {
  const kl = checkHeader(rec);
  return rec.toString('latin1', 6, 6 + kl);
}

/** A view of bytes[start, start + length) sharing its memory. */
function view(bytes: Uint8Array, start: number, length: number): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset + start, length);
}

/**
 * Decodes the put record in rec[0, len). With an arena, rec is borrowed (LMDB's reusable buffer,
 * which is longer than the record) and the record is copied into the arena; without one, rec is
 * owned. Either way key and value are views of the owned bytes (keysOnly: the value is neither
 * copied nor returned). `expectMain` is the revision the record was read under: a mismatch is
 * corruption. The read path's hot loop: plain byte arithmetic, no BigInt unless a lease is set.
 */
export function decodePutRecord(rec: Uint8Array, len: number, expectMain: number, keysOnly: boolean, arena: ReadArena | null): KeyValue {
  if (len < 6 || rec[0] !== recordFormatVersion || rec[1] !== KIND_PUT) throw new MvccAssertionError(`kv record at revision ${expectMain} is not a put record`);
  const kl = u32(rec, 2);
  const o = 6 + kl;
  if (o + 36 > len) throw new MvccAssertionError(`kv record at revision ${expectMain} is truncated`);
  const createRevision = readU64(rec, o);
  const modRevision = readU64(rec, o + 8);
  const version = readU64(rec, o + 16);
  const lease = (rec[o + 24]! | rec[o + 25]! | rec[o + 26]! | rec[o + 27]! | rec[o + 28]! | rec[o + 29]! | rec[o + 30]! | rec[o + 31]!) === 0 ? 0n : readI64(rec, o + 24);
  const vl = u32(rec, o + 32);
  if (o + 36 + vl !== len) throw new MvccAssertionError(`kv record at revision ${expectMain} has a bad length`);
  if (modRevision !== expectMain) throw new MvccAssertionError(`record mod revision ${modRevision} stored under revision ${expectMain}`);
  let key: Uint8Array;
  let value: Uint8Array = emptyBytes;
  if (arena === null) {
    key = view(rec, 6, kl);
    if (!keysOnly) value = view(rec, o + 36, vl);
  } else {
    // Only the bytes returned are copied: up to the key, or up to the value's end.
    const at = arena.copy(rec, keysOnly ? o : len);
    key = arena.view(at + 6, kl);
    if (!keysOnly) value = arena.view(at + o + 36, vl);
  }
  return { key, createRevision, modRevision, version, value, lease };
}

function readI64(b: Uint8Array, o: number): bigint {
  return new DataView(b.buffer, b.byteOffset).getBigInt64(o);
}

/** createRevision and version of a put record, for rebuilding the index. */
export function decodePutMeta(rec: Buffer): { createRevision: number; modRevision: number; version: number } {
  const kl = checkHeader(rec);
  assert(rec[1] === KIND_PUT, 'expected a put record, found a tombstone');
  const o = 6 + kl;
  assert(rec.length >= o + 36, 'put record truncated');
  return { createRevision: readU64(rec, o), modRevision: readU64(rec, o + 8), version: readU64(rec, o + 16) };
}

export const emptyBytes: Uint8Array = new Uint8Array(0);
