/**
 * Transactions: comparisons (`compare.*`), operations (`op.*`) and the builder that sends them.
 *
 *   await client.txn()
 *     .if(compare.value('k', '=', 'v'), compare.version('n', '>', 0))
 *     .then(op.put('k', 'w'), op.get('n'))
 *     .else(op.get('k'))
 *     .commit();
 *
 * A txn whose operations (nested ones included) only read is idempotent and retried like a read;
 * any put or delete makes it a mutation (see rpc.ts).
 */
import {
  deleteRequest,
  fromDeleteResponse,
  fromHeader,
  fromPutResponse,
  fromRangeResponse,
  keyRange,
  putRequest,
  rangeRequest,
  toBytes,
  type Bytes,
  type DeleteOptions,
  type DeleteResult,
  type GetOptions,
  type GetResult,
  type KeySelector,
  type PbDeleteRangeResponseIn,
  type PbHeaderIn,
  type PbPutResponseIn,
  type PbRangeResponseIn,
  type PutOptions,
  type PutResult,
  type ResponseHeader,
} from './kv.ts';

export type CompareOp = '=' | '!=' | '>' | '<';

/** A comparison of a txn's condition (its wire form). */
export interface Compare {
  readonly wire: object;
}

const RESULT: Record<CompareOp, number> = { '=': 0, '>': 1, '<': 2, '!=': 3 };
const TARGET = { VERSION: 0, CREATE: 1, MOD: 2, VALUE: 3, LEASE: 4 } as const;

function cmp(key: Bytes, op: CompareOp, target: keyof typeof TARGET, field: string, value: unknown, sel: KeySelector | undefined): Compare {
  if (RESULT[op] === undefined) throw new TypeError(`unknown comparison ${op}`);
  const { key: k, range_end } = keyRange(key, sel);
  return { wire: { result: RESULT[op], target: TARGET[target], key: k, range_end, [field]: value } };
}

/** Comparisons; `sel` compares every key of a prefix or range (all must satisfy it). */
export const compare = {
  value: (key: Bytes, op: CompareOp, value: Bytes, sel?: KeySelector): Compare => cmp(key, op, 'VALUE', 'value', toBytes(value), sel),
  /** Version 0 means the key does not exist. */
  version: (key: Bytes, op: CompareOp, version: number, sel?: KeySelector): Compare => cmp(key, op, 'VERSION', 'version', version, sel),
  createRevision: (key: Bytes, op: CompareOp, revision: number, sel?: KeySelector): Compare => cmp(key, op, 'CREATE', 'create_revision', revision, sel),
  modRevision: (key: Bytes, op: CompareOp, revision: number, sel?: KeySelector): Compare => cmp(key, op, 'MOD', 'mod_revision', revision, sel),
  lease: (key: Bytes, op: CompareOp, lease: bigint, sel?: KeySelector): Compare => cmp(key, op, 'LEASE', 'lease', lease.toString(), sel),
};

/** An operation of a txn branch. */
export interface Op {
  readonly kind: 'get' | 'put' | 'delete' | 'txn';
  readonly wire: object;
  /** True when it (or a nested txn) writes. */
  readonly writes: boolean;
}

export const op = {
  get: (key: Bytes, options?: GetOptions): Op => ({ kind: 'get', wire: { request_range: rangeRequest(key, options) }, writes: false }),
  put: (key: Bytes, value: Bytes, options?: PutOptions): Op => ({ kind: 'put', wire: { request_put: putRequest(key, value, options) }, writes: true }),
  delete: (key: Bytes, options?: DeleteOptions): Op => ({ kind: 'delete', wire: { request_delete_range: deleteRequest(key, options) }, writes: true }),
  /** A nested txn (etcd ≥ 3.3). */
  txn: (conditions: readonly Compare[], success: readonly Op[], failure: readonly Op[] = []): Op => ({
    kind: 'txn',
    wire: { request_txn: txnRequest(conditions, success, failure) },
    writes: [...success, ...failure].some((o) => o.writes),
  }),
};

function txnRequest(conditions: readonly Compare[], success: readonly Op[], failure: readonly Op[]): object {
  return { compare: conditions.map((c) => c.wire), success: success.map((o) => o.wire), failure: failure.map((o) => o.wire) };
}

/** One operation's result, tagged by its kind. */
export type OpResult =
  | ({ kind: 'get' } & GetResult)
  | ({ kind: 'put' } & PutResult)
  | ({ kind: 'delete' } & DeleteResult)
  | ({ kind: 'txn' } & TxnResult);

export interface TxnResult {
  header: ResponseHeader;
  /** Whether the conditions held (the `then` branch ran) or not (the `else` branch ran). */
  succeeded: boolean;
  responses: OpResult[];
}

interface PbResponseOpIn {
  response_range?: PbRangeResponseIn | null;
  response_put?: PbPutResponseIn | null;
  response_delete_range?: PbDeleteRangeResponseIn | null;
  response_txn?: PbTxnResponseIn | null;
}

export interface PbTxnResponseIn {
  header: PbHeaderIn | null;
  succeeded: boolean;
  responses: PbResponseOpIn[];
}

function fromResponseOp(r: PbResponseOpIn): OpResult {
  if (r.response_range) return { kind: 'get', ...fromRangeResponse(r.response_range) };
  if (r.response_put) return { kind: 'put', ...fromPutResponse(r.response_put) };
  if (r.response_delete_range) return { kind: 'delete', ...fromDeleteResponse(r.response_delete_range) };
  if (r.response_txn) return { kind: 'txn', ...fromTxnResponse(r.response_txn) };
  throw new Error('txn response operation of unknown kind');
}

export function fromTxnResponse(r: PbTxnResponseIn): TxnResult {
  return { header: fromHeader(r.header), succeeded: r.succeeded === true, responses: (r.responses ?? []).map(fromResponseOp) };
}

/** Builds a txn; `commit` sends it through `send`. Each clause may be given once. */
export class TxnBuilder {
  private conditions: readonly Compare[] = [];
  private success: readonly Op[] = [];
  private failure: readonly Op[] = [];
  private given = new Set<'if' | 'then' | 'else'>();

  constructor(private readonly send: (request: object, writes: boolean) => Promise<TxnResult>) {}

  if(...conditions: Compare[]): this {
    this.once('if');
    this.conditions = conditions;
    return this;
  }

  /**
   * The operations run when every condition holds. (Named as etcd names it; this makes the
   * builder look like a promise, so awaiting the builder itself instead of commit() is refused.)
   */
  then(...ops: Op[]): this {
    if (ops.some((o) => typeof o === 'function')) throw new TypeError('a txn builder is not a promise: await its commit()');
    this.once('then');
    this.success = ops;
    return this;
  }

  else(...ops: Op[]): this {
    this.once('else');
    this.failure = ops;
    return this;
  }

  commit(): Promise<TxnResult> {
    const writes = [...this.success, ...this.failure].some((o) => o.writes);
    return this.send(txnRequest(this.conditions, this.success, this.failure), writes);
  }

  private once(clause: 'if' | 'then' | 'else'): void {
    if (this.given.has(clause)) throw new TypeError(`txn: ${clause}() given twice`);
    this.given.add(clause);
  }
}

/** The first get result of a txn's responses at `index` (throws if it is another kind). */
export function getAt(result: TxnResult, index: number): GetResult {
  const r = result.responses[index];
  if (r?.kind !== 'get') throw new TypeError(`txn response ${index} is not a get`);
  return r;
}
