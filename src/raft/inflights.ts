/**
 * The bounded window of appends sent to one follower and not yet acknowledged, by count and by
 * bytes. The leader stops sending when it is full, so a slow follower costs bounded memory.
 */
import { assert } from '../util/assert.ts';

export class Inflights {
  private readonly indexes: number[];
  private readonly sizes: number[];
  private start = 0;
  private count = 0;
  private bytes = 0;

  constructor(
    private readonly maxCount: number,
    private readonly maxBytes: number,
  ) {
    assert(maxCount > 0, 'inflights: maxCount must be positive');
    this.indexes = new Array<number>(maxCount).fill(0);
    this.sizes = new Array<number>(maxCount).fill(0);
  }

  /** Records an append whose last entry is `index`. */
  add(index: number, bytes: number): void {
    assert(!this.full(), 'inflights: add to a full window');
    const slot = (this.start + this.count) % this.maxCount;
    if (this.count > 0) {
      const lastSlot = (slot + this.maxCount - 1) % this.maxCount;
      assert(index > this.indexes[lastSlot]!, `inflights: index ${index} not after ${this.indexes[lastSlot]}`);
    }
    this.indexes[slot] = index;
    this.sizes[slot] = bytes;
    this.count++;
    this.bytes += bytes;
  }

  /** Frees every append whose last index is ≤ `to`. */
  freeLE(to: number): void {
    while (this.count > 0 && this.indexes[this.start]! <= to) {
      this.bytes -= this.sizes[this.start]!;
      this.start = (this.start + 1) % this.maxCount;
      this.count--;
    }
    if (this.count === 0) this.start = 0;
  }

  /** Frees the oldest append, whatever its index. */
  freeFirstOne(): void {
    if (this.count === 0) return;
    this.freeLE(this.indexes[this.start]!);
  }

  full(): boolean {
    return this.count === this.maxCount || (this.maxBytes > 0 && this.bytes >= this.maxBytes);
  }

  size(): number {
    return this.count;
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
    this.bytes = 0;
  }
}
