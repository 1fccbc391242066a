/**
 * The lessor's persisted form: the replicated part of its state, and nothing else.
 *
 * What is in it: each lease's id, granted TTL and checkpointed remaining TTL — exactly what every
 * member derives from the log, so two members at the same applied index produce identical bytes.
 * What is not: deadlines (leader-local and meaningless on another machine or after a restart: a
 * restarted leader promotes afresh from the remaining TTLs) and attached keys (the MVCC store
 * already records each key's lease; on restart the server calls attach() for every such key, so
 * storing them twice could only let the two copies disagree).
 *
 * Format, version 1 (all multi-byte fixed-width integers big-endian):
 *
 *   offset  size     field
 *   0       4        magic "CNLS" (0x43 0x4e 0x4c 0x53)
 *   4       1        version = 1
 *   5       varint   count: number of leases
 *           count ×  lease record, in ascending order of id as a signed 64-bit integer:
 *             8        id            two's-complement int64, never 0
 *             varint   grantedTtl    seconds, 1 … 9,000,000,000
 *             varint   remainingTtl  seconds, 0 (no checkpoint) … grantedTtl − 1
 *   n − 4   4        CRC-32 (IEEE 802.3, the zlib one) of bytes 0 … n − 5
 *
 * varint is unsigned LEB128: 7 bits a byte, low group first, high bit set on all but the last
 * byte, at most 8 bytes (enough for 2^53). A lease costs 10 to 18 bytes; 100,000 leases are about
 * 1.5 MB. Records are sorted so the encoding is canonical: equal states give equal bytes, which is
 * what the determinism tests and any cross-member hash compare. The checksum is checked on read
 * as well as written, so a torn or bit-flipped copy is refused instead of silently dropping leases.
 */
import { crc32 } from '../util/crc32.ts';
import { LeaseStateCorruptError } from './errors.ts';
import { leaseTtlSecondsMaxAbsolute } from './limits.ts';

export const lessorStateMagic = Uint8Array.of(0x43, 0x4e, 0x4c, 0x53);
export const lessorStateVersion = 1;

/** One lease as persisted. */
export interface PersistedLease {
  readonly id: bigint;
  readonly grantedTtl: number;
  /** 0 = no checkpoint: the full granted TTL applies at the next promote. */
  readonly remainingTtl: number;
}

const int64Min = -(1n << 63n);
const int64Max = (1n << 63n) - 1n;
const varintBytesMax = 8;
const headerBytes = lessorStateMagic.length + 1;
const crcBytes = 4;
/** The smallest record: 8-byte id and two one-byte varints. Bounds a count read from the bytes. */
const recordBytesMin = 10;

/** Encodes leases already sorted by id (the caller sorts; we check, since order is the contract). */
export function encodeLessorState(leases: readonly PersistedLease[]): Uint8Array {
  const out = new ByteWriter(headerBytes + 10 + leases.length * 18 + crcBytes);
  out.bytes(lessorStateMagic);
  out.u8(lessorStateVersion);
  out.varint(leases.length);
  let prev: bigint | undefined;
  for (const l of leases) {
    if (prev !== undefined && l.id <= prev) throw new RangeError('lease records must be in strictly ascending id order');
    checkRecord(l, (d) => new RangeError(d));
    out.i64(l.id);
    out.varint(l.grantedTtl);
    out.varint(l.remainingTtl);
    prev = l.id;
  }
  out.u32(crc32(out.view(0, out.length), 0));
  return out.finish();
}

/** Decodes and fully validates; throws LeaseStateCorruptError on anything unexpected. */
export function decodeLessorState(bytes: Uint8Array): PersistedLease[] {
  if (bytes.length < headerBytes + 1 + crcBytes) throw new LeaseStateCorruptError(`only ${bytes.length} bytes`);
  for (let i = 0; i < lessorStateMagic.length; i++) {
    if (bytes[i] !== lessorStateMagic[i]) throw new LeaseStateCorruptError('bad magic (not a lessor state)');
  }
  const version = bytes[lessorStateMagic.length]!;
  if (version !== lessorStateVersion) throw new LeaseStateCorruptError(`unknown version ${version}`);
  const bodyEnd = bytes.length - crcBytes;
  const stored = new DataView(bytes.buffer, bytes.byteOffset + bodyEnd, crcBytes).getUint32(0, false);
  const actual = crc32(bytes.subarray(0, bodyEnd), 0);
  if (stored !== actual) throw new LeaseStateCorruptError(`checksum mismatch (stored ${hex32(stored)}, computed ${hex32(actual)})`);

  const r = new ByteReader(bytes.subarray(0, bodyEnd), headerBytes);
  const count = r.varint();
  if (count > Math.floor(r.remaining() / recordBytesMin)) throw new LeaseStateCorruptError(`count ${count} does not fit in ${bytes.length} bytes`);
  const leases: PersistedLease[] = new Array<PersistedLease>(count);
  let prev: bigint | undefined;
  for (let i = 0; i < count; i++) {
    const id = r.i64();
    const grantedTtl = r.varint();
    const remainingTtl = r.varint();
    if (prev !== undefined && id <= prev) throw new LeaseStateCorruptError(`record ${i}: ids out of order or repeated`);
    const rec = { id, grantedTtl, remainingTtl };
    checkRecord(rec, (d) => new LeaseStateCorruptError(`record ${i}: ${d}`));
    leases[i] = rec;
    prev = id;
  }
  if (r.remaining() !== 0) throw new LeaseStateCorruptError(`${r.remaining()} bytes after the last record`);
  return leases;
}

function checkRecord(l: PersistedLease, fail: (detail: string) => Error): void {
  if (l.id === 0n || l.id < int64Min || l.id > int64Max) throw fail(`id ${l.id} is not a non-zero int64`);
  if (!Number.isSafeInteger(l.grantedTtl) || l.grantedTtl < 1 || l.grantedTtl > leaseTtlSecondsMaxAbsolute) {
    throw fail(`granted TTL ${l.grantedTtl} out of range`);
  }
  if (!Number.isSafeInteger(l.remainingTtl) || l.remainingTtl < 0 || l.remainingTtl >= l.grantedTtl) {
    throw fail(`remaining TTL ${l.remainingTtl} out of range for granted TTL ${l.grantedTtl}`);
  }
}

function hex32(n: number): string {
  return n.toString(16).padStart(8, '0');
}

class ByteWriter {
  private buf: Uint8Array;
  private dv: DataView;
  length = 0;

  constructor(initial: number) {
    this.buf = new Uint8Array(Math.max(16, initial));
    this.dv = new DataView(this.buf.buffer);
  }

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.dv = new DataView(next.buffer);
  }

  u8(v: number): void {
    this.reserve(1);
    this.buf[this.length++] = v;
  }

  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }

  u32(v: number): void {
    this.reserve(4);
    this.dv.setUint32(this.length, v >>> 0, false);
    this.length += 4;
  }

  i64(v: bigint): void {
    this.reserve(8);
    this.dv.setBigInt64(this.length, v, false);
    this.length += 8;
  }

  /** Arithmetic rather than bit operations: TTLs pass 2^32 and JS bitwise ops are 32-bit. */
  varint(v: number): void {
    this.reserve(varintBytesMax);
    while (v >= 0x80) {
      this.buf[this.length++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.length++] = v;
  }

  view(start: number, end: number): Uint8Array {
    return this.buf.subarray(start, end);
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

class ByteReader {
  private readonly dv: DataView;

  constructor(
    private readonly buf: Uint8Array,
    private pos: number,
  ) {
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  remaining(): number {
    return this.buf.length - this.pos;
  }

  i64(): bigint {
    if (this.remaining() < 8) throw new LeaseStateCorruptError('truncated record');
    const v = this.dv.getBigInt64(this.pos, false);
    this.pos += 8;
    return v;
  }

  varint(): number {
    let v = 0;
    let scale = 1;
    for (let i = 0; i < varintBytesMax; i++) {
      if (this.pos >= this.buf.length) throw new LeaseStateCorruptError('truncated varint');
      const b = this.buf[this.pos++]!;
      v += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        // A trailing zero group would give a second encoding of the same number: refuse it so
        // that decoding then encoding always reproduces the input bytes.
        if (b === 0 && i > 0) throw new LeaseStateCorruptError('non-minimal varint');
        if (!Number.isSafeInteger(v)) throw new LeaseStateCorruptError('varint exceeds 2^53');
        return v;
      }
      scale *= 0x80;
    }
    throw new LeaseStateCorruptError('varint longer than 8 bytes');
  }
}
