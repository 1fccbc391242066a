/**
 * The snapshot file: what Maintenance.Snapshot streams, `etcdctl snapshot save` writes, and
 * `conclave snapshot restore|status` read.
 *
 *   body     the store's snapshot stream (src/mvcc/snapshot.ts): the whole store, consistent
 *   padding  zero bytes ending in a u16 (big-endian) giving the padding's length, 2…513 bytes,
 *            so that body and padding are a whole number of 512-byte blocks
 *   digest   SHA-256 of body and padding (32 bytes)
 *
 * etcd streams its bbolt file (a whole number of pages) followed by its SHA-256 digest, and
 * etcdctl 3.4 takes a file whose size modulo 512 is 32 as one with a digest (refusing the save
 * otherwise, and checking the digest on restore): the padding makes Conclave's files fit.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { snapshotRecordCount } from '../mvcc/index.ts';

/** A file that is not a whole, unaltered snapshot file. */
export class SnapshotFileError extends Error {
  readonly code = 'SNAPSHOT_FILE_INVALID';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SnapshotFileError';
  }
}

export const SNAPSHOT_FILE_LIMITS = {
  /** Bytes per SnapshotResponse message (etcd's 32 KiB). */
  chunkBytes: 32 * 1024,
} as const;

const BLOCK_BYTES = 512;
const DIGEST_BYTES = 32;
const PAD_LENGTH_BYTES = 2;

/** The padding after a body of `bodyBytes`. */
export function padding(bodyBytes: number): Buffer {
  let length = BLOCK_BYTES - (bodyBytes % BLOCK_BYTES);
  if (length < PAD_LENGTH_BYTES) length += BLOCK_BYTES;
  const pad = Buffer.alloc(length);
  pad.writeUInt16BE(length, length - PAD_LENGTH_BYTES);
  return pad;
}

/** A piece of the file and how many bytes of body and padding remain after it (the digest is last, at 0). */
export interface FileChunk {
  readonly blob: Uint8Array;
  readonly remainingBytes: number;
}

/**
 * The file of a body of `bodyBytes` in chunks of chunkBytes (etcd's SnapshotResponse stream:
 * data chunks counting down remaining bytes, then one with the digest).
 */
export async function* fileChunks(body: AsyncIterable<Uint8Array>, bodyBytes: number, chunkBytes: number = SNAPSHOT_FILE_LIMITS.chunkBytes): AsyncGenerator<FileChunk> {
  const pad = padding(bodyBytes);
  const total = bodyBytes + pad.length;
  const hash = createHash('sha256');
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let sent = 0;
  const take = (n: number): Buffer => {
    const all = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    pending = rest.length > 0 ? [rest] : [];
    pendingBytes = rest.length;
    hash.update(out);
    sent += out.length;
    return out;
  };
  async function* withPadding(): AsyncGenerator<Uint8Array> {
    yield* body;
    yield pad;
  }
  for await (const piece of withPadding()) {
    pending.push(Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength));
    pendingBytes += piece.byteLength;
    while (pendingBytes >= chunkBytes) {
      const blob = take(chunkBytes);
      yield { blob, remainingBytes: total - sent };
    }
  }
  if (pendingBytes > 0) {
    const blob = take(pendingBytes);
    yield { blob, remainingBytes: total - sent };
  }
  if (sent !== total) throw new SnapshotFileError(`snapshot body of ${sent - pad.length} bytes, announced as ${bodyBytes}`);
  yield { blob: hash.digest(), remainingBytes: 0 };
}

export interface SnapshotFileInfo {
  readonly path: string;
  readonly fileBytes: number;
  /** Bytes of the store's snapshot stream at the head of the file. */
  readonly bodyBytes: number;
  /** Records (kv and meta) the stream declares. */
  readonly records: number;
}

/** Reads and checks a file's layout: digest place, padding, the stream's trailer. */
export async function inspectSnapshotFile(path: string): Promise<SnapshotFileInfo> {
  const fileBytes = (await stat(path)).size;
  if (fileBytes % BLOCK_BYTES !== DIGEST_BYTES || fileBytes < BLOCK_BYTES + DIGEST_BYTES) {
    throw new SnapshotFileError(`${path} is not a Conclave snapshot file (${fileBytes} bytes, expected a multiple of ${BLOCK_BYTES} plus a ${DIGEST_BYTES}-byte digest)`);
  }
  const fh = await open(path, 'r');
  try {
    const lengthAt = fileBytes - DIGEST_BYTES - PAD_LENGTH_BYTES;
    const lengthBuf = Buffer.alloc(PAD_LENGTH_BYTES);
    await fh.read(lengthBuf, 0, PAD_LENGTH_BYTES, lengthAt);
    const padBytes = lengthBuf.readUInt16BE(0);
    if (padBytes < PAD_LENGTH_BYTES || padBytes > BLOCK_BYTES + 1 || padBytes > fileBytes - DIGEST_BYTES) throw new SnapshotFileError(`${path}: bad padding length ${padBytes}`);
    const bodyBytes = fileBytes - DIGEST_BYTES - padBytes;
    const tail = Buffer.alloc(Math.min(64, bodyBytes));
    await fh.read(tail, 0, tail.length, bodyBytes - tail.length);
    let records: number;
    try {
      records = snapshotRecordCount(tail);
    } catch (e) {
      throw new SnapshotFileError(`${path}: ${(e as Error).message}`, { cause: e });
    }
    return { path, fileBytes, bodyBytes, records };
  } finally {
    await fh.close();
  }
}

/**
 * Checks the file's SHA-256 digest against its content; `progress` hears of the bytes read.
 * Throws (with etcd's wording) on a mismatch.
 */
export async function verifySnapshotDigest(info: SnapshotFileInfo, progress: (bytes: number) => void = () => {}): Promise<void> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(info.path, { start: 0, end: info.fileBytes - DIGEST_BYTES - 1 }) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    progress(chunk.length);
  }
  const fh = await open(info.path, 'r');
  const expected = Buffer.alloc(DIGEST_BYTES);
  try {
    await fh.read(expected, 0, DIGEST_BYTES, info.fileBytes - DIGEST_BYTES);
  } finally {
    await fh.close();
  }
  const got = hash.digest();
  if (!got.equals(expected)) throw new SnapshotFileError(`expected sha256 ${expected.toString('hex')}, got ${got.toString('hex')}`);
}

/** The store's snapshot stream inside the file; `progress` hears of the bytes read. */
export async function* snapshotBody(info: SnapshotFileInfo, progress: (bytes: number) => void = () => {}): AsyncGenerator<Uint8Array> {
  for await (const chunk of createReadStream(info.path, { start: 0, end: info.bodyBytes - 1 }) as AsyncIterable<Buffer>) {
    progress(chunk.length);
    yield chunk;
  }
}
