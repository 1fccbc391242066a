/**
 * Snapshot stream format (a point-in-time copy of a whole store, kv and meta):
 *
 *   magic    8 bytes  "CNCLVMVC"
 *   version  u32      snapshot format (1)
 *   records  repeated:
 *              u8 tag (1 = kv record, 2 = meta record)
 *              u32 keyLength, key bytes, u32 valueLength, value bytes
 *   trailer  u8 tag 0xFF, u64 recordCount,
 *            32 bytes SHA-256 of every byte before these 32 (magic through recordCount)
 *
 * Integers are big-endian. Records carry the LMDB keys and values verbatim (codec.ts), kv first
 * in revision order, then meta in key order. The stream is read from one pinned LMDB read
 * transaction, so writes may continue while it is consumed. restoreSnapshot() writes into a
 * temporary directory, verifies the digest and record count at the end, and only then renames
 * it into place: a truncated or altered stream never becomes a store.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { Backend, BACKEND_LIMITS } from './backend.ts';
import { fsyncPath } from '../util/fsync.ts';
import type { RangeEntry, ReadSnapshot } from './backend.ts';
import { InvalidArgumentError, SnapshotCorruptError, StoreClosedError } from './errors.ts';
import type { MvccLimits } from './limits.ts';
import { assert } from './assert.ts';
import type { Pinned, SnapshotRegistry, StoreState } from './state.ts';

const magic = Buffer.from('CNCLVMVC', 'latin1');
export const snapshotFormatVersion = 1;
const TAG_KV = 1;
const TAG_META = 2;
const TAG_END = 0xff;
const digestBytes = 32;

class ChunkWriter {
  private parts: Buffer[] = [];
  private size = 0;
  private readonly hash = createHash('sha256');

  constructor(private readonly chunkBytes: number) {}

  push(b: Buffer): void {
    this.hash.update(b);
    this.parts.push(b);
    this.size += b.length;
  }

  get full(): boolean {
    return this.size >= this.chunkBytes;
  }

  take(): Uint8Array {
    const out = Buffer.concat(this.parts, this.size);
    this.parts = [];
    this.size = 0;
    return out;
  }

  digest(): Buffer {
    return this.hash.digest();
  }
}

function recordHeader(tag: number, len: number): Buffer {
  const b = Buffer.allocUnsafe(5);
  b[0] = tag;
  b.writeUInt32BE(len, 1);
  return b;
}

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n, 0);
  return b;
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

type RangeOptions = { start?: Buffer; exclusiveStart?: boolean; limit: number; snapshot: ReadSnapshot };

/**
 * Hands every record of a pinned snapshot to `visit` (kv in revision order, then meta in key
 * order; the key and value are valid during the call only), `hashSliceEntries` at a time:
 * yields after each slice, so the caller can pass on what it gathered and others get a turn.
 */
async function* sliced(s: StoreState, pinned: Pinned, visit: (tag: number, key: Buffer, value: Buffer) => void): AsyncGenerator<void> {
  const sources: Array<[number, (o: RangeOptions) => Iterable<RangeEntry>]> = [
    [TAG_KV, (o) => pinned.backend.kvRange(o)],
    [TAG_META, (o) => pinned.backend.metaRange(o)],
  ];
  for (const [tag, range] of sources) {
    let start: Buffer | undefined;
    for (;;) {
      if (s.closed) throw new StoreClosedError();
      const limit = s.limits.hashSliceEntries;
      const o: RangeOptions = { limit, snapshot: pinned.snap };
      if (start !== undefined) {
        o.start = start;
        o.exclusiveStart = true;
      }
      let n = 0;
      for (const { key, value } of range(o)) {
        n++;
        start = key;
        visit(tag, key, value);
      }
      if (start !== undefined) start = Buffer.from(start);
      yield;
      if (n < limit) break;
      await nextTurn();
    }
  }
}

const HEADER_BYTES = 12;
const TRAILER_BYTES = 9 + digestBytes;
const recordBytes = (key: Buffer, value: Buffer): number => 9 + key.length + value.length;

/** The stream of a pinned snapshot (see the format above). */
async function* streamPinned(s: StoreState, pinned: Pinned): AsyncGenerator<Uint8Array> {
  const w = new ChunkWriter(s.limits.snapshotChunkBytes);
  const head = Buffer.allocUnsafe(HEADER_BYTES);
  magic.copy(head, 0);
  head.writeUInt32BE(snapshotFormatVersion, 8);
  w.push(head);
  let count = 0;
  const records = sliced(s, pinned, (tag, key, value) => {
    w.push(recordHeader(tag, key.length));
    w.push(Buffer.from(key));
    w.push(u32(value.length));
    w.push(Buffer.from(value));
    count++;
  });
  for await (const _ of records) if (w.full) yield w.take();
  const end = Buffer.allocUnsafe(9);
  end[0] = TAG_END;
  end.writeUInt32BE(Math.floor(count / 4294967296), 1);
  end.writeUInt32BE(count >>> 0, 5);
  w.push(end);
  const digest = w.digest();
  yield Buffer.concat([Buffer.from(w.take()), digest]);
}

/** The snapshot stream of the store's committed state at the moment of the call. */
export async function* snapshotStream(s: StoreState, reg: SnapshotRegistry): AsyncGenerator<Uint8Array> {
  if (s.closed) throw new StoreClosedError();
  const pinned = reg.pin(s);
  try {
    yield* streamPinned(s, pinned);
  } finally {
    pinned.release();
  }
}

export interface SizedSnapshot {
  /** Bytes `body` will yield in all. */
  readonly bytes: number;
  /** Iterate it to the end or return() it: it holds a read snapshot until then (or until the store closes). */
  readonly body: AsyncIterable<Uint8Array>;
}

/**
 * The snapshot stream of the store's committed state at the moment of the call, with its
 * length known before the first byte (a first pass over the same read snapshot measures it).
 */
export async function sizedSnapshot(s: StoreState, reg: SnapshotRegistry): Promise<SizedSnapshot> {
  if (s.closed) throw new StoreClosedError();
  const pinned = reg.pin(s);
  let bytes = HEADER_BYTES + TRAILER_BYTES;
  try {
    for await (const _ of sliced(s, pinned, (_tag, key, value) => (bytes += recordBytes(key, value))));
  } catch (e) {
    pinned.release();
    throw e;
  }
  async function* body(): AsyncGenerator<Uint8Array> {
    let sent = 0;
    try {
      for await (const chunk of streamPinned(s, pinned)) {
        sent += chunk.byteLength;
        yield chunk;
      }
    } finally {
      pinned.release();
    }
    assert(sent === bytes, `snapshot stream of ${sent} bytes was measured at ${bytes}`);
  }
  return { bytes, body: body() };
}

/** The record count a snapshot stream declares in its trailer, from the stream's last bytes. */
export function snapshotRecordCount(tail: Uint8Array): number {
  if (tail.byteLength < TRAILER_BYTES) throw new SnapshotCorruptError('truncated stream');
  const end = Buffer.from(tail.buffer, tail.byteOffset + tail.byteLength - TRAILER_BYTES, 9);
  if (end[0] !== TAG_END) throw new SnapshotCorruptError('no trailer at the end of the stream');
  return readCount(end.subarray(1));
}

/** Bytes received but not yet parsed. */
class ByteQueue {
  private chunks: Buffer[] = [];
  private length = 0;

  push(b: Buffer): void {
    if (b.length === 0) return;
    this.chunks.push(b);
    this.length += b.length;
  }

  get available(): number {
    return this.length;
  }

  /** The first n bytes without consuming them (n ≤ available). */
  peek(n: number): Buffer {
    if (this.chunks[0]!.length >= n) return this.chunks[0]!.subarray(0, n);
    const merged = Buffer.concat(this.chunks, this.length);
    this.chunks = [merged];
    return merged.subarray(0, n);
  }

  take(n: number): Buffer {
    const out = this.peek(n);
    const first = this.chunks[0]!;
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.length -= n;
    return out;
  }
}

function readCount(b: Buffer): number {
  return b.readUInt32BE(0) * 4294967296 + b.readUInt32BE(4);
}

/**
 * Restores a snapshot stream into `dir`, which must not exist or be empty. Throws
 * SnapshotCorruptError (and leaves nothing behind) if the stream is truncated or altered.
 */
export async function restoreSnapshot(dir: string, source: AsyncIterable<Uint8Array>, limits: MvccLimits): Promise<void> {
  try {
    const existing = await readdir(dir);
    if (existing.length > 0) throw new InvalidArgumentError(`restore target ${dir} is not empty`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  await mkdir(dirname(dir), { recursive: true });
  const tmp = join(dirname(dir), `.${basename(dir)}.restore-${process.pid}-${Date.now()}`);
  await rm(tmp, { recursive: true, force: true });
  const backend = Backend.open(tmp);
  let ok = false;
  try {
    const q = new ByteQueue();
    const hash = createHash('sha256');
    const consume = (n: number): Buffer => {
      const b = q.take(n);
      hash.update(b);
      return b;
    };
    let headerDone = false;
    let finished = false;
    let count = 0;
    let batch: Array<[number, Buffer, Buffer]> = [];
    const flush = (): void => {
      if (batch.length === 0) return;
      const items = batch;
      batch = [];
      backend.write(() => {
        for (const [tag, k, v] of items) {
          if (tag === TAG_KV) backend.kvPut(k, v);
          else backend.metaPut(k, v);
        }
      });
    };
    const parse = (): void => {
      if (!headerDone) {
        if (q.available < 12) return;
        const head = consume(12);
        if (!head.subarray(0, 8).equals(magic)) throw new SnapshotCorruptError('not an MVCC snapshot (bad magic)');
        const version = head.readUInt32BE(8);
        if (version !== snapshotFormatVersion) throw new SnapshotCorruptError(`unsupported snapshot format ${version}`);
        headerDone = true;
      }
      while (!finished && q.available >= 1) {
        const tag = q.peek(1)[0]!;
        if (tag === TAG_END) {
          if (q.available < 9 + digestBytes) return;
          const end = consume(9);
          const declared = readCount(end.subarray(1));
          const expected = hash.digest();
          const got = q.take(digestBytes);
          if (!got.equals(expected)) throw new SnapshotCorruptError('checksum mismatch');
          if (declared !== count) throw new SnapshotCorruptError(`trailer declares ${declared} records, stream has ${count}`);
          finished = true;
          return;
        }
        if (tag !== TAG_KV && tag !== TAG_META) throw new SnapshotCorruptError(`unknown record tag ${tag}`);
        if (q.available < 5) return;
        const kl = q.peek(5).readUInt32BE(1);
        if (kl === 0 || kl > limits.snapshotRecordBytesMax) throw new SnapshotCorruptError(`record key length ${kl}`);
        if (q.available < 9 + kl) return;
        const vl = q.peek(9 + kl).readUInt32BE(5 + kl);
        if (vl > limits.snapshotRecordBytesMax) throw new SnapshotCorruptError(`record value length ${vl}`);
        if (q.available < 9 + kl + vl) return;
        consume(5);
        const key = Buffer.from(consume(kl));
        consume(4);
        const value = Buffer.from(consume(vl));
        batch.push([tag, key, value]);
        count++;
        if (batch.length >= limits.restoreBatchEntries) flush();
      }
    };
    for await (const chunk of source) {
      if (finished) {
        if (chunk.byteLength > 0) throw new SnapshotCorruptError('data after the trailer');
        continue;
      }
      q.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      parse();
      // Memory stays bounded when the stream arrives faster than LMDB commits.
      if (backend.pendingBytes() > BACKEND_LIMITS.commitBytes) await backend.settle();
      if (finished && q.available > 0) throw new SnapshotCorruptError('data after the trailer');
    }
    if (!finished) throw new SnapshotCorruptError('truncated stream');
    flush();
    await backend.sync();
    await backend.close();
    await rename(tmp, dir);
    // Durable before anyone relies on it (a member records the Raft snapshot next).
    await fsyncPath(dirname(dir));
    ok = true;
  } finally {
    if (!ok) {
      await backend.close().catch(() => undefined);
      await rm(tmp, { recursive: true, force: true });
    }
  }
}
