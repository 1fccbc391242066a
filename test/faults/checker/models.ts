/**
 * The sequential specifications the fault workloads need. Both are per-key objects, so both
 * partition a history by key and their states describe a single key.
 */
import type { History, Operation } from './history.ts';
import { hashString, mixHash, type Model } from './model.ts';

function byKey<I extends { readonly key: string }, O>(
  history: History<I, O>,
): Map<string, Operation<I, O>[]> {
  const parts = new Map<string, Operation<I, O>[]>();
  for (const op of history) {
    const list = parts.get(op.input.key);
    if (list === undefined) parts.set(op.input.key, [op]);
    else list.push(op);
  }
  return parts;
}

const show = (v: string | number | null): string => (v === null ? 'nil' : JSON.stringify(v));

// ---------------------------------------------------------------------------------------------
// Key-value register: get / put / delete / compare-and-set on one key.

export type KvInput =
  | { readonly op: 'get'; readonly key: string }
  | { readonly op: 'put'; readonly key: string; readonly value: string }
  | { readonly op: 'delete'; readonly key: string }
  /** Succeeds iff the current value equals `expected` (null: the key is absent). */
  | { readonly op: 'cas'; readonly key: string; readonly expected: string | null; readonly value: string };

export type KvOutput =
  | { readonly type: 'get'; readonly value: string | null }
  | { readonly type: 'put' }
  /** `deleted`, when the client saw it (etcd's count), must match whether the key existed. */
  | { readonly type: 'delete'; readonly deleted?: number }
  | { readonly type: 'cas'; readonly ok: boolean };

/** The value of the key, null when absent. */
export type KvState = string | null;

type KvStep = { ok: boolean; state: KvState };

const nullHash = 0x2545f491;

export const kvRegisterModel: Model<KvState, KvInput, KvOutput> = {
  init: () => null,

  step(state, input, output): KvStep {
    switch (input.op) {
      case 'get':
        // A read with an unknown result constrains nothing and changes nothing.
        if (output === undefined) return { ok: true, state };
        return { ok: output.type === 'get' && output.value === state, state };
      case 'put':
        return { ok: output === undefined || output.type === 'put', state: input.value };
      case 'delete': {
        if (output === undefined) return { ok: true, state: null };
        const ok =
          output.type === 'delete' &&
          (output.deleted === undefined || output.deleted === (state === null ? 0 : 1));
        return { ok, state: null };
      }
      case 'cas': {
        const applies = state === input.expected;
        const next = applies ? input.value : state;
        if (output === undefined) return { ok: true, state: next };
        return { ok: output.type === 'cas' && output.ok === applies, state: next };
      }
    }
  },

  partition: (history) => byKey(history),
  inputKey: (input) => JSON.stringify([input.op, input.key, input.op === 'cas' ? input.expected : null, 'value' in input ? input.value : null]),
  equal: (a, b) => a === b,
  hash: (s) => (s === null ? nullHash : hashString(s)),

  describe(input, output): string {
    const k = input.key;
    switch (input.op) {
      case 'get':
        return `get(${k}) → ${output?.type === 'get' ? show(output.value) : '?'}`;
      case 'put':
        return `put(${k}, ${show(input.value)}) → ${output === undefined ? '?' : 'ok'}`;
      case 'delete': {
        const count = output?.type === 'delete' && output.deleted !== undefined ? ` (${output.deleted})` : '';
        return `delete(${k}) → ${output === undefined ? '?' : `ok${count}`}`;
      }
      case 'cas': {
        const result = output?.type === 'cas' ? (output.ok ? 'ok' : 'failed') : '?';
        return `cas(${k}, ${show(input.expected)} → ${show(input.value)}) → ${result}`;
      }
    }
  },

  describeState: (s) => show(s),
};

// ---------------------------------------------------------------------------------------------
// List append: each key holds a list; append adds one element, read returns the whole list.

export type ListValue = string | number;

export type ListInput =
  | { readonly op: 'append'; readonly key: string; readonly value: ListValue }
  | { readonly op: 'read'; readonly key: string };

export type ListOutput =
  | { readonly type: 'append' }
  | { readonly type: 'read'; readonly values: readonly ListValue[] };

interface ListNode {
  readonly value: ListValue;
  readonly prev: ListNode | null;
}

/**
 * A persistent (shared-tail) list: appending is O(1) and allocates one node, which matters
 * because the search keeps many states alive. The hash is maintained incrementally.
 */
export interface ListState {
  readonly length: number;
  readonly hash: number;
  readonly last: ListNode | null;
}

const emptyList: ListState = Object.freeze({ length: 0, hash: 0x5bd1e995, last: null });

const valueHash = (v: ListValue): number => hashString(typeof v === 'number' ? `n${v}` : `s${v}`);

function append(s: ListState, value: ListValue): ListState {
  return { length: s.length + 1, hash: mixHash(s.hash, valueHash(value)), last: { value, prev: s.last } };
}

/** Whether `values` is exactly the list, walking from the end (shared tails stop early). */
function listEquals(s: ListState, values: readonly ListValue[]): boolean {
  if (values.length !== s.length) return false;
  let node = s.last;
  for (let i = values.length - 1; i >= 0; i--) {
    if (node === null || node.value !== values[i]) return false;
    node = node.prev;
  }
  return true;
}

export function listValues(s: ListState): ListValue[] {
  const out: ListValue[] = [];
  for (let n = s.last; n !== null; n = n.prev) out.push(n.value);
  return out.reverse();
}

function showList(values: readonly ListValue[], max = 12): string {
  const shown = values.length > max ? [...values.slice(0, 3).map(show), '…', ...values.slice(-(max - 4)).map(show)] : values.map(show);
  return `[${shown.join(', ')}]`;
}

export const listAppendModel: Model<ListState, ListInput, ListOutput> = {
  init: () => emptyList,

  step(state, input, output) {
    if (input.op === 'append') {
      return { ok: output === undefined || output.type === 'append', state: append(state, input.value) };
    }
    if (output === undefined) return { ok: true, state };
    return { ok: output.type === 'read' && listEquals(state, output.values), state };
  },

  partition: (history) => byKey(history),
  // typeof keeps 1 and "1" apart.
  inputKey: (input) => JSON.stringify(input.op === 'read' ? [input.key] : [input.key, typeof input.value, input.value]),

  equal(a, b) {
    if (a === b) return true;
    if (a.length !== b.length || a.hash !== b.hash) return false;
    let x = a.last;
    let y = b.last;
    while (x !== y) {
      if (x === null || y === null || x.value !== y.value) return false;
      x = x.prev;
      y = y.prev;
    }
    return true;
  },

  hash: (s) => s.hash,

  describe(input, output) {
    if (input.op === 'append') return `append(${input.key}, ${show(input.value)}) → ${output === undefined ? '?' : 'ok'}`;
    return `read(${input.key}) → ${output?.type === 'read' ? showList(output.values) : '?'}`;
  },

  describeState: (s) => showList(listValues(s)),
};
