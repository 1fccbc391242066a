/**
 * The events of the last committed revisions, as the store's commit hook reported them, so that
 * watchers a little behind catch up from memory instead of reading the store back, and get the
 * very event objects the synced watchers got (the gRPC layer encodes each object once).
 *
 * For revisions above the compaction revision these are exactly the events history() returns
 * (history.ts: events are those onCommit reported, prevKv the key's value before the revision).
 * At the compaction revision history() leaves out what compaction dropped, so the hub reads
 * that one from the store.
 */
import type { HistoryBatch, MvccEvent } from '../mvcc/index.ts';
import { eventBytes } from '../mvcc/index.ts';
import { assert } from '../util/assert.ts';

export class RecentRevisions {
  /** A ring of `capacity` slots; revision first + i is in slot (head + i) % capacity. */
  private readonly events: Array<readonly MvccEvent[] | undefined>;
  private readonly sizes: Float64Array;
  private head = 0;
  private count = 0;
  private first = 0;
  private bytes = 0;

  constructor(
    private readonly capacity: number,
    private readonly bytesMax: number,
  ) {
    this.events = new Array<readonly MvccEvent[] | undefined>(capacity).fill(undefined);
    this.sizes = new Float64Array(capacity);
  }

  /** The revision after the last one held (first + count). */
  get end(): number {
    return this.first + this.count;
  }

  /** A committed revision's events; a revision that does not follow the last one starts over. */
  record(revision: number, events: readonly MvccEvent[]): void {
    if (this.count > 0 && revision !== this.end) this.clear();
    if (this.count === 0) this.first = revision;
    let size = 0;
    for (const e of events) size += eventBytes(e);
    if (this.count === this.capacity) this.dropFirst();
    const slot = (this.head + this.count) % this.capacity;
    this.events[slot] = events;
    this.sizes[slot] = size;
    this.count++;
    this.bytes += size;
    while (this.bytes > this.bytesMax && this.count > 1) this.dropFirst();
  }

  clear(): void {
    this.events.fill(undefined);
    this.head = 0;
    this.count = 0;
    this.bytes = 0;
  }

  /**
   * Revisions from..to as one catch-up batch bounded like history()'s: whole revisions, stopping
   * before the one that would take it beyond recordsMax events or bytesMax event bytes, but
   * holding at least one. Undefined unless every revision from..to is held.
   */
  batch(from: number, to: number, recordsMax: number, bytesMax: number): HistoryBatch | undefined {
    if (this.count === 0 || from < this.first || to !== this.end - 1 || from > to) return undefined;
    const events: MvccEvent[] = [];
    let bytes = 0;
    let rev = from;
    for (; rev <= to; rev++) {
      const slot = (this.head + (rev - this.first)) % this.capacity;
      const evs = this.events[slot];
      assert(evs !== undefined, 'recent revision slot is empty');
      if (events.length > 0 && (events.length + evs.length > recordsMax || bytes + this.sizes[slot]! > bytesMax)) break;
      for (const e of evs) events.push(e);
      bytes += this.sizes[slot]!;
    }
    return { events, nextRevision: rev, toRevision: to };
  }

  private dropFirst(): void {
    this.bytes -= this.sizes[this.head]!;
    this.events[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.count--;
    this.first++;
  }
}
