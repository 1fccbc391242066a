/**
 * The backend's writes that are applied but not yet committed to LMDB (etcd keeps the same
 * thing in its backend's batch transaction and read buffer). A write transaction lands in the
 * open generation; the backend seals generations and commits them to LMDB in the background,
 * and every read consults the generations not yet visible in LMDB before LMDB itself, so a
 * write is readable the moment write() returns.
 *
 * A sealed generation is never changed again: a pinned read view holds the sealed generations
 * of its moment beside its LMDB read transaction, and stays consistent however many commits
 * happen after it.
 */
import { assert } from './assert.ts';

/** A pending value: the bytes to store, or null for a removal. */
export type Pending = Buffer | null;

interface Slot {
  readonly key: Buffer;
  value: Pending;
}

/**
 * One table's pending writes in one generation, by the key's bytes as a latin1 string, with the
 * lowest and highest id ever written to it (a rolled-back write may leave them wider): a range
 * outside them skips the table without visiting its slots.
 */
class Table extends Map<string, Slot> {
  low = '';
  high = '';

  widen(id: string): void {
    if (this.size === 0 || id < this.low) this.low = id;
    if (this.size === 0 || id > this.high) this.high = id;
  }
}

export type TableName = 'kv' | 'meta';

/** What a write transaction changed, to put back if it throws. */
interface Undo {
  readonly table: Table;
  readonly id: string;
  /** The slot's value before the change; undefined when the generation had no slot. */
  readonly before: Pending | undefined;
}

export class Generation {
  readonly kv = new Table();
  readonly meta = new Table();
  /** Bytes of the keys and values written to it (a slot written twice counts twice). */
  bytes = 0;

  table(name: TableName): Table {
    return name === 'kv' ? this.kv : this.meta;
  }

  get empty(): boolean {
    return this.kv.size === 0 && this.meta.size === 0;
  }
}

/** Pending writes, newest generation first. */
export type GenerationList = readonly Generation[];

/** The pending value of a key in the newest generation that has it; undefined if none does. */
export function lookup(gens: GenerationList, name: TableName, id: string): Pending | undefined {
  for (const g of gens) {
    const slot = g.table(name).get(id);
    if (slot !== undefined) return slot.value;
  }
  return undefined;
}

/** The newest pending value of every key in [start, end) (end undefined: no upper bound), in key order. */
export function pendingInRange(gens: GenerationList, name: TableName, start: string | undefined, end: string | undefined): Array<{ key: Buffer; id: string; value: Pending }> {
  const seen = new Map<string, { key: Buffer; id: string; value: Pending }>();
  for (const g of gens) {
    const table = g.table(name);
    if (table.size === 0 || (start !== undefined && table.high < start) || (end !== undefined && table.low >= end)) continue;
    for (const [id, slot] of table) {
      if (seen.has(id)) continue;
      if (start !== undefined && id < start) continue;
      if (end !== undefined && id >= end) continue;
      seen.set(id, { key: slot.key, id, value: slot.value });
    }
  }
  return [...seen.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * The open generation and the journal of the write transaction in progress. Writes go to the
 * open generation; rollback() undoes the ones since begin().
 */
export class OpenGeneration {
  private gen = new Generation();
  private journal: Undo[] | null = null;

  get current(): Generation {
    return this.gen;
  }

  begin(): void {
    assert(this.journal === null, 'nested write buffer transaction');
    this.journal = [];
  }

  end(): void {
    assert(this.journal !== null, 'write buffer transaction not begun');
    this.journal = null;
  }

  rollback(): void {
    assert(this.journal !== null, 'write buffer transaction not begun');
    for (let i = this.journal.length - 1; i >= 0; i--) {
      const u = this.journal[i]!;
      if (u.before === undefined) u.table.delete(u.id);
      else u.table.get(u.id)!.value = u.before;
    }
    this.journal = null;
  }

  set(name: TableName, key: Buffer, value: Pending): void {
    assert(this.journal !== null, `${name} write outside a write transaction`);
    const table = this.gen.table(name);
    const id = key.toString('latin1');
    const slot = table.get(id);
    this.journal.push({ table, id, before: slot?.value });
    if (slot === undefined) {
      table.widen(id);
      table.set(id, { key, value });
    } else {
      slot.value = value;
    }
    this.gen.bytes += key.length + (value?.length ?? 0);
  }

  /** Seals the open generation and opens a new one; returns the sealed one. */
  seal(): Generation {
    assert(this.journal === null, 'generation sealed inside a write transaction');
    const sealed = this.gen;
    this.gen = new Generation();
    return sealed;
  }
}
