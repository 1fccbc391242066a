/**
 * The simulator's command line.
 *   npm run sim -- --seed S                 one seed, with its full trace and result
 *   npm run sim -- --seeds N [--start K] [--members 3|5] [--mutation commitPreviousTerm|voteIgnoresLog] [--forget-vote]
 *                    [--read safe|leaseBased] [--skew none|mild|wild] [--prevote on|off] [--profile mixed|storm]
 * The batch mode closes with exactly `seeds=N steps=M violations=V` and exits 1 if V > 0.
 */
import type { RaftMutation } from '../../src/raft/raft.ts';
import { runSeed, type RunOptions, type RunResult } from './run.ts';
import { describeScenario } from './scenario.ts';

interface Args {
  seed?: number;
  seeds?: number;
  start: number;
  members?: 3 | 5;
  mutations: Set<RaftMutation>;
  forgetVote: boolean;
  traceLines: number;
  readOnly?: 'safe' | 'leaseBased';
  skew?: 'none' | 'mild' | 'wild';
  preVote?: boolean;
  profile?: 'mixed' | 'storm';
  verbose: boolean;
}

function parse(argv: string[]): Args {
  const a: Args = { start: 1, mutations: new Set(), forgetVote: false, traceLines: 400, verbose: false };
  const num = (i: number): number => {
    const v = Number(argv[i]);
    if (!Number.isInteger(v) || v < 0) usage(`bad number after ${argv[i - 1]}: ${argv[i]}`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    switch (argv[i]) {
      case '--seed':
        a.seed = num(++i);
        break;
      case '--seeds':
        a.seeds = num(++i);
        break;
      case '--start':
        a.start = num(++i);
        break;
      case '--members': {
        const m = num(++i);
        if (m !== 3 && m !== 5) usage('--members must be 3 or 5');
        a.members = m;
        break;
      }
      case '--mutation': {
        const m = argv[++i];
        if (m !== 'commitPreviousTerm' && m !== 'voteIgnoresLog') usage(`unknown mutation ${m}`);
        a.mutations.add(m);
        break;
      }
      case '--read': {
        const r = argv[++i];
        if (r !== 'safe' && r !== 'leaseBased') usage('--read must be safe or leaseBased');
        a.readOnly = r;
        break;
      }
      case '--skew': {
        const k = argv[++i];
        if (k !== 'none' && k !== 'mild' && k !== 'wild') usage('--skew must be none, mild or wild');
        a.skew = k;
        break;
      }
      case '--prevote': {
        const v = argv[++i];
        if (v !== 'on' && v !== 'off') usage('--prevote must be on or off');
        a.preVote = v === 'on';
        break;
      }
      case '--profile': {
        const v = argv[++i];
        if (v !== 'mixed' && v !== 'storm') usage('--profile must be mixed or storm');
        a.profile = v;
        break;
      }
      case '--verbose':
        a.verbose = true;
        break;
      case '--forget-vote':
        a.forgetVote = true;
        break;
      case '--trace-lines':
        a.traceLines = num(++i);
        break;
      default:
        usage(`unknown argument ${argv[i]}`);
    }
  }
  if ((a.seed === undefined) === (a.seeds === undefined)) usage('give --seed S or --seeds N');
  return a;
}

function usage(problem: string): never {
  console.error(problem);
  console.error('usage: npm run sim -- --seed S | --seeds N [--start K] [--members 3|5] [--mutation M] [--forget-vote] [--read safe|leaseBased] [--skew none|mild|wild] [--prevote on|off] [--profile mixed|storm] [--verbose] [--trace-lines L]');
  process.exit(2);
}

/** The options that shape a run, as flags, so a printed replay command reproduces it. */
function replayFlags(a: Args): string {
  const f: string[] = [];
  if (a.members !== undefined) f.push(`--members ${a.members}`);
  for (const m of a.mutations) f.push(`--mutation ${m}`);
  if (a.forgetVote) f.push('--forget-vote');
  if (a.readOnly !== undefined) f.push(`--read ${a.readOnly}`);
  if (a.skew !== undefined) f.push(`--skew ${a.skew}`);
  if (a.preVote !== undefined) f.push(`--prevote ${a.preVote ? 'on' : 'off'}`);
  if (a.profile !== undefined) f.push(`--profile ${a.profile}`);
  return f.map((x) => ` ${x}`).join('');
}

function summary(r: RunResult): string {
  const stats = Object.entries(r.stats)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  const live = r.liveness === null ? '' : ` liveness: leader ${r.liveness.leaderTicks} ticks, writes ${r.liveness.writeTicks} ticks, catch-up ${r.liveness.catchUpTicks} ticks`;
  return `seed ${r.seed}: steps=${r.steps} ${stats}${live}`;
}

function describeViolation(r: RunResult): string {
  const v = r.violation!;
  return `seed ${r.seed} VIOLATION at step ${v.step} (t=${v.time}): ${v.invariant}: ${v.detail}`;
}

const args = parse(process.argv.slice(2));
const base: RunOptions = {
  members: args.members,
  mutations: args.mutations,
  forgetVote: args.forgetVote,
  readOnly: args.readOnly,
  skew: args.skew,
  preVote: args.preVote,
  profile: args.profile,
};

if (args.seed !== undefined) {
  const r = runSeed(args.seed, { ...base, trace: true });
  console.log(`scenario: ${describeScenario(r.scenario)}`);
  for (const line of r.trace) console.log(line);
  console.log(summary(r));
  if (r.violation !== null) {
    console.log(describeViolation(r));
    process.exit(1);
  }
} else {
  const n = args.seeds!;
  let steps = 0;
  const failed: RunResult[] = [];
  const worst = { leaderTicks: 0, writeTicks: 0, catchUpTicks: 0 };
  const started = Date.now();
  for (let seed = args.start; seed < args.start + n; seed++) {
    const r = runSeed(seed, base);
    steps += r.steps;
    if (args.verbose) console.log(summary(r));
    if (r.violation !== null) {
      failed.push(r);
      console.log(describeViolation(r));
    } else if (r.liveness !== null) {
      worst.leaderTicks = Math.max(worst.leaderTicks, r.liveness.leaderTicks);
      worst.writeTicks = Math.max(worst.writeTicks, r.liveness.writeTicks);
      worst.catchUpTicks = Math.max(worst.catchUpTicks, r.liveness.catchUpTicks);
    }
  }
  for (const r of failed) {
    // Replay with tracing on: the run is deterministic, so it fails the same way.
    const again = runSeed(r.seed, { ...base, trace: true, traceKeep: args.traceLines });
    console.log(`--- seed ${r.seed}: ${describeScenario(again.scenario)}`);
    for (const line of again.trace.slice(-args.traceLines)) console.log(line);
    console.log(describeViolation(again));
    console.log(`replay: npm run sim -- --seed ${r.seed}${replayFlags(args)}`);
  }
  console.log(
    `worst liveness after heal: leader ${worst.leaderTicks} ticks, writes ${worst.writeTicks} ticks, catch-up ${worst.catchUpTicks} ticks; ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  if (failed.length > 0) console.log(`failing seeds: ${failed.map((r) => r.seed).join(' ')}`);
  console.log(`seeds=${n} steps=${steps} violations=${failed.length}`);
  if (failed.length > 0) process.exit(1);
}
