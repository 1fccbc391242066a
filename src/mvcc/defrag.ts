/**
 * Defragmentation. LMDB reuses the pages that deletes and compaction free but never gives them
 * back to the file system; a compacting copy (only the pages in use, renumbered) does. The copy
 * is written beside the store directory and swapped in by renaming directories:
 *
 *   <dir>.defrag-tmp   the copy being written (incomplete)
 *   <dir>.defrag       the copy, complete and synced
 *   <dir>.defrag-old   the previous store once swapped out, removed when its last reader is done
 *
 * The store's writers are held off from the copy until the swap (see MvccStore.defragment), so
 * the old and the new directory hold the same state and a crash anywhere leaves a complete store
 * behind: recoverDefrag (run before a store opens) puts one back at <dir> and removes the rest.
 */
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { assert } from './assert.ts';
import { Backend } from './backend.ts';
import { decodeU64, metaKeys } from './codec.ts';
import { fsyncPath } from '../util/fsync.ts';

export interface DefragPaths {
  readonly dir: string;
  readonly tmp: string;
  readonly ready: string;
  readonly old: string;
}

export function defragPaths(dir: string): DefragPaths {
  return { dir, tmp: `${dir}.defrag-tmp`, ready: `${dir}.defrag`, old: `${dir}.defrag-old` };
}

/** LMDB's data file inside a store directory. */
export const DATA_FILE = 'data.mdb';

/** After a crash during a defragmentation: one complete store at <dir>, no leftovers. */
export async function recoverDefrag(dir: string): Promise<void> {
  const p = defragPaths(dir);
  if (!existsSync(p.dir)) {
    // Crashed between the two renames of the swap: either directory holds the same state.
    if (existsSync(p.ready)) await rename(p.ready, p.dir);
    else if (existsSync(p.old)) await rename(p.old, p.dir);
    else return;
    await fsyncPath(dirname(dir));
  }
  for (const leftover of [p.tmp, p.ready, p.old]) await rm(leftover, { recursive: true, force: true });
}

/** The facts a copy must share with its source: applied index, revision, record count. */
function fingerprint(b: Backend): string {
  const u64 = (key: string): number => {
    const v = b.metaGet(key);
    return v === undefined ? 0 : decodeU64(v);
  };
  return `index ${u64(metaKeys.consistentIndex)} revision ${u64(metaKeys.currentRevision)} records ${b.kvEntryCount()}`;
}

/**
 * Writes the compacted copy of `source` (which must not change meanwhile) to <dir>.defrag,
 * synced and checked against the source. Leaves nothing behind if it fails.
 */
export async function writeCompactCopy(source: Backend, p: DefragPaths): Promise<void> {
  for (const leftover of [p.tmp, p.ready]) await rm(leftover, { recursive: true, force: true });
  try {
    await mkdir(p.tmp);
    await source.compactCopy(p.tmp);
    await fsyncPath(join(p.tmp, DATA_FILE));
    const copy = Backend.open(p.tmp);
    try {
      const want = fingerprint(source);
      const got = fingerprint(copy);
      assert(got === want, `compacted copy of ${basename(p.dir)} differs from its source: ${got}, expected ${want}`);
    } finally {
      await copy.close();
    }
    await fsyncPath(p.tmp);
    await rename(p.tmp, p.ready);
    await fsyncPath(dirname(p.dir));
  } catch (e) {
    await rm(p.tmp, { recursive: true, force: true });
    await rm(p.ready, { recursive: true, force: true });
    throw e;
  }
}

/**
 * Moves the store at <dir> to <dir>.defrag-old and the copy to <dir>. An environment still open
 * on the old directory keeps working (its files move with it), for readers pinned before.
 */
export async function swapIn(p: DefragPaths): Promise<void> {
  await rename(p.dir, p.old);
  try {
    await rename(p.ready, p.dir);
  } catch (e) {
    await rename(p.old, p.dir);
    throw e;
  }
  await fsyncPath(dirname(p.dir));
}
