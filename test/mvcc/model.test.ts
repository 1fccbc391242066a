/**
 * Model-based test: random sequences of put / deleteRange / txn / range (at historical
 * revisions) / compact / reopen run against the real store and against the naive model in
 * model.ts; every response (or error message) and the full key space must agree after each step.
 * Physical compaction runs in tiny batches in the background meanwhile, and reopening resumes it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MvccStore } from '../../src/mvcc/index.ts';
import type { Compare, CompareResult, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, SortOrder, SortTarget, TxnRequest } from '../../src/mvcc/index.ts';
import { Model } from './model.ts';
import { attempt, norm, tempDir } from './helpers.ts';

interface Real {
  store: MvccStore;
  readonly dir: string;
}

const storeOptions = { limits: { compactionBatchLimit: 2, compactionSleepIntervalMs: 0 } };

const lat = (s: string): Buffer => Buffer.from(s, 'latin1');
const keyArb = fc.constantFrom('a', 'b', 'c', 'ab', 'ba', 'b\0', '\0', '\xff', 'a', 'b').map(lat);
const rangeEndArb = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.constant(lat('\0')) },
  { weight: 2, arbitrary: keyArb },
);
const valueArb = fc.constantFrom('', 'x', 'y', 'zz', '\0v').map(lat);
const leaseArb = fc.constantFrom(0n, 0n, 1n, 2n, 9007199254740993n);
const revAbsArb = fc.integer({ min: -1, max: 40 });
const filterArb = fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 30 }) });

/** Mostly valid puts; now and then ignore_value / ignore_lease, rarely an invalid combination. */
const putArb: fc.Arbitrary<PutRequest> = fc
  .record({ key: keyArb, value: valueArb, lease: leaseArb, prevKv: fc.boolean(), mode: fc.integer({ min: 0, max: 19 }) })
  .map(({ key, value, lease, prevKv, mode }): PutRequest => {
    if (mode < 14) return { key, value, lease, prevKv };
    if (mode < 16) return { key, value: new Uint8Array(0), lease, prevKv, ignoreValue: true };
    if (mode < 18) return { key, value, lease: 0n, prevKv, ignoreLease: true };
    if (mode < 19) return { key, value: new Uint8Array(0), lease: 0n, prevKv, ignoreValue: true, ignoreLease: true };
    return { key, value: lat('v'), lease: 1n, prevKv, ignoreValue: true, ignoreLease: true };
  });

const deleteArb: fc.Arbitrary<DeleteRangeRequest> = fc.record({ key: keyArb, rangeEnd: rangeEndArb, prevKv: fc.boolean() });

function rangeArb(revision: fc.Arbitrary<number>): fc.Arbitrary<RangeRequest> {
  return fc.record({
    key: keyArb,
    rangeEnd: rangeEndArb,
    limit: fc.integer({ min: -1, max: 3 }),
    revision,
    sortOrder: fc.constantFrom<SortOrder>('NONE', 'NONE', 'ASCEND', 'DESCEND'),
    sortTarget: fc.constantFrom<SortTarget>('KEY', 'KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE'),
    keysOnly: fc.boolean(),
    countOnly: fc.oneof({ weight: 5, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
    minModRevision: filterArb,
    maxModRevision: filterArb,
    minCreateRevision: filterArb,
    maxCreateRevision: filterArb,
  });
}

const compareArb: fc.Arbitrary<Compare> = fc
  .record({
    result: fc.constantFrom<CompareResult>('EQUAL', 'NOT_EQUAL', 'GREATER', 'LESS'),
    key: keyArb,
    rangeEnd: fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: rangeEndArb }),
    which: fc.integer({ min: 0, max: 4 }),
    value: valueArb,
    n: fc.integer({ min: 0, max: 12 }),
    lease: leaseArb,
  })
  .map(({ result, key, rangeEnd, which, value, n, lease }): Compare => {
    const base = { result, key, rangeEnd };
    switch (which) {
      case 0:
        return { ...base, target: 'VALUE', value };
      case 1:
        return { ...base, target: 'VERSION', version: n % 4 };
      case 2:
        return { ...base, target: 'CREATE', createRevision: n };
      case 3:
        return { ...base, target: 'MOD', modRevision: n };
      default:
        return { ...base, target: 'LEASE', lease };
    }
  });

function opArb(depth: number): fc.Arbitrary<RequestOp> {
  const leaf: Array<fc.Arbitrary<RequestOp>> = [
    rangeArb(fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: revAbsArb })).map((request) => ({ op: 'range' as const, request })),
    putArb.map((request) => ({ op: 'put' as const, request })),
    putArb.map((request) => ({ op: 'put' as const, request })),
    deleteArb.map((request) => ({ op: 'deleteRange' as const, request })),
  ];
  if (depth > 0) leaf.push(txnArb(depth - 1).map((request) => ({ op: 'txn' as const, request })));
  return fc.oneof(...leaf);
}

function txnArb(depth: number): fc.Arbitrary<TxnRequest> {
  return fc.record({
    compare: fc.array(compareArb, { maxLength: 2 }),
    success: fc.array(opArb(depth), { maxLength: 3 }),
    failure: fc.array(opArb(depth), { maxLength: 3 }),
  });
}

const selArb = fc.integer({ min: 0, max: 999 }).map((n) => n / 1000);

/** Picks a revision around the model's [compactRev, currentRev] window when the command runs. */
function pickRev(m: Model, sel: number): number {
  const lo = Math.max(m.compactRev - 1, -1);
  const hi = m.currentRev + 1;
  return lo + Math.floor(sel * (hi - lo + 1));
}

function same(label: string, got: unknown, want: unknown): void {
  assert.deepEqual(norm(got), norm(want), label);
}

function checkAll(m: Model, r: Real): void {
  const all: RangeRequest = { key: lat('\0'), rangeEnd: lat('\0') };
  same('full key space', r.store.range(all), m.range(all));
  assert.equal(r.store.revision, m.currentRev);
}

class Op implements fc.AsyncCommand<Model, Real> {
  constructor(
    private readonly label: string,
    private readonly run1: (m: Model, r: Real) => [unknown, unknown],
  ) {}
  check(): boolean {
    return true;
  }
  async run(m: Model, r: Real): Promise<void> {
    const [want, got] = this.run1(m, r);
    if (process.env.MVCC_MODEL_STATS) {
      const kind = this.label.split(' ')[0]!.split('@')[0]!;
      const outcome = want !== null && typeof want === 'object' && 'error' in want ? String((want as { error: string }).error) : 'ok';
      stats.set(`${kind}: ${outcome}`, (stats.get(`${kind}: ${outcome}`) ?? 0) + 1);
    }
    same(this.label, got, want);
    checkAll(m, r);
    await Promise.resolve();
  }
  toString(): string {
    return this.label;
  }
}

const stats = new Map<string, number>();
const show = (x: unknown): string => JSON.stringify(norm(x));

const commands = [
  putArb.map((req) => new Op(`put ${show(req)}`, (m, r) => [attempt(() => m.put(req)), attempt(() => r.store.put(req))])),
  putArb.map((req) => new Op(`put ${show(req)}`, (m, r) => [attempt(() => m.put(req)), attempt(() => r.store.put(req))])),
  deleteArb.map((req) => new Op(`deleteRange ${show(req)}`, (m, r) => [attempt(() => m.deleteRange(req)), attempt(() => r.store.deleteRange(req))])),
  txnArb(1).map((req) => new Op(`txn ${show(req)}`, (m, r) => [attempt(() => m.txn(req)), attempt(() => r.store.txn(req))])),
  txnArb(1).map((req) => new Op(`txn ${show(req)}`, (m, r) => [attempt(() => m.txn(req)), attempt(() => r.store.txn(req))])),
  fc.tuple(rangeArb(fc.constant(0)), selArb).map(
    ([req, sel]) =>
      new Op(`range@sel${sel.toFixed(2)} ${show(req)}`, (m, r) => {
        const q = { ...req, revision: pickRev(m, sel) };
        return [attempt(() => m.range(q)), attempt(() => r.store.range(q))];
      }),
  ),
  selArb.map(
    (sel) =>
      new Op(`compact@sel${sel.toFixed(2)}`, (m, r) => {
        const rev = pickRev(m, sel);
        return [attempt(() => m.compact(rev)), attempt(() => r.store.compact(rev))];
      }),
  ),
  fc.constant<fc.AsyncCommand<Model, Real>>({
    check: () => true,
    async run(m: Model, r: Real) {
      await r.store.close();
      r.store = await MvccStore.open(r.dir, storeOptions);
      checkAll(m, r);
      assert.equal(r.store.compactRevision, m.compactRev);
    },
    toString: () => 'reopen',
  }),
  fc.constant<fc.AsyncCommand<Model, Real>>({
    check: () => true,
    async run(m: Model, r: Real) {
      await r.store.compactionDone();
      checkAll(m, r);
    },
    toString: () => 'await compaction',
  }),
];

test('store agrees with the reference model on random operation sequences', async () => {
  let executed = 0;
  await fc.assert(
    fc.asyncProperty(fc.commands(commands, { maxCommands: 60, size: 'max' }), async (cmds) => {
      const { dir, cleanup } = tempDir();
      const real: Real = { store: await MvccStore.open(dir, storeOptions), dir };
      try {
        await fc.asyncModelRun(() => ({ model: new Model(), real }), cmds);
        executed += [...cmds].length;
      } finally {
        await real.store.close();
        cleanup();
      }
    }),
    { numRuns: Number(process.env.MVCC_MODEL_RUNS ?? 60) },
  );
  console.log(`model run: ${executed} commands`);
  if (process.env.MVCC_MODEL_STATS) console.log([...stats.entries()].sort().map(([k, v]) => `${k}: ${v}`).join('\n'));
});
