/**
 * The sequential specification the checker tests a history against.
 *
 * States must be treated as immutable values: the search keeps old states on its backtracking
 * stack and in its cache, so `step` returns a new state instead of changing the one it got.
 */
import type { History, Operation } from './history.ts';

export interface StepResult<State> {
  /** Whether the operation, applied to the state, could have produced the observed output. */
  readonly ok: boolean;
  /** The state after the operation (ignored when `ok` is false). */
  readonly state: State;
}

export interface Model<State, Input, Output> {
  init(): State;
  /**
   * Applies one operation. `output` is undefined for an indeterminate operation: then `step`
   * must return `ok: true` with whatever state the operation leads to (a write installs its
   * value, a compare-and-set applies iff its comparison holds, a read changes nothing). The
   * checker relies on that to linearize such operations "at the end", i.e. never.
   */
  step(state: State, input: Input, output: Output | undefined): StepResult<State>;
  /**
   * Splits a history into independent sub-histories (P-compositionality: a history is
   * linearizable iff each of them is), e.g. one per key. Every operation must land in exactly
   * one partition. Without it the whole history is one partition.
   */
  partition?(history: History<Input, Output>): ReadonlyMap<string, Operation<Input, Output>[]>;
  equal(a: State, b: State): boolean;
  /** Any 32-bit integer with equal states hashing equally; collisions only cost time. */
  hash(state: State): number;
  /** One readable line for an operation, e.g. `put(k, "a") → ok`; output undefined = unknown. */
  describe(input: Input, output: Output | undefined): string;
  describeState?(state: State): string;
  /**
   * Optional: a string that is equal for two inputs exactly when they are interchangeable
   * (same operation with the same arguments). Lets the search treat indeterminate operations
   * with equal inputs as one pool instead of trying every choice among them, which matters when
   * workloads write from a small set of values. Omit it if unsure: it is only a speed-up.
   */
  inputKey?(input: Input): string;
}

/** 32-bit FNV-1a of a string: cheap, good enough to spread cache buckets. */
export function hashString(s: string, seed = 0x811c9dc5): number {
  let h = seed | 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}

/** Folds one more 32-bit value into a running hash (order-sensitive). */
export function mixHash(h: number, x: number): number {
  let k = Math.imul(x | 0, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  let r = (h ^ k) | 0;
  r = (r << 13) | (r >>> 19);
  return (Math.imul(r, 5) + 0xe6546b64) | 0;
}
