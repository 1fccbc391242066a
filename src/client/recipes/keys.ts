/**
 * Keys the queue and barrier recipes create: unique ones (put only if absent) and sequential
 * ones (one greater than the last key of the prefix, 16 zero-padded digits).
 */
import { randomBytes } from 'node:crypto';
import type { Client } from '../client.ts';
import type { Bytes, KeyValue } from '../kv.ts';
import { compare, op } from '../txn.ts';

const SEQUENCE_DIGITS = 16;

/**
 * Puts `value` under `<prefix>/<time><random>`, a key no one else has; returns it as stored.
 * The put is conditional on the key's absence, so a retry after an indeterminate failure
 * cannot create a second key with the same name.
 */
export async function putUniqueKey(client: Client, prefix: string, value: Bytes, lease?: bigint): Promise<KeyValue> {
  for (;;) {
    const key = `${prefix}/${Date.now().toString().padStart(15, '0')}${randomBytes(6).toString('hex')}`;
    const r = await client
      .txn()
      .if(compare.createRevision(key, '=', 0))
      .then(op.put(key, value, lease === undefined ? {} : { lease }))
      .commit();
    if (r.succeeded) return { key: Buffer.from(key), value: Buffer.from(value), createRevision: r.header.revision, modRevision: r.header.revision, version: 1, lease: lease ?? 0n };
  }
}

/**
 * Puts `value` under `<prefix>/<n>` with n one more than the last key's number. A marker key
 * `__<prefix>` is written with it and compared, so two writers can never take the same number,
 * and a number freed by a delete is not handed out again while later numbers exist.
 */
export async function putSequentialKey(client: Client, prefix: string, value: Bytes): Promise<KeyValue> {
  const marker = `__${prefix}`;
  for (;;) {
    const last = await client.get(`${prefix}/`, { prefix: true, sort: { target: 'KEY', order: 'DESCEND' }, limit: 1 });
    const lastKey = last.kvs[0]?.key.toString('utf8');
    const n = lastKey === undefined ? 0 : Number(lastKey.slice(lastKey.lastIndexOf('/') + 1)) + 1;
    const key = `${prefix}/${String(n).padStart(SEQUENCE_DIGITS, '0')}`;
    const r = await client
      .txn()
      .if(compare.modRevision(marker, '<', last.header.revision + 1))
      .then(op.put(marker, ''), op.put(key, value))
      .commit();
    if (r.succeeded) return { key: Buffer.from(key), value: Buffer.from(value), createRevision: r.header.revision, modRevision: r.header.revision, version: 1, lease: 0n };
  }
}
