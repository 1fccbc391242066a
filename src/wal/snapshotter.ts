/**
 * Snapshot files: the state machine's image at a snapshot marker, kept beside the WAL.
 *
 * Why separate files: a snapshot is large and written rarely; the WAL only records that it exists
 * (a snapshot marker) so recovery knows where the log starts. The server saves the file first and
 * the marker second, so every marker in the WAL has a file; a file without a marker (crash in
 * between) is harmless, and `loadNewest`'s `accept` lets the caller skip it.
 *
 * Format, one file per snapshot, named `%016x-%016x.snap` (index, then term: name order is age
 * order). Integers little-endian:
 *
 *     magic "CVSN" | version u8 | crc u32 | metadata | dataLength u64 | data
 *
 * `metadata` is laid out as the WAL's snapshot marker payload (format.ts: index, term, flags,
 * ConfState). `crc` is CRC-32 over everything after it. A file is written under `<name>.tmp`,
 * synced, renamed and the directory synced, so a crash leaves either the old set of files or the
 * new one, plus at worst a `.tmp` that the next save deletes. A file that fails its checksum is
 * skipped in favour of the next older one and reported, never silently used.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import type { Snapshot, SnapshotMetadata } from '../raft/types.ts';
import { crc32 } from '../util/crc32.ts';
import { SnapshotCorruptError } from './errors.ts';
import { DecodeError, PayloadReader, readSnapshot, snapshotPayloadBytes, writeSnapshotPayload } from './format.ts';
import { closeFd, defaultSync, ensureDir, openFd, syncDir, writeAll, type SyncFn } from './fsutil.ts';
import { SNAPSHOT_LIMITS_DEFAULT } from './limits.ts';

const MAGIC = Buffer.from('CVSN', 'ascii');
const SNAPSHOT_VERSION = 1;
/** magic, version, crc */
const PREFIX_BYTES = 4 + 1 + 4;
const NAME = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/;

export interface SnapshotterOptions {
  /** How many snapshot files to keep after a save (the newest ones). Default 5. */
  readonly keep?: number;
  /** Files larger than this are not read (reported as broken). Default 1 GiB. */
  readonly snapshotBytesMax?: number;
  readonly sync?: SyncFn;
}

export interface BrokenSnapshot {
  readonly file: string;
  readonly error: SnapshotCorruptError;
}

export interface LoadedSnapshot {
  /** The newest valid (and accepted) snapshot, or null if there is none. */
  readonly snapshot: Snapshot | null;
  readonly file: string | null;
  /** Newer files that were skipped because they failed verification, newest first. */
  readonly broken: readonly BrokenSnapshot[];
}

export function snapshotFileName(meta: SnapshotMetadata): string {
  return `${meta.index.toString(16).padStart(16, '0')}-${meta.term.toString(16).padStart(16, '0')}.snap`;
}

/** Snapshot file names in `dir`, newest first. */
export async function listSnapshots(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.promises.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names.filter((n) => NAME.test(n)).sort().reverse();
}

export function encodeSnapshotFile(snapshot: Snapshot): Buffer {
  const metaBytes = snapshotPayloadBytes(snapshot.metadata);
  const head = Buffer.allocUnsafe(PREFIX_BYTES + metaBytes + 8);
  MAGIC.copy(head, 0);
  head[4] = SNAPSHOT_VERSION;
  let o = writeSnapshotPayload(head, PREFIX_BYTES, { metadata: snapshot.metadata, restart: false });
  const len = snapshot.data.byteLength;
  head.writeUInt32LE(len >>> 0, o);
  head.writeUInt32LE(Math.floor(len / 0x1_0000_0000), o + 4);
  o += 8;
  const crc = crc32(snapshot.data, crc32(head.subarray(PREFIX_BYTES, o), 0));
  head.writeUInt32LE(crc, 5);
  return Buffer.concat([head, snapshot.data]);
}

export function decodeSnapshotFile(buf: Buffer, file: string): Snapshot {
  const bad = (reason: string, cause?: unknown): SnapshotCorruptError => new SnapshotCorruptError(file, reason, cause === undefined ? undefined : { cause });
  if (buf.length < PREFIX_BYTES) throw bad(`${buf.length} bytes is too short for a snapshot file`);
  if (!buf.subarray(0, 4).equals(MAGIC)) throw bad('bad magic');
  if (buf[4] !== SNAPSHOT_VERSION) throw bad(`unsupported version ${buf[4]}`);
  const stored = buf.readUInt32LE(5);
  if (crc32(buf.subarray(PREFIX_BYTES), 0) !== stored) throw bad('checksum mismatch');
  try {
    const rest = buf.subarray(PREFIX_BYTES);
    const r = new PayloadReader(rest);
    const meta = readSnapshot(r).metadata;
    const len = r.u64();
    const data = r.rest();
    if (data.byteLength !== len) throw new DecodeError(`data is ${data.byteLength} bytes, header says ${len}`);
    return { metadata: meta, data };
  } catch (err) {
    if (err instanceof DecodeError) throw bad(err.message, err);
    throw err;
  }
}

/** Writes `snapshot` durably into `dir` and prunes all but the newest `keep` files. Returns the file's path. */
export async function saveSnapshot(dir: string, snapshot: Snapshot, options?: SnapshotterOptions): Promise<string> {
  const sync = options?.sync ?? defaultSync;
  const keep = options?.keep ?? SNAPSHOT_LIMITS_DEFAULT.keep;
  if (!Number.isSafeInteger(keep) || keep < 1) throw new RangeError(`snap: keep must be at least 1, got ${keep}`);
  await ensureDir(dir, sync);
  const name = snapshotFileName(snapshot.metadata);
  const tmp = join(dir, `${name}.tmp`);
  const buf = encodeSnapshotFile(snapshot);
  const fd = await openFd(tmp, 'w');
  try {
    await writeAll(fd, buf, 0);
    await sync(fd, 'data');
  } finally {
    await closeFd(fd);
  }
  await fs.promises.rename(tmp, join(dir, name));
  await syncDir(dir, sync);

  // Prune: old files beyond `keep`, and temporary debris of saves that crashed.
  const names = await fs.promises.readdir(dir);
  const snaps = names.filter((n) => NAME.test(n)).sort().reverse();
  const doomed = [...snaps.slice(keep), ...names.filter((n) => n.endsWith('.snap.tmp'))];
  for (const n of doomed) await fs.promises.unlink(join(dir, n));
  if (doomed.length > 0) await syncDir(dir, sync);
  return join(dir, name);
}

/**
 * Loads the newest snapshot file that verifies and that `accept` (if given) takes, e.g. "has a
 * marker in the WAL". Broken files are skipped and reported in `broken`.
 */
export async function loadNewest(
  dir: string,
  options?: SnapshotterOptions & { readonly accept?: (meta: SnapshotMetadata) => boolean },
): Promise<LoadedSnapshot> {
  const max = options?.snapshotBytesMax ?? SNAPSHOT_LIMITS_DEFAULT.snapshotBytesMax;
  const broken: BrokenSnapshot[] = [];
  for (const name of await listSnapshots(dir)) {
    const path = join(dir, name);
    try {
      const st = await fs.promises.stat(path);
      if (st.size > max) throw new SnapshotCorruptError(path, `${st.size} bytes exceeds snapshotBytesMax ${max}`);
      const snap = decodeSnapshotFile(await fs.promises.readFile(path), path);
      if (snapshotFileName(snap.metadata) !== name) throw new SnapshotCorruptError(path, `contents are for ${snapshotFileName(snap.metadata)}`);
      if (options?.accept !== undefined && !options.accept(snap.metadata)) continue;
      return { snapshot: snap, file: path, broken };
    } catch (err) {
      if (!(err instanceof SnapshotCorruptError)) throw err;
      broken.push({ file: path, error: err });
    }
  }
  return { snapshot: null, file: null, broken };
}
