/**
 * Lock workload: contenders take one lock with etcd's client-side mutex recipe (the one
 * etcdctl lock runs: concurrency.Mutex over KV, Watch and Lease), then, while holding it, write
 * a protected resource fenced by their token, and release. The recipe, per attempt:
 *
 *   1. grant a lease (kept alive while waiting and holding);
 *   2. Txn: if create_revision(lk/<lease>) = 0, put it with the lease, else get it; and get the
 *      oldest key under the lock prefix. The client's token is its key's create revision; if the
 *      oldest key is its own, it holds the lock (at the Txn's revision);
 *   3. else, until no key older than its own is left: get the newest key older than its own
 *      (max_create_revision = token − 1) and watch it from that get's revision until it is
 *      deleted. When none is left it holds the lock, at that last get's revision, provided its
 *      own key still exists;
 *   4. fenced writes: Txn if create_revision(own key) = token, put lkres = "<token>:<n>";
 *   5. release: delete the own key, revoke the lease.
 *
 * lock-check.ts checks mutual exclusion, unique tokens and fencing against the history of the
 * lock prefix and the resource, read back after the heal.
 */
import type { Etcd3 } from 'etcd3';
import type { Prng } from '../../sim/prng.ts';
import { definitelyNotApplied, errorText } from '../client.ts';
import { checkLock, type Acquisition } from './lock-check.ts';
import { readHistory, watchSession } from './watch.ts';
import { clientFor, Counts, runWorkers, sleep, type Anomaly, type Workload, type WorkloadContext, type WorkloadReport } from './workload.ts';

export const LOCK_LIMITS = {
  contenders: 3,
  ttlSeconds: 3,
  /** Longest wait for an older holder's key to go before an attempt is given up. */
  waitMs: 10_000,
  /** Fenced writes per hold. */
  writesMax: 3,
  holdMs: [0, 300] as const,
  thinkMs: [50, 300] as const,
} as const;

const LOCK_PREFIX = 'lk/';
const RESOURCE = 'lkres';
/** A prefix covering both the lock keys and the resource, for reading the history back. */
const HISTORY_PREFIX = 'lk';

class Abandoned extends Error {}

export class LockWorkload implements Workload {
  readonly name = 'lock';
  private readonly counts = new Counts();
  private readonly acquisitions: Acquisition[] = [];
  private startRevision = 0;
  private fencedWrites = 0;
  private lostHolds = 0;

  constructor(private readonly ctx: WorkloadContext) {}

  async run(stopping: () => boolean): Promise<void> {
    const c = this.ctx.cluster;
    const first = await c.client(c.members()[0]!).kv.put({ key: Buffer.from(`${HISTORY_PREFIX}~start`), value: Buffer.from('') });
    this.startRevision = Number(first.header.revision) + 1;
    await runWorkers(LOCK_LIMITS.contenders, stopping, LOCK_LIMITS.thinkMs, this.ctx.rng.fork('lock'), (w, rng) => this.attempt(w, rng));
  }

  private client(w: number): Etcd3 {
    return clientFor(this.ctx, this.name, w);
  }

  private async attempt(w: number, rng: Prng): Promise<void> {
    this.counts.ops++;
    let lease: string;
    try {
      lease = (await this.client(w).leaseClient.leaseGrant({ TTL: LOCK_LIMITS.ttlSeconds })).ID;
    } catch (e) {
      this.counts.error(e);
      this.counts[definitelyNotApplied(e) ? 'failed' : 'indeterminate']++;
      return;
    }
    const keepAlive = setInterval(() => void this.keepAlive(w, lease), (LOCK_LIMITS.ttlSeconds * 1000) / 3);
    const myKey = Buffer.from(`${LOCK_PREFIX}${BigInt(lease).toString(16)}`);
    try {
      const { token, revision } = await this.acquire(w, lease, myKey);
      this.acquisitions.push({ client: w, token, revision, at: this.ctx.clock() });
      this.counts.ok++;
      const writes = rng.int(1, LOCK_LIMITS.writesMax);
      for (let n = 1; n <= writes; n++) {
        const res = await this.client(w).kv.txn({
          compare: [{ key: myKey, target: 'Create', result: 'Equal', create_revision: token }],
          success: [{ request_put: { key: Buffer.from(RESOURCE), value: Buffer.from(`${token}:${n}`) } }],
          failure: [],
        });
        if (!res.succeeded) {
          this.lostHolds++;
          break;
        }
        this.fencedWrites++;
        await sleep(rng.int(...LOCK_LIMITS.holdMs));
      }
    } catch (e) {
      this.counts.error(e);
      this.counts[e instanceof Abandoned || definitelyNotApplied(e) ? 'failed' : 'indeterminate']++;
    } finally {
      clearInterval(keepAlive);
      // Release; if this fails the lease expires and takes the key with it.
      await this.client(w).kv.deleteRange({ key: myKey }).catch(() => undefined);
      await this.client(w).leaseClient.leaseRevoke({ ID: lease }).catch(() => undefined);
    }
  }

  private async keepAlive(w: number, lease: string): Promise<void> {
    const stream = await this.client(w).leaseClient.leaseKeepAlive().catch(() => undefined);
    if (stream === undefined) return;
    const timer = setTimeout(() => stream.cancel(), 1_000);
    stream.on('data', () => {
      clearTimeout(timer);
      stream.cancel();
    });
    stream.on('error', () => clearTimeout(timer));
    stream.write({ ID: lease });
  }

  /** Steps 2–3 of the recipe: resolves with the token and the revision it was concluded at. */
  private async acquire(w: number, lease: string, myKey: Buffer): Promise<{ token: number; revision: number }> {
    const prefixEnd = Buffer.from(LOCK_PREFIX);
    prefixEnd[prefixEnd.length - 1]!++;
    const oldest = { request_range: { key: Buffer.from(LOCK_PREFIX), range_end: prefixEnd, sort_target: 'Create' as const, sort_order: 'Ascend' as const, limit: 1 } };
    const res = await this.client(w).kv.txn({
      compare: [{ key: myKey, target: 'Create', result: 'Equal', create_revision: 0 }],
      success: [{ request_put: { key: myKey, value: Buffer.from(''), lease } }, oldest],
      failure: [{ request_range: { key: myKey } }, oldest],
    });
    const token = res.succeeded ? Number(res.header.revision) : Number(res.responses[0]!.response_range.kvs[0]!.create_revision);
    const owner = res.responses[1]!.response_range.kvs[0];
    if (owner === undefined || Number(owner.create_revision) === token) return { token, revision: Number(res.header.revision) };
    const deadline = this.ctx.clock() + LOCK_LIMITS.waitMs;
    for (;;) {
      const older = await this.client(w).kv.range({
        key: Buffer.from(LOCK_PREFIX),
        range_end: prefixEnd,
        sort_target: 'Create',
        sort_order: 'Descend',
        limit: 1,
        max_create_revision: token - 1,
      });
      const last = older.kvs[0];
      const at = Number(older.header.revision);
      if (last === undefined) {
        const mine = await this.client(w).kv.range({ key: myKey });
        if (mine.kvs.length === 0) throw new Abandoned('the lock key expired while waiting');
        // Held from the revision of the read that found no older key: mine was live then too,
        // as it was created before and is still there.
        return { token, revision: at };
      }
      const left = deadline - this.ctx.clock();
      if (left <= 0) throw new Abandoned('waited too long');
      await this.waitDeleted(w, last.key.toString(), at + 1, left);
    }
  }

  /** Watches `key` from `fromRevision` until it is deleted, or gives up after `timeoutMs`. */
  private async waitDeleted(w: number, key: string, fromRevision: number, timeoutMs: number): Promise<void> {
    let deleted = false;
    try {
      await watchSession(this.client(w), key, fromRevision, (events) => (deleted ||= events.some((e) => e.type === 'DELETE' && e.key === key)), () => deleted, sleep(timeoutMs));
    } catch (e) {
      throw new Abandoned(`watch failed: ${errorText(e)}`);
    }
  }

  async check(): Promise<WorkloadReport> {
    const c = this.ctx.cluster;
    const member = c.members()[0]!;
    const end = await c.client(member).kv.put({ key: Buffer.from(`${HISTORY_PREFIX}~end`), value: Buffer.from('') });
    const anomalies: Anomaly[] = [];
    try {
      const history = await readHistory(c.client(member), HISTORY_PREFIX, this.startRevision, Number(end.header.revision), member);
      anomalies.push(...checkLock(this.acquisitions, history, LOCK_PREFIX, RESOURCE));
    } catch (e) {
      anomalies.push({ kind: 'history unreadable', details: errorText(e) });
    }
    return this.counts.report(this.name, anomalies, [`${this.acquisitions.length} holds, ${this.fencedWrites} fenced writes, ${this.lostHolds} holds lost to expiry`]);
  }
}
