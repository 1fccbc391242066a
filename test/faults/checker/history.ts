/**
 * Histories as the fault harness records them: one entry per client operation, with the
 * client-observed invocation and completion times.
 *
 * An operation is *indeterminate* when the client never learned its outcome (the request timed
 * out, the connection dropped, the client process was killed): `return === null`, or the output
 * is the `{ type: 'unknown' }` marker. Such an operation may or may not have taken effect, at any
 * moment after its call. The checker treats its return time as +infinity and its output as
 * unconstrained (the model's `step` receives `undefined`), which is how Knossos and Porcupine
 * read "info" / unknown operations: it can be linearized anywhere after its call, and linearizing
 * it after everything else is the same as "it never happened", because nothing observes it then.
 *
 * Operations that definitely did NOT take effect (a request the server rejected before applying
 * it) should be left out of the history by the harness: they impose no constraint.
 */

/** Marker output for an operation whose outcome the client does not know. */
export interface UnknownOutput {
  readonly type: 'unknown';
}

export const unknownOutput: UnknownOutput = Object.freeze({ type: 'unknown' });

export type ClientId = string | number;

export interface Operation<Input, Output> {
  readonly clientId: ClientId;
  readonly input: Input;
  /** What the client observed; `{ type: 'unknown' }` when it does not know. */
  readonly output: Output | UnknownOutput;
  /** Invocation time; any monotonic clock shared by all clients (ms, ns, logical ticks). */
  readonly call: number;
  /** Completion time, or null if the client never saw a response. */
  readonly return: number | null;
}

export type History<Input, Output> = readonly Operation<Input, Output>[];

function isUnknownMarker(output: unknown): boolean {
  return (
    typeof output === 'object' &&
    output !== null &&
    (output as { type?: unknown }).type === 'unknown'
  );
}

export function isIndeterminate<I, O>(op: Operation<I, O>): boolean {
  return op.return === null || isUnknownMarker(op.output);
}

/** The output the model may rely on: undefined for indeterminate operations. */
export function determinateOutput<I, O>(op: Operation<I, O>): O | undefined {
  return isIndeterminate(op) ? undefined : (op.output as O);
}

/**
 * The completion time the search uses. An indeterminate operation "returns" at +infinity even
 * if the harness recorded a time (an unknown output with a return time is a timeout the client
 * gave up on; the server may still apply the request later).
 */
export function effectiveReturn<I, O>(op: Operation<I, O>): number {
  return isIndeterminate(op) ? Number.POSITIVE_INFINITY : (op.return as number);
}

/** Throws on malformed timing, which would otherwise silently produce wrong verdicts. */
export function validateHistory<I, O>(history: History<I, O>): void {
  history.forEach((op, i) => {
    if (!Number.isFinite(op.call)) throw new Error(`operation ${i}: call time ${op.call} is not finite`);
    if (op.return !== null) {
      if (!Number.isFinite(op.return)) throw new Error(`operation ${i}: return time ${op.return} is not finite`);
      if (op.return < op.call) throw new Error(`operation ${i}: returns (${op.return}) before its call (${op.call})`);
    }
  });
}

/** A copy ordered by call time (stable: equal call times keep their recorded order). */
export function sortByCall<I, O>(history: History<I, O>): Operation<I, O>[] {
  return history
    .map((op, i) => ({ op, i }))
    .sort((a, b) => a.op.call - b.op.call || a.i - b.i)
    .map(({ op }) => op);
}
