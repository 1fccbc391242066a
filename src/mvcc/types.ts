/**
 * The store's data model and request/response shapes. They mirror etcd's mvccpb.KeyValue and the
 * etcdserverpb KV messages field for field (camelCase), with 64-bit revisions as numbers (checked
 * to be safe integers) and lease ids as bigint (etcd lease ids routinely exceed 2^53).
 */

/** One change: `main` is the write request's revision, `sub` its position within that request. */
export interface Revision {
  readonly main: number;
  readonly sub: number;
}

/**
 * A key at one revision, exactly etcd's mvccpb.KeyValue: createRevision is the main revision
 * that created the current generation of the key, modRevision the last one that changed it,
 * version the number of puts since creation (1 after a (re)create; a delete ends the generation).
 */
export interface KeyValue {
  readonly key: Uint8Array;
  readonly createRevision: number;
  readonly modRevision: number;
  readonly version: number;
  readonly value: Uint8Array;
  /** 0n = no lease. */
  readonly lease: bigint;
}

export type SortOrder = 'NONE' | 'ASCEND' | 'DESCEND';
export type SortTarget = 'KEY' | 'VERSION' | 'CREATE' | 'MOD' | 'VALUE';

/**
 * [key, rangeEnd): an absent or empty rangeEnd means the single key; rangeEnd = [0x00] means every
 * key ≥ key (so key [0x00] with rangeEnd [0x00] is the whole key space); a prefix range is
 * key … prefixEnd(key), computed by the caller.
 */
export interface RangeRequest {
  readonly key: Uint8Array;
  readonly rangeEnd?: Uint8Array;
  /** 0 (or negative) = no limit. */
  readonly limit?: number;
  /** 0 (or negative) = current revision. */
  readonly revision?: number;
  readonly sortOrder?: SortOrder;
  readonly sortTarget?: SortTarget;
  readonly keysOnly?: boolean;
  readonly countOnly?: boolean;
  /** 0 = no filter; the revision filters apply after fetching, as in etcd's server layer. */
  readonly minModRevision?: number;
  readonly maxModRevision?: number;
  readonly minCreateRevision?: number;
  readonly maxCreateRevision?: number;
}

export interface RangeResponse {
  /** Header revision: the store's current revision (also for reads at an older revision). */
  readonly revision: number;
  readonly kvs: KeyValue[];
  /** True when more keys matched than `limit` let through. */
  readonly more: boolean;
  /** Keys in the range at the read revision, before limit and before the revision filters. */
  readonly count: number;
}

export interface PutRequest {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
  readonly lease?: bigint;
  readonly prevKv?: boolean;
  readonly ignoreValue?: boolean;
  readonly ignoreLease?: boolean;
}

export interface PutResponse {
  readonly revision: number;
  readonly prevKv?: KeyValue;
}

export interface DeleteRangeRequest {
  readonly key: Uint8Array;
  readonly rangeEnd?: Uint8Array;
  readonly prevKv?: boolean;
}

export interface DeleteRangeResponse {
  readonly revision: number;
  readonly deleted: number;
  readonly prevKvs: KeyValue[];
}

export type CompareResult = 'EQUAL' | 'GREATER' | 'LESS' | 'NOT_EQUAL';

interface CompareBase {
  readonly result: CompareResult;
  readonly key: Uint8Array;
  /** Same conventions as RangeRequest.rangeEnd; every key in the range must satisfy the compare. */
  readonly rangeEnd?: Uint8Array;
}

export type Compare =
  | (CompareBase & { readonly target: 'VALUE'; readonly value: Uint8Array })
  | (CompareBase & { readonly target: 'VERSION'; readonly version: number })
  | (CompareBase & { readonly target: 'CREATE'; readonly createRevision: number })
  | (CompareBase & { readonly target: 'MOD'; readonly modRevision: number })
  | (CompareBase & { readonly target: 'LEASE'; readonly lease: bigint });

export type RequestOp =
  | { readonly op: 'range'; readonly request: RangeRequest }
  | { readonly op: 'put'; readonly request: PutRequest }
  | { readonly op: 'deleteRange'; readonly request: DeleteRangeRequest }
  | { readonly op: 'txn'; readonly request: TxnRequest };

export type ResponseOp =
  | { readonly op: 'range'; readonly response: RangeResponse }
  | { readonly op: 'put'; readonly response: PutResponse }
  | { readonly op: 'deleteRange'; readonly response: DeleteRangeResponse }
  | { readonly op: 'txn'; readonly response: TxnResponse };

export interface TxnRequest {
  readonly compare: readonly Compare[];
  readonly success: readonly RequestOp[];
  readonly failure: readonly RequestOp[];
}

export interface TxnResponse {
  readonly revision: number;
  readonly succeeded: boolean;
  readonly responses: ResponseOp[];
}

export interface CompactResponse {
  readonly revision: number;
}

/** Everything the Raft apply step may hand the store. */
export type MvccRequest = RequestOp | { readonly op: 'compact'; readonly revision: number };

export type MvccResponse =
  | ResponseOp
  | { readonly op: 'compact'; readonly response: CompactResponse };

/**
 * What a committed revision did to one key. For DELETE, kv carries only the key and
 * modRevision = the deleting revision (as etcd's watch events do).
 */
export interface MvccEvent {
  readonly type: 'PUT' | 'DELETE';
  readonly kv: KeyValue;
  /** The key's value before this change, if it existed. */
  readonly prevKv?: KeyValue;
}

/** Called synchronously after each committed revision, in revision order. Must not throw. */
export type CommitListener = (revision: number, events: readonly MvccEvent[]) => void;

export interface HashKVResult {
  /** CRC-32 over the revisions a compaction at compactRevision keeps, up to hashRevision. */
  readonly hash: number;
  readonly compactRevision: number;
  readonly hashRevision: number;
  /** Header revision: current revision when the hash was taken. */
  readonly revision: number;
}

export interface HashResult {
  readonly hash: number;
  readonly revision: number;
}
