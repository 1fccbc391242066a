/**
 * A binary min-heap whose items know their own position, so an item's priority can be changed or
 * the item removed in O(log n). The lessor needs exactly that: every keep-alive moves one lease's
 * deadline, every revoke removes one lease, and the leader asks "what is due?" many times a second.
 * A heap with lazy deletion would pile up one stale entry per keep-alive (a lease renewed every
 * second for an hour leaves 3,600); the positions avoid that garbage at the cost of one integer per
 * item. Ties are broken by the caller's comparator, so the order of due items is deterministic.
 */

/** Where an item keeps its index in one heap; an item can sit in several heaps through several slots. */
export interface HeapSlot<T> {
  get(item: T): number;
  set(item: T, index: number): void;
}

/** Index stored in an item that is in no heap. */
export const NOT_IN_HEAP = -1;

export class IndexedMinHeap<T> {
  private items: T[] = [];

  /** `before(a, b)` is true when a must come out before b (smaller priority, then a tie-break). */
  constructor(
    private readonly before: (a: T, b: T) => boolean,
    private readonly slot: HeapSlot<T>,
  ) {}

  get size(): number {
    return this.items.length;
  }

  has(item: T): boolean {
    const i = this.slot.get(item);
    return i !== NOT_IN_HEAP && this.items[i] === item;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    if (this.has(item)) throw new Error('heap: item is already in the heap');
    this.items.push(item);
    this.slot.set(item, this.items.length - 1);
    this.up(this.items.length - 1);
  }

  /** Call after the item's priority changed; inserts it if it was not in the heap. */
  update(item: T): void {
    if (!this.has(item)) {
      this.push(item);
      return;
    }
    const i = this.slot.get(item);
    if (!this.up(i)) this.down(i);
  }

  remove(item: T): boolean {
    if (!this.has(item)) return false;
    const i = this.slot.get(item);
    const last = this.items.pop()!;
    this.slot.set(item, NOT_IN_HEAP);
    if (last !== item) {
      this.items[i] = last;
      this.slot.set(last, i);
      if (!this.up(i)) this.down(i);
    }
    return true;
  }

  pop(): T | undefined {
    const top = this.items[0];
    if (top !== undefined) this.remove(top);
    return top;
  }

  /** Empties the heap, marking every item as out of it. */
  clear(): void {
    for (const it of this.items) this.slot.set(it, NOT_IN_HEAP);
    this.items = [];
  }

  /**
   * Replaces the content with `items` in O(n) (Floyd's bottom-up construction) rather than n
   * pushes: promote() loads every lease at once, and that should not cost n·log n sift-ups.
   */
  rebuild(items: readonly T[]): void {
    this.clear();
    this.items = items.slice();
    for (let i = 0; i < this.items.length; i++) this.slot.set(this.items[i]!, i);
    for (let i = (this.items.length >> 1) - 1; i >= 0; i--) this.down(i);
  }

  /** Checks the heap property and the stored positions; for tests. */
  check(): void {
    for (let i = 0; i < this.items.length; i++) {
      const it = this.items[i]!;
      if (this.slot.get(it) !== i) throw new Error(`heap: item at ${i} records position ${this.slot.get(it)}`);
      if (i > 0 && this.before(it, this.items[(i - 1) >> 1]!)) throw new Error(`heap: item at ${i} precedes its parent`);
    }
  }

  /** Moves the item at i towards the root; reports whether it moved. */
  private up(i: number): boolean {
    const item = this.items[i]!;
    const start = i;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = this.items[p]!;
      if (!this.before(item, parent)) break;
      this.items[i] = parent;
      this.slot.set(parent, i);
      i = p;
    }
    this.items[i] = item;
    this.slot.set(item, i);
    return i !== start;
  }

  private down(i: number): void {
    const n = this.items.length;
    const item = this.items[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.before(this.items[r]!, this.items[l]!) ? r : l;
      const child = this.items[c]!;
      if (!this.before(child, item)) break;
      this.items[i] = child;
      this.slot.set(child, i);
      i = c;
    }
    this.items[i] = item;
    this.slot.set(item, i);
  }
}
