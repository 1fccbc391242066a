/**
 * The index's hash map from key to KeyIndex, for point lookups. A JS Map costs about twice as much
 * per lookup at a million keys: its chained entries and the key strings they point to are each a
 * cache miss, while here the probe walks an Int32Array of hashes and dereferences a KeyIndex only
 * when its 32-bit hash matches.
 *
 * Open addressing with linear probing over a power-of-two table at most half full, deletion by
 * backward shift (no tombstones). Slot i is empty when hashes[i] === 0; stored hashes are odd.
 * The hash is seeded per table, so which keys collide cannot be known in advance.
 */
import { randomInt } from 'node:crypto';
import type { KeyIndex } from './key-index.ts';

const minCapacity = 16;

export class KeyTable {
  private hashes = new Int32Array(minCapacity);
  private slots: Array<KeyIndex | undefined> = new Array<KeyIndex | undefined>(minCapacity).fill(undefined);
  private count = 0;
  private readonly seed = randomInt(2 ** 31);

  get size(): number {
    return this.count;
  }

  get(key: string): KeyIndex | undefined {
    const i = this.find(key, this.hash(key));
    return i < 0 ? undefined : this.slots[i];
  }

  /** Inserts or replaces the entry of ki.key. */
  set(ki: KeyIndex): void {
    const h = this.hash(ki.key);
    const found = this.find(ki.key, h);
    if (found >= 0) {
      this.slots[found] = ki;
      return;
    }
    if ((this.count + 1) * 2 > this.hashes.length) this.resize(this.hashes.length * 2);
    this.place(h, ki);
    this.count++;
  }

  delete(key: string): boolean {
    const i = this.find(key, this.hash(key));
    if (i < 0) return false;
    this.removeAt(i);
    this.count--;
    if (this.hashes.length > minCapacity && this.count * 8 < this.hashes.length) this.resize(this.hashes.length / 2);
    return true;
  }

  clear(): void {
    this.hashes = new Int32Array(minCapacity);
    this.slots = new Array<KeyIndex | undefined>(minCapacity).fill(undefined);
    this.count = 0;
  }

  /** Seeded FNV-1a over the key's bytes (latin1 chars), then murmur3's finalizer so that the low
   * bits, which pick the slot, depend on every bit. Always odd, so never the empty marker 0. */
  private hash(key: string): number {
    let h = this.seed ^ 0x811c9dc5;
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return (h ^ (h >>> 16)) | 1;
  }

  /** Slot of key, or -1. */
  private find(key: string, h: number): number {
    const hashes = this.hashes;
    const mask = hashes.length - 1;
    for (let i = h & mask; hashes[i] !== 0; i = (i + 1) & mask) {
      if (hashes[i] === h && this.slots[i]!.key === key) return i;
    }
    return -1;
  }

  private place(h: number, ki: KeyIndex): void {
    const mask = this.hashes.length - 1;
    let i = h & mask;
    while (this.hashes[i] !== 0) i = (i + 1) & mask;
    this.hashes[i] = h;
    this.slots[i] = ki;
  }

  /** Empties slot i and moves later entries of its probe run back so every entry stays reachable. */
  private removeAt(i: number): void {
    const hashes = this.hashes;
    const mask = hashes.length - 1;
    let hole = i;
    for (let j = (i + 1) & mask; hashes[j] !== 0; j = (j + 1) & mask) {
      const home = hashes[j]! & mask;
      // The entry at j may fill the hole unless its home slot lies cyclically in (hole, j].
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        hashes[hole] = hashes[j]!;
        this.slots[hole] = this.slots[j];
        hole = j;
      }
    }
    hashes[hole] = 0;
    this.slots[hole] = undefined;
  }

  private resize(capacity: number): void {
    const hashes = this.hashes;
    const slots = this.slots;
    this.hashes = new Int32Array(capacity);
    this.slots = new Array<KeyIndex | undefined>(capacity).fill(undefined);
    for (let i = 0; i < hashes.length; i++) if (hashes[i] !== 0) this.place(hashes[i]!, slots[i]!);
  }
}
