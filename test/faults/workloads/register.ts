/**
 * Register workload: workers read, write and compare-and-set a few keys (Jepsen's etcd
 * "register"), each operation one call to the worker's member:
 *
 *   get   a linearizable Range of the key;
 *   put   a Put of a value never written before;
 *   cas   a Txn: if the key's value equals the expected one (or, for "absent", its version is
 *         0), put a new value.
 *
 * The history is checked for linearizability per key with the Wing–Gong/Lowe checker
 * (checker/check.ts, kvRegisterModel). A key is retired after opsPerKeyMax operations and a
 * fresh one takes its place, which keeps each partition small enough to decide. A failed get
 * is left out (a read changes nothing); a failed put or cas is indeterminate unless the error
 * proves it never reached Raft (client.ts).
 */
import { checkLinearizable, type CheckOptions } from '../checker/check.ts';
import { formatCheckResult } from '../checker/format.ts';
import { unknownOutput, type Operation } from '../checker/history.ts';
import { kvRegisterModel, type KvInput, type KvOutput } from '../checker/models.ts';
import type { Prng } from '../../sim/prng.ts';
import { definitelyNotApplied } from '../client.ts';
import { clientFor, Counts, runWorkers, type Anomaly, type Workload, type WorkloadContext, type WorkloadReport } from './workload.ts';

export const REGISTER_LIMITS = {
  workers: 6,
  /** Keys in use at once. */
  keysActive: 4,
  /** Operations on one key before it is retired. */
  opsPerKeyMax: 120,
  thinkMs: [5, 40] as const,
  /** Budget of the linearizability search over the whole history. */
  checkTimeoutMs: 120_000,
  minimizeTimeoutMs: 20_000,
} as const;

type Op = Operation<KvInput, KvOutput>;

export class RegisterWorkload implements Workload {
  readonly name = 'register';
  private readonly history: Op[] = [];
  private readonly counts = new Counts();
  private readonly keys: { name: string; ops: number }[] = [];
  private nextKey = 0;
  private nextValue = 0;
  /** Per worker: the generation of its process id (a new one after each indeterminate op). */
  private readonly generation: number[] = [];
  private readonly lastSeen = new Map<string, string | null>();

  constructor(
    private readonly ctx: WorkloadContext,
    private readonly checkOptions: CheckOptions = { timeoutMs: REGISTER_LIMITS.checkTimeoutMs, minimizeTimeoutMs: REGISTER_LIMITS.minimizeTimeoutMs },
  ) {
    for (let i = 0; i < REGISTER_LIMITS.keysActive; i++) this.keys.push({ name: this.freshKey(), ops: 0 });
  }

  private freshKey(): string {
    return `reg/${this.nextKey++}`;
  }

  /** A key in use, retired (replaced) once it had its share of operations. */
  private pickKey(rng: Prng): string {
    const slot = rng.pick(this.keys);
    if (slot.ops >= REGISTER_LIMITS.opsPerKeyMax) {
      slot.name = this.freshKey();
      slot.ops = 0;
    }
    slot.ops++;
    return slot.name;
  }

  async run(stopping: () => boolean): Promise<void> {
    const rng = this.ctx.rng.fork('register');
    await runWorkers(REGISTER_LIMITS.workers, stopping, REGISTER_LIMITS.thinkMs, rng, async (w, rng) => {
      const key = this.pickKey(rng);
      const roll = rng.next();
      const value = `v${this.nextValue++}`;
      let input: KvInput;
      if (roll < 0.4) input = { op: 'get', key };
      else if (roll < 0.7) input = { op: 'put', key, value };
      else input = { op: 'cas', key, expected: this.lastSeen.get(key) ?? null, value };
      await this.invoke(w, input);
    });
  }

  private async invoke(w: number, input: KvInput): Promise<void> {
    const client = clientFor(this.ctx, this.name, w);
    this.generation[w] ??= 0;
    const clientId = `${w}.${this.generation[w]}`;
    const call = this.ctx.clock();
    this.counts.ops++;
    try {
      let output: KvOutput;
      switch (input.op) {
        case 'get': {
          const res = await client.kv.range({ key: Buffer.from(input.key) });
          const value = res.kvs.length === 0 ? null : res.kvs[0]!.value.toString();
          this.lastSeen.set(input.key, value);
          output = { type: 'get', value };
          break;
        }
        case 'put':
          await client.kv.put({ key: Buffer.from(input.key), value: Buffer.from(input.value) });
          output = { type: 'put' };
          break;
        case 'cas': {
          const key = Buffer.from(input.key);
          const compare =
            input.expected === null
              ? { key, target: 'Version' as const, result: 'Equal' as const, version: '0' }
              : { key, target: 'Value' as const, result: 'Equal' as const, value: Buffer.from(input.expected) };
          const res = await client.kv.txn({ compare: [compare], success: [{ request_put: { key, value: Buffer.from(input.value) } }], failure: [] });
          output = { type: 'cas', ok: res.succeeded };
          break;
        }
        default:
          throw new Error('unreachable');
      }
      this.counts.ok++;
      this.history.push({ clientId, input, output, call, return: this.ctx.clock() });
    } catch (e) {
      this.counts.error(e);
      if (input.op === 'get' || definitelyNotApplied(e)) {
        this.counts.failed++;
        return;
      }
      this.counts.indeterminate++;
      this.generation[w]++;
      this.history.push({ clientId, input, output: unknownOutput, call, return: this.ctx.clock() });
    }
  }

  async check(): Promise<WorkloadReport> {
    const result = checkLinearizable(kvRegisterModel, this.history, this.checkOptions);
    const anomalies: Anomaly[] = [];
    if (result.ok === false) {
      anomalies.push({ kind: 'not linearizable', details: formatCheckResult(kvRegisterModel, result, { origin: 0 }) });
    } else if (result.ok === 'unknown') {
      anomalies.push({ kind: 'undecided', details: formatCheckResult(kvRegisterModel, result) });
    }
    const notes = [`${this.nextKey} keys, checked in ${result.elapsedMs} ms (${result.stats.steps} search steps)`];
    return this.counts.report(this.name, anomalies, notes);
  }
}
