/**
 * The revisions of one key, in generations (etcd's keyIndex). A generation runs from the put
 * that (re)creates the key to the tombstone that deletes it; the last generation is the open
 * one and is empty while the key does not exist. Revisions are kept as a flat number array
 * [main0, sub0, main1, sub1, …] in ascending order: far less memory than an object per revision.
 *
 * Example: put(1.0) put(2.0) delete(3.0) put(4.0) delete(5.0) gives
 *   [1.0 2.0 3.0(t)] [4.0 5.0(t)] [] .
 * The open generation lives in the KeyIndex object itself and closed ones in `closed` (empty for
 * most keys): a point lookup then touches the map entry, the KeyIndex and its revision array only.
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

/** A generation's bookkeeping: the closed ones are Generation objects, the open one is the KeyIndex. */
export interface Gen {
  /** Main revision of the put that created this generation; 0 when unknown (tombstone-only restore). */
  created: number;
  /** Version of the latest put in this generation (etcd's version field). */
  ver: number;
  /** Flat [main, sub] pairs, ascending. */
  revs: number[];
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

export class Generation implements Gen {
  constructor(
    public created: number,
    public ver: number,
    public revs: number[],
  ) {}
}

/** A revision found in the index. */
export interface IndexedRevision {
  readonly main: number;
  readonly sub: number;
}

const noGenerations: Generation[] = [];
/** Shared by every empty open generation; never mutated (writers assign a fresh array instead),
 * so a key's first put allocates an array of exactly two slots rather than a grown one. */
const noRevisions: number[] = Object.freeze([]) as unknown as number[];

export class KeyIndex implements Gen {
  /** Closed generations, oldest first; each ends with its tombstone. */
  closed: Generation[] = noGenerations;
  created = 0;
  ver = 0;
  revs: number[] = noRevisions;
  /** Newest revision of the open generation (0.0 when it is empty), kept beside revs so that the
   * common lookup — the latest value — touches no array. */
  private lastMain = 0;
  private lastSub = 0;

  constructor(readonly key: string) {}

  /** Output of livePosition(): the revision found (static to avoid an object per lookup). */
  static foundMain = 0;
  static foundSub = 0;

  get generationCount(): number {
    return this.closed.length + 1;
  }

  /** Generation i, oldest first; the last one is the open generation. */
  gen(i: number): Gen {
    return i < this.closed.length ? this.closed[i]! : this;
  }

  isEmpty(): boolean {
    return this.closed.length === 0 && this.revs.length === 0;
  }

  /** The open generation. */
  current(): Gen {
    return this;
  }

  private lastRevision(): [number, number] | null {
    for (let g = this.generationCount - 1; g >= 0; g--) {
      const revs = this.gen(g).revs;
      if (revs.length > 0) return [revs[revs.length - 2]!, revs[revs.length - 1]!];
    }
    return null;
  }

  private assertAfterLast(main: number, sub: number): void {
    const last = this.lastRevision();
    if (last === null) return;
    const [lm, ls] = last;
    assert(main > lm || (main === lm && sub > ls), `revision ${main}.${sub} not after ${lm}.${ls} for a key`);
  }

  /**
   * Appends a put. `created`/`version` come from the stored value when rebuilding from disk;
   * a live write derives them (created = main for a new generation, version = previous + 1).
   */
  put(main: number, sub: number, created?: number, version?: number): void {
    this.assertAfterLast(main, sub);
    if (this.revs.length === 0) {
      this.created = created ?? main;
      this.ver = version ?? 1;
      this.revs = [main, sub];
    } else {
      this.ver = version ?? this.ver + 1;
      this.revs.push(main, sub);
    }
    this.lastMain = main;
    this.lastSub = sub;
  }

  private closeGeneration(): void {
    if (this.closed === noGenerations) this.closed = [];
    this.closed.push(new Generation(this.created, this.ver, this.revs));
    this.created = 0;
    this.ver = 0;
    this.revs = noRevisions;
    this.lastMain = 0;
    this.lastSub = 0;
  }

  /** Appends a tombstone ending the open generation. The key must exist. */
  tombstone(main: number, sub: number): void {
    assert(this.revs.length > 0, 'tombstone on a key that does not exist');
    this.assertAfterLast(main, sub);
    this.revs.push(main, sub);
    this.closeGeneration();
  }

  /**
   * A tombstone read back from disk for a key whose earlier revisions were compacted away:
   * the key gets a closed generation holding just the tombstone (etcd's restoreTombstone).
   */
  restoreTombstone(main: number, sub: number): void {
    assert(this.isEmpty(), 'restoreTombstone on a key with revisions');
    this.ver = 1;
    this.revs = [main, sub];
    this.closeGeneration();
  }

  /** Like liveAt, but leaves the revision in KeyIndex.foundMain/foundSub and returns whether found. */
  livePosition(atRev: number): boolean {
    if (this.lastMain !== 0 && this.lastMain <= atRev) {
      KeyIndex.foundMain = this.lastMain;
      KeyIndex.foundSub = this.lastSub;
      return true;
    }
    // The open generation first: the common case, and no array of generations to walk.
    let revs = this.revs;
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

  /** Generation index and pair position of the latest revision with main ≤ atRev, or null. */
  private latestAtOrBelow(atRev: number): { gi: number; p: number } | null {
    for (let gi = this.generationCount - 1; gi >= 0; gi--) {
      const revs = this.gen(gi).revs;
      if (revs.length === 0 || revs[0]! > atRev) continue;
      return { gi, p: lastAtOrBelow(revs, atRev) };
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
    const g = this.gen(at.gi);
    if (this.isTombstoneAt(at.gi, at.p) && g.revs[at.p * 2]! < atRev) {
      // Everything up to and including that tombstone goes.
      this.closed = this.closed.length === at.gi + 1 ? noGenerations : this.closed.slice(at.gi + 1);
    } else {
      if (at.p > 0) g.revs = g.revs.slice(at.p * 2);
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
    const revs = this.gen(at.gi).revs;
    return { main: revs[at.p * 2]!, sub: revs[at.p * 2 + 1]! };
  }

  hasRevision(main: number, sub: number): boolean {
    for (let gi = 0; gi < this.generationCount; gi++) {
      const revs = this.gen(gi).revs;
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
    for (;;) {
      if (this.revs.length === 0) {
        const prev = this.closed[this.closed.length - 1];
        if (prev === undefined || prev.revs[prev.revs.length - 2] !== main) break;
        // The tombstone closing prev was written by the aborted revision: reopen prev.
        this.closed.pop();
        if (this.closed.length === 0) this.closed = noGenerations;
        prev.revs.length -= 2;
        this.created = prev.created;
        this.ver = prev.ver;
        this.revs = prev.revs;
        continue;
      }
      if (this.revs[this.revs.length - 2] !== main) break;
      this.revs.length -= 2;
      if (this.revs.length === 0) {
        this.created = 0;
        this.ver = 0;
      } else {
        this.ver--;
      }
    }
    const n = this.revs.length;
    this.lastMain = n === 0 ? 0 : this.revs[n - 2]!;
    this.lastSub = n === 0 ? 0 : this.revs[n - 1]!;
    return this.isEmpty();
  }

  /** Flat description for tests and debugging: e.g. "[1.0 2.0 3.0t] [4.0]". */
  describe(): string {
    const out: string[] = [];
    for (let gi = 0; gi < this.generationCount; gi++) {
      const revs = this.gen(gi).revs;
      const parts: string[] = [];
      for (let p = 0; p < revs.length >>> 1; p++) parts.push(`${revs[p * 2]}.${revs[p * 2 + 1]}${this.isTombstoneAt(gi, p) ? 't' : ''}`);
      out.push(`[${parts.join(' ')}]`);
    }
    return out.join(' ');
  }
}
