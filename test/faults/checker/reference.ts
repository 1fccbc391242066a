/**
 * A deliberately naive linearizability checker, used only to cross-check the real one on tiny
 * histories: it tries every order of the operations that respects real time (an op that
 * returned before another was called comes first), stepping the model along. Exponential;
 * keep histories under ~8 operations. Shares the semantics the checker documents: touching
 * intervals are concurrent, indeterminate ops never precede anything and accept any output.
 */
import { determinateOutput, effectiveReturn, type Operation } from './history.ts';
import type { Model } from './model.ts';

export function bruteForceLinearizable<S, I, O>(model: Model<S, I, O>, ops: readonly Operation<I, O>[]): boolean {
  const used = ops.map(() => false);
  const mayGoNext = (i: number): boolean =>
    ops.every((other, j) => j === i || used[j] || !(effectiveReturn(other) < ops[i].call));
  const extend = (state: S, count: number): boolean => {
    if (count === ops.length) return true;
    for (let i = 0; i < ops.length; i++) {
      if (used[i] || !mayGoNext(i)) continue;
      const r = model.step(state, ops[i].input, determinateOutput(ops[i]));
      if (!r.ok) continue;
      used[i] = true;
      const found = extend(r.state, count + 1);
      used[i] = false;
      if (found) return true;
    }
    return false;
  };
  return extend(model.init(), 0);
}
