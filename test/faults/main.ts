/**
 * `npm run faults -- [--time S] [--seed N] [--members N] [--nemesis kill,pause,…] [--workload register,…]`
 * One fault run (run.ts) from the command line: progress as it goes, then the summary; exits 1
 * when an anomaly was found (the printout says how to replay the seed).
 */
import { parseArgs } from 'node:util';
import { NEMESIS_KINDS, type NemesisKind } from './nemesis/nemesis.ts';
import { runFaults } from './run.ts';
import { WORKLOAD_NAMES, type WorkloadName } from './workloads/index.ts';

function list<T extends string>(what: string, raw: string, allowed: readonly T[]): T[] {
  if (raw === 'none') return [];
  const items = raw === 'all' ? [...allowed] : raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const i of items) if (!allowed.includes(i as T)) throw new Error(`unknown ${what} "${i}" (one of ${allowed.join(', ')}, all, none)`);
  return items as T[];
}

const { values } = parseArgs({
  options: {
    time: { type: 'string', default: '60' },
    seed: { type: 'string' },
    members: { type: 'string', default: '5' },
    nemesis: { type: 'string', default: 'all' },
    workload: { type: 'string', default: 'all' },
  },
});
const timeS = Number(values.time);
const members = Number(values.members);
if (!(timeS > 0)) throw new Error(`--time must be a positive number of seconds, got ${values.time}`);
if (!Number.isInteger(members) || members < 3) throw new Error(`--members must be an integer ≥ 3, got ${values.members}`);
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
const result = await runFaults({
  timeS,
  seed,
  members,
  nemesis: list<NemesisKind>('nemesis', values.nemesis, NEMESIS_KINDS),
  workloads: list<WorkloadName>('workload', values.workload, WORKLOAD_NAMES),
  say: (line) => console.log(line),
});
console.log(result.text);
process.exit(result.ok ? 0 : 1);
