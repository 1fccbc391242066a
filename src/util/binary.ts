/**
 * Compact binary building blocks shared by Conclave's own encodings (peer messages, log entry
 * payloads): unsigned LEB128 varints for numbers below 2^53, 64-bit signed integers as 8 bytes
 * big-endian, length-prefixed bytes and UTF-8 strings, one-byte booleans.
 */
export class CodecError extends Error {
  readonly code = 'BAD_ENCODING';
  constructor(message: string) {
    super(message);
    this.name = 'CodecError';
  }
}


const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

export class Writer {
  private buf: Uint8Array;
  private at = 0;

  /** `initial`: the first buffer's size, or the buffer itself (e.g. one not zero-filled, for a large writer). */
  constructor(initial: number | Uint8Array = 256) {
    this.buf = typeof initial === 'number' ? new Uint8Array(initial) : initial;
  }

  private room(n: number): void {
    if (this.at + n <= this.buf.byteLength) return;
    let size = this.buf.byteLength * 2;
    while (size < this.at + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.at));
    this.buf = next;
  }

  u8(v: number): void {
    this.room(1);
    this.buf[this.at++] = v;
  }

  uint(v: number): void {
    this.room(8);
    while (v >= 0x80) {
      this.buf[this.at++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.at++] = v;
  }

  bool(v: boolean): void {
    this.u8(v ? 1 : 0);
  }

  int64(v: bigint): void {
    this.room(8);
    if (v === 0n) this.buf.fill(0, this.at, this.at + 8);
    else new DataView(this.buf.buffer, this.buf.byteOffset).setBigInt64(this.at, v);
    this.at += 8;
  }

  /** Bytes with no length prefix (fixed-size fields). */
  raw(v: Uint8Array): void {
    this.room(v.byteLength);
    this.buf.set(v, this.at);
    this.at += v.byteLength;
  }

  bytes(v: Uint8Array): void {
    this.uint(v.byteLength);
    this.raw(v);
  }

  string(v: string): void {
    this.bytes(utf8.encode(v));
  }

  strings(v: readonly string[]): void {
    this.uint(v.length);
    for (const s of v) this.string(s);
  }

  finish(): Uint8Array {
    return this.buf.subarray(0, this.at);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.at;
  }

  /** Starts over, keeping the buffer (for a scratch writer whose result is copied out). */
  reset(): void {
    this.at = 0;
  }

  /** Overwrites 4 bytes at `at` (already written) with `v`, big-endian: a length prefix known afterwards. */
  patchU32BE(at: number, v: number): void {
    this.buf[at] = v >>> 24;
    this.buf[at + 1] = (v >>> 16) & 0xff;
    this.buf[at + 2] = (v >>> 8) & 0xff;
    this.buf[at + 3] = v & 0xff;
  }
}

export class Reader {
  private at = 0;
  /**
   * `share`: bytes fields are views into `buf` instead of copies (the caller copied `buf` once
   * and accepts that any field kept alive keeps all of it).
   */
  constructor(
    private readonly buf: Uint8Array,
    private readonly share = false,
  ) {}

  private need(n: number): void {
    if (this.at + n > this.buf.byteLength) throw new CodecError('truncated message');
  }

  u8(): number {
    this.need(1);
    return this.buf[this.at++]!;
  }

  uint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8();
      result += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return result;
      scale *= 0x80;
    }
    throw new CodecError('varint too long');
  }

  bool(): boolean {
    return this.u8() !== 0;
  }

  int64(): bigint {
    this.need(8);
    const b = this.buf;
    const at = this.at;
    this.at += 8;
    // Zero (no lease, the common case) without a DataView and a BigInt.
    if ((b[at]! | b[at + 1]! | b[at + 2]! | b[at + 3]! | b[at + 4]! | b[at + 5]! | b[at + 6]! | b[at + 7]!) === 0) return 0n;
    return new DataView(b.buffer, b.byteOffset).getBigInt64(at);
  }

  /** `n` bytes as lower-case hex, without copying them first. */
  hex(n: number): string {
    this.need(n);
    const s = Buffer.from(this.buf.buffer, this.buf.byteOffset + this.at, n).toString('hex');
    this.at += n;
    return s;
  }

  raw(n: number): Uint8Array {
    this.need(n);
    const view = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return this.share ? view : new Uint8Array(view);
  }

  bytes(): Uint8Array {
    return this.raw(this.uint());
  }

  string(): string {
    const n = this.uint();
    this.need(n);
    const s = fromUtf8.decode(this.buf.subarray(this.at, this.at + n));
    this.at += n;
    return s;
  }

  strings(): string[] {
    const n = this.uint();
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(this.string());
    return out;
  }

  done(): void {
    if (this.at !== this.buf.byteLength) throw new CodecError('trailing bytes after message');
  }
}

