/**
 * Histories of a system that is linearizable by construction, for testing the checker: each
 * client runs operations one after another with random gaps and durations, every operation
 * takes effect atomically at a point inside its interval, and outputs come from executing the
 * operations in the order of those points against a plain in-memory implementation.
 * Some operations lose their response (the client records no return), and some of those never
 * reach the system at all, which is what timeouts and crashes look like to a client.
 */
import { unknownOutput, type Operation } from './history.ts';
import type { KvInput, KvOutput, ListInput, ListOutput, ListValue } from './models.ts';

/** What happened to one operation. */
export type Fate =
  | 'ok'
  /** Applied, but the client never saw the response (and recorded no return time). */
  | 'lostResponse'
  /** Applied, the client gave up waiting: a return time is recorded, the output is unknown. */
  | 'timedOut'
  /** Never applied (the request was lost); the client cannot tell this from lostResponse. */
  | 'neverApplied';

export interface TimedSpec<Input> {
  readonly client: number;
  readonly input: Input;
  /** Idle time before the call, after the client's previous operation returned. */
  readonly gap: number;
  readonly duration: number;
  /** Where in [call, return] the operation takes effect, as a fraction. */
  readonly point: number;
  readonly fate: Fate;
}

/** Runs the specs; `execute` applies one input to the system and returns its output. */
export function simulate<Input, Output>(
  specs: readonly TimedSpec<Input>[],
  execute: (input: Input) => Output,
): Operation<Input, Output>[] {
  const clock = new Map<number, number>();
  const timed = specs.map((spec, index) => {
    const call = (clock.get(spec.client) ?? 0) + spec.gap;
    const ret = call + spec.duration;
    clock.set(spec.client, ret);
    return { spec, index, call, ret, at: call + spec.point * spec.duration };
  });
  const outputs = new Map<number, Output>();
  for (const t of [...timed].sort((a, b) => a.at - b.at || a.index - b.index)) {
    if (t.spec.fate !== 'neverApplied') outputs.set(t.index, execute(t.spec.input));
  }
  return timed.map(({ spec, index, call, ret }) => {
    const known = spec.fate === 'ok';
    return {
      clientId: spec.client,
      input: spec.input,
      output: known ? (outputs.get(index) as Output) : unknownOutput,
      call,
      return: spec.fate === 'ok' || spec.fate === 'timedOut' ? ret : null,
    };
  });
}

/** An atomic key-value store executing KvInput. */
export function kvStore(): (input: KvInput) => KvOutput {
  const data = new Map<string, string>();
  return (input) => {
    const current = data.get(input.key) ?? null;
    switch (input.op) {
      case 'get':
        return { type: 'get', value: current };
      case 'put':
        data.set(input.key, input.value);
        return { type: 'put' };
      case 'delete':
        data.delete(input.key);
        return { type: 'delete', deleted: current === null ? 0 : 1 };
      case 'cas': {
        const ok = current === input.expected;
        if (ok) data.set(input.key, input.value);
        return { type: 'cas', ok };
      }
    }
  };
}

/** An atomic list-per-key store executing ListInput. */
export function listStore(): (input: ListInput) => ListOutput {
  const data = new Map<string, ListValue[]>();
  return (input) => {
    const list = data.get(input.key) ?? [];
    if (input.op === 'read') return { type: 'read', values: [...list] };
    data.set(input.key, [...list, input.value]);
    return { type: 'append' };
  };
}
