/**
 * The synced watchers, found by key (etcd's watcherGroup): single-key watchers in a map, range
 * watchers in a list that each commit scans. etcd keeps ranges in an interval tree; a list is
 * enough while range watchers are few (a prefix per resource type, not per client).
 */
import type { Watcher } from './watcher.ts';

export class WatcherGroup {
  private readonly byKey = new Map<string, Set<Watcher>>();
  private readonly ranges = new Set<Watcher>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(w: Watcher): void {
    if (w.bounds.single) {
      let set = this.byKey.get(w.bounds.start);
      if (set === undefined) this.byKey.set(w.bounds.start, (set = new Set()));
      set.add(w);
    } else {
      this.ranges.add(w);
    }
    this.count++;
  }

  delete(w: Watcher): void {
    if (w.bounds.single) {
      const set = this.byKey.get(w.bounds.start);
      if (set === undefined || !set.delete(w)) return;
      if (set.size === 0) this.byKey.delete(w.bounds.start);
    } else if (!this.ranges.delete(w)) {
      return;
    }
    this.count--;
  }

  /** Every watcher of the group (a copy: the caller may move them out). */
  all(): Watcher[] {
    const out = [...this.ranges];
    for (const set of this.byKey.values()) out.push(...set);
    return out;
  }

  /** Calls visit for every watcher whose range holds the latin1 key string k. */
  forEachCovering(k: string, visit: (w: Watcher) => void): void {
    const set = this.byKey.get(k);
    if (set !== undefined) for (const w of set) visit(w);
    for (const w of this.ranges) if (w.covers(k)) visit(w);
  }
}
