/**
 * The simulator's teeth: many seeds of the real Raft code pass every invariant, each
 * deliberately broken variant is caught within a bounded number of seeds, and a seed replays
 * exactly. Seeds are fixed, so a failure here is reproducible with `npm run sim -- --seed S`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSeed, type RunOptions } from './run.ts';

/** Seeds of the clean run (about 20 s on a 2-core machine). */
const CLEAN_SEEDS = 500;

test(`${CLEAN_SEEDS} seeds of the real Raft code hold every invariant, liveness after the heal included`, (t) => {
  let steps = 0;
  let worstWrites = 0;
  const failures: string[] = [];
  for (let seed = 1; seed <= CLEAN_SEEDS; seed++) {
    const r = runSeed(seed);
    steps += r.steps;
    if (r.violation !== null) failures.push(`seed ${seed}: ${r.violation.invariant}: ${r.violation.detail} (npm run sim -- --seed ${seed})`);
    else if (r.liveness !== null) worstWrites = Math.max(worstWrites, r.liveness.writeTicks);
  }
  t.diagnostic(`seeds=${CLEAN_SEEDS} steps=${steps} violations=${failures.length}; worst write liveness ${worstWrites} ticks`);
  assert.deepEqual(failures, []);
});

/** The first seed (from 1) whose run ends in a violation, with the invariant it broke. */
function firstFailure(opts: RunOptions, limit: number): { seed: number; invariant: string } | null {
  for (let seed = 1; seed <= limit; seed++) {
    const r = runSeed(seed, opts);
    if (r.violation !== null) return { seed, invariant: r.violation.invariant };
  }
  return null;
}

// Each broken variant must be caught by a safety invariant (a liveness failure would not prove
// the checker understands what went wrong), within `limit` seeds. The limits leave room for
// scenario changes (the test prints the seed that caught each) without letting the teeth rot.
const broken: { name: string; opts: RunOptions; limit: number; invariants: readonly string[] }[] = [
  {
    name: 'mutation commitPreviousTerm (counting replicas of an earlier-term entry, Figure 8)',
    opts: { mutations: new Set(['commitPreviousTerm']) },
    limit: 300,
    invariants: ['Leader Completeness', 'State Machine Safety'],
  },
  {
    name: 'mutation voteIgnoresLog (granting votes to candidates with shorter logs)',
    opts: { mutations: new Set(['voteIgnoresLog']) },
    limit: 100,
    invariants: ['Leader Completeness', 'State Machine Safety'],
  },
  {
    name: '--forget-vote (the vote is not persisted, so a restarted member votes again)',
    opts: { forgetVote: true },
    limit: 200,
    invariants: ['Vote', 'Election Safety'],
  },
];

for (const b of broken) {
  test(`the simulator catches ${b.name}`, (t) => {
    const found = firstFailure(b.opts, b.limit);
    assert.ok(found !== null, `no violation in the first ${b.limit} seeds`);
    t.diagnostic(`first caught at seed ${found.seed} by ${found.invariant}`);
    assert.ok(b.invariants.includes(found.invariant), `seed ${found.seed} failed on ${found.invariant}, expected one of ${b.invariants.join(', ')}`);
  });
}

test('a seed replays exactly: identical traces and step counts, with or without tracing', () => {
  // Seed 2 has crashes, membership changes, snapshots and a five-member cluster.
  const a = runSeed(2, { trace: true });
  const b = runSeed(2, { trace: true });
  const quiet = runSeed(2);
  assert.ok(a.trace.length > 1000, 'the trace records the run');
  assert.ok(a.stats.crashes! > 0 && a.stats.confChanges! > 0, 'the seed exercises crashes and membership changes');
  assert.deepEqual(b.trace, a.trace);
  assert.equal(b.steps, a.steps);
  assert.deepEqual(b.stats, a.stats);
  assert.equal(quiet.steps, a.steps, 'tracing does not perturb the run');
  assert.deepEqual(quiet.stats, a.stats);
  assert.equal(a.violation, null);
});
