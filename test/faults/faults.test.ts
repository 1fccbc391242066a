/**
 * The fault harness in CI: one short run (about two minutes) on 3 real members with every fault
 * kind of the nemesis and every workload, which must find no anomaly. The seed is drawn at random
 * (CONCLAVE_FAULTS_SEED fixes it) and printed, with the whole summary; a failure prints the
 * offending sub-histories and the command that replays the seed. Long runs: `npm run faults`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NEMESIS_KINDS, type NemesisTiming } from './nemesis/nemesis.ts';
import { runFaults } from './run.ts';
import { WORKLOAD_NAMES } from './workloads/index.ts';

const CI_RUN = {
  /** Seconds of faults; startup, recovery and the checks come on top (about 40 s more). */
  timeS: 90,
  members: 3,
  /** Shorter holds and rests than a long run's, so every kind comes round twice or so. */
  timing: { holdMs: [1_500, 4_000], restMs: [1_000, 2_500], clockJumpMaxMs: 600 } satisfies NemesisTiming,
  /** The test's own limit: the run, with room for a loaded machine. */
  timeoutMs: 175_000,
} as const;

test('a short fault run with every fault kind and every workload finds no anomaly', { timeout: CI_RUN.timeoutMs }, async () => {
  const seed = process.env.CONCLAVE_FAULTS_SEED !== undefined ? Number(process.env.CONCLAVE_FAULTS_SEED) : Math.floor(Math.random() * 2 ** 31);
  const result = await runFaults({
    timeS: CI_RUN.timeS,
    seed,
    members: CI_RUN.members,
    nemesis: NEMESIS_KINDS,
    workloads: WORKLOAD_NAMES,
    timing: CI_RUN.timing,
    say: (line) => console.log(line),
  });
  console.log(result.text);
  assert.ok(result.ok, `anomalies found (seed ${seed}); see the summary above`);
  const injected = new Set(result.faults.filter((f) => f.error === undefined).map((f) => f.kind));
  for (const kind of NEMESIS_KINDS) assert.ok(injected.has(kind), `no ${kind} fault was injected (seed ${seed})`);
  for (const r of result.reports) assert.ok(r.ok > 0, `${r.workload}: no operation succeeded (seed ${seed})`);
});
