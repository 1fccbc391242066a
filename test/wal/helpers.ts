/** Shared test helpers for the WAL: temp dirs, entries, and a reference model of the log. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { ConfState, Entry, HardState, SnapshotMetadata } from '../../src/raft/types.ts';

export const META = { memberId: 'm1', clusterId: 'c1' };
/** Small segments so rollover happens often; small zero chunks so preallocation is cheap. */
export const SMALL = { segmentBytes: 4096, zeroChunkBytes: 4096 } as const;

export function tmpDir(t: TestContext, prefix = 'conclave-wal-'): string {
  const dir = fs.mkdtempSync(join(os.tmpdir(), prefix));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A fresh dir with no cleanup hook, for loops inside one test (caller removes it). */
export function tmpDirRaw(prefix = 'conclave-wal-'): string {
  return fs.mkdtempSync(join(os.tmpdir(), prefix));
}

export function dataFor(index: number, term: number, bytes = 16): Uint8Array {
  const d = new Uint8Array(bytes);
  let x = (index * 2654435761 + term * 40503) >>> 0;
  for (let i = 0; i < bytes; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    d[i] = (x >>> 16) & 0xff;
  }
  return d;
}

export function ent(index: number, term: number, bytes = 16): Entry {
  return { index, term, kind: 0, data: dataFor(index, term, bytes) };
}

export function ents(from: number, to: number, term: number, bytes = 16): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(ent(i, term, bytes));
  return out;
}

export const CONF: ConfState = { voters: ['m1', 'm2', 'm3'], votersOutgoing: [], learners: ['m4'], learnersNext: [], autoLeave: false };

export function snapMeta(index: number, term: number, confState: ConfState = CONF): SnapshotMetadata {
  return { index, term, confState };
}

/** Entries compared by value (data as arrays) for deepStrictEqual. */
export function plain(es: readonly Entry[]): { index: number; term: number; kind: number; data: number[] }[] {
  return es.map((e) => ({ index: e.index, term: e.term, kind: e.kind, data: Array.from(e.data) }));
}

/**
 * The reference model: what a WAL must return after a sequence of saves. Deliberately naive
 * (a plain array, re-scanned), so it shares no code or cleverness with the implementation.
 */
export class Model {
  hardState: HardState = { term: 0, vote: '', commit: 0 };
  snapshot: SnapshotMetadata | null = null;
  log: Entry[] = [];

  snapIndex(): number {
    return this.snapshot?.index ?? 0;
  }
  lastIndex(): number {
    return this.log.length > 0 ? this.log[this.log.length - 1]!.index : this.snapIndex();
  }
  termAt(i: number): number | undefined {
    if (i === this.snapIndex()) return this.snapshot?.term ?? 0;
    return this.log.find((e) => e.index === i)?.term;
  }
  maxTerm(): number {
    return Math.max(this.hardState.term, this.snapshot?.term ?? 0, ...this.log.map((e) => e.term));
  }

  save(hs: HardState | null, entries: readonly Entry[], snap?: SnapshotMetadata): void {
    if (snap !== undefined) {
      if (this.termAt(snap.index) === snap.term) this.log = this.log.filter((e) => e.index > snap.index);
      else this.log = [];
      this.snapshot = snap;
    }
    if (entries.length > 0) {
      const first = entries[0]!.index;
      this.log = this.log.filter((e) => e.index < first).concat(entries);
    }
    if (hs !== null) this.hardState = hs;
  }
}
