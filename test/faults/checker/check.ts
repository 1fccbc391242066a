/**
 * Entry point: is a recorded history linearizable with respect to a model?
 *
 * The history is split with the model's `partition` (P-compositionality: linearizability is
 * local, so a per-key history can be checked key by key, which turns one exponential problem
 * into many small ones). Every partition is searched (see search.ts) under one shared time
 * budget; on a failure the first failing partition is minimized (see minimize.ts) under a
 * separate budget, so a failure report never costs the verdict.
 */
import { sortByCall, validateHistory, type History, type Operation } from './history.ts';
import { minimizeFailure } from './minimize.ts';
import type { Model } from './model.ts';
import { searchPartition, type SearchStats } from './search.ts';

export interface CheckOptions {
  /** Budget for deciding all partitions. */
  readonly timeoutMs?: number;
  /** Budget for minimizing a failure (after the verdict). */
  readonly minimizeTimeoutMs?: number;
  /** Bound on memoized configurations per partition search. */
  readonly cacheEntriesMax?: number;
}

export const checkDefaults = {
  timeoutMs: 30_000,
  minimizeTimeoutMs: 5_000,
  // Each entry holds a bitset over the partition's ops; a million of them for a 2,000-op
  // partition is a few hundred MB, which is where a test process should stop.
  cacheEntriesMax: 1_000_000,
} as const;

/** Key used when the model does not partition. */
export const wholeHistoryKey = '*';

export interface LinearizableResult {
  readonly ok: true;
  readonly partitions: number;
  readonly elapsedMs: number;
  /** Search effort summed over partitions. */
  readonly stats: SearchStats;
}

export interface NotLinearizableResult<Input, Output> {
  readonly ok: false;
  /** The partition the details below are about (the first failing one). */
  readonly partitionKey: string;
  readonly failedPartitions: readonly string[];
  /** Partitions whose search ran out of budget (they may fail too). */
  readonly undecidedPartitions: readonly string[];
  /**
   * 'realTime': the failing observations would be fine had those ops been concurrent with
   * everything (stale or out-of-order reads); 'value': not even then (see minimize.ts).
   */
  readonly failureKind: 'realTime' | 'value';
  /** A small sub-history of the partition that is not linearizable for the same reason. */
  readonly minimalOffendingSubhistory: readonly Operation<Input, Output>[];
  /** False when minimization ran out of budget (the sub-history is failing but maybe not minimal). */
  readonly minimalComplete: boolean;
  readonly longestLinearizablePrefix: {
    /** The partition as it stood at this time (see minimize.ts) is linearizable; null if unknown. */
    readonly until: number | null;
    readonly operationCount: number;
    /** The earliest return time at which the partition is no longer linearizable... */
    readonly failsAt: number;
    /** ...because of what these operations (returning then) observed. */
    readonly failingOperations: readonly Operation<Input, Output>[];
  };
  /**
   * The longest partial linearization the search found for the partition up to `failsAt` (or
   * the whole partition if minimization ran out of time), in order: what the failing
   * observation contradicts.
   */
  readonly longestLinearization: {
    readonly operations: readonly Operation<Input, Output>[];
    /** The model state after it, if the model can describe states. */
    readonly state: string | undefined;
  };
  /** The whole failing partition, ordered by call time, for context. */
  readonly partitionHistory: readonly Operation<Input, Output>[];
  readonly elapsedMs: number;
  /** Effort of the verdict searches (not of minimization). */
  readonly stats: SearchStats;
}

export interface UnknownResult {
  readonly ok: 'unknown';
  readonly reason: 'timeout' | 'cacheLimit';
  readonly undecidedPartitions: readonly string[];
  readonly elapsedMs: number;
  readonly stats: SearchStats;
}

export type CheckResult<Input, Output> = LinearizableResult | NotLinearizableResult<Input, Output> | UnknownResult;

export function checkLinearizable<State, Input, Output>(
  model: Model<State, Input, Output>,
  history: History<Input, Output>,
  options: CheckOptions = {},
): CheckResult<Input, Output> {
  const started = Date.now();
  validateHistory(history);
  const timeoutMs = options.timeoutMs ?? checkDefaults.timeoutMs;
  const cacheEntriesMax = options.cacheEntriesMax ?? checkDefaults.cacheEntriesMax;
  const deadline = started + timeoutMs;

  const parts: ReadonlyMap<string, readonly Operation<Input, Output>[]> =
    model.partition?.(history) ?? new Map([[wholeHistoryKey, history]]);

  interface Failure {
    readonly key: string;
    readonly ops: Operation<Input, Output>[];
    readonly longest: readonly number[];
    readonly longestState: State;
  }
  const failures: Failure[] = [];
  const undecided: string[] = [];
  let gaveUpReason: 'timeout' | 'cacheLimit' = 'timeout';
  let steps = 0;
  let cacheEntries = 0;
  for (const [key, partOps] of parts) {
    const ops = sortByCall(partOps);
    const outcome = searchPartition(model, ops, { deadline, cacheEntriesMax });
    steps += outcome.stats.steps;
    cacheEntries += outcome.stats.cacheEntries;
    if (outcome.kind === 'illegal') {
      failures.push({ key, ops, longest: outcome.longest, longestState: outcome.longestState });
    } else if (outcome.kind === 'gaveUp') {
      undecided.push(key);
      gaveUpReason = outcome.reason;
    }
  }

  const stats: SearchStats = { steps, cacheEntries };
  const first = failures[0];
  if (first === undefined) {
    const elapsedMs = Date.now() - started;
    if (undecided.length > 0) {
      return { ok: 'unknown', reason: gaveUpReason, undecidedPartitions: undecided, elapsedMs, stats };
    }
    return { ok: true, partitions: parts.size, elapsedMs, stats };
  }

  const minimized = minimizeFailure(model, first.ops, {
    deadline: Date.now() + (options.minimizeTimeoutMs ?? checkDefaults.minimizeTimeoutMs),
    cacheEntriesMax,
  });
  return {
    ok: false,
    partitionKey: first.key,
    failedPartitions: failures.map((f) => f.key),
    undecidedPartitions: undecided,
    failureKind: minimized.failureKind,
    minimalOffendingSubhistory: minimized.subhistory,
    minimalComplete: minimized.complete,
    longestLinearizablePrefix: {
      until: minimized.linearizableUntil,
      operationCount: minimized.linearizablePrefixLength,
      failsAt: minimized.failsAt,
      failingOperations: minimized.failingOperations,
    },
    longestLinearization: {
      operations: minimized.longest?.operations ?? first.longest.map((id) => first.ops[id]),
      state: model.describeState?.(minimized.longest?.state ?? first.longestState),
    },
    partitionHistory: first.ops,
    elapsedMs: Date.now() - started,
    stats,
  };
}
