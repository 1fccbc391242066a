import { MvccStore } from '../../src/mvcc/index.ts';
import type { MvccEvent } from '../../src/mvcc/index.ts';
import { WatchHub } from '../../src/watch/index.ts';
import type { WatchLimits, WatchMessage, WatchStream } from '../../src/watch/index.ts';
import { tempDir } from '../mvcc/helpers.ts';

export { b } from '../mvcc/helpers.ts';

export interface Fixture {
  readonly store: MvccStore;
  readonly hub: WatchHub;
  close(): Promise<void>;
}

export async function openHub(limits: Partial<WatchLimits> = {}): Promise<Fixture> {
  const { dir, cleanup } = tempDir('conclave-watch-');
  const store = await MvccStore.open(dir, { limits: { compactionBatchLimit: 4, compactionSleepIntervalMs: 0 } });
  const hub = new WatchHub(store, limits);
  return {
    store,
    hub,
    close: async () => {
      hub.close();
      await store.close();
      cleanup();
    },
  };
}

export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Every message queued on the stream now. */
export function drain(s: WatchStream): WatchMessage[] {
  const out: WatchMessage[] = [];
  for (let m = s.poll(); m !== undefined; m = s.poll()) out.push(m);
  return out;
}

/** Drains the streams turn after turn until every watcher is synced and nothing more arrives. */
export async function settle(hub: WatchHub, streams: readonly WatchStream[]): Promise<WatchMessage[][]> {
  const out = streams.map((): WatchMessage[] => []);
  for (let quiet = 0; quiet < 3; ) {
    let got = 0;
    streams.forEach((s, i) => {
      const msgs = drain(s);
      got += msgs.length;
      out[i]!.push(...msgs);
    });
    await nextTurn();
    quiet = got === 0 && hub.stats().unsyncedWatchers === 0 ? quiet + 1 : 0;
  }
  return out;
}

/** The events of a watcher's messages, in order. */
export function eventsOf(msgs: readonly WatchMessage[], watchId: number): MvccEvent[] {
  return msgs.flatMap((m) => (m.type === 'events' && m.watchId === watchId ? [...m.events] : []));
}

/** A compact, comparable form of events: "PUT k@rev=v" / "DELETE k@rev", with "<prev" when prevKv is set. */
export function show(evs: readonly MvccEvent[]): string[] {
  const str = (u: Uint8Array): string => Buffer.from(u).toString('latin1');
  return evs.map((e) => {
    const base = e.type === 'PUT' ? `PUT ${str(e.kv.key)}@${e.kv.modRevision}=${str(e.kv.value)}` : `DELETE ${str(e.kv.key)}@${e.kv.modRevision}`;
    return e.prevKv === undefined ? base : `${base}<${str(e.prevKv.value)}@${e.prevKv.modRevision}`;
  });
}
