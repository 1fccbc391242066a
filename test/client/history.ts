import type { Client, WatchEvent } from '../../src/client/index.ts';

/** Every event of `key` (a prefix with `prefix`) from `from` to `to`, read back with a fresh watcher. */
export async function history(client: Client, key: string, from: number, to: number, prefix = false): Promise<WatchEvent[]> {
  const out: WatchEvent[] = [];
  if (to < from) return out;
  for await (const e of client.watch(key, { startRevision: from, prefix, prevKv: true })) {
    out.push(e);
    if (e.kv.modRevision >= to) break;
  }
  return out;
}
