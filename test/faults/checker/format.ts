/**
 * Readable renderings of histories and failures, for test output and the fault harness's
 * failure reports: one line per operation, `client  [call .. return]  input → output`.
 */
import type { CheckResult } from './check.ts';
import { determinateOutput, isIndeterminate, sortByCall, type Operation } from './history.ts';
import type { Model } from './model.ts';

export interface FormatOptions<Input, Output> {
  /** Time printed as 0 (default: the earliest call), so numbers stay short. */
  readonly origin?: number;
  /** Operations to flag with `>>` (e.g. the ones whose observation cannot be explained). */
  readonly mark?: ReadonlySet<Operation<Input, Output>>;
}

/** The model's view of an op: operations and describers only need input and output. */
type Describer<Input, Output> = Pick<Model<unknown, Input, Output>, 'describe'>;

function showTime(t: number): string {
  return Number.isInteger(t) ? String(t) : t.toFixed(3);
}

export function formatOperation<I, O>(model: Describer<I, O>, op: Operation<I, O>, origin = 0): string {
  const ret = op.return === null ? '…' : showTime(op.return - origin);
  const unknown = isIndeterminate(op) && op.return !== null ? ' (timed out)' : '';
  return `${String(op.clientId).padStart(4)}  [${showTime(op.call - origin).padStart(8)} .. ${ret.padStart(8)}]  ${model.describe(op.input, determinateOutput(op))}${unknown}`;
}

/** One line per operation, ordered by call time. */
export function formatHistory<I, O>(
  model: Describer<I, O>,
  ops: readonly Operation<I, O>[],
  options: FormatOptions<I, O> = {},
): string {
  if (ops.length === 0) return '  (no operations)';
  const sorted = sortByCall(ops);
  const origin = options.origin ?? sorted[0].call;
  return sorted
    .map((op) => `${options.mark?.has(op) ? '>>' : '  '}${formatOperation(model, op, origin)}`)
    .join('\n');
}

/** A multi-line report of a check result; for a failure, the evidence a person needs first. */
export function formatCheckResult<S, I, O>(
  model: Model<S, I, O>,
  result: CheckResult<I, O>,
  options: { readonly origin?: number; readonly linearizationTail?: number } = {},
): string {
  if (result.ok === true) return `linearizable (${result.partitions} partitions, ${result.elapsedMs} ms)`;
  if (result.ok === 'unknown') {
    return `undecided: ${result.reason} after ${result.elapsedMs} ms in partitions ${result.undecidedPartitions.join(', ')}`;
  }
  const origin = options.origin ?? result.partitionHistory[0]?.call ?? 0;
  const prefix = result.longestLinearizablePrefix;
  const tail = options.linearizationTail ?? 10;
  const lin = result.longestLinearization.operations;
  const lines = [
    `NOT linearizable: partition ${JSON.stringify(result.partitionKey)}` +
      (result.failedPartitions.length > 1 ? ` (failing partitions: ${result.failedPartitions.join(', ')})` : ''),
    `fails at t=${showTime(prefix.failsAt - origin)} (${result.failureKind === 'realTime' ? 'observed out of real-time order' : 'observed a value no order explains'})` +
      (prefix.until === null ? '' : `; linearizable up to t=${showTime(prefix.until - origin)} (${prefix.operationCount} ops)`),
    `minimal offending sub-history (${result.minimalOffendingSubhistory.length} ops${result.minimalComplete ? '' : ', shrinking cut short'}):`,
    formatHistory(model, result.minimalOffendingSubhistory, { origin, mark: new Set(prefix.failingOperations) }),
    `longest partial linearization: ${lin.length} of ${result.partitionHistory.length} ops` +
      (result.longestLinearization.state === undefined ? '' : `, ending in state ${result.longestLinearization.state}`) +
      (lin.length > tail ? `; last ${tail}:` : ':'),
    ...lin.slice(-tail).map((op) => `  ${formatOperation(model, op, origin)}`),
  ];
  return lines.join('\n');
}
