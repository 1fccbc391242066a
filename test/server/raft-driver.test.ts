import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RaftDriver, type DurableLog, type StateMachine } from '../../src/server/raft-driver.ts';
import { MemoryStorage, bootstrapStorage } from '../../src/raft/storage.ts';
import { EntryKind, type Entry, type HardState, type Message, type ReadState, type Snapshot } from '../../src/raft/types.ts';

/**
 * Durable log kept in memory; each save resolves on a later turn, as an fsync would. While
 * `gated`, saves wait until release() (a slow disk), so a test can look inside a pending sync.
 */
class MemoryDurableLog implements DurableLog {
  saves = 0;
  snapshots: Snapshot[] = [];
  gated = false;
  private pending: (() => void)[] = [];
  async save(_h: HardState | null, _e: readonly Entry[], _s: Snapshot | null): Promise<void> {
    this.saves++;
    if (this.gated) await new Promise<void>((r) => this.pending.push(r));
    else await new Promise((r) => setImmediate(r));
  }
  waitingSaves(): number {
    return this.pending.length;
  }
  release(): void {
    for (const r of this.pending.splice(0)) r();
  }
  async saveSnapshot(s: Snapshot): Promise<void> {
    this.snapshots.push(s);
  }
}

class Recorder implements StateMachine {
  applied: string[] = [];
  installs = 0;
  async installSnapshot(): Promise<void> {
    this.installs++;
  }
  apply(entries: readonly Entry[]): void {
    for (const e of entries) if (e.kind === EntryKind.Normal && e.data.byteLength > 0) this.applied.push(Buffer.from(e.data).toString());
  }
  async sync(): Promise<void> {}
}

interface Observers {
  onApplied?: (id: string, index: number) => void;
  onReadStates?: (id: string, states: readonly ReadState[]) => void;
}

function cluster(ids: string[], snapshotCount = 1000, observers: Observers = {}) {
  const drivers = new Map<string, RaftDriver>();
  const machines = new Map<string, Recorder>();
  const logs = new Map<string, MemoryDurableLog>();
  let seed = 1;
  for (const id of ids) {
    const storage = new MemoryStorage();
    bootstrapStorage(storage, ids);
    const machine = new Recorder();
    const durable = new MemoryDurableLog();
    const s = seed++;
    let x = s;
    const driver = new RaftDriver({
      raft: { id, electionTick: 10, heartbeatTick: 1, random: () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) },
      storage,
      durable,
      stateMachine: machine,
      outbox: {
        send: (msgs: readonly Message[]) => {
          for (const m of msgs) setImmediate(() => drivers.get(m.to)?.step(m));
        },
      },
      tickMs: 5,
      snapshotCount,
      snapshotCatchUpEntries: 5,
      onApplied: (index) => observers.onApplied?.(id, index),
      onReadStates: (states) => observers.onReadStates?.(id, states),
      onFatal: (e) => {
        throw e;
      },
    });
    drivers.set(id, driver);
    machines.set(id, machine);
    logs.set(id, durable);
  }
  return { drivers, machines, logs };
}

async function until(pred: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('three drivers elect a leader, replicate, and batch many proposals per sync', async () => {
  const { drivers, machines, logs } = cluster(['a', 'b', 'c']);
  for (const d of drivers.values()) d.start();
  try {
    await until(() => [...drivers.values()].some((d) => d.status().role === 'leader'));
    const leader = [...drivers.values()].find((d) => d.status().role === 'leader')!;
    const before = logs.get(leader.raft.id)!.saves;
    for (let i = 0; i < 500; i++) assert.deepEqual(leader.propose([Buffer.from(`v${i}`)]), { ok: true });
    await until(() => [...machines.values()].every((m) => m.applied.length === 500));
    for (const m of machines.values()) assert.deepEqual(m.applied, Array.from({ length: 500 }, (_, i) => `v${i}`));
    const syncs = logs.get(leader.raft.id)!.saves - before;
    assert.ok(syncs < 50, `500 proposals took ${syncs} syncs on the leader`);
  } finally {
    for (const d of drivers.values()) await d.stop();
  }
});

test('snapshots are taken every snapshotCount entries and the log is compacted behind them', async () => {
  const { drivers, logs } = cluster(['a'], 100);
  const d = drivers.get('a')!;
  d.start();
  try {
    await until(() => d.status().role === 'leader');
    for (let wave = 1; wave <= 3; wave++) {
      for (let i = 0; i < 120; i++) d.propose([Buffer.from(`v${wave}-${i}`)]);
      await until(() => d.applied() >= wave * 120);
    }
    assert.ok(logs.get('a')!.snapshots.length >= 2);
    const last = logs.get('a')!.snapshots.at(-1)!;
    assert.ok(last.metadata.index >= 200);
    assert.deepEqual(last.metadata.confState.voters, ['a']);
  } finally {
    await d.stop();
  }
});

test('with applying paused, a leader keeps leading and committing; entries wait in order, then apply on resume', async () => {
  const { drivers, machines } = cluster(['a', 'b', 'c']);
  for (const d of drivers.values()) d.start();
  try {
    await until(() => [...drivers.values()].some((d) => d.status().role === 'leader'));
    const leader = [...drivers.values()].find((d) => d.status().role === 'leader')!;
    const id = leader.raft.id;
    const term = leader.status().term;
    for (let i = 0; i < 10; i++) leader.propose([Buffer.from(`before${i}`)]);
    await until(() => machines.get(id)!.applied.length === 10);
    await leader.pauseApply();
    const appliedAtPause = leader.applied();
    for (let i = 0; i < 50; i++) leader.propose([Buffer.from(`during${i}`)]);
    // Followers apply; the leader commits but does not apply, and keeps its leadership for
    // well over an election timeout (10 ticks of 5 ms).
    await until(() => [...machines.entries()].filter(([m]) => m !== id).every(([, m]) => m.applied.length === 60));
    await until(() => leader.status().commit >= appliedAtPause + 50);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(machines.get(id)!.applied.length, 10);
    assert.equal(leader.applied(), appliedAtPause);
    assert.equal(leader.status().role, 'leader');
    assert.equal(leader.status().term, term);
    leader.resumeApply();
    await until(() => machines.get(id)!.applied.length === 60);
    assert.deepEqual(machines.get(id)!.applied, [...Array.from({ length: 10 }, (_, i) => `before${i}`), ...Array.from({ length: 50 }, (_, i) => `during${i}`)]);
    assert.equal(leader.applied(), leader.status().commit);
    assert.throws(() => leader.resumeApply(), /without a pause/);
  } finally {
    for (const d of drivers.values()) await d.stop();
  }
});

test('a proposal only the leader of a term may make is dropped elsewhere, not forwarded to the leader', async () => {
  const { drivers, machines } = cluster(['a', 'b', 'c']);
  for (const d of drivers.values()) d.start();
  try {
    await until(() => [...drivers.values()].some((d) => d.status().role === 'leader'));
    const leader = [...drivers.values()].find((d) => d.status().role === 'leader')!;
    const follower = [...drivers.values()].find((d) => d.status().role === 'follower' && d.status().lead === leader.raft.id)!;
    const term = leader.status().term;
    const outcomes: string[] = [];
    const record = (what: string) => (o: { ok: boolean }) => outcomes.push(`${what} ${o.ok ? 'ok' : 'dropped'}`);
    // A deposed leader whose decision is still queued is a follower by the time it is flushed:
    // its Raft would forward an unguarded proposal, and the new leader would commit it.
    follower.proposeBatched(Buffer.from('from-follower'), record('follower'), term);
    leader.proposeBatched(Buffer.from('stale-term'), record('old term'), term - 1);
    leader.proposeBatched(Buffer.from('leader'), record('leader'), term);
    follower.proposeBatched(Buffer.from('unguarded'), record('unguarded'));
    await until(() => [...machines.values()].every((m) => m.applied.length === 2));
    assert.deepEqual(outcomes.sort(), ['follower dropped', 'leader ok', 'old term dropped', 'unguarded ok']);
    for (const m of machines.values()) assert.deepEqual(m.applied.sort(), ['leader', 'unguarded']);
  } finally {
    for (const d of drivers.values()) await d.stop();
  }
});

test('while the leader waits for a slow sync, new entries replicate and commit, reads are confirmed, and the next Ready applies before its own sync', async () => {
  const applied = new Map<string, number>();
  const reads: string[] = [];
  const { drivers, machines, logs } = cluster(['a', 'b', 'c'], 1000, {
    onApplied: (id, index) => applied.set(id, index),
    onReadStates: (_id, states) => reads.push(...states.map((s) => Buffer.from(s.context).toString())),
  });
  for (const d of drivers.values()) d.start();
  try {
    await until(() => [...drivers.values()].some((d) => d.status().role === 'leader'));
    const leader = [...drivers.values()].find((d) => d.status().role === 'leader')!;
    const id = leader.raft.id;
    const followers = [...machines.entries()].filter(([m]) => m !== id).map(([, m]) => m);
    const log = logs.get(id)!;
    // A slow disk on the leader only: the followers persist and acknowledge at once.
    log.gated = true;
    leader.propose([Buffer.from('first')]);
    await until(() => log.waitingSaves() === 1);
    const saves = log.saves;
    // Proposed during that sync: its append leaves at once, the followers make it durable, and
    // the two of them commit it (the leader counts itself only once its own sync is done).
    leader.propose([Buffer.from('second')]);
    await until(() => followers.every((m) => m.applied.join() === 'first,second'));
    assert.deepEqual(leader.readIndex(Buffer.from('read-1')), { ok: true });
    await until(() => reads.includes('read-1'));
    assert.equal(log.saves, saves, 'all of this happened within the leader\'s first sync');
    assert.deepEqual(machines.get(id)!.applied, []);
    // The next Ready persists 'second' and carries both entries committed: they are applied,
    // and reads waiting for them told, before that Ready's own sync completes.
    log.release();
    await until(() => log.waitingSaves() === 1);
    await until(() => machines.get(id)!.applied.length === 2);
    assert.equal(applied.get(id), leader.applied());
    assert.equal(log.waitingSaves(), 1);
  } finally {
    for (const l of logs.values()) {
      l.gated = false;
      l.release();
    }
    for (const d of drivers.values()) await d.stop();
  }
});
