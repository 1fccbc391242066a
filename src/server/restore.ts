/**
 * `conclave snapshot restore` and `snapshot status`: a snapshot file (snapshot-file.ts) becomes
 * the data directory of a member of a NEW cluster, as etcd's snapshot restore makes one. The
 * store keeps the snapshot's data (keys and their history, leases, alarms, auth), but not the
 * old cluster's membership: the member records go, the applied index goes back to 0, and a fresh
 * WAL starts with the new members (data-dir.ts), whose entries every restored member applies
 * first when it starts. Each member of the new cluster is restored from the same file with its
 * own --name and --initial-advertise-peer-urls and the same --initial-cluster and token.
 */
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MvccStore } from '../mvcc/index.ts';
import type { ServerConfig } from './config.ts';
import { MemoryStorage } from '../raft/storage.ts';
import { bootstrapWal, clusterIdentity, dataDirPaths, type ClusterIdentity } from './data-dir.ts';
import { MEMBERS_NAMESPACE } from './members.ts';
import { inspectSnapshotFile, snapshotBody, verifySnapshotDigest, SnapshotFileError, type SnapshotFileInfo } from './snapshot-file.ts';

/** Progress of a long step, in bytes of the file read. */
export interface RestoreProgress {
  begin(step: string, totalBytes: number): void;
  advance(bytes: number): void;
  end(): void;
}

export const NO_PROGRESS: RestoreProgress = { begin() {}, advance() {}, end() {} };

export interface RestoreResult {
  readonly identity: ClusterIdentity;
  readonly revision: number;
  readonly records: number;
}

async function isEmptyOrAbsent(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length === 0;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw e;
  }
}

async function step<T>(progress: RestoreProgress, name: string, totalBytes: number, run: (advance: (bytes: number) => void) => Promise<T>): Promise<T> {
  progress.begin(name, totalBytes);
  try {
    return await run((bytes) => progress.advance(bytes));
  } finally {
    progress.end();
  }
}

/**
 * Builds config.dataDir (and config.walDir when given; each must be absent or empty) from the snapshot file for the member
 * config names in the cluster config.initialCluster describes. Unless skipHashCheck, the file's
 * digest is checked first. On failure nothing is left in the data directory.
 */
export async function restoreSnapshotFile(
  file: string,
  config: Pick<ServerConfig, 'dataDir' | 'walDir' | 'initialCluster' | 'initialClusterToken' | 'initialAdvertisePeerUrls'>,
  options: { skipHashCheck?: boolean; progress?: RestoreProgress } = {},
): Promise<RestoreResult> {
  const progress = options.progress ?? NO_PROGRESS;
  if (!(await isEmptyOrAbsent(config.dataDir))) throw new SnapshotFileError(`data-dir "${config.dataDir}" not empty or could not be read`);
  if (config.walDir !== '' && !(await isEmptyOrAbsent(config.walDir))) throw new SnapshotFileError(`wal-dir "${config.walDir}" not empty or could not be read`);
  const info = await inspectSnapshotFile(file);
  if (options.skipHashCheck !== true) await step(progress, 'verifying', info.fileBytes, (advance) => verifySnapshotDigest(info, advance));
  const p = dataDirPaths(config.dataDir, config.walDir);
  try {
    await step(progress, 'restoring', info.bodyBytes, (advance) => MvccStore.restore(p.db, snapshotBody(info, advance)));
    const store = await MvccStore.open(p.db);
    let revision: number;
    try {
      store.write(undefined, (tx) => {
        for (const m of tx.meta.entries(MEMBERS_NAMESPACE)) tx.meta.delete(MEMBERS_NAMESPACE, m.key);
      });
      store.resetConsistentIndex();
      revision = store.revision;
      await store.sync();
    } finally {
      await store.close();
    }
    await mkdir(p.snap, { recursive: true });
    const wal = await bootstrapWal(p, config, new MemoryStorage());
    await wal.close();
    return { identity: clusterIdentity(config), revision, records: info.records };
  } catch (e) {
    await rm(join(config.dataDir, 'member'), { recursive: true, force: true });
    if (config.walDir !== '') await rm(config.walDir, { recursive: true, force: true });
    throw e;
  }
}

/** What `snapshot status` reports, as etcdctl's: hash, revision, total keys, total size. */
export interface SnapshotStatus {
  /** The store's hash (as the Hash RPC gives it for a member in that state). */
  readonly hash: number;
  readonly revision: number;
  /** Records in the snapshot (kv revisions and meta entries). */
  readonly totalKey: number;
  /** Size of the store the snapshot restores to. */
  readonly totalSize: number;
}

/** Reads a snapshot file by restoring it to a temporary directory; checks its digest too. */
export async function snapshotFileStatus(file: string, progress: RestoreProgress = NO_PROGRESS): Promise<SnapshotStatus> {
  const info: SnapshotFileInfo = await inspectSnapshotFile(file);
  await step(progress, 'verifying', info.fileBytes, (advance) => verifySnapshotDigest(info, advance));
  const dir = await mkdtemp(join(tmpdir(), 'conclave-snapshot-status-'));
  try {
    const db = join(dir, 'db');
    await step(progress, 'reading', info.bodyBytes, (advance) => MvccStore.restore(db, snapshotBody(info, advance)));
    const store = await MvccStore.open(db);
    try {
      return { hash: (await store.hash()).hash, revision: store.revision, totalKey: info.records, totalSize: store.dbBytes() };
    } finally {
      await store.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
