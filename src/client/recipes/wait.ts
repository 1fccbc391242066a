/**
 * The waits the recipes are built from: the next event of a kind on a key, and "every key of a
 * prefix created before revision R is gone" (etcd's waitDeletes). Each watches one key only —
 * the last one created before R — so a waiter wakes when its predecessor goes, not on every
 * change of the prefix (no thundering herd).
 */
import { EtcdError } from '../errors.ts';
import type { Client } from '../client.ts';
import type { Bytes, KeySelector, ResponseHeader } from '../kv.ts';
import type { WatchEvent } from '../watch.ts';

/** Throws the signal's reason (as etcd's context error) if it has fired. */
export function checkSignal(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new EtcdError(String(signal.reason));
}

/** The first event of `type` on `key` (or the selected range) at or after `fromRevision`. */
export async function waitEvent(
  client: Client,
  key: Bytes,
  fromRevision: number,
  type: WatchEvent['type'],
  signal: AbortSignal | undefined,
  selector: KeySelector = {},
): Promise<WatchEvent> {
  checkSignal(signal);
  const watcher = client.watch(key, { ...selector, startRevision: fromRevision });
  const onAbort = (): void => watcher.close();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for await (const event of watcher) if (event.type === type) return event;
    checkSignal(signal);
    throw new EtcdError('watch ended before the awaited event (client closed)');
  } finally {
    signal?.removeEventListener('abort', onAbort);
    watcher.close();
  }
}

/** Waits until no key of `prefix` has a create revision ≤ maxCreateRevision. */
export async function waitDeletes(client: Client, prefix: Bytes, maxCreateRevision: number, signal: AbortSignal | undefined): Promise<ResponseHeader> {
  for (;;) {
    checkSignal(signal);
    const r = await client.get(prefix, { prefix: true, maxCreateRevision, sort: { target: 'CREATE', order: 'DESCEND' }, limit: 1, signal });
    const last = r.kvs[0];
    if (last === undefined) return r.header;
    await waitEvent(client, last.key, r.header.revision, 'delete', signal);
  }
}

/** A signal that fires when any of `signals` fires (undefined ones ignored). */
export function anySignal(...signals: (AbortSignal | undefined)[]): AbortSignal {
  return AbortSignal.any(signals.filter((s): s is AbortSignal => s !== undefined));
}
