/**
 * ReadIndex requests waiting for a heartbeat round to confirm the leader is still the leader.
 * A quorum of acknowledgements for one request also confirms every request queued before it,
 * so one round serves a whole batch of reads.
 */
import type { NodeId } from './types.ts';

export interface PendingRead {
  readonly index: number;
  readonly from: NodeId;
  readonly context: Uint8Array;
  readonly acks: Set<NodeId>;
}

function key(context: Uint8Array): string {
  let s = '';
  for (const b of context) s += String.fromCharCode(b);
  return s;
}

export class ReadOnlyQueue {
  private readonly pending = new Map<string, PendingRead>();
  private readonly queue: string[] = [];

  add(index: number, from: NodeId, context: Uint8Array, self: NodeId): void {
    const k = key(context);
    if (this.pending.has(k)) return;
    this.pending.set(k, { index, from, context, acks: new Set([self]) });
    this.queue.push(k);
  }

  /** Records a heartbeat acknowledgement; returns who has acknowledged that request so far. */
  recvAck(from: NodeId, context: Uint8Array): ReadonlySet<NodeId> | undefined {
    const read = this.pending.get(key(context));
    if (read === undefined) return undefined;
    read.acks.add(from);
    return read.acks;
  }

  /** Releases the request for `context` and every request queued before it. */
  releaseThrough(context: Uint8Array): PendingRead[] {
    const k = key(context);
    const at = this.queue.indexOf(k);
    if (at < 0) return [];
    const released = this.queue.splice(0, at + 1).map((q) => this.pending.get(q)!);
    for (const q of released) this.pending.delete(key(q.context));
    return released;
  }

  lastContext(): Uint8Array | undefined {
    const last = this.queue[this.queue.length - 1];
    return last === undefined ? undefined : this.pending.get(last)!.context;
  }

  clear(): void {
    this.pending.clear();
    this.queue.length = 0;
  }
}
