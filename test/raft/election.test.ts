import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TestCluster, bytes } from './cluster.ts';

test('a single member elects itself and commits its proposals', () => {
  const c = new TestCluster(['a']);
  c.elect('a');
  assert.equal(c.get('a').raft.status().role, 'leader');
  assert.deepEqual(c.get('a').raft.propose([bytes('x')]), { ok: true });
  c.settle();
  assert.deepEqual(c.appliedData('a'), ['x']);
});

test('three members elect one leader by timeout, and it replicates', () => {
  const c = new TestCluster(['a', 'b', 'c']);
  for (let i = 0; i < 30 && c.leader() === undefined; i++) c.tickAll();
  const leader = c.leader();
  assert.ok(leader !== undefined, 'a leader is elected within 30 ticks');
  const leaders = [...c.members.values()].filter((m) => m.raft.status().role === 'leader');
  assert.equal(leaders.length, 1);
  c.get(leader).raft.propose([bytes('v1'), bytes('v2')]);
  c.settle();
  for (const id of ['a', 'b', 'c']) assert.deepEqual(c.appliedData(id), ['v1', 'v2']);
});

test('a follower forwards proposals to the leader; without a leader it says so', () => {
  const c = new TestCluster(['a', 'b', 'c']);
  assert.deepEqual(c.get('b').raft.propose([bytes('early')]), { ok: false, reason: 'noLeader' });
  c.elect('a');
  assert.deepEqual(c.get('b').raft.propose([bytes('fwd')]), { ok: true });
  c.settle();
  assert.deepEqual(c.appliedData('c'), ['fwd']);
});

test('split vote: candidates of one term both lose, a later term elects', () => {
  const c = new TestCluster(['a', 'b', 'c', 'd'], { preVote: false });
  c.cutLink('a', 'b');
  c.cutLink('c', 'd');
  c.cutLink('a', 'd');
  c.cutLink('b', 'c');
  // a gets c's vote, b gets d's vote: 2 of 4 each, no majority.
  c.get('a').raft.campaign();
  c.get('b').raft.campaign();
  c.settle();
  assert.equal(c.leader(), undefined);
  assert.equal(c.get('a').raft.status().term, 2, 'bootstrap is term 1; the split election term 2');
  c.heal();
  c.elect('c');
  assert.equal(c.leader(), 'c');
  assert.equal(c.get('c').raft.status().term, 3);
});

test('a leader with a stale term steps down when it hears the newer term', () => {
  const c = new TestCluster(['a', 'b', 'c']);
  c.elect('a');
  c.isolate('a');
  // c ignores b's (pre-)vote while its leader lease from a lasts: let it run out.
  c.tick('c', 10);
  c.elect('b');
  assert.equal(c.get('b').raft.status().role, 'leader');
  assert.equal(c.get('a').raft.status().role, 'leader', 'the isolated old leader does not know yet');
  // Its proposals cannot commit without a quorum.
  c.get('a').raft.propose([bytes('lost')]);
  c.settle();
  c.heal();
  c.get('b').raft.propose([bytes('kept')]);
  c.settle();
  c.tickAll(2);
  assert.equal(c.get('a').raft.status().role, 'follower');
  assert.equal(c.get('a').raft.status().lead, 'b');
  for (const id of ['a', 'b', 'c']) assert.deepEqual(c.appliedData(id), ['kept']);
});

test('CheckQuorum: a leader that cannot hear a quorum steps down', () => {
  const c = new TestCluster(['a', 'b', 'c']);
  c.elect('a');
  c.isolate('a');
  for (let i = 0; i < 25; i++) c.tick('a');
  assert.equal(c.get('a').raft.status().role, 'follower');
});

test('PreVote: a rejoining partitioned member does not disrupt a healthy leader', () => {
  const c = new TestCluster(['a', 'b', 'c']);
  c.elect('a');
  c.isolate('c');
  // c times out over and over while cut off; PreVote keeps its term from rising.
  for (let i = 0; i < 100; i++) c.tick('c');
  assert.equal(c.get('c').raft.status().term, 2);
  c.heal();
  c.tickAll(3);
  assert.equal(c.leader(), 'a');
  assert.equal(c.get('a').raft.status().term, 2);
});

test('without PreVote, a lease (CheckQuorum) still keeps a partitioned member from deposing the leader', () => {
  const c = new TestCluster(['a', 'b', 'c'], { preVote: false });
  c.elect('a');
  c.isolate('c');
  for (let i = 0; i < 30; i++) c.tick('c');
  assert.ok(c.get('c').raft.status().term > 2);
  c.heal();
  // b and a ignore c's vote requests while they hear from the leader.
  c.get('c').raft.campaign();
  c.settle();
  assert.equal(c.get('b').raft.status().lead, 'a');
});

test('a vote is refused to a candidate whose log is behind', () => {
  const c = new TestCluster(['a', 'b', 'c'], { preVote: false, checkQuorum: false });
  c.elect('a');
  c.isolate('c');
  c.get('a').raft.propose([bytes('x')]);
  c.settle();
  c.heal();
  c.isolate('a');
  c.elect('c');
  assert.notEqual(c.get('c').raft.status().role, 'leader', 'b refuses: c lacks the committed entry');
  c.elect('b');
  assert.equal(c.get('b').raft.status().role, 'leader');
});
