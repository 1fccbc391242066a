/**
 * A member's data directory (as etcd lays it out) and the bootstrap of a new cluster's member in
 * it, shared by `conclave serve` (a new cluster) and `conclave snapshot restore` (a new cluster
 * seeded with a snapshot's data):
 *
 *   <data-dir>/member/wal/   the write-ahead log (src/wal), unless --wal-dir names another place
 *   <data-dir>/member/snap/  Raft snapshot files (metadata; the state itself is the store)
 *   <data-dir>/member/db/    the MVCC store (LMDB)
 */
import { join } from 'node:path';
import { MemoryStorage, bootstrapStorage } from '../raft/storage.ts';
import { Wal } from '../wal/index.ts';
import type { ServerConfig } from './config.ts';
import { clusterId as deriveClusterId, memberId as deriveMemberId } from './ids.ts';
import { encodeMemberContext } from './members.ts';

export interface DataDirPaths {
  readonly wal: string;
  readonly snap: string;
  readonly db: string;
}

export function dataDirPaths(dataDir: string, walDir: string): DataDirPaths {
  const member = join(dataDir, 'member');
  return { wal: walDir === '' ? join(member, 'wal') : walDir, snap: join(member, 'snap'), db: join(member, 'db') };
}

/** The flags that name a new cluster and this member in it. */
export type ClusterFlags = Pick<ServerConfig, 'initialCluster' | 'initialClusterToken' | 'initialAdvertisePeerUrls'>;

export interface ClusterIdentity {
  readonly memberId: string;
  readonly clusterId: string;
  /** Every initial member's id by name. */
  readonly memberIds: ReadonlyMap<string, string>;
}

/** Member and cluster ids as etcd derives them from the peer URLs and the token. */
export function clusterIdentity(flags: ClusterFlags): ClusterIdentity {
  const memberIds = new Map([...flags.initialCluster].map(([name, urls]) => [name, deriveMemberId(urls, flags.initialClusterToken)]));
  return {
    memberId: deriveMemberId(flags.initialAdvertisePeerUrls, flags.initialClusterToken),
    clusterId: deriveClusterId([...memberIds.values()]),
    memberIds,
  };
}

/**
 * Creates the WAL of a new cluster's member, and fills the empty `storage` likewise: its first
 * entries add the initial members (with their names and peer URLs), committed at term 1, exactly
 * as every founding member writes them.
 */
export async function bootstrapWal(p: DataDirPaths, flags: ClusterFlags, storage: MemoryStorage): Promise<Wal> {
  const identity = clusterIdentity(flags);
  const wal = await Wal.create(p.wal, { memberId: identity.memberId, clusterId: identity.clusterId });
  const contexts = new Map([...flags.initialCluster].map(([name, urls]) => [identity.memberIds.get(name)!, encodeMemberContext({ name, peerUrls: urls })]));
  const entries = bootstrapStorage(storage, [...identity.memberIds.values()], contexts);
  await wal.save(storage.hardState(), entries);
  return wal;
}
