/**
 * The package's public API: the client, its types and errors, and the recipes.
 * Everything else under src/ is internal.
 */
export { Client, type StatusResult } from './client.ts';
export { Cluster, type MemberAddResult, type MemberInfo, type MembersResult } from './cluster.ts';
export { Auth, type AuthStatusResult, type Permission, type PermissionType } from './auth.ts';
export { SNAPSHOT_LIMITS, type SnapshotChunk } from './maintenance.ts';
export { CLIENT_LIMITS, type ClientLimits, type ClientOptions, type TlsOptions } from './options.ts';
export type { CallOptions } from './rpc.ts';
export {
  prefixEnd,
  type Bytes,
  type DeleteOptions,
  type DeleteResult,
  type GetOptions,
  type GetResult,
  type KeySelector,
  type KeyValue,
  type PutOptions,
  type PutResult,
  type ResponseHeader,
  type SortOrder,
  type SortTarget,
} from './kv.ts';
export { compare, op, TxnBuilder, type Compare, type CompareOp, type Op, type OpResult, type TxnResult } from './txn.ts';
export { Watcher, type WatchEvent, type WatchFilter, type WatchOptions } from './watch.ts';
export { Lease, type LeaseEvents, type LeaseGrantResult, type LeaseTimeToLiveResult } from './lease.ts';
export * from './errors.ts';
export { Mutex } from './recipes/lock.ts';
export { Election } from './recipes/election.ts';
export { Barrier, DoubleBarrier } from './recipes/barrier.ts';
export { PRIORITY_MAX, PriorityQueue, Queue } from './recipes/queue.ts';
export { stm, type StmOptions, type StmTxn } from './recipes/stm.ts';
