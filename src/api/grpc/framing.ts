/**
 * gRPC's length-prefixed message framing over HTTP/2 DATA (PROTOCOL-HTTP2.md):
 *
 *   Length-Prefixed-Message = Compressed-Flag (1 byte, 0 or 1) Message-Length (u32, big endian) Message
 *
 * DATA frames and messages are unrelated: a message may span many chunks and a chunk may hold
 * many messages, so FrameReader reassembles across chunks. It copies only when a message spans
 * chunks; otherwise messages are views into the received chunk.
 *
 * Also here: grpc-timeout parsing, the other wire detail of a request.
 */
import { gunzipSync } from 'node:zlib';
import { Writer } from '../../util/binary.ts';
import { GrpcError, Status, statusText } from './status.ts';

export const FRAME_HEADER_BYTES = 5;

export class FrameReader {
  /** Buffered bytes of the frame not yet complete, oldest first. */
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Bytes needed before the buffered frame can be parsed further (header, or header + body). */
  private need = FRAME_HEADER_BYTES;

  constructor(private readonly receiveBytesMax: number) {}

  /** True while part of a frame is buffered (a stream ending now is truncated). */
  get partial(): boolean {
    return this.buffered > 0;
  }

  /**
   * Feeds one received chunk; calls onFrame for every message it completes, in order.
   * Throws GrpcError(RESOURCE_EXHAUSTED) as soon as a header announces an oversize message,
   * before its body is buffered.
   */
  push(chunk: Buffer, onFrame: (compressed: boolean, message: Buffer) => void): void {
    let buf = chunk;
    if (this.buffered > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      if (this.buffered < this.need) return;
      buf = Buffer.concat(this.chunks, this.buffered);
      this.chunks = [];
      this.buffered = 0;
    }
    let off = 0;
    for (;;) {
      const left = buf.length - off;
      if (left < FRAME_HEADER_BYTES) {
        this.need = FRAME_HEADER_BYTES;
        break;
      }
      const len = buf.readUInt32BE(off + 1);
      if (len > this.receiveBytesMax) {
        throw new GrpcError(Status.RESOURCE_EXHAUSTED, statusText.receivedTooLarge(len, this.receiveBytesMax));
      }
      if (left < FRAME_HEADER_BYTES + len) {
        this.need = FRAME_HEADER_BYTES + len;
        break;
      }
      const start = off + FRAME_HEADER_BYTES;
      off = start + len;
      onFrame((buf[start - FRAME_HEADER_BYTES]! & 1) === 1, buf.subarray(start, off));
    }
    if (off < buf.length) {
      this.chunks.push(off === 0 ? buf : buf.subarray(off));
      this.buffered = buf.length - off;
    }
  }
}

/**
 * Uncompressed messages encoded straight into one buffer of frames, for a handler that encodes
 * its responses itself (no copy per message): begin() before a message's bytes, which go to
 * `writer`, end() after them.
 */
export class FrameBuilder {
  readonly writer: Writer;
  /** Where the open frame's header starts; −1 between frames. */
  private open = -1;

  constructor(initialBytes: number) {
    // Not zero-filled: every byte of the result is written.
    this.writer = new Writer(Buffer.allocUnsafeSlow(Math.max(1, initialBytes)));
  }

  begin(): void {
    if (this.open >= 0) throw new Error('grpc: FrameBuilder.begin() inside a frame');
    this.open = this.writer.length;
    this.writer.u8(0);
    this.writer.raw(LENGTH_PLACEHOLDER);
  }

  end(): void {
    if (this.open < 0) throw new Error('grpc: FrameBuilder.end() outside a frame');
    this.writer.patchU32BE(this.open + 1, this.writer.length - this.open - FRAME_HEADER_BYTES);
    this.open = -1;
  }

  /** The frames built (a view into the builder's buffer). */
  finish(): Uint8Array {
    if (this.open >= 0) throw new Error('grpc: FrameBuilder.finish() inside a frame');
    return this.writer.finish();
  }
}

const LENGTH_PLACEHOLDER = new Uint8Array(4);

/**
 * The length of each message in a buffer of whole frames, in order; throws if the buffer does
 * not hold whole frames exactly.
 */
export function frameLengths(frames: Uint8Array): number[] {
  const view = new DataView(frames.buffer, frames.byteOffset, frames.byteLength);
  const lengths: number[] = [];
  let at = 0;
  while (at < frames.byteLength) {
    if (at + FRAME_HEADER_BYTES > frames.byteLength) throw new Error('grpc: truncated frame header');
    const len = view.getUint32(at + 1);
    at += FRAME_HEADER_BYTES + len;
    if (at > frames.byteLength) throw new Error('grpc: truncated frame');
    lengths.push(len);
  }
  return lengths;
}

/** Frames one encoded message (uncompressed). One copy; small next to the socket write. */
export function frameMessage(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, FRAME_HEADER_BYTES);
  return out;
}

/** Inflates a compressed message of a call whose grpc-encoding is gzip, bounded by max. */
export function gunzipMessage(message: Buffer, receiveBytesMax: number): Buffer {
  try {
    return gunzipSync(message, { maxOutputLength: receiveBytesMax });
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new GrpcError(Status.RESOURCE_EXHAUSTED, statusText.receivedTooLargeInflated(receiveBytesMax));
    }
    throw new GrpcError(Status.INTERNAL, `grpc: failed to decompress the received message: ${(err as Error).message}`);
  }
}

const TIMEOUT_UNIT_MS: Readonly<Record<string, number>> = {
  H: 3_600_000,
  M: 60_000,
  S: 1_000,
  m: 1,
  u: 1e-3,
  n: 1e-6,
};

/**
 * Parses grpc-timeout ("TimeoutValue TimeoutUnit": at most 8 ASCII digits, then one of
 * H M S m u n) into milliseconds, clamped to maxMs. Sub-millisecond timeouts round up to 1 ms
 * so that a tiny positive timeout still expires rather than never being armed.
 */
export function parseGrpcTimeout(value: string, maxMs: number): number {
  const unit = TIMEOUT_UNIT_MS[value.charAt(value.length - 1)];
  const digits = value.slice(0, -1);
  if (unit === undefined || digits.length === 0 || digits.length > 8 || !/^[0-9]+$/.test(digits)) {
    throw new GrpcError(Status.INTERNAL, statusText.malformedTimeout(value));
  }
  const ms = Number(digits) * unit;
  return Math.min(maxMs, ms > 0 && ms < 1 ? 1 : Math.ceil(ms));
}
