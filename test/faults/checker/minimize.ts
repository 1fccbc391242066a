/**
 * Turns "this partition is not linearizable" into something a person can read: the earliest
 * moment the history stops being explainable, the observations that cannot be explained then,
 * and a small sub-history that shows why.
 *
 * Why a time cut rather than "the first k operations by call time": dropping operations that
 * were called later can make an earlier read unexplainable (a read overlapping a write that
 * started after it may still see that write), so plain call-order prefixes are not monotone and
 * could blame a correct history. The cut at time T keeps every op called by T, and those still
 * running at T become indeterminate (their effect may or may not have happened yet, their output
 * unseen). If the full history is linearizable, so is every cut (restrict a linearization to
 * the ops linearized by T and move the pending ones to the end), so "cut(T) is not linearizable"
 * is monotone in T and the earliest failing T is found by binary search over return times.
 *
 * The culprits are the fewest of the ops returning at that T whose outputs keep the cut failing.
 * Shrinking then removes operations while the sub-history still fails *for the same reason*.
 * "Still not linearizable" alone is not enough: removing the write a correct read saw makes that
 * read unexplainable, and the result would blame the wrong op (a stale read would shrink to "a
 * read of a value nobody wrote", the real culprit gone). So a sub-history must
 *  (a) be linearizable once the culprits' outputs are unknown (the culprits are what fails),
 *  (b) if the culprits would be fine had they been concurrent with everything (a stale or
 *      out-of-order read: a "realTime" failure), be linearizable with them so relaxed, which
 *      keeps the writes that make the observation stale, and
 *  (c) not be linearizable.
 *
 * Shrinking works on a linearization L of (a). Removing a stretch of L and replaying the rest
 * through the model, dropping whatever no longer steps (the reads of a removed write), gives a
 * smaller sub-history together with a linearization proving (a), so only (b) and (c) need a
 * search; and dependent ops leave together, which plain delta debugging over call order cannot
 * do (it gets stuck on every read whose write lies in another chunk). Stretches halve in size
 * down to single ops; a last pass removes single ops plainly until none can go (1-minimal).
 * Every search runs under the caller's budget; when it runs out the result is what was reached
 * (still failing, maybe not minimal).
 */
import { determinateOutput, isIndeterminate, sortByCall, unknownOutput, type Operation } from './history.ts';
import type { Model } from './model.ts';
import { searchPartition } from './search.ts';

export interface MinimizeOptions {
  readonly deadline: number;
  readonly cacheEntriesMax: number;
}

export interface Minimized<State, Input, Output> {
  /** Earliest return time T at which the cut history is not linearizable. */
  readonly failsAt: number;
  /** The fewest operations completing at `failsAt` whose observations cannot be explained. */
  readonly failingOperations: readonly Operation<Input, Output>[];
  /**
   * 'realTime': those observations would be fine had the ops been concurrent with everything
   * (a stale or out-of-order read); 'value': not even then (a value never written, a lost
   * update, a compare-and-set that succeeded twice).
   */
  readonly failureKind: 'realTime' | 'value';
  /** The latest earlier return time whose cut was checked and found linearizable, if any. */
  readonly linearizableUntil: number | null;
  /** Number of operations in that linearizable cut. */
  readonly linearizablePrefixLength: number;
  /**
   * Ordered by call time. The ops are the caller's objects, except ops still running at the
   * cut (shown pending), which remain only when something needed them to have taken effect.
   */
  readonly subhistory: readonly Operation<Input, Output>[];
  /** False when the budget ran out before shrinking finished (the result is still failing). */
  readonly complete: boolean;
  /**
   * The search's longest partial linearization of the cut at `failsAt` and the state after it:
   * the context the failing observation contradicts. Undefined if unknown.
   */
  readonly longest: { readonly operations: readonly Operation<Input, Output>[]; readonly state: State } | undefined;
}

type Verdict = 'illegal' | 'linearizable' | 'unknown';
type Ops<I, O> = readonly Operation<I, O>[];

/** The history as it stood at time `t` (see the header); `ops` sorted by call time. */
export function cutAt<I, O>(ops: Ops<I, O>, t: number): Operation<I, O>[] {
  const out: Operation<I, O>[] = [];
  for (const op of ops) {
    if (op.call > t) break;
    const finished = !isIndeterminate(op) && (op.return as number) <= t;
    out.push(finished || isIndeterminate(op) ? op : { ...op, output: unknownOutput, return: null });
  }
  return out;
}

/** The ops in `which` as if their clients never saw a response. */
function forgetOutputs<I, O>(ops: Ops<I, O>, which: ReadonlySet<Operation<I, O>>): Operation<I, O>[] {
  return ops.map((op) => (which.has(op) ? { ...op, output: unknownOutput, return: null } : op));
}

/** The ops in `which` as if called before everything else (their real-time order dropped). */
function relax<I, O>(ops: Ops<I, O>, which: ReadonlySet<Operation<I, O>>): Operation<I, O>[] {
  const earliest = Math.min(...ops.map((op) => op.call));
  return ops.map((op) => (which.has(op) ? { ...op, call: earliest } : op));
}

export function minimizeFailure<S, I, O>(
  model: Model<S, I, O>,
  ops: Ops<I, O>,
  options: MinimizeOptions,
): Minimized<S, I, O> {
  let complete = true;
  let longest: Minimized<S, I, O>['longest'];
  const search = (sub: Ops<I, O>) => {
    if (Date.now() > options.deadline) return undefined;
    const r = searchPartition(model, sub, options);
    return r.kind === 'gaveUp' ? undefined : r;
  };
  const verdict = (sub: Ops<I, O>): Verdict => {
    const r = search(sub);
    if (r === undefined) complete = false;
    return r?.kind ?? 'unknown';
  };

  // 1. The earliest failing cut. Candidate times are the determinate returns; the last one's
  // cut fails whenever the full history does (only indeterminate ops follow, which can go last).
  const times = [...new Set(ops.filter((op) => !isIndeterminate(op)).map((op) => op.return as number))].sort(
    (a, b) => a - b,
  );
  const verdicts = new Map<number, Verdict>();
  let lo = 0;
  let hi = times.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const v = verdict(cutAt(ops, times[mid]));
    verdicts.set(mid, v);
    // Unknown counts as "maybe fine": we then only blame a later, still-failing cut.
    if (v === 'illegal') hi = mid;
    else lo = mid + 1;
  }
  const failsAt = times[lo] ?? Number.POSITIVE_INFINITY;
  const linearizableUntil = lo > 0 && verdicts.get(lo - 1) === 'linearizable' ? times[lo - 1] : null;
  let current = cutAt(ops, failsAt);

  // 2. Culprits: forget each op returning at failsAt whose output is not needed for failing.
  let culprits = current.filter((op) => !isIndeterminate(op) && op.return === failsAt);
  for (const op of [...culprits]) {
    if (culprits.length === 1) break;
    const without = forgetOutputs(current, new Set([op]));
    if (verdict(without) === 'illegal') {
      culprits = culprits.filter((c) => c !== op);
      current = without;
    }
  }
  const culpritSet = new Set(culprits);
  const realTime = verdict(relax(current, culpritSet)) === 'linearizable';
  const final = search(current);
  if (final?.kind === 'illegal') {
    longest = { operations: final.longest.map((id) => current[id]), state: final.longestState };
  }

  // 3. Shrink.
  const others = search(forgetOutputs(current, culpritSet));
  const result = (subhistory: Ops<I, O>): Minimized<S, I, O> => ({
    failsAt,
    failingOperations: culprits,
    failureKind: realTime ? 'realTime' : 'value',
    linearizableUntil,
    linearizablePrefixLength: linearizableUntil === null ? 0 : cutAt(ops, linearizableUntil).length,
    subhistory: sortByCall(subhistory),
    complete: complete && Date.now() <= options.deadline,
    longest,
  });
  if (others === undefined || others.kind !== 'linearizable' || final?.kind !== 'illegal') {
    // The budget cut an earlier step short, so (a) may not hold for the cut: the best
    // available is plain "still not linearizable".
    complete = false;
    return result(deltaDebug(current, verdict, options.deadline));
  }
  // (a) holds by construction for candidates built by replay; (b) and (c) are searched.
  const keepsFailing = (sub: Ops<I, O>): Verdict => {
    if (realTime) {
      const relaxed = verdict(relax(sub, culpritSet));
      if (relaxed !== 'linearizable') return relaxed === 'unknown' ? 'unknown' : 'linearizable';
    }
    return verdict(sub);
  };
  // Indeterminate ops the linearization did not need go at its end, where they always step.
  const placed = new Set(others.linearization);
  const rest = [...current.keys()].filter((id) => !placed.has(id));
  let order = [...others.linearization, ...rest].map((id) => current[id]);
  const shrunk = shrinkAlong(model, order, culpritSet, keepsFailing, options.deadline);
  order = shrunk.order;
  current = shrunk.subhistory;

  const sameFailure = (sub: Ops<I, O>): Verdict => {
    const v = verdict(forgetOutputs(sub, culpritSet));
    if (v !== 'linearizable') return v === 'unknown' ? 'unknown' : 'linearizable';
    return keepsFailing(sub);
  };
  return result(deltaDebug(current, sameFailure, options.deadline, 1));
}

/**
 * Removes stretches of the linearization `order` (halving their length), replaying the rest
 * and dropping ops that no longer step; keeps a candidate when `keeps` says it still fails.
 * Culprits are never removed (without them nothing fails) and are always part of the result.
 */
function shrinkAlong<S, I, O>(
  model: Model<S, I, O>,
  start: Ops<I, O>,
  culprits: ReadonlySet<Operation<I, O>>,
  keeps: (sub: Ops<I, O>) => Verdict,
  deadline: number,
): { order: Operation<I, O>[]; subhistory: Operation<I, O>[] } {
  const replay = (order: Ops<I, O>, skip: ReadonlySet<Operation<I, O>>): Operation<I, O>[] => {
    const kept: Operation<I, O>[] = [];
    let state = model.init();
    for (const op of order) {
      if (skip.has(op)) continue;
      const r = model.step(state, op.input, culprits.has(op) ? undefined : determinateOutput(op));
      if (!r.ok) continue;
      state = r.state;
      kept.push(op);
    }
    return kept;
  };
  const withCulprits = (order: Ops<I, O>): Operation<I, O>[] => {
    const present = new Set(order);
    return [...order, ...[...culprits].filter((c) => !present.has(c))];
  };

  let order = replay(start, new Set());
  let subhistory = withCulprits(order);
  for (let chunk = Math.max(1, Math.ceil(order.length / 2)); ; chunk = Math.ceil(chunk / 2)) {
    for (let i = 0; i < order.length && Date.now() <= deadline; ) {
      const skip = new Set(order.slice(i, i + chunk).filter((op) => !culprits.has(op)));
      const candidate = skip.size === 0 ? undefined : replay(order, skip);
      if (candidate !== undefined && keeps(withCulprits(candidate)) === 'illegal') {
        order = candidate;
        subhistory = withCulprits(candidate);
      } else {
        i += chunk;
      }
    }
    if (chunk === 1 || Date.now() > deadline) return { order, subhistory };
  }
}

/**
 * Plain delta debugging: removes chunks of halving size while `keeps` says "illegal", then
 * single ops until a whole pass removes nothing (removing one op can make another removable).
 */
function deltaDebug<I, O>(
  start: Ops<I, O>,
  keeps: (sub: Ops<I, O>) => Verdict,
  deadline: number,
  firstChunk = Math.ceil(start.length / 2),
): Operation<I, O>[] {
  let current = [...start];
  // Indeterminate ops first, all at once: they only slow the searches down.
  const determinate = current.filter((op) => !isIndeterminate(op));
  if (determinate.length < current.length && keeps(determinate) === 'illegal') current = determinate;
  let chunk = Math.max(1, Math.min(firstChunk, current.length));
  for (;;) {
    let removed = false;
    for (let i = 0; i < current.length && Date.now() <= deadline; ) {
      const candidate = [...current.slice(0, i), ...current.slice(i + chunk)];
      if (candidate.length > 0 && keeps(candidate) === 'illegal') {
        current = candidate;
        removed = true;
      } else {
        i += chunk;
      }
    }
    if (Date.now() > deadline || (chunk === 1 && !removed)) return current;
    chunk = Math.max(1, Math.ceil(Math.min(chunk, current.length) / 2));
  }
}
