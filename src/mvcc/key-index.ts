/**
 * The revisions of one key, in generations (etcd's keyIndex). A generation runs from the put
 * that (re)creates the key to the tombstone that deletes it; the last generation is the open
 * one and is empty while the key does not exist. Revisions are kept as a flat number array
 * [main0, sub0, main1, sub1, …] in ascending order: far less memory than an object per revision.
 *
 * Example: put(1.0) put(2.0) delete(3.0) put(4.0) delete(5.0) gives
 *   [1.0 2.0 3.0(t)] [4.0 5.0(t)] [] .
 *
 * Compaction at revision C keeps, for the key, the latest revision r with main ≤ C and everything
 * after it: if r is a put it stays (reads at C need it); if r is a tombstone with main < C the key
 * did not exist at C and the generations up to r are dropped; a tombstone with main = C is kept
 * (etcd ≥ 3.5.15 behaviour, so that revision C itself is never lost from the backend). A key left
 * with only its empty open generation is removed from the index. This equals etcd's rule except
 * that a key deleted and re-created within revision C keeps its re-created value (etcd-io/etcd
 * issue 22376: etcd's rule would drop it and later lose the live value).
 */
import { assert } from './assert.ts';

export class Generation {
  /** Main revision of the put that created this generation; 0 when unknown (tombstone-only restore). */
  created = 0;
  /** Version of the latest put in this generation (etcd's version field). */
  ver = 0;
  /** Flat [main, sub] pairs, ascending. */
  revs: number[] = [];

  get length(): number {
    return this.revs.length >>> 1;
  }

  /** Position (pair index) of the last revision with main ≤ atRev, or -1. */
  lastAtOrBelow(atRev: number): number {
    const revs = this.revs;
    let lo = 0;
    let hi = (revs.length >>> 1) - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (revs[mid * 2]! <= atRev) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }
}

/** A revision found in the index together with its generation's bookkeeping. */
export interface IndexedRevision {
  readonly main: number;
  readonly sub: number;
}

export class KeyIndex {
  gens: Generation[] = [new Generation()];

  constructor(readonly key: string) {}

  isEmpty(): boolean {
    return this.gens.length === 1 && this.gens[0]!.revs.length === 0;
  }

  /** The open generation. */
  current(): Generation {
    return this.gens[this.gens.length - 1]!;
  }

  private assertAfterLast(main: number, sub: number): void {
    for (let g = this.gens.length - 1; g >= 0; g--) {
      const revs = this.gens[g]!.revs;
      if (revs.length === 0) continue;
      const lm = revs[revs.length - 2]!;
      const ls = revs[revs.length - 1]!;
      assert(main > lm || (main === lm && sub > ls), `revision ${main}.${sub} not after ${lm}.${ls} for a key`);
      return;
    }
  }

  /**
   * Appends a put. `created`/`version` come from the stored value when rebuilding from disk;
   * a live write derives them (created = main for a new generation, version = previous + 1).
   */
  put(main: number, sub: number, created?: number, version?: number): void {
    this.assertAfterLast(main, sub);
    const g = this.current();
    if (g.revs.length === 0) {
      g.created = created ?? main;
      g.ver = version ?? 1;
    } else {
      g.ver = version ?? g.ver + 1;
    }
    g.revs.push(main, sub);
  }

  /** Appends a tombstone ending the open generation. The key must exist. */
  tombstone(main: number, sub: number): void {
    assert(this.current().revs.length > 0, 'tombstone on a key that does not exist');
    this.assertAfterLast(main, sub);
    this.current().revs.push(main, sub);
    this.gens.push(new Generation());
  }

  /**
   * A tombstone read back from disk for a key whose earlier revisions were compacted away:
   * the key gets a closed generation holding just the tombstone (etcd's restoreTombstone).
   */
  restoreTombstone(main: number, sub: number): void {
    assert(this.isEmpty(), 'restoreTombstone on a key with revisions');
    const g = this.current();
    g.ver = 1;
    g.revs.push(main, sub);
    this.gens.push(new Generation());
  }

  /** The revision that is live at atRev (a put), or null if the key did not exist then. */
  liveAt(atRev: number): IndexedRevision | null {
    const gens = this.gens;
    const last = gens.length - 1;
    for (let gi = last; gi >= 0; gi--) {
      const g = gens[gi]!;
      const revs = g.revs;
      if (revs.length === 0) continue;
      // A closed generation whose tombstone is at or before atRev: the key was deleted then.
      if (gi !== last && revs[revs.length - 2]! <= atRev) return null;
      if (revs[0]! <= atRev) {
        const p = g.lastAtOrBelow(atRev);
        return { main: revs[p * 2]!, sub: revs[p * 2 + 1]! };
      }
    }
    return null;
  }

  /** Generation index and pair position of the latest revision with main ≤ atRev, or null. */
  private latestAtOrBelow(atRev: number): { gi: number; p: number } | null {
    for (let gi = this.gens.length - 1; gi >= 0; gi--) {
      const g = this.gens[gi]!;
      if (g.revs.length === 0 || g.revs[0]! > atRev) continue;
      return { gi, p: g.lastAtOrBelow(atRev) };
    }
    return null;
  }

  private isTombstoneAt(gi: number, p: number): boolean {
    return gi < this.gens.length - 1 && p === this.gens[gi]!.length - 1;
  }

  /** Applies compaction at atRev (see the module comment). Returns true if the key is now empty. */
  compact(atRev: number): boolean {
    const at = this.latestAtOrBelow(atRev);
    if (at === null) return this.isEmpty();
    const g = this.gens[at.gi]!;
    if (this.isTombstoneAt(at.gi, at.p) && g.revs[at.p * 2]! < atRev) {
      this.gens = this.gens.slice(at.gi + 1);
    } else {
      if (at.p > 0) g.revs = g.revs.slice(at.p * 2);
      if (at.gi > 0) this.gens = this.gens.slice(at.gi);
    }
    return this.isEmpty();
  }

  /**
   * The revision a compaction at atRev keeps and hashKV counts: the latest revision with
   * main ≤ atRev when it is a put (a tombstone is never counted, as in etcd's keep()).
   */
  keep(atRev: number): IndexedRevision | null {
    const at = this.latestAtOrBelow(atRev);
    if (at === null || this.isTombstoneAt(at.gi, at.p)) return null;
    const revs = this.gens[at.gi]!.revs;
    return { main: revs[at.p * 2]!, sub: revs[at.p * 2 + 1]! };
  }

  hasRevision(main: number, sub: number): boolean {
    for (const g of this.gens) {
      const revs = g.revs;
      if (revs.length === 0 || revs[0]! > main || revs[revs.length - 2]! < main) continue;
      const p = g.lastAtOrBelow(main);
      for (let i = p; i >= 0 && revs[i * 2] === main; i--) if (revs[i * 2 + 1] === sub) return true;
    }
    return false;
  }

  /**
   * Undoes every revision with the given main revision (always the newest ones): used when a write
   * transaction aborts after it touched the index. Returns true if the key is now empty.
   */
  revert(main: number): boolean {
    for (;;) {
      const g = this.current();
      if (g.revs.length === 0) {
        if (this.gens.length === 1) break;
        const prev = this.gens[this.gens.length - 2]!;
        if (prev.revs[prev.revs.length - 2] !== main) break;
        // The tombstone closing prev was written by the aborted revision: reopen prev.
        this.gens.pop();
        prev.revs.length -= 2;
        continue;
      }
      if (g.revs[g.revs.length - 2] !== main) break;
      g.revs.length -= 2;
      if (g.revs.length === 0) {
        g.created = 0;
        g.ver = 0;
      } else {
        g.ver--;
      }
    }
    return this.isEmpty();
  }

  /** Flat description for tests and debugging: e.g. "[1.0 2.0 3.0t] [4.0] ". */
  describe(): string {
    return this.gens
      .map((g, gi) => {
        const parts: string[] = [];
        for (let p = 0; p < g.length; p++) parts.push(`${g.revs[p * 2]}.${g.revs[p * 2 + 1]}${this.isTombstoneAt(gi, p) ? 't' : ''}`);
        return `[${parts.join(' ')}]`;
      })
      .join(' ');
  }
}
