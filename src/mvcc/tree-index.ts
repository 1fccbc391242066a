/**
 * The in-memory key index: an ordered map (B+ tree) from key to its KeyIndex, plus a hash table of
 * the same KeyIndex objects for point lookups (a B+ tree search costs ~log2(n) string compares,
 * each a likely cache miss; a hash probe costs one or two). It answers "which revision of which
 * keys is live at revision R in [key, end)" without touching the backend, and holds the authority
 * on which revisions compaction keeps. Rebuilt from the backend on open.
 *
 * Keys are latin1 strings of the key bytes (see btree.ts); `end === null` means "no upper bound".
 */
import { BTree } from './btree.ts';
import { KeyIndex } from './key-index.ts';
import { KeyTable } from './key-table.ts';
import type { IndexedRevision } from './key-index.ts';

export class TreeIndex {
  private readonly tree = new BTree<KeyIndex>();
  private readonly byKey = new KeyTable();

  /** Keys with at least one revision in the index (including deleted-but-uncompacted keys). */
  get size(): number {
    return this.tree.size;
  }

  keyIndex(key: string): KeyIndex | undefined {
    return this.byKey.get(key);
  }

  /** The live revision of one key at atRev, or null. */
  get(key: string, atRev: number): IndexedRevision | null {
    const ki = this.byKey.get(key);
    return ki === undefined ? null : ki.liveAt(atRev);
  }

  private insert(key: string, ki: KeyIndex): void {
    this.tree.set(key, ki);
    this.byKey.set(ki);
  }

  private remove(key: string): void {
    this.tree.delete(key);
    this.byKey.delete(key);
  }

  put(key: string, main: number, sub: number, created?: number, version?: number): KeyIndex {
    let ki = this.byKey.get(key);
    if (ki === undefined) {
      ki = new KeyIndex(key);
      this.insert(key, ki);
    }
    ki.put(main, sub, created, version);
    return ki;
  }

  tombstone(key: string, main: number, sub: number): void {
    const ki = this.byKey.get(key);
    if (ki === undefined) throw new Error(`tombstone of a key missing from the index`);
    ki.tombstone(main, sub);
  }

  /** Rebuild path: a tombstone whose key has no earlier revision left after compaction. */
  restoreTombstone(key: string, main: number, sub: number): void {
    const ki = new KeyIndex(key);
    ki.restoreTombstone(main, sub);
    this.insert(key, ki);
  }

  /**
   * Calls visit(key, revision) for each key in [start, end) (or just `start` when single) that is
   * live at atRev, in key order, until visit returns false. Returns the number of keys visited.
   */
  visitLive(
    start: string,
    end: string | null,
    single: boolean,
    atRev: number,
    visit: (key: string, rev: IndexedRevision) => boolean | void,
  ): void {
    if (single) {
      const ki = this.byKey.get(start);
      if (ki === undefined) return;
      const rev = ki.liveAt(atRev);
      if (rev !== null) visit(start, rev);
      return;
    }
    this.tree.forEachFrom(start, (key, ki) => {
      if (end !== null && key >= end) return false;
      const rev = ki.liveAt(atRev);
      if (rev === null) return true;
      return visit(key, rev);
    });
  }

  /** Compacts every key at atRev and drops keys left without revisions. */
  compact(atRev: number): void {
    const empty: string[] = [];
    this.tree.forEach((key, ki) => {
      if (ki.compact(atRev)) empty.push(key);
    });
    for (const key of empty) this.remove(key);
  }

  /** Revisions (as rev-key strings from `revKey`) that a compaction at atRev would keep as puts. */
  keep(atRev: number, revKey: (main: number, sub: number) => string): Set<string> {
    const out = new Set<string>();
    this.tree.forEach((_key, ki) => {
      const r = ki.keep(atRev);
      if (r !== null) out.add(revKey(r.main, r.sub));
    });
    return out;
  }

  hasRevision(key: string, main: number, sub: number): boolean {
    const ki = this.byKey.get(key);
    return ki !== undefined && ki.hasRevision(main, sub);
  }

  /** Undoes revision `main` on `key` (an aborted write). */
  revert(key: string, main: number): void {
    const ki = this.byKey.get(key);
    if (ki === undefined) return;
    if (ki.revert(main)) this.remove(key);
  }

  forEach(visit: (key: string, ki: KeyIndex) => void): void {
    this.tree.forEach(visit);
  }

  clear(): void {
    this.tree.clear();
    this.byKey.clear();
  }

  /**
   * The range scan of the read path: appends (main, sub) of the first `limit` keys live at atRev
   * in the range to `out` (flat pairs; limit ≤ 0 = all; out null = count only) and returns how
   * many keys are live in the whole range (etcd's count). No allocation per key.
   */
  collectLive(start: string, end: string | null, atRev: number, limit: number, out: number[] | null): number {
    let count = 0;
    const max = out === null ? 0 : limit > 0 ? limit * 2 : Infinity;
    this.tree.forEachFrom(start, (key, ki) => {
      if (end !== null && key >= end) return false;
      if (ki.livePosition(atRev)) {
        count++;
        if (out !== null && out.length < max) out.push(KeyIndex.foundMain, KeyIndex.foundSub);
      }
      return true;
    });
    return count;
  }
}
