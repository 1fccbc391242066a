/**
 * The Maintenance service's Snapshot stream: the member's whole store as a sequence of chunks,
 * each with the bytes still to come (the last chunk reports 0). The stream is paused while the
 * consumer has SNAPSHOT_LIMITS.bufferedChunksMax chunks unread, so a slow disk holds the server
 * back instead of filling memory.
 */
import { bytes, num, type Int64 } from '../api/etcd/convert.ts';
import type { PbHeaderIn } from './kv.ts';
import { method, type Rpc } from './rpc.ts';
import type { CallSink } from './transport.ts';

export const SNAPSHOT_LIMITS = {
  bufferedChunksMax: 16,
} as const;

export interface SnapshotChunk {
  blob: Buffer;
  /** Bytes the member will still send after this chunk. */
  remainingBytes: number;
}

interface PbSnapshotResponseIn {
  header: PbHeaderIn | null;
  remaining_bytes: Int64;
  blob: Uint8Array;
}

const SNAPSHOT = method('etcdserverpb.Maintenance', 'Snapshot');

/** Streams a snapshot from the next endpoint in turn (no failover once it has begun). */
export async function* snapshotStream(rpc: Rpc): AsyncGenerator<SnapshotChunk> {
  const queue: SnapshotChunk[] = [];
  let ended = false;
  let failure: Error | null = null;
  let wake: (() => void) | null = null;
  const signal = (): void => {
    wake?.();
    wake = null;
  };
  const sink: CallSink = {
    message: (data) => {
      const r = SNAPSHOT.response.decode(data) as unknown as PbSnapshotResponseIn;
      queue.push({ blob: Buffer.from(bytes(r.blob)), remainingBytes: num(r.remaining_bytes) });
      if (queue.length >= SNAPSHOT_LIMITS.bufferedChunksMax) handle.call.pause();
      signal();
    },
    end: (error) => {
      ended = true;
      failure = error;
      signal();
    },
  };
  const handle = await rpc.openStream(SNAPSHOT, sink, undefined);
  handle.call.send(rpc.encode(SNAPSHOT, {}));
  handle.call.halfClose();
  try {
    for (;;) {
      const chunk = queue.shift();
      if (chunk !== undefined) {
        if (queue.length < SNAPSHOT_LIMITS.bufferedChunksMax / 2) handle.call.resume();
        yield chunk;
        continue;
      }
      if (ended) {
        if (failure !== null) throw failure;
        return;
      }
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    if (!ended) handle.call.cancel();
  }
}
