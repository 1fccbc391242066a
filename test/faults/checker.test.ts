import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkLinearizable, type CheckResult } from './checker/check.ts';
import { formatCheckResult, formatHistory } from './checker/format.ts';
import { unknownOutput, type Operation } from './checker/history.ts';
import {
  kvRegisterModel,
  listAppendModel,
  type KvInput,
  type KvOutput,
  type ListInput,
  type ListOutput,
  type ListValue,
} from './checker/models.ts';
import { bruteForceLinearizable } from './checker/reference.ts';
import { kvStore, listStore, simulate, type Fate, type TimedSpec } from './checker/simulate.ts';

// ---------------------------------------------------------------------------------------------
// Builders: `[call, return]` intervals, return null = the client never heard back.

type Interval = readonly [number, number | null];
type KvOp = Operation<KvInput, KvOutput>;
type ListOp = Operation<ListInput, ListOutput>;

function kvOp(clientId: number, [call, ret]: Interval, input: KvInput, output: KvOutput): KvOp {
  return { clientId, input, output: ret === null ? unknownOutput : output, call, return: ret };
}
const put = (c: number, iv: Interval, value: string, key = 'x'): KvOp =>
  kvOp(c, iv, { op: 'put', key, value }, { type: 'put' });
const get = (c: number, iv: Interval, value: string | null, key = 'x'): KvOp =>
  kvOp(c, iv, { op: 'get', key }, { type: 'get', value });
const cas = (c: number, iv: Interval, expected: string | null, value: string, ok: boolean, key = 'x'): KvOp =>
  kvOp(c, iv, { op: 'cas', key, expected, value }, { type: 'cas', ok });

function listOp(clientId: number, [call, ret]: Interval, input: ListInput, output: ListOutput): ListOp {
  return { clientId, input, output: ret === null ? unknownOutput : output, call, return: ret };
}
const append = (c: number, iv: Interval, value: ListValue, key = 'l'): ListOp =>
  listOp(c, iv, { op: 'append', key, value }, { type: 'append' });
const read = (c: number, iv: Interval, values: ListValue[], key = 'l'): ListOp =>
  listOp(c, iv, { op: 'read', key }, { type: 'read', values });

function assertRejected<I, O>(result: CheckResult<I, O>, maxMinimal = 4): asserts result is Extract<CheckResult<I, O>, { ok: false }> {
  assert.equal(result.ok, false, 'history should be rejected');
  if (result.ok !== false) return;
  assert.ok(result.minimalComplete, 'minimization finished');
  assert.ok(
    result.minimalOffendingSubhistory.length <= maxMinimal,
    `minimal sub-history has ${result.minimalOffendingSubhistory.length} ops`,
  );
}

const kvCheck = (ops: readonly KvOp[]) => checkLinearizable(kvRegisterModel, ops, { timeoutMs: 5_000 });
const listCheck = (ops: readonly ListOp[]) => checkLinearizable(listAppendModel, ops, { timeoutMs: 5_000 });

// ---------------------------------------------------------------------------------------------

describe('crafted non-linearizable histories are rejected', () => {
  test('a stale read after a completed write', () => {
    const stale = get(3, [40, 50], 'a');
    const r = kvCheck([put(1, [0, 10], 'a'), put(2, [20, 30], 'b'), stale]);
    assertRejected(r, 3);
    assert.equal(r.partitionKey, 'x');
    assert.deepEqual(r.longestLinearizablePrefix.failingOperations, [stale]);
    assert.equal(r.longestLinearizablePrefix.failsAt, 50);
    assert.equal(r.longestLinearizablePrefix.until, 30);
    // The culprit, with the writes that make it stale (not just "a read of a value nobody wrote").
    assert.equal(r.failureKind, 'realTime');
    assert.deepEqual(r.minimalOffendingSubhistory, [put(1, [0, 10], 'a'), put(2, [20, 30], 'b'), stale]);
    assert.equal(r.longestLinearization.operations.length, 2);
    assert.equal(r.longestLinearization.state, '"b"');
  });

  test('two clients see two concurrent writes in opposite orders', () => {
    const r = kvCheck([
      put(1, [0, 100], '1'),
      put(2, [0, 100], '2'),
      get(3, [1, 2], '1'),
      get(3, [3, 4], '2'),
      get(4, [1, 2], '2'),
      get(4, [3, 4], '1'),
    ]);
    assertRejected(r, 6);
  });

  test('a compare-and-set succeeds twice for the same expected value', () => {
    const r = kvCheck([put(1, [0, 1], '0'), cas(2, [2, 10], '0', '1', true), cas(3, [3, 11], '0', '2', true)]);
    assertRejected(r, 3);
  });

  test('a lost update: two increments by compare-and-set leave the counter at 1', () => {
    const r = kvCheck([
      put(1, [0, 1], '0'),
      get(1, [2, 3], '0'),
      get(2, [2, 3], '0'),
      cas(1, [4, 5], '0', '1', true),
      cas(2, [4, 6], '0', '1', true),
      get(3, [10, 11], '1'),
    ]);
    assertRejected(r, 3);
  });

  test('a lost update: a list loses a completed append', () => {
    const r = listCheck([append(1, [0, 1], 1), append(2, [2, 3], 2), read(3, [4, 5], [2])]);
    assertRejected(r, 3);
  });

  test('a read returns a value never written', () => {
    const bad = get(2, [5, 15], 'z');
    const r = kvCheck([put(1, [0, 10], 'a'), bad, get(3, [20, 30], 'a')]);
    assertRejected(r, 1);
    assert.deepEqual(r.minimalOffendingSubhistory, [bad]);
  });

  test('a list read misses an element an earlier completed read saw', () => {
    const r = listCheck([append(1, [0, null], 1), read(2, [5, 6], [1]), read(3, [7, 8], [])]);
    assertRejected(r, 3);
    // The append stays: without it the first read would be the unexplainable one. Read before
    // the append, the empty list would be fine: an ordering failure.
    assert.equal(r.minimalOffendingSubhistory.length, 3);
    assert.equal(r.failureKind, 'realTime');
  });

  test('an indeterminate write cannot explain a read that finished before the write was called', () => {
    const early = get(1, [0, 5], 'a');
    const r = kvCheck([early, put(2, [10, null], 'a'), get(1, [20, 21], 'a')]);
    assertRejected(r, 1);
    assert.deepEqual(r.minimalOffendingSubhistory, [early]);
  });

  test('keys are checked independently and the failing key is named', () => {
    const r = kvCheck([
      put(1, [0, 1], 'a', 'good'),
      get(2, [2, 3], 'a', 'good'),
      put(1, [0, 1], 'a', 'bad'),
      get(2, [2, 3], 'b', 'bad'),
    ]);
    assertRejected(r, 1);
    assert.equal(r.partitionKey, 'bad');
    assert.deepEqual(r.failedPartitions, ['bad']);
  });
});

describe('crafted valid histories are accepted', () => {
  test('concurrent writes, with concurrent reads seeing either', () => {
    const base = [put(1, [0, 10], 'a'), put(2, [0, 10], 'b'), get(3, [2, 4], 'a'), get(4, [2, 4], 'b')];
    assert.equal(kvCheck([...base, get(3, [20, 21], 'b')]).ok, true);
    assert.equal(kvCheck([...base, get(3, [20, 21], 'a')]).ok, true);
  });

  test('an indeterminate write whose effect shows up later', () => {
    const r = kvCheck([
      put(1, [0, 1], 'a'),
      put(2, [2, null], 'b'),
      get(3, [3, 4], 'a'),
      get(3, [10, 11], 'b'),
      get(4, [12, 13], 'b'),
    ]);
    assert.equal(r.ok, true);
  });

  test('indeterminate writes that never become visible', () => {
    const r = kvCheck([
      put(1, [0, 1], 'a'),
      put(2, [2, null], 'b'),
      put(3, [3, null], 'c'),
      get(4, [5, 6], 'a'),
      get(4, [100, 101], 'a'),
    ]);
    assert.equal(r.ok, true);
  });

  test('a timed-out write (unknown output, return time recorded) may take effect after it "returned"', () => {
    const timedOut: KvOp = { ...put(2, [2, 5], 'b'), output: unknownOutput };
    const r = kvCheck([put(1, [0, 1], 'a'), timedOut, get(3, [6, 7], 'a'), get(3, [8, 9], 'b')]);
    assert.equal(r.ok, true);
  });

  test('overlapping compare-and-sets', () => {
    const r = kvCheck([
      put(1, [0, 1], '0'),
      cas(2, [2, 10], '0', '1', true),
      cas(3, [3, 9], '1', '2', true),
      cas(4, [4, 8], '0', '3', false),
      get(1, [11, 12], '2'),
    ]);
    assert.equal(r.ok, true);
  });

  test('an indeterminate compare-and-set may or may not have applied', () => {
    const h = [put(1, [0, 1], '0'), cas(2, [2, null], '0', '1', true)];
    assert.equal(kvCheck([...h, get(3, [5, 6], '0'), get(3, [7, 8], '1')]).ok, true);
    assert.equal(kvCheck([...h, get(3, [5, 6], '0'), get(3, [7, 8], '0')]).ok, true);
  });

  test('list appends seen in one order by every reader', () => {
    const r = listCheck([
      append(1, [0, 10], 1),
      append(2, [0, 10], 2),
      read(3, [1, 2], [2]),
      read(4, [3, 4], [2, 1]),
      append(1, [11, null], 3),
      read(3, [20, 21], [2, 1]),
    ]);
    assert.equal(r.ok, true);
  });

  test('operations whose intervals only touch are concurrent', () => {
    assert.equal(kvCheck([put(1, [0, 10], 'a'), get(2, [10, 12], null)]).ok, true);
  });
});

// ---------------------------------------------------------------------------------------------
// Property tests: histories of an atomic system are accepted; impossible reads are rejected.

const keys = ['k0', 'k1', 'k2'];
const values = ['a', 'b', 'c'];

const fateArb: fc.Arbitrary<Fate> = fc.oneof(
  { weight: 16, arbitrary: fc.constant<Fate>('ok') },
  { weight: 1, arbitrary: fc.constant<Fate>('lostResponse') },
  { weight: 1, arbitrary: fc.constant<Fate>('timedOut') },
  { weight: 1, arbitrary: fc.constant<Fate>('neverApplied') },
);

const kvInputArb = (keySet: readonly string[]): fc.Arbitrary<KvInput> => {
  const key = fc.constantFrom(...keySet);
  const value = fc.constantFrom(...values);
  return fc.oneof(
    { weight: 4, arbitrary: key.map((k): KvInput => ({ op: 'get', key: k })) },
    { weight: 3, arbitrary: fc.tuple(key, value).map(([k, v]): KvInput => ({ op: 'put', key: k, value: v })) },
    { weight: 1, arbitrary: key.map((k): KvInput => ({ op: 'delete', key: k })) },
    {
      weight: 2,
      arbitrary: fc
        .tuple(key, fc.option(value, { nil: null }), value)
        .map(([k, e, v]): KvInput => ({ op: 'cas', key: k, expected: e, value: v })),
    },
  );
};

function timedArb<I>(input: fc.Arbitrary<I>, clients: number): fc.Arbitrary<TimedSpec<I>> {
  return fc.record({
    client: fc.integer({ min: 0, max: clients - 1 }),
    input,
    gap: fc.integer({ min: 0, max: 6 }),
    duration: fc.integer({ min: 0, max: 25 }),
    point: fc.integer({ min: 0, max: 100 }).map((p) => p / 100),
    fate: fateArb,
  });
}

const kvHistoryArb = fc.array(timedArb(kvInputArb(keys), 5), { minLength: 1, maxLength: 80 }).map((specs) =>
  simulate(specs, kvStore()),
);

/** Completed reads, by index into the history. */
const completedReads = <I extends { op: string }, O>(h: readonly Operation<I, O>[]): number[] =>
  h.flatMap((op, i) => (op.input.op === 'get' || op.input.op === 'read') && op.return !== null && !isUnknown(op) ? [i] : []);
const isUnknown = <I, O>(op: Operation<I, O>): boolean => (op.output as { type: string }).type === 'unknown';

describe('property: simulated linearizable systems', () => {
  test('key-value histories of an atomic store are accepted', () => {
    fc.assert(
      fc.property(kvHistoryArb, (h) => {
        const r = kvCheck(h);
        assert.equal(r.ok, true, r.ok === false ? formatCheckResult(kvRegisterModel, r) : String(r.ok));
      }),
      { numRuns: 300 },
    );
  });

  test('changing one completed read to a value never written is rejected, down to that read', () => {
    fc.assert(
      fc.property(kvHistoryArb, fc.nat(), (h, pick) => {
        const reads = completedReads(h);
        fc.pre(reads.length > 0);
        const i = reads[pick % reads.length];
        const bad: KvOp = { ...h[i], output: { type: 'get', value: 'never-written' } };
        const mutated = h.map((op, j) => (j === i ? bad : op));
        const r = kvCheck(mutated);
        assertRejected(r, 1);
        assert.deepEqual(r.minimalOffendingSubhistory, [bad]);
        assert.equal(r.partitionKey, bad.input.key);
      }),
      { numRuns: 200 },
    );
  });

  let nextValue = 0;
  const listInputArb: fc.Arbitrary<ListInput> = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...keys).map((k): ListInput => ({ op: 'append', key: k, value: nextValue++ })) },
    { weight: 2, arbitrary: fc.constantFrom(...keys).map((k): ListInput => ({ op: 'read', key: k })) },
  );
  const listHistoryArb = fc.array(timedArb(listInputArb, 5), { minLength: 1, maxLength: 80 }).map((specs) =>
    simulate(specs, listStore()),
  );

  test('list-append histories of an atomic store are accepted', () => {
    fc.assert(
      fc.property(listHistoryArb, (h) => {
        const r = listCheck(h);
        assert.equal(r.ok, true, r.ok === false ? formatCheckResult(listAppendModel, r) : String(r.ok));
      }),
      { numRuns: 300 },
    );
  });

  test('a list read showing an element never appended is rejected', () => {
    fc.assert(
      fc.property(listHistoryArb, fc.nat(), (h, pick) => {
        const reads = completedReads(h);
        fc.pre(reads.length > 0);
        const i = reads[pick % reads.length];
        const seen = h[i].output as { type: 'read'; values: readonly ListValue[] };
        const bad: ListOp = { ...h[i], output: { type: 'read', values: [...seen.values, 'never-appended'] } };
        const r = listCheck(h.map((op, j) => (j === i ? bad : op)));
        assertRejected(r, 1);
        assert.deepEqual(r.minimalOffendingSubhistory, [bad]);
      }),
      { numRuns: 200 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Differential: on tiny arbitrary histories (valid or not) the checker agrees with brute force.

const tinyKvOpArb: fc.Arbitrary<KvOp> = fc
  .record({
    client: fc.integer({ min: 0, max: 3 }),
    call: fc.integer({ min: 0, max: 20 }),
    duration: fc.option(fc.integer({ min: 0, max: 10 }), { nil: null, freq: 5 }),
    pick: fc.integer({ min: 0, max: 3 }),
    v: fc.constantFrom('a', 'b'),
    e: fc.constantFrom<string | null>(null, 'a', 'b'),
    flag: fc.boolean(),
  })
  .map(({ client, call, duration, pick, v, e, flag }) => {
    const iv: Interval = [call, duration === null ? null : call + duration];
    if (pick === 0) return put(client, iv, v);
    if (pick === 1) return get(client, iv, flag ? v : null);
    if (pick === 2) return cas(client, iv, e, v, flag);
    return kvOp(client, iv, { op: 'delete', key: 'x' }, { type: 'delete', deleted: flag ? 1 : 0 });
  });

const tinyListOpArb: fc.Arbitrary<ListOp> = fc
  .record({
    client: fc.integer({ min: 0, max: 3 }),
    call: fc.integer({ min: 0, max: 20 }),
    duration: fc.option(fc.integer({ min: 0, max: 10 }), { nil: null, freq: 5 }),
    isAppend: fc.boolean(),
    v: fc.integer({ min: 1, max: 3 }),
    seen: fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 3 }),
  })
  .map(({ client, call, duration, isAppend, v, seen }) => {
    const iv: Interval = [call, duration === null ? null : call + duration];
    return isAppend ? append(client, iv, v) : read(client, iv, seen);
  });

describe('property: agrees with a brute-force checker on tiny histories', () => {
  test('key-value register', () => {
    let rejected = 0;
    fc.assert(
      fc.property(fc.array(tinyKvOpArb, { minLength: 1, maxLength: 7 }), (h) => {
        const expected = bruteForceLinearizable(kvRegisterModel, h);
        const r = kvCheck(h);
        assert.equal(r.ok, expected, formatHistory(kvRegisterModel, h));
        if (r.ok === false) {
          rejected++;
          assert.equal(bruteForceLinearizable(kvRegisterModel, r.minimalOffendingSubhistory), false);
        }
      }),
      { numRuns: 1500 },
    );
    assert.ok(rejected > 100, `enough rejected histories were generated (${rejected})`);
  });

  test('list append', () => {
    fc.assert(
      fc.property(fc.array(tinyListOpArb, { minLength: 1, maxLength: 7 }), (h) => {
        const r = listCheck(h);
        assert.equal(r.ok, bruteForceLinearizable(listAppendModel, h), formatHistory(listAppendModel, h));
        if (r.ok === false) assert.equal(bruteForceLinearizable(listAppendModel, r.minimalOffendingSubhistory), false);
      }),
      { numRuns: 1000 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Performance and reporting.

/** xorshift32: reproducible large histories without fast-check's shrinking machinery. */
function prng(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

interface BigHistory {
  readonly seed: number;
  readonly count: number;
  readonly clients: number;
  readonly keys: readonly string[];
  /** Fraction of operations whose client never learns the outcome. */
  readonly indeterminate: number;
  /** Write values from {0..4} (ambiguous reads, the hard case) or unique ones (what the harness does). */
  readonly values: 'small' | 'unique';
}

function bigKvHistory(o: BigHistory): KvOp[] {
  const rand = prng(o.seed);
  const pickFrom = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const written: string[] = [];
  const value = (i: number): string => (o.values === 'small' ? String(Math.floor(rand() * 5)) : `v${i}`);
  const specs: TimedSpec<KvInput>[] = [];
  for (let i = 0; i < o.count; i++) {
    const key = pickFrom(o.keys);
    const roll = rand();
    let input: KvInput;
    if (roll < 0.5) input = { op: 'get', key };
    else if (roll < 0.8 || written.length === 0) input = { op: 'put', key, value: value(i) };
    // Expect one of the last few written values, so some compare-and-sets succeed.
    else input = { op: 'cas', key, expected: pickFrom(written.slice(-3)), value: value(i) };
    if (input.op !== 'get') written.push(input.value);
    const fateRoll = rand();
    const fate: Fate = fateRoll < o.indeterminate / 2 ? 'lostResponse' : fateRoll < o.indeterminate ? 'neverApplied' : 'ok';
    specs.push({ client: i % o.clients, input, gap: rand() * 2, duration: 1 + rand() * 10, point: rand(), fate });
  }
  return simulate(specs, kvStore());
}

describe('performance', () => {
  const single = { count: 2000, clients: 5, keys: ['k'] } as const;
  for (const c of [
    { ...single, seed: 42, indeterminate: 0, values: 'small', name: 'values 0-4' },
    { ...single, seed: 7, indeterminate: 0.02, values: 'small', name: 'values 0-4, 2% indeterminate' },
    { ...single, seed: 8, indeterminate: 0.02, values: 'unique', name: 'unique values, 2% indeterminate' },
  ] as const) {
    test(`a valid 5-client, 2,000-op single-key history is checked quickly (${c.name})`, (t) => {
      const r = checkLinearizable(kvRegisterModel, bigKvHistory(c), { timeoutMs: 10_000 });
      t.diagnostic(`${c.name}: ${r.elapsedMs} ms, ${JSON.stringify(r.stats)}`);
      assert.equal(r.ok, true);
      assert.ok(r.elapsedMs < 5_000, `took ${r.elapsedMs} ms`);
    });
  }

  test('a stale read at the end of a long history with indeterminate writes is found and minimized', (t) => {
    const h = bigKvHistory({ ...single, seed: 3, indeterminate: 0.02, values: 'unique' });
    const last = Math.max(...h.map((op) => op.return ?? op.call));
    // A completed write, then a read of a value that was current long ago.
    const old = (h.find((op) => op.input.op === 'put' && op.return !== null)?.input as { value: string }).value;
    const stale = get(9, [last + 20, last + 21], old, 'k');
    const r = checkLinearizable(kvRegisterModel, [...h, put(9, [last + 10, last + 11], 'final', 'k'), stale], {
      timeoutMs: 20_000,
    });
    t.diagnostic(`rejected in ${r.elapsedMs} ms, ${JSON.stringify(r.stats)}`);
    t.diagnostic(formatCheckResult(kvRegisterModel, r));
    assertRejected(r, 4);
    assert.deepEqual(r.longestLinearizablePrefix.failingOperations, [stale]);
    // The read, the write it saw, and some completed write after that (any one will do).
    assert.equal(r.minimalOffendingSubhistory.length, 3);
    assert.equal(r.minimalOffendingSubhistory.at(-1), stale);
    assert.equal((r.minimalOffendingSubhistory[0].input as { value: string }).value, old);
  });

  test('many keys: 20,000 ops over 10 keys and 10 clients', (t) => {
    const keys10 = Array.from({ length: 10 }, (_, i) => `k${i}`);
    const h = bigKvHistory({ seed: 11, count: 20_000, clients: 10, keys: keys10, indeterminate: 0.01, values: 'small' });
    const r = checkLinearizable(kvRegisterModel, h, { timeoutMs: 20_000 });
    t.diagnostic(`20,000 ops, 10 keys: ${r.elapsedMs} ms`);
    assert.equal(r.ok, true);
  });
});

test('a failure report is readable', () => {
  const r = kvCheck([put(1, [0, 10], 'a'), put(2, [20, 30], 'b'), get(3, [40, 50], 'a')]);
  const text = formatCheckResult(kvRegisterModel, r);
  assert.match(text, /NOT linearizable: partition "x"/);
  assert.match(text, />>\s+3\s+\[\s+40 \.\.\s+50\]\s+get\(x\) → "a"/);
  assert.match(formatHistory(kvRegisterModel, [put(2, [5, null], 'b')]), /put\(x, "b"\) → \?/);
});
