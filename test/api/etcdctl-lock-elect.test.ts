/**
 * Locks and elections as etcd 3.4 gives them, side by side: each scenario runs the same etcdctl
 * 3.4 `lock` and `elect` processes, in the same order, against a 3-member Conclave cluster and
 * a 3-member etcd 3.4 cluster, and both must produce the same transcript (outputs, exit codes,
 * and what a waiter had printed while it should still be waiting). etcdctl runs etcd's client
 * recipes over KV, Watch and Lease; the JSON gateway part calls the server-side Lock and
 * Election services. Only lease ids (in keys) and cluster/member ids and terms are normalized;
 * revisions are compared, so both stores must take the same writes in the same order.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { ETCDCTL_BIN, etcdAvailable, etcdctl, startCluster, type ProcessCluster } from '../helpers/processes.ts';

const SUITE_LIMITS = {
  /** Starting both clusters side by side. */
  startMs: 45_000,
  /** The whole suite (about 25 s): a hung etcdctl fails it instead of stalling the run. */
  suiteMs: 100_000,
  /** Waiting for one expected line of a running etcdctl. */
  outputMs: 15_000,
  /** How long a waiter is watched to print nothing while the lock or leadership is taken. */
  stillWaitingMs: 1_000,
  /** The lock holder's lease TTL (etcdctl lock --ttl) in the SIGKILL scenario. */
  killedHolderTtlSeconds: 2,
  /** One HTTP request (a blocking Lock or Campaign included). */
  httpMs: 15_000,
} as const;

// ---- running etcdctl ------------------------------------------------------------------------

/** A running etcdctl: its output so far, when each chunk came, and its exit. */
class Etcdctl {
  stdout = '';
  stderr = '';
  /** performance.now() at the first stdout chunk containing each line, in order. */
  readonly lineTimes: number[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  private readonly child: ChildProcess;
  private readonly listeners = new Set<() => void>();

  constructor(endpoints: string, args: readonly string[]) {
    this.child = spawn(ETCDCTL_BIN, args, { env: { ...process.env, ETCDCTL_API: '3', ETCDCTL_ENDPOINTS: endpoints, ETCDCTL_DIAL_TIMEOUT: '3s' } });
    this.child.stdout!.on('data', (b: Buffer) => {
      const now = performance.now();
      this.stdout += b.toString();
      while (this.lineTimes.length < this.lines().length) this.lineTimes.push(now);
      for (const l of this.listeners) l();
    });
    this.child.stderr!.on('data', (b: Buffer) => (this.stderr += b.toString()));
    this.exited = new Promise((resolve) => this.child.on('close', (code, signal) => resolve({ code, signal, at: performance.now() })));
  }

  lines(): string[] {
    return this.stdout.split('\n').filter((l) => l !== '');
  }

  /** Resolves once `count` lines are out; fails after SUITE_LIMITS.outputMs. */
  async waitLines(count: number): Promise<void> {
    if (this.lines().length >= count) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners.delete(check);
        reject(new Error(`etcdctl printed ${JSON.stringify(this.stdout)} (stderr ${JSON.stringify(this.stderr)}), not ${count} lines`));
      }, SUITE_LIMITS.outputMs);
      const check = (): void => {
        if (this.lines().length < count) return;
        clearTimeout(timer);
        this.listeners.delete(check);
        resolve();
      };
      this.listeners.add(check);
    });
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** Stops it if still running (by its own PID). */
  stop(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/** A scenario's record: what is compared between the two clusters. */
type Transcript = Array<string | number | null>;

/** Lease ids in keys differ: each distinct one becomes <lease N> in order of appearance. */
function normalizeLeases(transcript: Transcript): Transcript {
  const seen = new Map<string, string>();
  const name = (hex: string): string => {
    if (!seen.has(hex)) seen.set(hex, `<lease ${seen.size + 1}>`);
    return seen.get(hex)!;
  };
  return transcript.map((x) => (typeof x === 'string' ? x.replace(/\/([0-9a-f]{8,16})\b/g, (_, hex: string) => `/${name(hex)}`) : x));
}

/** The final "Error: …" line of etcdctl's stderr. */
function errorLine(stderr: string): string {
  return stderr.split('\n').filter((l) => l.startsWith('Error:')).pop() ?? '';
}

// ---- the clusters -------------------------------------------------------------------------

interface Sides {
  readonly etcd: ProcessCluster;
  readonly conclave: ProcessCluster;
}

type Scenario = (cluster: ProcessCluster, spawned: Etcdctl[]) => Promise<Transcript>;

/** Runs a scenario on both clusters at once and asserts equal transcripts; returns etcd's. */
async function same(sides: Sides, scenario: Scenario): Promise<Transcript> {
  const spawned: Etcdctl[] = [];
  try {
    const [etcd, conclave] = await Promise.all([scenario(sides.etcd, spawned), scenario(sides.conclave, spawned)]);
    const expected = normalizeLeases(etcd);
    assert.deepEqual(normalizeLeases(conclave), expected);
    return expected;
  } finally {
    for (const p of spawned) p.stop();
  }
}

function start(cluster: ProcessCluster, spawned: Etcdctl[], args: readonly string[]): Etcdctl {
  const p = new Etcdctl(cluster.endpoints, args);
  spawned.push(p);
  return p;
}

const started: ProcessCluster[] = [];

const suite = { skip: etcdAvailable() ? false : 'etcd 3.4 is not installed', timeout: SUITE_LIMITS.suiteMs };

describe('etcdctl lock and elect, and the Lock and Election services: Conclave as etcd 3.4', suite, () => {
  let sides: Sides;

  before(
    async () => {
      const both = await Promise.allSettled([startCluster('etcd', 3), startCluster('conclave', 3)]);
      for (const r of both) if (r.status === 'fulfilled') started.push(r.value);
      for (const r of both) if (r.status === 'rejected') throw r.reason;
      sides = { etcd: started[0]!, conclave: started[1]! };
    },
    { timeout: SUITE_LIMITS.startMs },
  );

  after(async () => {
    await Promise.all(started.map((c) => c.destroy()));
  });

  test('lock with a command runs it holding the lock (ETCD_LOCK_KEY, ETCD_LOCK_REV), passes its failure on, and unlocks', async () => {
    const t = await same(sides, async (cluster) => {
      const out: Transcript = [];
      for (const args of [
        ['lock', 'cmd', '--', 'echo', 'held'],
        ['lock', 'cmd', '--', 'sh', '-c', 'echo "$ETCD_LOCK_KEY" "$ETCD_LOCK_REV"'],
        ['lock', 'cmd', '--', 'sh', '-c', 'exit 3'],
        ['get', '--prefix', 'cmd'],
      ]) {
        const r = await etcdctl(cluster.endpoints, args);
        out.push(r.stdout, r.code, errorLine(r.stderr));
      }
      return out;
    });
    assert.deepEqual(t.slice(0, 3), ['held\n', 0, '']);
    assert.match(String(t[3]), /^cmd\/<lease 1> \d+\n$/);
    assert.deepEqual(t.slice(6), ['', 1, 'Error: exit status 3', '', 0, '']);
  });

  test('a holder stopped with SIGTERM unlocks, and only then the waiting lock gets it', async () => {
    const t = await same(sides, async (cluster, spawned) => {
      const holder = start(cluster, spawned, ['lock', 'term']);
      await holder.waitLines(1);
      const waiter = start(cluster, spawned, ['lock', 'term', '--', 'echo', 'second']);
      await sleep(SUITE_LIMITS.stillWaitingMs);
      const whileHeld = waiter.stdout;
      holder.kill('SIGTERM');
      const [h, w] = await Promise.all([holder.exited, waiter.exited]);
      assert.ok(waiter.lineTimes[0]! > h.at - SUITE_LIMITS.stillWaitingMs, 'the waiter printed long before the holder let go');
      return [holder.stdout, h.code, whileHeld, waiter.stdout, w.code, errorLine(waiter.stderr)];
    });
    // Without a command, etcdctl prints the lock's key and its (empty) value.
    assert.deepEqual(t, ['term/<lease 1>\n\n', 0, '', 'second\n', 0, '']);
  });

  test('a holder killed (SIGKILL) keeps the lock until its lease expires; then the waiter gets it', async () => {
    const ttl = SUITE_LIMITS.killedHolderTtlSeconds;
    const t = await same(sides, async (cluster, spawned) => {
      const holder = start(cluster, spawned, ['lock', `--ttl=${ttl}`, 'kill']);
      await holder.waitLines(1);
      const waiter = start(cluster, spawned, ['lock', 'kill', '--', 'echo', 'after-expiry']);
      await sleep(SUITE_LIMITS.stillWaitingMs);
      const whileHeld = waiter.stdout;
      holder.kill('SIGKILL');
      const killedAt = performance.now();
      const w = await waiter.exited;
      // The lease outlives its last keep-alive (sent every TTL/3) by at least 2/3 of the TTL.
      const waited = waiter.lineTimes[0]! - killedAt;
      assert.ok(waited >= ((ttl * 2) / 3) * 1000 - 250, `the waiter got the lock ${Math.round(waited)} ms after the kill, before the lease could expire`);
      return [holder.stdout, whileHeld, waiter.stdout, w.code];
    });
    assert.deepEqual(t, ['kill/<lease 1>\n\n', '', 'after-expiry\n', 0]);
  });

  test('two contending lock commands: the second runs only after the first finished', async () => {
    const t = await same(sides, async (cluster, spawned) => {
      const first = start(cluster, spawned, ['lock', 'pair', '--', 'sh', '-c', 'echo first-in; sleep 1; echo first-out']);
      await first.waitLines(1);
      const second = start(cluster, spawned, ['lock', 'pair', '--', 'sh', '-c', 'echo second-in "$ETCD_LOCK_REV"']);
      const [f, s] = await Promise.all([first.exited, second.exited]);
      assert.ok(second.lineTimes[0]! >= first.lineTimes[1]!, 'the second ran before the first was done');
      return [first.stdout, f.code, second.stdout, s.code];
    });
    assert.equal(t[0], 'first-in\nfirst-out\n');
    assert.match(String(t[2]), /^second-in \d+\n$/);
  });

  test('elect: one leader at a time, the next one after a resignation; elect -l sees every leader in order', async () => {
    const t = await same(sides, async (cluster, spawned) => {
      const observer = start(cluster, spawned, ['elect', '-l', 'vote']);
      const a = start(cluster, spawned, ['elect', 'vote', 'proposal-a']);
      await a.waitLines(2);
      await observer.waitLines(2);
      const b = start(cluster, spawned, ['elect', 'vote', 'proposal-b']);
      await sleep(SUITE_LIMITS.stillWaitingMs);
      const bWhileA = b.stdout;
      a.kill('SIGTERM');
      const ea = await a.exited;
      await b.waitLines(2);
      await observer.waitLines(4);
      b.kill('SIGTERM');
      const eb = await b.exited;
      observer.kill('SIGTERM');
      await observer.exited;
      return [a.stdout, ea.code, bWhileA, b.stdout, eb.code, observer.stdout];
    });
    assert.deepEqual(t, [
      'vote/<lease 1>\nproposal-a\n',
      0,
      '',
      'vote/<lease 2>\nproposal-b\n',
      0,
      'vote/<lease 1>\nproposal-a\nvote/<lease 2>\nproposal-b\n',
    ]);
  });

  test('elect -l on an election that has a leader prints it at once', async () => {
    const t = await same(sides, async (cluster, spawned) => {
      const leader = start(cluster, spawned, ['elect', 'held', 'incumbent']);
      await leader.waitLines(2);
      const observer = start(cluster, spawned, ['elect', '-l', 'held']);
      await observer.waitLines(2);
      observer.kill('SIGTERM');
      leader.kill('SIGTERM');
      await Promise.all([observer.exited, leader.exited]);
      return [observer.stdout];
    });
    assert.deepEqual(t, ['held/<lease 1>\nincumbent\n']);
  });

  test('JSON gateway: Lock, Unlock, Campaign, Proclaim, Leader, Observe, Resign and their errors', async () => {
    await same(sides, gatewayScenario);
  });
});

// ---- the gateway scenario -----------------------------------------------------------------

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** A body as compared: ids and terms masked, keys decoded (they hold lease ids), lease ids named. */
function comparable(v: Json, key = ''): Json {
  if (Array.isArray(v)) return v.map((x) => comparable(x));
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, comparable(x, k)]));
  if (key === 'cluster_id' || key === 'member_id' || key === 'raft_term') return `<${key}>`;
  if (key === 'key' && typeof v === 'string') return `key:${Buffer.from(v, 'base64').toString()}`;
  // As a key names it, so that normalizeLeases names it alike.
  if (key === 'lease' && typeof v === 'string') return `lease/${BigInt(v).toString(16)}`;
  return v;
}

async function post(cluster: ProcessCluster, path: string, body: unknown, signal?: AbortSignal): Promise<Json> {
  const res = await fetch(`${cluster.members[0]!.clientUrl}/v3/${path}`, { method: 'POST', body: JSON.stringify(body), signal: signal ?? AbortSignal.timeout(SUITE_LIMITS.httpMs) });
  return { status: res.status, body: comparable(JSON.parse(await res.text()) as Json) };
}

/**
 * The first `count` {"result":…} lines of an observe stream, then the stream is dropped. `next`
 * runs once the first line is in (etcd's gateway sends its headers only with the first message).
 */
async function observeLines(cluster: ProcessCluster, name: string, count: number, next: () => Promise<void>): Promise<Json[]> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), SUITE_LIMITS.outputMs);
  const lines: Json[] = [];
  let driving: Promise<void> | undefined;
  try {
    const res = await fetch(`${cluster.members[0]!.clientUrl}/v3/election/observe`, { method: 'POST', body: JSON.stringify({ name: b64(name) }), signal: controller.signal });
    lines.push(res.status, res.headers.get('content-type'));
    let text = '';
    for await (const chunk of res.body!) {
      text += Buffer.from(chunk).toString();
      const parts = text.split('\n');
      text = parts.pop()!;
      for (const p of parts) lines.push(comparable(JSON.parse(p) as Json));
      driving ??= next();
      if (lines.length >= count + 2) break;
    }
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
  await driving;
  return lines;
}

/** Waits until `count` keys are under `prefix` (a contender's key is in, or gone). */
async function untilKeys(cluster: ProcessCluster, prefix: string, count: number): Promise<void> {
  const end = Date.now() + SUITE_LIMITS.outputMs;
  const rangeEnd = b64(prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1));
  for (;;) {
    const res = await fetch(`${cluster.members[0]!.clientUrl}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: b64(prefix), range_end: rangeEnd, count_only: true }) });
    if (Number(((await res.json()) as { count?: string }).count ?? 0) === count) return;
    assert.ok(Date.now() < end, `${count} keys under ${prefix}: not within ${SUITE_LIMITS.outputMs} ms`);
    await sleep(20);
  }
}

async function grantLease(cluster: ProcessCluster, ttl: number): Promise<string> {
  const res = await fetch(`${cluster.members[0]!.clientUrl}/v3/lease/grant`, { method: 'POST', body: JSON.stringify({ TTL: ttl }) });
  return ((await res.json()) as { ID: string }).ID;
}

const gatewayScenario: Scenario = async (cluster) => {
  const out: Transcript = [];
  const record = (label: string, v: Json): void => void out.push(`${label} ${JSON.stringify(v)}`);
  const [l1, l2, l3] = [await grantLease(cluster, 60), await grantLease(cluster, 60), await grantLease(cluster, 60)];

  // Errors, as etcd's recipes report them (status UNKNOWN, etcd's text).
  record('lock unknown lease', await post(cluster, 'lock/lock', { name: b64('gw'), lease: '12345' }));
  record('leader of nothing', await post(cluster, 'election/leader', { name: b64('gwe') }));
  record('proclaim by nobody', await post(cluster, 'election/proclaim', { leader: { name: b64('gwe'), key: b64('gwe/1'), rev: '5', lease: l1 }, value: b64('v') }));
  record('proclaim without leader', await post(cluster, 'election/proclaim', {}));
  record('resign without leader', await post(cluster, 'election/resign', {}));
  record('resign of nobody', await post(cluster, 'election/resign', { leader: { name: b64('gwe'), key: b64('gwe/1'), rev: '5', lease: l1 } }));
  record('unlock of nothing', await post(cluster, 'lock/unlock', { key: b64('gw/1') }));
  record('unlock without key', await post(cluster, 'lock/unlock', {}));

  // A lock taken, a second Lock waits, a third one gives up (its client goes away), the first unlocks.
  const first = await post(cluster, 'lock/lock', { name: b64('gw'), lease: l1 });
  record('lock', first);
  const second = post(cluster, 'lock/lock', { name: b64('gw'), lease: l2 });
  await untilKeys(cluster, 'gw/', 2);
  const third = post(cluster, 'lock/lock', { name: b64('gw'), lease: l3 }, AbortSignal.timeout(SUITE_LIMITS.stillWaitingMs));
  await third.catch((e: unknown) => record('third gave up', String((e as Error).name)));
  await untilKeys(cluster, 'gw/', 2);
  record('relock by the holder', await post(cluster, 'lock/lock', { name: b64('gw'), lease: l1 }));
  record('keys while held', await post(cluster, 'kv/range', { key: b64('gw/'), range_end: b64('gw0'), keys_only: true, sort_target: 'CREATE', sort_order: 'ASCEND' }));
  const held = (first as { body: { key: string } }).body.key.replace(/^key:/, '');
  record('unlock', await post(cluster, 'lock/unlock', { key: b64(held) }));
  record('second got it', await second);

  // An election: an observer sees the leader, its proclamation and the next leader.
  const campaigned: Json[] = [];
  const a = (await post(cluster, 'election/campaign', { name: b64('gwe'), lease: l1, value: b64('a') })) as { body: { leader: Record<string, Json> } };
  campaigned.push(a);
  const leaderKey = { ...a.body.leader, key: b64(String(a.body.leader.key).replace(/^key:/, '')), lease: l1 };
  const observed = await observeLines(cluster, 'gwe', 3, async () => {
    const b = post(cluster, 'election/campaign', { name: b64('gwe'), lease: l2, value: b64('b') });
    await untilKeys(cluster, 'gwe/', 2);
    campaigned.push(await post(cluster, 'election/proclaim', { leader: leaderKey, value: b64('a2') }));
    campaigned.push(await post(cluster, 'election/leader', { name: b64('gwe') }));
    campaigned.push(await post(cluster, 'election/resign', { leader: leaderKey }));
    campaigned.push(await b);
    campaigned.push(await post(cluster, 'election/proclaim', { leader: leaderKey, value: b64('late') }));
  });
  record('campaign, proclaim, leader, resign, next campaign, stale proclaim', campaigned);
  record('observed', observed);
  return out;
};
