/**
 * Barriers (etcd's recipes).
 *
 * Barrier: one process holds it (creates the key), any number wait() until it is released (the
 * key is deleted).
 *
 * DoubleBarrier: `count` processes enter(); none gets past enter() until all `count` have
 * entered; then none gets past leave() until all have left. Each participant's key lives under
 * `<key>/waiters/` on its session lease, so a participant that dies releases the others.
 */
import { EtcdError, TooManyClientsError } from '../errors.ts';
import type { Client } from '../client.ts';
import type { KeyValue } from '../kv.ts';
import type { Lease } from '../lease.ts';
import { compare, op } from '../txn.ts';
import { putUniqueKey } from './keys.ts';
import { anySignal, waitEvent } from './wait.ts';

export class Barrier {
  constructor(
    private readonly client: Client,
    private readonly key: string,
  ) {}

  /** Raises the barrier; fails if it is already up. */
  async hold(): Promise<void> {
    const r = await this.client.txn().if(compare.createRevision(this.key, '=', 0)).then(op.put(this.key, '')).commit();
    if (!r.succeeded) throw new EtcdError(`barrier ${this.key} is already held`);
  }

  /** Lowers the barrier: every waiter proceeds. */
  async release(): Promise<void> {
    await this.client.delete(this.key);
  }

  /** Resolves once the barrier is down (at once if it is not up). */
  async wait(options: { signal?: AbortSignal } = {}): Promise<void> {
    const r = await this.client.get(this.key);
    if (r.kvs.length === 0) return;
    await waitEvent(this.client, this.key, r.header.revision + 1, 'delete', options.signal);
  }
}

export class DoubleBarrier {
  private myKey: KeyValue | undefined;

  constructor(
    private readonly client: Client,
    private readonly session: Lease,
    private readonly key: string,
    private readonly count: number,
  ) {
    if (!(Number.isInteger(count) && count > 0)) throw new TypeError('count must be a positive integer');
  }

  private get waiters(): string {
    return `${this.key}/waiters`;
  }

  private get ready(): string {
    return `${this.key}/ready`;
  }

  /** Joins; resolves once `count` participants have joined. */
  async enter(options: { signal?: AbortSignal } = {}): Promise<void> {
    const signal = anySignal(options.signal, this.session.lostSignal);
    this.myKey = await putUniqueKey(this.client, this.waiters, '', this.session.id);
    const r = await this.client.get(`${this.waiters}/`, { prefix: true, countOnly: true });
    if (r.count > this.count) {
      await this.client.delete(this.myKey.key);
      this.myKey = undefined;
      throw new TooManyClientsError(`double barrier ${this.key}: too many clients`);
    }
    if (r.count === this.count) {
      await this.client.put(this.ready, '');
      return;
    }
    await waitEvent(this.client, this.ready, this.myKey.createRevision, 'put', signal);
  }

  /**
   * Leaves; resolves once every participant has left. The participant that entered first waits
   * for the others (the last to enter first); the others leave and wait for the first.
   */
  async leave(options: { signal?: AbortSignal } = {}): Promise<void> {
    const signal = anySignal(options.signal, this.session.lostSignal);
    const mine = this.myKey;
    if (mine === undefined) throw new TypeError('leave() before enter()');
    for (;;) {
      const r = await this.client.get(`${this.waiters}/`, { prefix: true, signal });
      if (r.kvs.length === 0) break;
      let lowest = r.kvs[0]!;
      let highest = r.kvs[0]!;
      for (const kv of r.kvs) {
        if (kv.modRevision < lowest.modRevision) lowest = kv;
        if (kv.modRevision > highest.modRevision) highest = kv;
      }
      const isLowest = lowest.key.equals(mine.key);
      if (r.kvs.length === 1) {
        // The last one out: lower the ready flag for the next round.
        await this.client.txn().then(op.delete(this.ready), op.delete(mine.key)).commit();
        break;
      }
      if (isLowest) {
        await waitEvent(this.client, highest.key, r.header.revision + 1, 'delete', signal);
        continue;
      }
      await this.client.delete(mine.key);
      await waitEvent(this.client, lowest.key, r.header.revision + 1, 'delete', signal);
    }
    this.myKey = undefined;
  }
}
