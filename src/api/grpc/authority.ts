/**
 * A URL as :authority. etcd's Go client dials one endpoint at a time for the per-member
 * Maintenance calls (etcdctl endpoint status, endpoint hashkv, defrag, snapshot save,
 * move-leader) with the target "passthrough:///http://host:port", and grpc-go sends the
 * endpoint, scheme and all, as the :authority of every request on that connection. Go's
 * HTTP/2 server takes any authority; nghttp2 (under node:http2) refuses '/' in it and resets
 * the stream with PROTOCOL_ERROR, and node has no switch for that check.
 *
 * So the mux looks at the first request of each HTTP/2 connection before node's session owns
 * the socket (h2Handshake):
 *  - grpc-go sends nothing but its preface until it has the server's SETTINGS, so we send an
 *    empty SETTINGS frame ourselves, and drop the client's ACK of it (node's session sends its
 *    own SETTINGS and must see exactly one ACK for them);
 *  - if the first request's :authority starts with a scheme, that connection is served through
 *    a stream that rewrites the scheme's "//" to "--" in every header block ("http:--host:port":
 *    same length, so the HPACK tables of client and server stay in step);
 *  - any other connection goes to node's session directly (the native, fast path) with the
 *    bytes read so far put back on the socket.
 */
import type net from 'node:net';
import { Duplex } from 'node:stream';

const PREFACE_BYTES = 24;
const FRAME_HEADER_BYTES = 9;
const FRAME = { HEADERS: 1, SETTINGS: 4, CONTINUATION: 9 } as const;
const FLAG = { ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;
/** An empty SETTINGS frame: the server preface of the handshake. */
export const EMPTY_SETTINGS: Buffer = Buffer.from([0, 0, 0, FRAME.SETTINGS, 0, 0, 0, 0, 0]);

/** HPACK static table indices whose value is an authority. */
const STATIC_AUTHORITY = 1;
const STATIC_HOST = 38;

// ---- HPACK: find the authority in a header block and rewrite its scheme -------------------

/** RFC 7541 Huffman codes of the characters of the schemes we rewrite, and of '/' and '-'. */
const HUFFMAN: Record<string, string> = {
  h: '100111',
  t: '01001',
  p: '101011',
  s: '01000',
  ':': '1011100',
  '/': '011000',
  '-': '010110',
};
const SCHEMES = ['http:', 'https:'];

function huffmanBits(text: string): string {
  return [...text].map((c) => HUFFMAN[c]!).join('');
}

function bitAt(b: Buffer, start: number, n: number): number {
  return (b[start + (n >> 3)]! >> (7 - (n & 7))) & 1;
}

function setBit(b: Buffer, start: number, n: number, bit: number): void {
  const mask = 0x80 >> (n & 7);
  const i = start + (n >> 3);
  b[i] = bit === 1 ? b[i]! | mask : b[i]! & ~mask;
}

/** Rewrites "scheme://" at the start of a string literal to "scheme:--"; true if it did. */
function scrubValue(b: Buffer, start: number, length: number, huffman: boolean): boolean {
  for (const scheme of SCHEMES) {
    if (!huffman) {
      if (b.toString('latin1', start, start + scheme.length + 2) !== `${scheme}//`) continue;
      b.fill('-', start + scheme.length, start + scheme.length + 2, 'latin1');
      return true;
    }
    const match = huffmanBits(`${scheme}//`);
    if (match.length > 8 * length) continue;
    if (![...match].every((bit, n) => bitAt(b, start, n) === Number(bit))) continue;
    const dashes = huffmanBits('--');
    const at = huffmanBits(scheme).length;
    for (let n = 0; n < dashes.length; n++) setBit(b, start, at + n, Number(dashes[n]));
    return true;
  }
  return false;
}

/** An HPACK integer with an n-bit prefix at b[i]; null if the block ends inside it. */
function readInt(b: Buffer, i: number, end: number, prefixBits: number): { value: number; next: number } | null {
  if (i >= end) return null;
  const mask = (1 << prefixBits) - 1;
  let value = b[i]! & mask;
  let next = i + 1;
  if (value < mask) return { value, next };
  for (let shift = 0; ; shift += 7) {
    if (next >= end || shift > 28) return null;
    const byte = b[next++]!;
    value += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return { value, next };
  }
}

interface StringLiteral {
  readonly start: number;
  readonly length: number;
  readonly huffman: boolean;
  readonly next: number;
}

function readString(b: Buffer, i: number, end: number): StringLiteral | null {
  const n = readInt(b, i, end, 7);
  if (n === null || n.next + n.value > end) return null;
  return { start: n.next, length: n.value, huffman: (b[i]! & 0x80) !== 0, next: n.next + n.value };
}

/**
 * Walks the header block fragment b[start, end) and rewrites the scheme of :authority and
 * host values given literally (an indexed field refers to a value already rewritten).
 * Returns whether anything was rewritten. A malformed block is left for nghttp2 to refuse.
 */
export function scrubHeaderBlock(b: Buffer, start: number, end: number): boolean {
  let changed = false;
  let i = start;
  while (i < end) {
    const first = b[i]!;
    if ((first & 0x80) !== 0 || (first & 0xe0) === 0x20) {
      // Indexed field (1xxxxxxx) or dynamic table size update (001xxxxx): nothing literal.
      const n = readInt(b, i, end, (first & 0x80) !== 0 ? 7 : 5);
      if (n === null) return changed;
      i = n.next;
      continue;
    }
    // Literal field, with incremental indexing (01xxxxxx), without (0000xxxx) or never (0001xxxx).
    const index = readInt(b, i, end, (first & 0x40) !== 0 ? 6 : 4);
    if (index === null) return changed;
    i = index.next;
    let isAuthority = index.value === STATIC_AUTHORITY || index.value === STATIC_HOST;
    if (index.value === 0) {
      const name = readString(b, i, end);
      if (name === null) return changed;
      const text = name.huffman ? '' : b.toString('latin1', name.start, name.next);
      isAuthority = text === ':authority' || text === 'host';
      i = name.next;
    }
    const value = readString(b, i, end);
    if (value === null) return changed;
    if (isAuthority && scrubValue(b, value.start, value.length, value.huffman)) changed = true;
    i = value.next;
  }
  return changed;
}

/**
 * Rewrites the header block of a complete HEADERS frame in place. A block continued in
 * CONTINUATION frames (over 16 KiB of headers; gRPC requests never come near) is left alone.
 */
function scrubHeadersFrame(frame: Buffer): boolean {
  const flags = frame[4]!;
  if ((flags & FLAG.END_HEADERS) === 0) return false;
  let start = FRAME_HEADER_BYTES;
  let end = frame.length;
  if ((flags & FLAG.PADDED) !== 0) {
    end -= frame[start]!;
    start += 1;
  }
  if ((flags & FLAG.PRIORITY) !== 0) start += 5;
  if (start > end) return false;
  return scrubHeaderBlock(frame, start, end);
}

// ---- frames ----------------------------------------------------------------------------

/** Cuts a byte stream into whole HTTP/2 frames, keeping a partial one for the next chunk. */
export class FrameSplitter {
  private pending: Buffer = Buffer.alloc(0);

  /** The whole frames completed by `chunk`, in order. */
  push(chunk: Buffer): Buffer[] {
    const b = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const frames: Buffer[] = [];
    let i = 0;
    while (b.length - i >= FRAME_HEADER_BYTES) {
      const size = FRAME_HEADER_BYTES + b.readUIntBE(i, 3);
      if (b.length - i < size) break;
      frames.push(b.subarray(i, i + size));
      i += size;
    }
    this.pending = b.subarray(i);
    return frames;
  }

  /** Bytes held of a frame not yet complete. */
  rest(): Buffer {
    return this.pending;
  }
}

/** The frames of a connection whose requests carry a URL as :authority, with their headers rewritten. */
function scrubbed(frames: Buffer[]): Buffer {
  for (const f of frames) if (f[3] === FRAME.HEADERS) scrubHeadersFrame(f);
  return Buffer.concat(frames);
}

/**
 * The socket as node's http2 session should read it: header blocks rewritten. `initial` is
 * what the handshake read already (forwarded first), `splitter` holds its unfinished frame.
 */
function scrubbingStream(socket: net.Socket, initial: Buffer, splitter: FrameSplitter): Duplex {
  const stream = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      socket.write(chunk, callback);
    },
    final(callback) {
      socket.end();
      callback();
    },
    destroy(err, callback) {
      socket.destroy();
      callback(err);
    },
  });
  stream.push(initial);
  socket.on('data', (chunk: Buffer) => {
    if (!stream.push(scrubbed(splitter.push(chunk)))) socket.pause();
  });
  socket.on('end', () => stream.push(null));
  socket.on('close', () => stream.destroy());
  socket.on('error', (e) => stream.destroy(e));
  socket.resume();
  return stream;
}

// ---- the handshake ---------------------------------------------------------------------

export interface HandshakeLimits {
  /** Time the client has to acknowledge our SETTINGS; then the connection is dropped. */
  readonly ackTimeoutMs: number;
  /** After the ACK, time to wait for a first request before handing over (an idle client). */
  readonly firstRequestGraceMs: number;
  /** Bytes buffered before the handshake ends; a client sending more is dropped. */
  readonly bytesMax: number;
}

function ignore(): void {}

/**
 * Runs the handshake on a flowing socket whose first bytes (`seen`, starting with the client
 * preface) were read already, then calls `done` with what node's http2 session should read:
 * the socket itself (paused, bytes put back) or a rewriting stream; null if the socket is gone.
 */
export function h2Handshake(socket: net.Socket, seen: Buffer, limits: HandshakeLimits, done: (stream: Duplex | null) => void): void {
  const splitter = new FrameSplitter();
  const kept: Buffer[] = [seen.subarray(0, PREFACE_BYTES)];
  let keptBytes = 0;
  let acked = false;
  let firstRequest: 'none' | 'plain' | 'url' = 'none';
  let graceTimer: NodeJS.Timeout | undefined;
  let finished = false;

  const finish = (): boolean => {
    if (finished) return false;
    finished = true;
    clearTimeout(ackTimer);
    clearTimeout(graceTimer);
    socket.removeListener('data', onData);
    socket.removeListener('close', onClose);
    socket.removeListener('error', ignore);
    return true;
  };
  const drop = (): void => {
    if (!finish()) return;
    socket.destroy();
    done(null);
  };
  const handOver = (): void => {
    if (!finish()) return;
    socket.pause();
    const read = Buffer.concat(kept);
    if (firstRequest === 'url') return done(scrubbingStream(socket, read, splitter));
    socket.unshift(Buffer.concat([read, splitter.rest()]));
    done(socket);
  };
  const keep = (frames: Buffer[]): void => {
    for (const f of frames) {
      const type = f[3];
      if (type === FRAME.SETTINGS && (f[4]! & FLAG.ACK) !== 0 && !acked) {
        acked = true; // the ACK of our SETTINGS: node's session never sent those
        continue;
      }
      if (type === FRAME.HEADERS && firstRequest === 'none') firstRequest = scrubHeadersFrame(f) ? 'url' : 'plain';
      else if (type === FRAME.HEADERS && firstRequest === 'url') scrubHeadersFrame(f);
      kept.push(f);
      keptBytes += f.length;
    }
  };
  function onData(chunk: Buffer): void {
    keep(splitter.push(chunk));
    if (keptBytes + splitter.rest().length > limits.bytesMax) return drop();
    if (acked && firstRequest !== 'none') return handOver();
    if (acked && graceTimer === undefined) graceTimer = setTimeout(handOver, limits.firstRequestGraceMs);
  }
  function onClose(): void {
    if (finish()) done(null);
  }

  const ackTimer = setTimeout(drop, limits.ackTimeoutMs);
  socket.on('data', onData);
  socket.on('error', ignore);
  socket.once('close', onClose);
  socket.write(EMPTY_SETTINGS);
  onData(seen.subarray(PREFACE_BYTES));
}
