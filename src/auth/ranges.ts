/**
 * A set of keys as a union of intervals, merged once and searched by bisection: the structure
 * behind permission checks. etcd keeps each user's permissions in an interval tree and asks
 * whether the intervals together cover the requested range; merging overlapping and adjacent
 * intervals up front answers the same question with one binary search.
 *
 * An interval is [begin, end) over byte strings; `end` null means unbounded (etcd's "\0" range
 * end). An interval with end ≤ begin is empty and adds nothing.
 */

export interface KeyInterval {
  readonly begin: Uint8Array;
  /** Exclusive; null: every key from `begin` on. */
  readonly end: Uint8Array | null;
}

function compare(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/** a vs b where null is +∞. */
function compareEnd(a: Uint8Array | null, b: Uint8Array | null): number {
  if (a === null) return b === null ? 0 : 1;
  if (b === null) return -1;
  return compare(a, b);
}

/** The smallest key after `key` (key + "\0"): a single key as the interval [key, key\0). */
export function successor(key: Uint8Array): Uint8Array {
  const out = new Uint8Array(key.byteLength + 1);
  out.set(key);
  return out;
}

/**
 * The keys a request or permission in etcd's range conventions names: an empty rangeEnd is the
 * one key, "\0" every key from `key` on, anything else [key, rangeEnd).
 */
export function etcdInterval(key: Uint8Array, rangeEnd: Uint8Array): KeyInterval {
  if (rangeEnd.byteLength === 0) return { begin: key, end: successor(key) };
  if (rangeEnd.byteLength === 1 && rangeEnd[0] === 0) return { begin: key, end: null };
  return { begin: key, end: rangeEnd };
}

export class RangeSet {
  /** Disjoint, non-adjacent, sorted by begin. */
  private constructor(private readonly intervals: readonly KeyInterval[]) {}

  static readonly EMPTY = new RangeSet([]);

  static of(intervals: Iterable<KeyInterval>): RangeSet {
    const live = [...intervals].filter((i) => i.end === null || compare(i.begin, i.end) < 0);
    live.sort((a, b) => compare(a.begin, b.begin));
    const merged: KeyInterval[] = [];
    for (const i of live) {
      const last = merged[merged.length - 1];
      // Overlapping or touching ([a,b) and [b,c)) intervals become one.
      if (last !== undefined && (last.end === null || compare(i.begin, last.end) <= 0)) {
        if (compareEnd(i.end, last.end) > 0) merged[merged.length - 1] = { begin: last.begin, end: i.end };
        continue;
      }
      merged.push(i);
    }
    return new RangeSet(merged);
  }

  get size(): number {
    return this.intervals.length;
  }

  /** The merged intervals, in key order. */
  list(): readonly KeyInterval[] {
    return this.intervals;
  }

  /** Whether every key of `i` is in the set. An empty interval (end ≤ begin) asks for its begin key. */
  covers(i: KeyInterval): boolean {
    const end = i.end !== null && compare(i.begin, i.end) >= 0 ? successor(i.begin) : i.end;
    // The last interval starting at or before i.begin is the only one that can hold it.
    let lo = 0;
    let hi = this.intervals.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (compare(this.intervals[mid]!.begin, i.begin) <= 0) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    if (found < 0) return false;
    return compareEnd(this.intervals[found]!.end, end) >= 0;
  }

  coversKey(key: Uint8Array): boolean {
    return this.covers({ begin: key, end: successor(key) });
  }
}
