/**
 * The in-memory key index: an ordered map (B+ tree) from key to its KeyIndex. It answers "which
 * revision of which keys is live at revision R in [key, end)" without touching the backend, and
 * holds the authority on which revisions compaction keeps. Rebuilt from the backend on open.
 *
 * Keys are latin1 strings of the key bytes (see btree.ts); `end === null` means "no upper bound".
 */
import { BTree } from './btree.ts';
import { KeyIndex } from './key-index.ts';
import type { IndexedRevision } from './key-index.ts';

export class TreeIndex {
  private readonly tree = new BTree<KeyIndex>();

  /** Keys with at least one revision in the index (including deleted-but-uncompacted keys). */
  get size(): number {
    return this.tree.size;
  }

  keyIndex(key: string): KeyIndex | undefined {
    return this.tree.get(key);
  }

  /** The live revision of one key at atRev, or null. */
  get(key: string, atRev: number): IndexedRevision | null {
    const ki = this.tree.get(key);
    return ki === undefined ? null : ki.liveAt(atRev);
  }

  put(key: string, main: number, sub: number, created?: number, version?: number): KeyIndex {
    let ki = this.tree.get(key);
    if (ki === undefined) {
      ki = new KeyIndex(key);
      this.tree.set(key, ki);
    }
    ki.put(main, sub, created, version);
    return ki;
  }

  tombstone(key: string, main: number, sub: number): void {
    const ki = this.tree.get(key);
    if (ki === undefined) throw new Error(`tombstone of a key missing from the index`);
    ki.tombstone(main, sub);
  }

  /** Rebuild path: a tombstone whose key has no earlier revision left after compaction. */
  restoreTombstone(key: string, main: number, sub: number): void {
    const ki = new KeyIndex(key);
    ki.restoreTombstone(main, sub);
    this.tree.set(key, ki);
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
      const ki = this.tree.get(start);
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
    for (const key of empty) this.tree.delete(key);
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
    const ki = this.tree.get(key);
    return ki !== undefined && ki.hasRevision(main, sub);
  }

  /** Undoes revision `main` on `key` (an aborted write). */
  revert(key: string, main: number): void {
    const ki = this.tree.get(key);
    if (ki === undefined) return;
    if (ki.revert(main)) this.tree.delete(key);
  }

  forEach(visit: (key: string, ki: KeyIndex) => void): void {
    this.tree.forEach(visit);
  }

  clear(): void {
    this.tree.clear();
  }
}
