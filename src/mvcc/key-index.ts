/**
 * The revisions of one key, in generations (etcd's keyIndex). A generation runs from the put
 * that (re)creates the key to the tombstone that deletes it; the last generation is the open
 * one and is empty while the key does not exist. Revisions are kept as flat number arrays
 * [main0, sub0, main1, sub1, …] in ascending order: far less memory than an object per revision.
 *
 * Example: put(1.0) put(2.0) delete(3.0) put(4.0) delete(5.0) gives
 *   [1.0 2.0 3.0(t)] [4.0 5.0(t)] [] .
 * The open generation lives in the KeyIndex object itself and closed ones in `closed` (empty for
 * most keys): a point lookup then touches the hash table entry and the KeyIndex only.
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

/** A closed generation: from the put that created it to the tombstone that ended it. */
export class Generation {
  constructor(
    /** Main revision of the put that created this generation; 0 when unknown (tombstone-only restore). */
    public created: number,
    /** Version of the latest put in this generation (etcd's version field). */
    public ver: number,
    /** Flat [main, sub] pairs, ascending; the last one is the tombstone. */
    public revs: number[],
  ) {}
}

/** Pair index of the last revision with main ≤ atRev in revs, or -1. */
function lastAtOrBelow(revs: readonly number[], atRev: number): number {
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

/** A revision found in the index. */
export interface IndexedRevision {
  readonly main: number;
  readonly sub: number;
}

const noGenerations: Generation[] = [];
/** Shared by every open generation with at most one revision; never mutated (writers assign a
 * fresh array instead). */
const noRevisions: number[] = Object.freeze([]) as unknown as number[];

export class KeyIndex {
  /** Closed generations, oldest first; each ends with its tombstone. */
  closed: Generation[] = noGenerations;
  /** created and ver of the open generation (see Generation); 0 while it is empty. */
  created = 0;
  ver = 0;
  /**
   * The open generation's newest revision (lastMain 0: the generation is empty, the key does not
   * exist now), and in `earlier` the ones before it. Most keys have a single revision (the rule
   * after compaction), which then costs no array at all, and the common lookup — the latest
   * value — touches no array either.
   */
  lastMain = 0;
  lastSub = 0;
  private earlier: number[] = noRevisions;

  constructor(readonly key: string) {}

  /** Output of livePosition(): the revision found (static to avoid an object per lookup). */
  static foundMain = 0;
  static foundSub = 0;

  /** Whether the key exists now (its open generation has a put). */
  exists(): boolean {
    return this.lastMain !== 0;
  }

  isEmpty(): boolean {
    return this.closed.length === 0 && this.lastMain === 0;
  }

  /** The open generation's revisions as one flat array (a copy when it has a single revision). */
  private openRevs(): number[] {
    if (this.lastMain === 0) return noRevisions;
    return [...this.earlier, this.lastMain, this.lastSub];
  }

  private setOpenRevs(revs: readonly number[]): void {
    const n = revs.length;
    this.lastMain = n === 0 ? 0 : revs[n - 2]!;
    this.lastSub = n === 0 ? 0 : revs[n - 1]!;
    this.earlier = n > 2 ? revs.slice(0, n - 2) : noRevisions;
  }

  private get generationCount(): number {
    return this.closed.length + 1;
  }

  /** Revisions of generation i, oldest first; the last generation is the open one. */
  private revsOf(i: number): readonly number[] {
    return i < this.closed.length ? this.closed[i]!.revs : this.openRevs();
  }

  private assertAfterLast(main: number, sub: number): void {
    let lm = this.lastMain;
    let ls = this.lastSub;
    if (lm === 0) {
      const prev = this.closed[this.closed.length - 1];
      if (prev === undefined) return;
      lm = prev.revs[prev.revs.length - 2]!;
      ls = prev.revs[prev.revs.length - 1]!;
    }
    assert(main > lm || (main === lm && sub > ls), `revision ${main}.${sub} not after ${lm}.${ls} for a key`);
  }

  /**
   * Appends a put. `created`/`version` come from the stored value when rebuilding from disk;
   * a live write derives them (created = main for a new generation, version = previous + 1).
   */
  put(main: number, sub: number, created?: number, version?: number): void {
    this.assertAfterLast(main, sub);
    if (this.lastMain === 0) {
      this.created = created ?? main;
      this.ver = version ?? 1;
    } else {
      this.ver = version ?? this.ver + 1;
      if (this.earlier === noRevisions) this.earlier = [this.lastMain, this.lastSub];
      else this.earlier.push(this.lastMain, this.lastSub);
    }
    this.lastMain = main;
    this.lastSub = sub;
  }

  /** Closes the open generation with a tombstone at (main, sub). */
  private closeGeneration(main: number, sub: number): void {
    if (this.closed === noGenerations) this.closed = [];
    this.closed.push(new Generation(this.created, this.ver, [...this.earlier, this.lastMain, this.lastSub, main, sub]));
    this.created = 0;
    this.ver = 0;
    this.setOpenRevs(noRevisions);
  }

  /** Appends a tombstone ending the open generation. The key must exist. */
  tombstone(main: number, sub: number): void {
    assert(this.lastMain !== 0, 'tombstone on a key that does not exist');
    this.assertAfterLast(main, sub);
    this.closeGeneration(main, sub);
  }

  /**
   * A tombstone read back from disk for a key whose earlier revisions were compacted away:
   * the key gets a closed generation holding just the tombstone (etcd's restoreTombstone).
   */
  restoreTombstone(main: number, sub: number): void {
    assert(this.isEmpty(), 'restoreTombstone on a key with revisions');
    this.closed = [new Generation(0, 1, [main, sub])];
  }

  /** Like liveAt, but leaves the revision in KeyIndex.foundMain/foundSub and returns whether found. */
  livePosition(atRev: number): boolean {
    if (this.lastMain !== 0 && this.lastMain <= atRev) {
      KeyIndex.foundMain = this.lastMain;
      KeyIndex.foundSub = this.lastSub;
      return true;
    }
    // The open generation's earlier revisions first: no array of generations to walk.
    let revs = this.earlier;
    let n = revs.length;
    if (n > 0 && revs[0]! <= atRev) {
      const p = revs[n - 2]! <= atRev ? (n >>> 1) - 1 : lastAtOrBelow(revs, atRev);
      KeyIndex.foundMain = revs[p * 2]!;
      KeyIndex.foundSub = revs[p * 2 + 1]!;
      return true;
    }
    const closed = this.closed;
    for (let gi = closed.length - 1; gi >= 0; gi--) {
      revs = closed[gi]!.revs;
      n = revs.length;
      // A closed generation whose tombstone is at or before atRev: the key was deleted then.
      if (revs[n - 2]! <= atRev) return false;
      if (revs[0]! <= atRev) {
        const p = lastAtOrBelow(revs, atRev);
        KeyIndex.foundMain = revs[p * 2]!;
        KeyIndex.foundSub = revs[p * 2 + 1]!;
        return true;
      }
    }
    return false;
  }

  /** The revision that is live at atRev (a put), or null if the key did not exist then. */
  liveAt(atRev: number): IndexedRevision | null {
    return this.livePosition(atRev) ? { main: KeyIndex.foundMain, sub: KeyIndex.foundSub } : null;
  }

  /** Generation index, its revisions and the pair position of the latest revision with main ≤ atRev, or null. */
  private latestAtOrBelow(atRev: number): { gi: number; revs: readonly number[]; p: number } | null {
    for (let gi = this.generationCount - 1; gi >= 0; gi--) {
      const revs = this.revsOf(gi);
      if (revs.length === 0 || revs[0]! > atRev) continue;
      return { gi, revs, p: lastAtOrBelow(revs, atRev) };
    }
    return null;
  }

  private isTombstoneAt(gi: number, p: number): boolean {
    return gi < this.closed.length && p === (this.closed[gi]!.revs.length >>> 1) - 1;
  }

  /** Applies compaction at atRev (see the module comment). Returns true if the key is now empty. */
  compact(atRev: number): boolean {
    const at = this.latestAtOrBelow(atRev);
    if (at === null) return this.isEmpty();
    if (this.isTombstoneAt(at.gi, at.p) && at.revs[at.p * 2]! < atRev) {
      // Everything up to and including that tombstone goes.
      this.closed = this.closed.length === at.gi + 1 ? noGenerations : this.closed.slice(at.gi + 1);
    } else {
      if (at.p > 0) {
        if (at.gi < this.closed.length) this.closed[at.gi]!.revs = at.revs.slice(at.p * 2);
        else this.setOpenRevs(at.revs.slice(at.p * 2));
      }
      if (at.gi > 0) this.closed = this.closed.slice(at.gi);
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
    return { main: at.revs[at.p * 2]!, sub: at.revs[at.p * 2 + 1]! };
  }

  hasRevision(main: number, sub: number): boolean {
    for (let gi = 0; gi < this.generationCount; gi++) {
      const revs = this.revsOf(gi);
      if (revs.length === 0 || revs[0]! > main || revs[revs.length - 2]! < main) continue;
      for (let i = lastAtOrBelow(revs, main); i >= 0 && revs[i * 2] === main; i--) if (revs[i * 2 + 1] === sub) return true;
    }
    return false;
  }

  /**
   * Undoes every revision with the given main revision (always the newest ones): used when a write
   * transaction aborts after it touched the index. Returns true if the key is now empty.
   */
  revert(main: number): boolean {
    let revs = this.openRevs();
    for (;;) {
      if (revs.length === 0) {
        const prev = this.closed[this.closed.length - 1];
        if (prev === undefined || prev.revs[prev.revs.length - 2] !== main) break;
        // The tombstone closing prev was written by the aborted revision: reopen prev.
        this.closed.pop();
        if (this.closed.length === 0) this.closed = noGenerations;
        revs = prev.revs.slice(0, -2);
        this.created = prev.created;
        this.ver = prev.ver;
        continue;
      }
      if (revs[revs.length - 2] !== main) break;
      revs = revs.slice(0, -2);
      if (revs.length === 0) {
        this.created = 0;
        this.ver = 0;
      } else {
        this.ver--;
      }
    }
    this.setOpenRevs(revs);
    return this.isEmpty();
  }

  /** Flat description for tests and debugging: e.g. "[1.0 2.0 3.0t] [4.0]". */
  describe(): string {
    const out: string[] = [];
    for (let gi = 0; gi < this.generationCount; gi++) {
      const revs = this.revsOf(gi);
      const parts: string[] = [];
      for (let p = 0; p < revs.length >>> 1; p++) parts.push(`${revs[p * 2]}.${revs[p * 2 + 1]}${this.isTombstoneAt(gi, p) ? 't' : ''}`);
      out.push(`[${parts.join(' ')}]`);
    }
    return out.join(' ');
  }
}
