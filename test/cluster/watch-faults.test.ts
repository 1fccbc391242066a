/**
 * Watch guarantees under faults, on 3 real Conclave member processes. Writers (etcd3 clients,
 * one member each) put, delete and run guarded multi-op txns under one prefix, and some writes
 * outside it; watchers on raw gRPC streams (prefix, single key, range, all keys, with prev_kv,
 * NOPUT and NODELETE, from now and from the past) record every WatchResponse. Meanwhile the
 * leader is SIGKILLed and restarted, a follower is paused (SIGSTOP) long enough to come back by
 * snapshot, streams are closed and reopened on another member, single watchers are canceled and
 * re-created — each resuming at the revision after the last one it was told about — and streams
 * stop reading for seconds, so that the server's buffers overflow and their watchers fall back
 * to catching up from the store.
 *
 * Afterwards the store's history (a watch of every key from revision 1 on each member; the three
 * must agree) is checked for self-consistency and against the final linearizable read, every
 * acknowledged write must be in it at its revision (test/faults/write-history.ts), and every
 * watcher's events, concatenated over its sessions, must be exactly the history of its range and
 * filters: ordered, gap-free, duplicate-free, each revision in one response
 * (test/faults/watch-history.ts).
 *
 * WATCH_FAULTS_SEED=n replays the same choices of operations, keys and reconnections (the timing,
 * and so the outcome of a race, is the machine's).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { noop } from 'cockatiel';
import { Etcd3, type DeleteBuilder, type IKeyValue, type IOperation, type IOptions } from 'etcd3';
import { startCluster, waitHealthy, type ProcessCluster } from '../helpers/processes.ts';
import { Prng } from '../sim/prng.ts';
import { checkHistory, checkWatcher, showEvent, stateAt, type History, type RecordedEvent, type RecordedKv, type WatchSpec } from '../faults/watch-history.ts';
import { RECORDER_CHANNEL_OPTIONS, RecordedWatcher, WatchStream } from '../faults/watch-recorder.ts';
import { checkWrites, type WriteOp, type WriteOutcome, type WriteRecord } from '../faults/write-history.ts';

const RUN = {
  /** Writers and faults run this long. */
  durationMs: 26_000,
  writers: 4,
  /** Keys under the prefix. */
  keys: 16,
  /** The faults, one after the other: the first faultsRequired always (the run waits for them), the others while it has room. */
  faults: ['kill leader', 'pause follower', 'kill leader', 'pause follower', 'kill leader'],
  faultsRequired: 3,
  firstFaultAtMs: 3_000,
  betweenFaultsMs: 1_000,
  /** A fault is started only this long before the end of the run. */
  faultRoomMs: 5_000,
  /** How long a killed member stays down. */
  downMs: 2_000,
  /** How long a paused (SIGSTOP) member stays paused. */
  pauseMs: 4_000,
  /** Time for a reopened stream's watchers to be created before their member is killed. */
  watchersSettleMs: 300,
  /** When the watchers that start in the past are added. */
  lateWatchersAtMs: 8_000,
  reconnectEveryMs: 350,
  /**
   * A stalled stream is not read for a time in this range, long enough for its watchers to
   * overflow the server's buffer (4096 events) and fall back to catching up from the store.
   */
  stallMs: [5_000, 8_000],
  stallEveryMs: 1_000,
  progressEveryMs: 500,
  /** Deadline of one write; a write that misses it is indeterminate. */
  writeDeadlineMs: 3_000,
  /** Time for an election to end after a kill. */
  electionTimeoutMs: 15_000,
  /** A cancel request the server leaves unanswered this long is a failure. */
  cancelAnswerMs: 5_000,
  /** After the writers stop: how long proposals still in flight get to settle. */
  settleMs: 1_000,
  /** How long watchers get to report the final revision. */
  finalTimeoutMs: 20_000,
} as const;

const PREFIX = 'wc/';
const PREFIX_END = 'wc0';
const KEYS = Array.from({ length: RUN.keys }, (_, i) => `${PREFIX}k${String(i).padStart(2, '0')}`);

let cluster: ProcessCluster;

before(async () => {
  // Frequent snapshots with a short log behind them: a member that was down catches up by
  // snapshot, so its watch hub switches stores under its watchers.
  cluster = await startCluster('conclave', 3, { flags: { 'snapshot-count': '100', 'snapshot-catchup-entries': '20', 'log-level': 'info' } });
});

after(async () => {
  await cluster?.destroy();
});

/** A write as planned, and how to run it through etcd3. */
interface PlannedWrite {
  readonly record: Omit<WriteRecord, 'outcome'>;
  run(etcd: Etcd3): Promise<WriteOutcome>;
}

function deleteOf(etcd: Etcd3, op: Extract<WriteOp, { type: 'delete' }>): DeleteBuilder {
  return op.rangeEnd === undefined ? etcd.delete().key(op.key) : etcd.delete().inRange({ start: op.key, end: op.rangeEnd });
}

function opOf(etcd: Etcd3, op: WriteOp): IOperation {
  return op.type === 'put' ? etcd.put(op.key).value(op.value) : deleteOf(etcd, op);
}

/** A put or a delete on its own. */
function single(id: string, op: WriteOp): PlannedWrite {
  return {
    record: { id, then: [op] },
    run: async (etcd) => {
      if (op.type === 'put') {
        const r = await etcd.put(op.key).value(op.value).exec();
        return { revision: Number(r.header.revision), succeeded: true, deleted: [0] };
      }
      const r = await deleteOf(etcd, op).exec();
      return { revision: Number(r.header.revision), succeeded: true, deleted: [Number(r.deleted)] };
    },
  };
}

/** A txn guarded by "guardKey exists", each branch over distinct keys: several changes in one revision. */
function guardedTxn(id: string, guardKey: string, thenOps: WriteOp[], elseOps: WriteOp[]): PlannedWrite {
  return {
    record: { id, guardKey, then: thenOps, else: elseOps },
    run: async (etcd) => {
      const r = await etcd
        .if(guardKey, 'Version', '>', 0)
        .then(...thenOps.map((op) => opOf(etcd, op)))
        .else(...elseOps.map((op) => opOf(etcd, op)))
        .commit();
      return { revision: Number(r.header.revision), succeeded: r.succeeded, deleted: r.responses.map((x) => Number(x.response_delete_range?.deleted ?? 0)) };
    },
  };
}

/** The next write of a writer; every put value is unique (writer, sequence, op). */
function planWrite(rng: Prng, id: string): PlannedWrite {
  const value = (i: number): string => `${id}.${i}`;
  const roll = rng.next();
  if (roll < 0.42) return single(id, { type: 'put', key: rng.pick(KEYS), value: value(0) });
  if (roll < 0.58) return single(id, { type: 'delete', key: rng.pick(KEYS) });
  if (roll < 0.67) {
    const from = rng.int(0, RUN.keys - 2);
    return single(id, { type: 'delete', key: KEYS[from]!, rangeEnd: KEYS[Math.min(RUN.keys - 1, from + rng.int(1, 4))]! });
  }
  if (roll < 0.93) {
    const keys = rng.shuffle(KEYS);
    const ops = (n: number, first: number): WriteOp[] =>
      keys.slice(first, first + n).map((key, i) => (rng.chance(0.7) ? { type: 'put', key, value: value(first + i) } : { type: 'delete', key }));
    return guardedTxn(id, rng.pick(KEYS), ops(rng.int(2, 4), 0), ops(rng.int(0, 2), 4));
  }
  return single(id, { type: 'put', key: `other/${rng.int(0, 3)}`, value: value(0) });
}

/** etcd3 without its own retries: a retried write could be applied twice, and every outcome must be the first attempt's. */
function writerClient(url: string): Etcd3 {
  const options: IOptions = {
    hosts: [url],
    faultHandling: { global: noop, host: () => noop },
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + RUN.writeDeadlineMs }),
    grpcOptions: RECORDER_CHANNEL_OPTIONS,
  };
  return new Etcd3(options);
}

interface MemberStatus {
  header?: { member_id?: string };
  leader?: string;
}

/** The index of the member among `among` that reports itself leader; waits for one. */
async function findLeader(among: readonly number[], timeoutMs: number): Promise<number> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const statuses = await Promise.all(
      among.map(async (i) => {
        try {
          const res = await fetch(`${cluster.members[i]!.clientUrl}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(1_000) });
          return { i, status: (await res.json()) as MemberStatus };
        } catch {
          return { i, status: {} as MemberStatus };
        }
      }),
    );
    const leader = statuses.find((s) => s.status.leader !== undefined && s.status.leader !== '0' && s.status.header?.member_id === s.status.leader);
    if (leader !== undefined) return leader.i;
    await sleep(100);
  }
  throw new Error(`no leader among members ${among.join(',')} within ${timeoutMs} ms`);
}

/** Watchers that move between members together: one stream at a time. */
class WatchGroup {
  stream: WatchStream | undefined;
  /** Every stream the group had, for the protocol violations their recorders saw. */
  private readonly streams: WatchStream[] = [];
  failovers = 0;
  private stopped = false;
  private aloneUntil = 0;

  constructor(
    readonly watchers: RecordedWatcher[],
    private readonly clients: readonly grpc.Client[],
    private readonly upMembers: () => number[],
    private readonly rng: Prng,
  ) {}

  /** Opens the group's stream on member i (or a random member that is up). */
  open(i?: number): void {
    const up = this.upMembers();
    const member = i ?? this.rng.pick(up.length > 0 ? up : cluster.members.map((_, j) => j));
    const s = new WatchStream(cluster.members[member]!.name, this.clients[member]!, this.watchers);
    this.stream = s;
    this.streams.push(s);
    void s.finished.then(async () => {
      if (this.stopped || this.stream !== s) return;
      // Lost (member killed or not yet listening): resume elsewhere.
      this.failovers++;
      await sleep(100);
      if (!this.stopped && this.stream === s) this.open();
    });
  }

  /** Stops reading the stream for ms; the group is left alone meanwhile. */
  stall(ms: number): void {
    this.leaveAlone(ms);
    this.stream?.stall(ms);
  }

  /** No reopening or re-creating for ms (0: from now on, again). */
  leaveAlone(ms: number): void {
    this.aloneUntil = Date.now() + ms;
  }

  alone(): boolean {
    return Date.now() < this.aloneUntil;
  }

  add(w: RecordedWatcher): void {
    this.watchers.push(w);
    this.stream?.create(w);
  }

  /** Closes the stream and reopens it on member i (or a random member that is up). */
  reopen(i?: number): void {
    const old = this.stream;
    this.stream = undefined;
    old?.close();
    this.open(i);
  }

  async recreateOne(): Promise<boolean> {
    const s = this.stream;
    const live = s?.watchers() ?? [];
    if (s === undefined || live.length === 0) return false;
    return s.recreate(this.rng.pick(live), RUN.cancelAnswerMs);
  }

  /** Asks for progress until every watcher has everything through `revision`. */
  async reach(revision: number, deadline: number): Promise<void> {
    while (Date.now() < deadline) {
      if (this.watchers.every((w) => (w.through() ?? 0) >= revision)) return;
      this.stream?.requestProgress();
      await sleep(200);
    }
  }

  strays(): string[] {
    return this.streams.flatMap((s) => s.strays);
  }

  stop(): void {
    this.stopped = true;
    this.stream?.close();
  }
}

/**
 * Every event of the key space from revision 1 through `revision`, as member i's watch serves it.
 * Complete once an event of `revision` came (every revision from 2 on has one), so that it does
 * not rest on progress notifications, which the watchers' checks judge.
 */
async function historyFrom(i: number, client: grpc.Client, revision: number, deadline: number): Promise<RecordedEvent[]> {
  const w = new RecordedWatcher(`history@${cluster.members[i]!.name}`, { key: '\0', rangeEnd: '\0', prevKv: true }, 1);
  const s = new WatchStream(cluster.members[i]!.name, client, [w]);
  const events = (): RecordedEvent[] => w.record().sessions.flatMap((x) => x.responses.flatMap((r) => r.events));
  try {
    while ((events().at(-1)?.kv.modRevision ?? 1) < revision) {
      assert.ok(Date.now() < deadline && !s.closed, `${w.name} reached only ${events().at(-1)?.kv.modRevision ?? 1} of ${revision}`);
      await sleep(200);
    }
  } finally {
    s.close();
  }
  assert.deepEqual(s.strays, []);
  return events().filter((e) => e.kv.modRevision <= revision);
}

/** Where two event lists first differ (index: one event against the other), if they do. */
function firstDifference(a: readonly RecordedEvent[], b: readonly RecordedEvent[]): string | undefined {
  const show = (e: RecordedEvent | undefined): string => (e === undefined ? 'the end' : showEvent(e));
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (JSON.stringify(a[i]) !== JSON.stringify(b[i])) return `${i}: ${show(a[i])} against ${show(b[i])}`;
  }
  return undefined;
}

/** The linearizable read of every key at `revision` against the history replayed to it. */
function compareFinalRead(replayed: Map<string, RecordedKv>, kvs: readonly IKeyValue[], revision: number): string[] {
  const read = new Map(kvs.map((kv) => [kv.key.toString('latin1'), kv]));
  const problems: string[] = [];
  for (const key of new Set([...replayed.keys(), ...read.keys()])) {
    const want = replayed.get(key);
    const got = read.get(key);
    const same =
      want !== undefined &&
      got !== undefined &&
      got.value.toString('latin1') === want.value &&
      Number(got.mod_revision) === want.modRevision &&
      Number(got.create_revision) === want.createRevision &&
      Number(got.version) === want.version &&
      got.lease === want.lease;
    if (!same) problems.push(`final read at ${revision}: ${JSON.stringify(key)} is ${got === undefined ? 'absent' : `${got.value.toString('latin1')}@${got.mod_revision}`}, the history gives ${want === undefined ? 'absent' : `${want.value}@${want.modRevision}`}`);
  }
  return problems;
}

const prefixSpec = (extra: Partial<WatchSpec> = {}): WatchSpec => ({ key: PREFIX, rangeEnd: PREFIX_END, ...extra });

function initialWatchers(group: string): RecordedWatcher[] {
  const specs: Array<[string, WatchSpec]> = [
    ['prefix', prefixSpec()],
    ['prefix+prev', prefixSpec({ prevKv: true })],
    ['key+prev', { key: KEYS[3]!, prevKv: true }],
    ['range', { key: KEYS[5]!, rangeEnd: KEYS[11]! }],
    ['noput+prev', prefixSpec({ filters: ['NOPUT'], prevKv: true })],
    ['nodelete', prefixSpec({ filters: ['NODELETE'] })],
  ];
  return specs.map(([name, spec]) => new RecordedWatcher(`${group}/${name}`, spec, 0));
}

test('every watcher sees exactly the history of its range across leader kills and reconnects', { timeout: 120_000 }, async (t) => {
  const seed = Number(process.env.WATCH_FAULTS_SEED ?? Date.now() % 1_000_000);
  const rng = new Prng(seed, 'watch-faults');
  const n = cluster.members.length;
  const up = cluster.members.map(() => true);
  const upMembers = (): number[] => up.flatMap((u, i) => (u ? [i] : []));
  const clients = cluster.members.map((m) => new grpc.Client(m.clientUrl.replace(/^http:\/\//, ''), grpc.credentials.createInsecure(), RECORDER_CHANNEL_OPTIONS));
  const groups = cluster.members.map((m, i) => new WatchGroup(initialWatchers(m.name), clients, upMembers, rng.fork(`group${i}`)));
  groups[0]!.watchers.push(new RecordedWatcher(`${cluster.members[0]!.name}/all`, { key: '\0', rangeEnd: '\0' }, 0));
  groups.forEach((g, i) => g.open(i));
  // Also when the run fails half-way: open streams would keep the test process alive.
  t.after(() => {
    for (const g of groups) g.stop();
    for (const c of clients) c.close();
  });

  const writes: WriteRecord[] = [];
  let stop = false;
  let maxAcked = 1;
  const writerClients = Array.from({ length: RUN.writers }, (_, w) => writerClient(cluster.members[w % n]!.clientUrl));
  const writers = writerClients.map(async (etcd, w) => {
    const member = w % n;
    const wrng = rng.fork(`writer${w}`);
    for (let seq = 0; !stop; seq++) {
      if (!up[member]) {
        await sleep(50);
        continue;
      }
      const plan = planWrite(wrng, `w${w}.${seq}`);
      try {
        const outcome = await plan.run(etcd);
        maxAcked = Math.max(maxAcked, outcome.revision);
        writes.push({ ...plan.record, outcome });
      } catch {
        writes.push({ ...plan.record, outcome: null });
        await sleep(50);
      }
    }
  });

  const started = Date.now();
  const at = (ms: number): Promise<void> => sleep(Math.max(0, started + ms - Date.now()));
  let kills = 0;
  let pauses = 0;
  let snapshotsInstalled = 0;
  /** Some watchers are on member i when the fault hits it; returns their group. */
  const watchersOn = async (i: number): Promise<WatchGroup> => {
    const there = groups.find((g) => g.stream?.where === cluster.members[i]!.name);
    if (there !== undefined) return there;
    const g = rng.pick(groups);
    g.reopen(i);
    await sleep(RUN.watchersSettleMs);
    return g;
  };
  const killLeader = async (): Promise<void> => {
    const leader = await findLeader(upMembers(), RUN.electionTimeoutMs);
    await watchersOn(leader);
    up[leader] = false;
    await cluster.kill(leader);
    kills++;
    await findLeader(upMembers(), RUN.electionTimeoutMs);
    await sleep(RUN.downMs);
    await cluster.start(leader);
    await waitHealthy(cluster);
    up[leader] = true;
  };
  /**
   * SIGSTOP a follower with watchers on it: the others write on and compact their logs, so on
   * SIGCONT it catches up by snapshot and its watch hub changes stores under those watchers.
   */
  const pauseFollower = async (): Promise<void> => {
    const leader = await findLeader(upMembers(), RUN.electionTimeoutMs);
    const follower = rng.pick(upMembers().filter((i) => i !== leader));
    const g = await watchersOn(follower);
    const child = cluster.members[follower]!.child;
    if (child === null) return;
    g.leaveAlone(RUN.pauseMs + RUN.electionTimeoutMs);
    up[follower] = false;
    child.kill('SIGSTOP');
    pauses++;
    try {
      await sleep(RUN.pauseMs);
    } finally {
      child.kill('SIGCONT');
    }
    await waitHealthy(cluster);
    up[follower] = true;
    g.leaveAlone(0);
  };
  const faults = (async () => {
    await at(RUN.firstFaultAtMs);
    for (const [i, fault] of RUN.faults.entries()) {
      if (i >= RUN.faultsRequired && Date.now() - started > RUN.durationMs - RUN.faultRoomMs) break;
      await (fault === 'kill leader' ? killLeader() : pauseFollower());
      await sleep(RUN.betweenFaultsMs);
    }
  })();

  let reconnects = 0;
  let recreates = 0;
  let stalls = 0;
  const churn = (async () => {
    await at(RUN.lateWatchersAtMs);
    groups[1]!.add(new RecordedWatcher(`${cluster.members[1]!.name}/late-prefix+prev@1`, prefixSpec({ prevKv: true }), 1));
    groups[2]!.add(new RecordedWatcher(`${cluster.members[2]!.name}/late-all@mid`, { key: '\0', rangeEnd: '\0' }, Math.max(1, maxAcked - 300)));
  })();
  const reconnecting = (async () => {
    while (!stop) {
      await sleep(RUN.reconnectEveryMs);
      if (stop) break;
      const g = rng.pick(groups);
      if (g.alone()) continue;
      if (rng.chance(0.5)) {
        if (await g.recreateOne()) recreates++;
      } else {
        g.reopen();
        reconnects++;
      }
    }
  })();
  const stalling = (async () => {
    // One stream at a time stops reading, long enough to overflow the server's buffer for it.
    const stallRng = rng.fork('stalls');
    while (Date.now() - started < RUN.durationMs - RUN.stallMs[1]) {
      await sleep(RUN.stallEveryMs);
      const ms = stallRng.int(RUN.stallMs[0], RUN.stallMs[1]);
      stallRng.pick(groups).stall(ms);
      stalls++;
      await sleep(ms);
    }
  })();
  const progressing = (async () => {
    while (!stop) {
      await sleep(RUN.progressEveryMs);
      for (const g of groups) g.stream?.requestProgress();
    }
  })();

  try {
    await at(RUN.durationMs);
    await faults;
    stop = true;
    await Promise.all([...writers, faults, churn, reconnecting, stalling, progressing]);
  } finally {
    stop = true;
    for (const c of writerClients) c.close();
  }
  for (const m of cluster.members) snapshotsInstalled += (m.output.match(/installed snapshot at index/g) ?? []).length;

  // The final revision: a linearizable read of every key, after in-flight proposals settled.
  await waitHealthy(cluster);
  await sleep(RUN.settleMs);
  const reader = new Etcd3({ hosts: cluster.members.map((m) => m.clientUrl) });
  const finalRead = await reader
    .getAll()
    .exec()
    .finally(() => reader.close());
  const finalRevision = Number(finalRead.header.revision);

  const deadline = Date.now() + RUN.finalTimeoutMs;
  await Promise.all(groups.map((g) => g.reach(finalRevision, deadline)));
  for (const g of groups) g.stop();
  const watchers = groups.flatMap((g) => g.watchers);
  const target = Math.max(finalRevision, ...watchers.map((w) => w.through() ?? 0));

  const histories = await Promise.all(clients.map((c, i) => historyFrom(i, c, target, Date.now() + RUN.finalTimeoutMs)));
  for (const c of clients) c.close();
  const history: History = { fromRevision: 1, toRevision: target, events: histories[0]! };

  const problems: string[] = [...groups.flatMap((g) => g.strays()), ...checkHistory(history)];
  for (let i = 1; i < n; i++) {
    const d = firstDifference(histories[0]!, histories[i]!);
    if (d !== undefined) problems.push(`${cluster.members[i]!.name}'s history differs from ${cluster.members[0]!.name}'s at event ${d}`);
  }
  problems.push(...compareFinalRead(stateAt(history, finalRevision), finalRead.kvs, finalRevision));
  const writeCheck = checkWrites(history, writes);
  problems.push(...writeCheck.problems);
  const perWatcher = watchers.map((w) => ({ w, check: checkWatcher(w.record(), history, finalRevision) }));
  for (const { check } of perWatcher) problems.push(...check.problems);

  const failovers = groups.reduce((s, g) => s + g.failovers, 0);
  const sessions = watchers.reduce((s, w) => s + w.record().sessions.length, 0);
  console.log(
    `watch-faults seed=${seed}: revisions=${finalRevision} writes ok=${writeCheck.acknowledged} indeterminate=${writeCheck.indeterminate} (applied ${writeCheck.indeterminateApplied}); ` +
      `kills=${kills} pauses=${pauses} snapshots-installed=${snapshotsInstalled} stream-reopens=${reconnects} failovers=${failovers} cancel+recreate=${recreates} stalls=${stalls} sessions=${sessions}; ` +
      `events checked per watcher: ${perWatcher.map(({ w, check }) => `${w.name}=${check.events}`).join(' ')}; problems=${problems.length}`,
  );
  assert.equal(problems.length, 0, `watch guarantees broken (seed ${seed}):\n${problems.join('\n')}`);
  assert.ok(kills >= 2, `only ${kills} leader kills`);
  assert.ok(writeCheck.acknowledged >= 200, `only ${writeCheck.acknowledged} writes acknowledged`);
  assert.ok(reconnects + failovers >= 10 && recreates >= 5, `too few reconnects: ${reconnects} reopens, ${failovers} failovers, ${recreates} re-creates`);
  for (const { w, check } of perWatcher) assert.ok(check.events > 0, `${w.name} checked no event`);
});
