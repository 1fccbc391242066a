/**
 * Thin promise wrappers over the fd-level fs calls the WAL needs. Everything durable goes through
 * one injectable {@link SyncFn}, so a fault test controls every fsync in one place.
 */
import * as fs from 'node:fs';
import { dirname } from 'node:path';
import { withSyncFaults } from '../util/test-hooks.ts';

export type SyncKind = 'data' | 'directory';
/** Makes `fd` durable: file data (fdatasync) or a directory's entries (fsync). Must reject on failure. */
export type SyncFn = (fd: number, kind: SyncKind) => Promise<void>;

const plainSync: SyncFn = (fd, kind) =>
  new Promise((resolve, reject) => {
    const done = (err: NodeJS.ErrnoException | null): void => (err ? reject(err) : resolve());
    if (kind === 'data') fs.fdatasync(fd, done);
    else fs.fsync(fd, done);
  });

/** plainSync, unless the test-only fault hooks are on (src/util/test-hooks.ts). */
export const defaultSync: SyncFn = withSyncFaults(plainSync);

export function openFd(path: string, flags: string): Promise<number> {
  return new Promise((resolve, reject) => fs.open(path, flags, 0o644, (err, fd) => (err ? reject(err) : resolve(fd))));
}

export function closeFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.close(fd, (err) => (err ? reject(err) : resolve())));
}

/** Writes all of `buf` at `position`, continuing after short writes. */
export async function writeAll(fd: number, buf: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const n = await new Promise<number>((resolve, reject) =>
      fs.write(fd, buf, done, buf.length - done, position + done, (err, written) => (err ? reject(err) : resolve(written))),
    );
    if (n === 0) throw new Error(`short write: 0 bytes written at ${position + done}`);
    done += n;
  }
}

/**
 * writeAll on the calling thread. For the WAL's appends: a write of a few KiB into the page cache
 * of a preallocated segment takes microseconds, less than handing it to the libuv threadpool and
 * back (two thread switches per round on the hot path); the fdatasync after it stays async.
 */
export function writeAllSync(fd: number, buf: Uint8Array, position: number): void {
  let done = 0;
  while (done < buf.length) {
    const n = fs.writeSync(fd, buf, done, buf.length - done, position + done);
    if (n === 0) throw new Error(`short write: 0 bytes written at ${position + done}`);
    done += n;
  }
}

export function ftruncateFd(fd: number, length: number): Promise<void> {
  return new Promise((resolve, reject) => fs.ftruncate(fd, length, (err) => (err ? reject(err) : resolve())));
}

export function fstatSize(fd: number): Promise<number> {
  return new Promise((resolve, reject) => fs.fstat(fd, (err, st) => (err ? reject(err) : resolve(st.size))));
}

/** Makes the directory's entries (creations, renames, removals) durable. */
export async function syncDir(dir: string, sync: SyncFn): Promise<void> {
  const fd = await openFd(dir, 'r');
  try {
    await sync(fd, 'directory');
  } finally {
    await closeFd(fd);
  }
}

/** Creates `dir` (and parents) if missing; syncs the parent so the new directory survives a crash. */
export async function ensureDir(dir: string, sync: SyncFn): Promise<void> {
  let created: string | undefined;
  try {
    created = await fs.promises.mkdir(dir, { recursive: true });
  } catch (err) {
    throw new Error(`cannot create directory ${dir}`, { cause: err });
  }
  if (created === undefined) return;
  // Every directory that mkdir created must be recorded in its parent: sync from the deepest up.
  for (let d = dir; ; d = dirname(d)) {
    await syncDir(dirname(d), sync);
    if (d === created || dirname(d) === d) break;
  }
}

const zeroChunks = new Map<number, Buffer>();
function zeros(bytes: number): Buffer {
  let z = zeroChunks.get(bytes);
  if (z === undefined) {
    z = Buffer.alloc(bytes);
    zeroChunks.set(bytes, z);
  }
  return z;
}

/**
 * Writes zeros over [from, to). Used to preallocate a segment (real blocks, not a sparse hole, so
 * an append needs no block allocation and fdatasync has no metadata to commit) and to wipe a torn
 * tail (so bytes of a lost write can never be read as records later).
 */
export async function writeZeros(fd: number, from: number, to: number, chunkBytes: number): Promise<void> {
  const z = zeros(chunkBytes);
  for (let pos = from; pos < to; pos += chunkBytes) {
    const n = Math.min(chunkBytes, to - pos);
    await writeAll(fd, n === chunkBytes ? z : z.subarray(0, n), pos);
  }
}
