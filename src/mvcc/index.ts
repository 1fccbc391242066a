/** Public surface of the MVCC store. */
export { MvccStore } from './store.ts';
export type { ApplyResult, DefragmentResult, MetaEntry, MetaReader, MetaWriter, StoreOptions, StoreStats, WriteResult, WriteTxn } from './store.ts';
export { eventBytes } from './history.ts';
export type { HistoryBatch, HistoryRequest } from './history.ts';
export { keyBounds, prefixEnd } from './range.ts';
export type { KeyBounds } from './range.ts';
export { keyBytes, keyString } from './codec.ts';
export { snapshotRecordCount, type SizedSnapshot } from './snapshot.ts';
export * from './errors.ts';
export * from './types.ts';
export { defaultMvccLimits, resolveLimits } from './limits.ts';
export type { MvccLimits } from './limits.ts';
export { checkDeleteRequest, checkPutRequest, checkRangeRequest, checkTxnRequest, isTxnReadonly } from './txn-check.ts';
export { MvccAssertionError } from './assert.ts';
