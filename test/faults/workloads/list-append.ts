/**
 * List-append workload: transactions of 1–4 micro-operations, each a read of a key's whole list
 * or an append of a unique element to it, run on etcd's API as an optimistic transaction:
 *
 *   1. one Txn of Ranges reads every key the transaction touches, at one revision;
 *   2. a transaction that appends commits with one Txn: if every key's mod_revision is still
 *      what step 1 saw, put each appended key's new list; else it did not happen (failed).
 *
 * A read-only transaction is step 1 alone. A committed transaction is thus serializable at its
 * commit revision (nothing it read changed before it), and strictly serializable if reads and
 * commits are linearizable: append-check.ts checks the history for exactly that. A list is
 * stored as its elements in decimal, separated by spaces.
 */
import type { Prng } from '../../sim/prng.ts';
import { definitelyNotApplied } from '../client.ts';
import { checkAppendHistory, type Element, type MicroOp, type Txn } from './append-check.ts';
import { clientFor, Counts, runWorkers, sleep, type Workload, type WorkloadContext, type WorkloadReport } from './workload.ts';

export const LIST_APPEND_LIMITS = {
  workers: 5,
  keysActive: 6,
  /** Appends to one key before it is retired (lists, and so values, stay short). */
  appendsPerKeyMax: 60,
  mopsMax: 4,
  thinkMs: [5, 40] as const,
  /** Attempts at each final read. */
  finalReadAttempts: 40,
} as const;

const encode = (list: readonly Element[]): Buffer => Buffer.from(list.join(' '));
const decode = (b: Buffer | undefined): Element[] => (b === undefined || b.length === 0 ? [] : b.toString().split(' ').map(Number));

export class ListAppendWorkload implements Workload {
  readonly name = 'append';
  private readonly txns: Txn[] = [];
  private readonly counts = new Counts();
  private readonly slots: { key: string; appends: number }[] = [];
  private readonly allKeys: string[] = [];
  private nextElement = 1;
  private nextTxn = 0;

  constructor(private readonly ctx: WorkloadContext) {
    for (let i = 0; i < LIST_APPEND_LIMITS.keysActive; i++) this.slots.push({ key: this.freshKey(), appends: 0 });
  }

  private freshKey(): string {
    const key = `la/${this.allKeys.length}`;
    this.allKeys.push(key);
    return key;
  }

  private plan(rng: Prng): MicroOp[] {
    const n = rng.int(1, LIST_APPEND_LIMITS.mopsMax);
    const mops: MicroOp[] = [];
    const appended = new Set<string>();
    for (let i = 0; i < n; i++) {
      const slot = rng.pick(this.slots);
      // Reads come before appends and each key gets one append at most: a transaction's reads
      // are then what the store held (not the transaction's own writes).
      if (rng.chance(0.5) && !appended.has(slot.key)) {
        if (slot.appends >= LIST_APPEND_LIMITS.appendsPerKeyMax) {
          slot.key = this.freshKey();
          slot.appends = 0;
        }
        slot.appends++;
        appended.add(slot.key);
        mops.push({ f: 'append', key: slot.key, value: this.nextElement++ });
      } else if (!appended.has(slot.key)) {
        mops.unshift({ f: 'r', key: slot.key, value: null });
      }
    }
    return mops;
  }

  async run(stopping: () => boolean): Promise<void> {
    await runWorkers(LIST_APPEND_LIMITS.workers, stopping, LIST_APPEND_LIMITS.thinkMs, this.ctx.rng.fork('append'), async (w, rng) => {
      const mops = this.plan(rng);
      if (mops.length > 0) await this.transact(w, mops);
    });
  }

  private async transact(w: number, mops: readonly MicroOp[]): Promise<void> {
    const client = clientFor(this.ctx, this.name, w);
    const id = this.nextTxn++;
    const call = this.ctx.clock();
    this.counts.ops++;
    const keys = [...new Set(mops.map((m) => m.key))];
    let lists: Map<string, { list: Element[]; mod: string }>;
    try {
      const res = await client.kv.txn({ compare: [], success: keys.map((k) => ({ request_range: { key: Buffer.from(k) } })), failure: [] });
      lists = new Map(
        keys.map((k, i) => {
          const kv = res.responses[i]!.response_range.kvs[0];
          return [k, { list: decode(kv?.value), mod: kv?.mod_revision ?? '0' }];
        }),
      );
    } catch (e) {
      // Nothing was written yet.
      this.counts.error(e);
      this.counts.failed++;
      this.txns.push({ id, process: w, call, ret: this.ctx.clock(), status: 'fail', mops });
      return;
    }
    const observed = mops.map((m): MicroOp => (m.f === 'r' ? { ...m, value: lists.get(m.key)!.list } : m));
    const appends = mops.filter((m): m is Extract<MicroOp, { f: 'append' }> => m.f === 'append');
    if (appends.length === 0) {
      this.counts.ok++;
      this.txns.push({ id, process: w, call, ret: this.ctx.clock(), status: 'ok', mops: observed });
      return;
    }
    try {
      const res = await client.kv.txn({
        compare: keys.map((k) => ({ key: Buffer.from(k), target: 'Mod' as const, result: 'Equal' as const, mod_revision: lists.get(k)!.mod })),
        success: appends.map((m) => ({ request_put: { key: Buffer.from(m.key), value: encode([...lists.get(m.key)!.list, m.value]) } })),
        failure: [],
      });
      const status = res.succeeded ? 'ok' : 'fail';
      this.counts[status === 'ok' ? 'ok' : 'failed']++;
      this.txns.push({ id, process: w, call, ret: this.ctx.clock(), status, mops: observed });
    } catch (e) {
      this.counts.error(e);
      const sure = definitelyNotApplied(e);
      this.counts[sure ? 'failed' : 'indeterminate']++;
      this.txns.push({ id, process: w, call, ret: sure ? this.ctx.clock() : null, status: sure ? 'fail' : 'info', mops: mops.map((m) => (m.f === 'r' ? { ...m, value: null } : m)) });
    }
  }

  /** Each key's list after the heal, read linearizably (retried: the cluster just recovered). */
  private async finalLists(): Promise<Map<string, Element[]>> {
    const out = new Map<string, Element[]>();
    for (const key of this.allKeys) {
      for (let attempt = 1; ; attempt++) {
        try {
          const res = await clientFor(this.ctx, this.name, attempt).kv.range({ key: Buffer.from(key) });
          out.set(key, decode(res.kvs[0]?.value));
          break;
        } catch (e) {
          if (attempt >= LIST_APPEND_LIMITS.finalReadAttempts) throw new Error(`final read of ${key} failed ${attempt} times`, { cause: e });
          await sleep(250);
        }
      }
    }
    return out;
  }

  async check(): Promise<WorkloadReport> {
    const started = Date.now();
    const anomalies = checkAppendHistory(this.txns, await this.finalLists());
    const elements = this.txns.reduce((n, t) => n + t.mops.filter((m) => m.f === 'append').length, 0);
    return this.counts.report(this.name, anomalies, [`${this.allKeys.length} keys, ${elements} appends attempted, checked in ${Date.now() - started} ms`]);
  }
}
