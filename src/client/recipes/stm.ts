/**
 * Software transactional memory over the key space, with serializable isolation (as etcd's
 * concurrency.STM in its serializable mode).
 *
 * `apply` reads and writes through the transaction object; nothing is written until it returns.
 * All reads see one snapshot: the first read fixes a revision and later reads are made at it.
 * The commit is one txn that applies the writes only if no key read has changed since it was
 * read and no key written has changed since the snapshot; otherwise `apply` runs again on fresh
 * data (the failed commit fetches the keys read, so the retry starts without a round trip).
 *
 * A commit whose outcome is unknown (IndeterminateError) is not retried: running `apply` again
 * could apply its effect twice.
 */
import { StmRetriesExhaustedError } from '../errors.ts';
import type { Client } from '../client.ts';
import { toBytes, type Bytes, type KeyValue } from '../kv.ts';
import { compare, getAt, op, type Compare, type Op } from '../txn.ts';

export interface StmTxn {
  /** The key's value as UTF-8, or undefined if it does not exist (or was deleted here). */
  get(key: string): Promise<string | undefined>;
  /** The key's modification revision at the snapshot (0 if absent). */
  rev(key: string): Promise<number>;
  put(key: string, value: Bytes): void;
  delete(key: string): void;
}

export interface StmOptions {
  /** Keys to read in the first round trip. */
  prefetch?: readonly string[];
  /** How many conflicting tries before giving up (default: limits.stmRetriesMax). */
  retriesMax?: number;
}

type Write = { value: Buffer } | { deleted: true };

class Attempt implements StmTxn {
  /** Key → its single KeyValue at the snapshot, or null if absent. */
  readonly reads = new Map<string, KeyValue | null>();
  readonly writes = new Map<string, Write>();

  constructor(
    private readonly client: Client,
    /** The snapshot revision (0: not fixed yet). */
    public snapshot: number,
    prefetched: ReadonlyMap<string, KeyValue | null>,
  ) {
    for (const [k, v] of prefetched) this.reads.set(k, v);
  }

  async get(key: string): Promise<string | undefined> {
    const w = this.writes.get(key);
    if (w !== undefined) return 'deleted' in w ? undefined : w.value.toString('utf8');
    return (await this.read(key))?.value.toString('utf8');
  }

  async rev(key: string): Promise<number> {
    return (await this.read(key))?.modRevision ?? 0;
  }

  put(key: string, value: Bytes): void {
    this.writes.set(key, { value: toBytes(value) });
  }

  delete(key: string): void {
    this.writes.set(key, { deleted: true });
  }

  private async read(key: string): Promise<KeyValue | null> {
    if (this.reads.has(key)) return this.reads.get(key)!;
    // Linearizable at a fixed revision: any member answers it, none with a stale view.
    const r = await this.client.get(key, this.snapshot === 0 ? {} : { revision: this.snapshot });
    if (this.snapshot === 0) this.snapshot = r.header.revision;
    const kv = r.kvs[0] ?? null;
    this.reads.set(key, kv);
    return kv;
  }

  /** Writes apply only if every key read is unchanged and no key written changed since the snapshot. */
  conditions(): Compare[] {
    const cmps: Compare[] = [];
    for (const [k, kv] of this.reads) cmps.push(compare.modRevision(k, '=', kv?.modRevision ?? 0));
    for (const k of this.writes.keys()) if (!this.reads.has(k) && this.snapshot > 0) cmps.push(compare.modRevision(k, '<', this.snapshot + 1));
    return cmps;
  }

  ops(): Op[] {
    return [...this.writes].map(([k, w]) => ('deleted' in w ? op.delete(k) : op.put(k, w.value)));
  }
}

async function prefetch(client: Client, keys: readonly string[]): Promise<{ snapshot: number; reads: Map<string, KeyValue | null> }> {
  const reads = new Map<string, KeyValue | null>();
  if (keys.length === 0) return { snapshot: 0, reads };
  const r = await client.txn().then(...keys.map((k) => op.get(k))).commit();
  keys.forEach((k, i) => reads.set(k, getAt(r, i).kvs[0] ?? null));
  return { snapshot: r.header.revision, reads };
}

/** Runs `apply` as a serializable transaction, retrying on conflict; returns its result. */
export async function stm<T>(client: Client, apply: (txn: StmTxn) => Promise<T>, options: StmOptions = {}): Promise<T> {
  const retriesMax = options.retriesMax ?? client.rpc.limits.stmRetriesMax;
  let { snapshot, reads } = await prefetch(client, options.prefetch ?? []);
  for (let attempt = 0; attempt < retriesMax; attempt++) {
    const txn = new Attempt(client, snapshot, reads);
    const result = await apply(txn);
    if (txn.writes.size === 0) return result;
    const readKeys = [...txn.reads.keys()];
    const r = await client
      .txn()
      .if(...txn.conditions())
      .then(...txn.ops())
      .else(...readKeys.map((k) => op.get(k)))
      .commit();
    if (r.succeeded) return result;
    reads = new Map(readKeys.map((k, i) => [k, getAt(r, i).kvs[0] ?? null]));
    snapshot = r.header.revision;
  }
  throw new StmRetriesExhaustedError(`stm: still conflicting after ${retriesMax} tries`);
}
