/**
 * Queues (etcd's recipes).
 *
 * Queue: FIFO in commit order. enqueue() puts a unique key under the prefix; dequeue() claims
 * the key with the lowest create revision by deleting it only if it is unchanged (one claimer
 * wins; the others try the next), and waits for a put when the queue is empty.
 *
 * PriorityQueue: dequeue() takes the lowest priority number first (0 before 1), FIFO within a
 * priority: keys are `<prefix>/<priority, 5 digits>/<sequence>`, taken in key order.
 */
import type { Client } from '../client.ts';
import type { GetOptions, KeyValue } from '../kv.ts';
import { compare, op } from '../txn.ts';
import { putSequentialKey, putUniqueKey } from './keys.ts';
import { waitEvent } from './wait.ts';

/** Priorities 0..99999 (five digits in the key, so key order is priority order). */
export const PRIORITY_MAX = 99_999;

/** Deletes `kv` if it is unchanged since read: true when this caller took it. */
async function claim(client: Client, kv: KeyValue): Promise<boolean> {
  const r = await client.txn().if(compare.modRevision(kv.key, '=', kv.modRevision)).then(op.delete(kv.key)).commit();
  return r.succeeded;
}

/** Takes the first item in `order`, waiting for one when there is none. */
async function takeFirst(client: Client, prefix: string, order: GetOptions['sort'], signal: AbortSignal | undefined): Promise<Buffer> {
  for (;;) {
    const r = await client.get(prefix, { prefix: true, sort: order, limit: 1, signal });
    const first = r.kvs[0];
    if (first !== undefined) {
      if (await claim(client, first)) return first.value;
      continue;
    }
    const e = await waitEvent(client, prefix, r.header.revision + 1, 'put', signal, { prefix: true });
    // Someone else may have put a better candidate in the same moment: re-read, unless we take this one.
    if (order?.target === 'CREATE' && (await claim(client, e.kv))) return e.kv.value;
  }
}

export class Queue {
  constructor(
    private readonly client: Client,
    private readonly prefix: string,
  ) {}

  async enqueue(value: string | Uint8Array): Promise<void> {
    await putUniqueKey(this.client, this.prefix, value);
  }

  /** The oldest item's value (waits while the queue is empty). */
  dequeue(options: { signal?: AbortSignal } = {}): Promise<Buffer> {
    return takeFirst(this.client, `${this.prefix}/`, { target: 'CREATE', order: 'ASCEND' }, options.signal);
  }
}

export class PriorityQueue {
  constructor(
    private readonly client: Client,
    private readonly prefix: string,
  ) {}

  /** Adds an item; lower `priority` numbers are dequeued first. */
  async enqueue(value: string | Uint8Array, priority: number): Promise<void> {
    if (!(Number.isInteger(priority) && priority >= 0 && priority <= PRIORITY_MAX)) throw new RangeError(`priority must be an integer in 0..${PRIORITY_MAX}`);
    await putSequentialKey(this.client, `${this.prefix}/${String(priority).padStart(5, '0')}`, value);
  }

  /** The value of the item with the lowest priority number (oldest first among equals). */
  dequeue(options: { signal?: AbortSignal } = {}): Promise<Buffer> {
    return takeFirst(this.client, `${this.prefix}/`, { target: 'KEY', order: 'ASCEND' }, options.signal);
  }
}
