import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TestCluster, bytes, confState } from './cluster.ts';
import type { Entry, Message } from '../../src/raft/types.ts';

function terms(entries: readonly Entry[]): number[] {
  return entries.map((e) => e.term);
}

test('Figure 7: a new leader brings every follower log, however it diverged, to its own', () => {
  const ids = ['L', 'a', 'b', 'c', 'd', 'e', 'f'];
  const logs: Record<string, number[]> = {
    L: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6],
    a: [1, 1, 1, 4, 4, 5, 5, 6, 6],
    b: [1, 1, 1, 4],
    c: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    d: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    e: [1, 1, 1, 4, 4, 4, 4],
    f: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
  };
  const c = new TestCluster([], { preVote: false });
  for (const id of ids) c.add(id, confState(ids), 1, logs[id]!, 7);
  c.elect('L');
  assert.equal(c.get('L').raft.status().role, 'leader', 'L wins with a, b, e, f (c and d refuse: their logs are newer)');
  assert.equal(c.get('L').raft.status().term, 8);
  const expected = [...logs.L!, 8];
  for (const id of ids) {
    const s = c.get(id).storage;
    assert.deepEqual(terms(s.entries(1, s.lastIndex() + 1, Infinity)), expected, `log of ${id}`);
    assert.equal(c.get(id).raft.status().commit, 11, `commit of ${id}`);
  }
});

function figure8(mutation: boolean): number {
  // L holds entry 2 from term 2; b holds nothing past 1; c holds a conflicting entry 2 of term 3.
  const c = new TestCluster([], { preVote: false, maxSizePerMsg: 1, ...(mutation ? { mutations: new Set(['commitPreviousTerm'] as const) } : {}) });
  const conf = confState(['L', 'b', 'c']);
  c.add('L', conf, 1, [1, 2], 3);
  c.add('b', conf, 2, [1], 3);
  c.add('c', conf, 3, [1, 3], 3);
  c.isolate('c');
  // Let entry 2 (term 2) reach b, but not the new leader's entry 3 (term 4). The first probe
  // (after 2, carrying 3) gets through so that b rejects it and the leader backs off to 2.
  let carrying3 = 0;
  c.drop = (m: Message) => m.type === 'app' && m.entries.some((e) => e.index === 3) && ++carrying3 > 1;
  c.elect('L');
  assert.equal(c.get('L').raft.status().term, 4);
  assert.equal(c.get('b').storage.lastIndex(), 2, 'b now holds entry 2 of term 2: a majority holds it');
  return c.get('L').raft.status().commit;
}

test('Figure 8: an entry of an earlier term is not committed by counting replicas', () => {
  assert.equal(figure8(false), 0, 'entry 2 must wait for an entry of the current term');
  assert.equal(figure8(true), 2, 'the broken variant commits it (and c could later overwrite it)');
});

test('fast back-off: a follower with a long divergent tail is repaired in a few round trips', () => {
  const c = new TestCluster([], { preVote: false });
  const conf = confState(['L', 'x', 'y']);
  c.add('L', conf, 1, [1, 1, 5, 5, 5, 5, 5, 5, 5, 5], 5);
  c.add('x', conf, 2, [1, 1, 5, 5, 5, 5, 5, 5, 5, 5], 5);
  c.add('y', conf, 3, [1, 1, ...new Array<number>(100).fill(3)], 5);
  c.elect('L');
  const rejects = c.delivered.filter((m) => m.type === 'appResp' && m.from === 'y' && m.reject).length;
  assert.ok(rejects <= 2, `y needed ${rejects} rejections`);
  const s = c.get('y').storage;
  assert.deepEqual(terms(s.entries(1, s.lastIndex() + 1, Infinity)), [1, 1, 5, 5, 5, 5, 5, 5, 5, 5, 6]);
});

test('snapshot catch-up: a follower behind the compacted log gets InstallSnapshot, then entries', () => {
  const c = new TestCluster(['a', 'b', 'c']);
  c.elect('a');
  c.isolate('c');
  for (let i = 0; i < 20; i++) c.get('a').raft.propose([bytes(`v${i}`)]);
  c.settle();
  const leader = c.get('a');
  const applied = leader.raft.status().applied;
  leader.storage.createSnapshot(applied, leader.raft.status().confState, bytes('state'));
  leader.storage.compact(applied);
  c.heal();
  c.get('a').raft.propose([bytes('after')]);
  c.settle();
  c.tickAll(3);
  assert.ok(c.delivered.some((m) => m.type === 'snap' && m.to === 'c'), 'a snapshot was sent to c');
  assert.equal(c.get('c').storage.snapshot().metadata.index, applied);
  assert.deepEqual(c.appliedData('c'), ['after']);
  assert.equal(c.get('c').raft.status().commit, c.get('a').raft.status().commit);
});

test('a member restarted from its storage keeps term, vote and log, and rejoins', () => {
  const c = new TestCluster(['a', 'b', 'c']);
  c.elect('a');
  c.get('a').raft.propose([bytes('x')]);
  c.settle();
  const before = c.get('b').raft.status();
  c.start('b', c.get('b').storage, 7, 0);
  const after = c.get('b').raft.status();
  assert.equal(after.term, before.term);
  assert.equal(after.vote, before.vote);
  assert.equal(after.lastIndex, before.lastIndex);
  c.get('a').raft.propose([bytes('y')]);
  c.settle();
  c.tickAll(2);
  assert.deepEqual(c.appliedData('b'), ['x', 'y'], 'the restart re-applies committed entries, then new ones');
});

test('flow control: the in-flight window bounds unacknowledged appends to a silent follower', () => {
  const c = new TestCluster(['a', 'b', 'c'], { maxInflightMsgs: 4 });
  c.elect('a');
  assert.equal(c.get('a').raft.status().progress.get('b')!.state, 'replicate');
  let appsToB = 0;
  c.drop = (m: Message) => m.type === 'app' && m.to === 'b' && (m.entries.length === 0 || ++appsToB > 0);
  for (let i = 0; i < 50; i++) {
    c.get('a').raft.propose([bytes(`v${i}`)]);
    c.settle();
  }
  assert.equal(appsToB, 4, 'four appends with entries in flight, then the leader waits');
  assert.deepEqual(c.appliedData('c').length, 50, 'the other follower keeps the cluster committing');
});

test('flow control: a full window whose appends were lost reopens on heartbeat replies (no stall)', () => {
  const c = new TestCluster(['a', 'b', 'c'], { maxInflightMsgs: 1 });
  c.elect('a');
  // The one append in b's window is lost; c keeps the cluster committing.
  let lost = 0;
  c.drop = (m: Message) => m.type === 'app' && m.to === 'b' && m.entries.length > 0 && lost++ === 0;
  for (let i = 0; i < 5; i++) {
    c.get('a').raft.propose([bytes(`v${i}`)]);
    c.settle();
  }
  assert.equal(lost, 1);
  assert.deepEqual(c.appliedData('b'), [], 'b saw nothing: its window is full of a lost append');
  c.tickAll(3);
  assert.deepEqual(c.appliedData('b'), ['v0', 'v1', 'v2', 'v3', 'v4'], 'heartbeat replies free the window and b catches up');
});

test('between ready() and advance(), takeUnpersistedOutput hands out appends and heartbeats but never an acknowledgement', () => {
  const c = new TestCluster(['a', 'b', 'c']);
  c.elect('a');
  const a = c.get('a').raft;
  const b = c.get('b').raft;
  type Append = Extract<Message, { type: 'app' }>;
  const appendTo =
    (to: string) =>
    (m: Message): m is Append =>
      m.type === 'app' && m.to === to;
  const text = (m: Append): string => m.entries.map((e) => Buffer.from(e.data).toString()).join();
  a.propose([bytes('x')]);
  const readyA = a.ready();
  const appX = readyA.messages.find(appendTo('b'))!;
  assert.equal(text(appX), 'x');
  // Proposed while the leader persists x: its append and a heartbeat may leave at once.
  a.propose([bytes('y')]);
  a.tick();
  const outA = a.takeUnpersistedOutput();
  const appY = outA.messages.find(appendTo('b'))!;
  assert.equal(text(appY), 'y');
  const heartbeat = outA.messages.find((m) => m.type === 'heartbeat' && m.to === 'b')!;
  assert.ok(heartbeat !== undefined);

  // The follower persists x; y arrives meanwhile. Its acknowledgement of y promises y is durable:
  // it stays for the next Ready, while the heartbeat's answer may leave now.
  b.step(appX);
  const readyB = b.ready();
  assert.ok(readyB.messagesAfterPersist.some((m) => m.type === 'appResp' && m.index === appX.entries[0]!.index));
  b.step(appY);
  b.step(heartbeat);
  const outB = b.takeUnpersistedOutput();
  assert.deepEqual(
    outB.messages.map((m) => m.type),
    ['heartbeatResp'],
  );
  b.advance(readyB);
  const next = b.ready();
  assert.deepEqual(next.entries.map((e) => Buffer.from(e.data).toString()), ['y']);
  assert.ok(next.messagesAfterPersist.some((m) => m.type === 'appResp' && m.index === appY.entries[0]!.index));
  assert.ok(!next.messages.some((m) => m.type === 'heartbeatResp'), 'what was taken out is not handed out again');
  b.advance(next);
  a.advance(readyA);
});
