/**
 * A stream's undelivered messages: a FIFO that counts the events and bytes it holds, drained by
 * one consumer (the gRPC writer) at its own pace with poll() or next(). Adding never blocks and
 * never fails: the hub asks for room first and, when there is none, leaves the watcher to catch
 * up from the store later instead of queueing more.
 */
import type { WatchMessage } from './types.ts';

export class Outbox {
  /** Queued messages from `head` on; taken slots are cleared so that sent events can be collected. */
  private items: Array<WatchMessage | undefined> = [];
  private head = 0;
  private waiter: ((r: IteratorResult<WatchMessage, undefined>) => void) | null = null;
  private ended = false;
  /** Events in queued 'events' messages. */
  events = 0;
  /** Bytes of those events. */
  bytes = 0;
  /** Queued messages of the other kinds. */
  control = 0;

  /** onTake runs after the consumer took a message out of the queue (room was freed). */
  constructor(private readonly onTake: () => void) {}

  get length(): number {
    return this.items.length - this.head;
  }

  get closed(): boolean {
    return this.ended;
  }

  push(msg: WatchMessage): void {
    if (this.ended) return;
    if (this.waiter !== null) {
      // Handed over without being queued: no room was taken, so none is freed (no onTake).
      const w = this.waiter;
      this.waiter = null;
      w({ value: msg, done: false });
      return;
    }
    this.items.push(msg);
    if (msg.type === 'events') {
      this.events += msg.events.length;
      this.bytes += msg.bytes;
    } else {
      this.control++;
    }
  }

  /** The next message if one is queued. */
  poll(): WatchMessage | undefined {
    if (this.head === this.items.length) return undefined;
    const msg = this.items[this.head]!;
    this.items[this.head++] = undefined;
    if (this.head === this.items.length) {
      this.items.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    if (msg.type === 'events') {
      this.events -= msg.events.length;
      this.bytes -= msg.bytes;
    } else {
      this.control--;
    }
    this.onTake();
    return msg;
  }

  /** The next message, waiting for one; done once the outbox is closed (queued messages are dropped). */
  next(): Promise<IteratorResult<WatchMessage, undefined>> {
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    const msg = this.poll();
    if (msg !== undefined) return Promise.resolve({ value: msg, done: false });
    if (this.waiter !== null) return Promise.reject(new Error('watch stream: next() while another next() is pending'));
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  close(): void {
    if (this.ended) return;
    this.ended = true;
    this.items = [];
    this.head = 0;
    this.events = 0;
    this.bytes = 0;
    this.control = 0;
    const w = this.waiter;
    this.waiter = null;
    w?.({ value: undefined, done: true });
  }
}
