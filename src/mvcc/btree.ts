/**
 * An ordered map from binary-string keys to values: a B+ tree whose leaves are chained for range
 * scans. Keys are latin1 strings (one char per byte), so JavaScript's string order is exactly
 * bytewise order, comparison is a native `<`, and V8 stores them one byte per char.
 *
 * Invariants (checked by `check()` in tests): every leaf except the root holds between
 * min and max entries; inner node i separates children[i] (all keys < keys[i]) from
 * children[i+1] (all keys ≥ keys[i]); all leaves are at the same depth; leaf keys ascend.
 */
import { assert } from './assert.ts';
import { btreeNodeEntriesMax } from './limits.ts';

class Leaf<V> {
  keys: string[] = [];
  vals: V[] = [];
  next: Leaf<V> | null = null;
}

class Inner<V> {
  keys: string[] = [];
  children: Array<Node<V>> = [];
}

type Node<V> = Leaf<V> | Inner<V>;

interface Split<V> {
  readonly sep: string;
  readonly right: Node<V>;
}

/** Index of the first element ≥ key. */
function lowerBound(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the first element > key: the child of an inner node that may hold key. */
function upperBound(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! <= key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class BTree<V> {
  private root: Node<V> = new Leaf<V>();
  private count = 0;
  private readonly max: number;
  private readonly min: number;

  constructor(nodeEntriesMax: number = btreeNodeEntriesMax) {
    assert(nodeEntriesMax >= 4, 'B+ tree fan-out must be at least 4');
    this.max = nodeEntriesMax;
    this.min = nodeEntriesMax >>> 1;
  }

  get size(): number {
    return this.count;
  }

  get(key: string): V | undefined {
    let n = this.root;
    while (n instanceof Inner) n = n.children[upperBound(n.keys, key)]!;
    const i = lowerBound(n.keys, key);
    return i < n.keys.length && n.keys[i] === key ? n.vals[i] : undefined;
  }

  /** Inserts or replaces. */
  set(key: string, value: V): void {
    const split = this.insert(this.root, key, value);
    if (split !== null) {
      const r = new Inner<V>();
      r.keys = [split.sep];
      r.children = [this.root, split.right];
      this.root = r;
    }
  }

  /** Removes key; returns whether it was present. */
  delete(key: string): boolean {
    const removed = this.remove(this.root, key);
    if (removed && this.root instanceof Inner && this.root.children.length === 1) this.root = this.root.children[0]!;
    return removed;
  }

  /**
   * Visits entries with start ≤ key in ascending order until `visit` returns false. The tree must
   * not be modified during the visit.
   */
  forEachFrom(start: string, visit: (key: string, value: V) => boolean | void): void {
    let n = this.root;
    while (n instanceof Inner) n = n.children[upperBound(n.keys, start)]!;
    let leaf: Leaf<V> | null = n;
    let i = lowerBound(leaf.keys, start);
    while (leaf !== null) {
      const keys = leaf.keys;
      const vals = leaf.vals;
      for (; i < keys.length; i++) if (visit(keys[i]!, vals[i]!) === false) return;
      leaf = leaf.next;
      i = 0;
    }
  }

  /** Visits every entry in ascending order until `visit` returns false. */
  forEach(visit: (key: string, value: V) => boolean | void): void {
    this.forEachFrom('', visit);
  }

  clear(): void {
    this.root = new Leaf<V>();
    this.count = 0;
  }

  private insert(n: Node<V>, key: string, value: V): Split<V> | null {
    if (n instanceof Leaf) {
      const i = lowerBound(n.keys, key);
      if (i < n.keys.length && n.keys[i] === key) {
        n.vals[i] = value;
        return null;
      }
      n.keys.splice(i, 0, key);
      n.vals.splice(i, 0, value);
      this.count++;
      if (n.keys.length <= this.max) return null;
      const half = n.keys.length >>> 1;
      const right = new Leaf<V>();
      right.keys = n.keys.slice(half);
      right.vals = n.vals.slice(half);
      // New arrays for the left half too: truncating keeps the capacity of the full array, which
      // a leaf left behind by ascending inserts (they only ever go right) would never use.
      n.keys = n.keys.slice(0, half);
      n.vals = n.vals.slice(0, half);
      right.next = n.next;
      n.next = right;
      return { sep: right.keys[0]!, right };
    }
    const ci = upperBound(n.keys, key);
    const split = this.insert(n.children[ci]!, key, value);
    if (split === null) return null;
    n.keys.splice(ci, 0, split.sep);
    n.children.splice(ci + 1, 0, split.right);
    if (n.children.length <= this.max) return null;
    const mid = n.keys.length >>> 1;
    const right = new Inner<V>();
    const sep = n.keys[mid]!;
    right.keys = n.keys.splice(mid + 1);
    n.keys.length = mid;
    right.children = n.children.splice(mid + 1);
    return { sep, right };
  }

  private remove(n: Node<V>, key: string): boolean {
    if (n instanceof Leaf) {
      const i = lowerBound(n.keys, key);
      if (i >= n.keys.length || n.keys[i] !== key) return false;
      n.keys.splice(i, 1);
      n.vals.splice(i, 1);
      this.count--;
      return true;
    }
    const ci = upperBound(n.keys, key);
    const child = n.children[ci]!;
    if (!this.remove(child, key)) return false;
    const size = child instanceof Leaf ? child.keys.length : child.children.length;
    if (size < this.min) this.rebalance(n, ci);
    return true;
  }

  /** children[ci] of parent fell below the minimum: borrow from a sibling or merge with one. */
  private rebalance(parent: Inner<V>, ci: number): void {
    const child = parent.children[ci]!;
    const left = ci > 0 ? parent.children[ci - 1]! : null;
    const right = ci + 1 < parent.children.length ? parent.children[ci + 1]! : null;
    if (child instanceof Leaf) {
      const l = left as Leaf<V> | null;
      const r = right as Leaf<V> | null;
      if (l !== null && l.keys.length > this.min) {
        child.keys.unshift(l.keys.pop()!);
        child.vals.unshift(l.vals.pop()!);
        parent.keys[ci - 1] = child.keys[0]!;
      } else if (r !== null && r.keys.length > this.min) {
        child.keys.push(r.keys.shift()!);
        child.vals.push(r.vals.shift()!);
        parent.keys[ci] = r.keys[0]!;
      } else if (l !== null) {
        for (let i = 0; i < child.keys.length; i++) {
          l.keys.push(child.keys[i]!);
          l.vals.push(child.vals[i]!);
        }
        l.next = child.next;
        parent.keys.splice(ci - 1, 1);
        parent.children.splice(ci, 1);
      } else if (r !== null) {
        for (let i = 0; i < r.keys.length; i++) {
          child.keys.push(r.keys[i]!);
          child.vals.push(r.vals[i]!);
        }
        child.next = r.next;
        parent.keys.splice(ci, 1);
        parent.children.splice(ci + 1, 1);
      }
      return;
    }
    const l = left as Inner<V> | null;
    const r = right as Inner<V> | null;
    if (l !== null && l.children.length > this.min) {
      child.children.unshift(l.children.pop()!);
      child.keys.unshift(parent.keys[ci - 1]!);
      parent.keys[ci - 1] = l.keys.pop()!;
    } else if (r !== null && r.children.length > this.min) {
      child.children.push(r.children.shift()!);
      child.keys.push(parent.keys[ci]!);
      parent.keys[ci] = r.keys.shift()!;
    } else if (l !== null) {
      l.keys.push(parent.keys[ci - 1]!, ...child.keys);
      for (const c of child.children) l.children.push(c);
      parent.keys.splice(ci - 1, 1);
      parent.children.splice(ci, 1);
    } else if (r !== null) {
      child.keys.push(parent.keys[ci]!, ...r.keys);
      for (const c of r.children) child.children.push(c);
      parent.keys.splice(ci, 1);
      parent.children.splice(ci + 1, 1);
    }
  }

  /** Verifies every structural invariant; for tests. Throws on the first violation. */
  check(): void {
    let leafDepth = -1;
    let seen = 0;
    const walk = (n: Node<V>, depth: number, lo: string | null, hi: string | null, isRoot: boolean): void => {
      if (n instanceof Leaf) {
        if (leafDepth === -1) leafDepth = depth;
        assert(leafDepth === depth, 'leaves at different depths');
        assert(n.keys.length === n.vals.length, 'leaf keys/values length mismatch');
        assert(isRoot || n.keys.length >= this.min, 'leaf underflow');
        assert(n.keys.length <= this.max, 'leaf overflow');
        for (let i = 0; i < n.keys.length; i++) {
          const k = n.keys[i]!;
          if (i > 0) assert(n.keys[i - 1]! < k, 'leaf keys not ascending');
          if (lo !== null) assert(k >= lo, 'leaf key below separator');
          if (hi !== null) assert(k < hi, 'leaf key at or above separator');
        }
        seen += n.keys.length;
        return;
      }
      assert(n.children.length === n.keys.length + 1, 'inner node keys/children mismatch');
      assert(isRoot ? n.children.length >= 2 : n.children.length >= this.min, 'inner underflow');
      assert(n.children.length <= this.max, 'inner overflow');
      for (let i = 0; i < n.children.length; i++) {
        walk(n.children[i]!, depth + 1, i === 0 ? lo : n.keys[i - 1]!, i === n.keys.length ? hi : n.keys[i]!, false);
      }
    };
    walk(this.root, 0, null, null, true);
    assert(seen === this.count, `size ${this.count} but ${seen} entries`);
    let chained = 0;
    let prev: string | null = null;
    this.forEach((k) => {
      if (prev !== null) assert(prev < k, 'leaf chain not ascending');
      prev = k;
      chained++;
    });
    assert(chained === this.count, 'leaf chain misses entries');
  }
}
