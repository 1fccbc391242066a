import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TestCluster, bytes, seeded } from './cluster.ts';
import { decodeConfChange, encodeConfChange } from '../../src/raft/confchange.ts';
import { Raft } from '../../src/raft/raft.ts';
import { MemoryStorage, bootstrapStorage } from '../../src/raft/storage.ts';
import { EntryKind, type ConfChange, type Entry, type Ready } from '../../src/raft/types.ts';

const EMPTY = new Uint8Array(0);

test('ReadIndex on the leader: one heartbeat round answers every queued read at the commit index', () => {
  const c = new TestCluster(['a', 'b', 'c']);
  c.elect('a');
  c.get('a').raft.propose([bytes('x')]);
  c.settle();
  const before = c.delivered.filter((m) => m.type === 'heartbeat').length;
  c.get('a').raft.readIndex(bytes('r1'));
  c.get('a').raft.readIndex(bytes('r2'));
  c.settle();
  const reads = c.get('a').readStates;
  assert.deepEqual(reads.map((r) => new TextDecoder().decode(r.context)), ['r1', 'r2']);
  for (const r of reads) assert.equal(r.index, c.get('a').raft.status().commit);
  assert.ok(c.delivered.filter((m) => m.type === 'heartbeat').length - before <= 4);
});

test('ReadIndex from a follower is forwarded and answered; an isolated leader answers nothing', () => {
  const c = new TestCluster(['a', 'b', 'c']);
  c.elect('a');
  c.get('b').raft.readIndex(bytes('rb'));
  c.settle();
  assert.equal(c.get('b').readStates.length, 1);
  assert.equal(c.get('b').readStates[0]!.index, c.get('a').raft.status().commit);
  c.isolate('a');
  c.get('a').raft.readIndex(bytes('stale'));
  c.settle();
  assert.equal(c.get('a').readStates.length, 0, 'no quorum confirmed the leadership');
});

test('ReadIndex waits until the new leader has committed an entry of its term', () => {
  const c = new TestCluster(['a', 'b', 'c']);
  c.drop = (m) => m.type === 'appResp';
  c.elect('a');
  c.get('a').raft.readIndex(bytes('early'));
  c.settle();
  assert.equal(c.get('a').readStates.length, 0);
  c.drop = () => false;
  c.tickAll(2);
  assert.equal(c.get('a').readStates.length, 1);
  assert.ok(c.get('a').readStates[0]!.index >= 1);
});

test('lease-based reads answer without a heartbeat round', () => {
  const c = new TestCluster(['a', 'b', 'c'], { readOnly: 'leaseBased' });
  c.elect('a');
  const before = c.delivered.length;
  c.get('a').raft.readIndex(bytes('fast'));
  c.settle();
  assert.equal(c.get('a').readStates.length, 1);
  assert.equal(c.delivered.length, before, 'no message was needed');
});

test('leadership transfer: the target is caught up, then takes over in the next term', () => {
  const c = new TestCluster(['a', 'b', 'c']);
  c.elect('a');
  c.get('a').raft.propose([bytes('x')]);
  c.settle();
  c.get('a').raft.transferLeadership('c');
  c.settle();
  assert.equal(c.leader(), 'c');
  assert.equal(c.get('c').raft.status().term, 3);
  assert.equal(c.get('a').raft.status().role, 'follower');
  // Proposals are refused while a transfer is in flight; afterwards they work again.
  assert.deepEqual(c.get('a').raft.propose([bytes('y')]), { ok: true });
  c.settle();
  assert.deepEqual(c.appliedData('b'), ['x', 'y']);
});

test('conf change encoding round-trips', () => {
  const cc: ConfChange = {
    transition: 'joint',
    changes: [
      { type: 'addVoter', nodeId: 'd' },
      { type: 'removeNode', nodeId: 'a' },
      { type: 'addLearner', nodeId: 'é' },
    ],
    context: bytes('http://127.0.0.1:2380'),
  };
  assert.deepEqual(decodeConfChange(encodeConfChange(cc)), cc);
});

function change(type: 'addVoter' | 'addLearner' | 'removeNode', nodeId: string): ConfChange {
  return { transition: 'auto', changes: [{ type, nodeId }], context: EMPTY };
}

test('a learner receives the log without voting, then is promoted', () => {
  const c = new TestCluster(['a', 'b', 'c']);
  c.elect('a');
  c.get('a').raft.propose([bytes('x')]);
  c.settle();
  assert.deepEqual(c.get('a').raft.proposeConfChange(change('addLearner', 'd')), { ok: true });
  c.add('d', null);
  c.settle();
  c.tickAll(3);
  assert.deepEqual(c.get('a').raft.status().confState.learners, ['d']);
  assert.deepEqual(c.appliedData('d'), ['x']);
  // A learner never campaigns.
  c.get('d').raft.campaign();
  c.settle();
  assert.equal(c.leader(), 'a');
  assert.deepEqual(c.get('a').raft.proposeConfChange(change('addVoter', 'd')), { ok: true });
  c.settle();
  assert.deepEqual(c.get('d').raft.status().confState.voters, ['a', 'b', 'c', 'd']);
});

test('at most one configuration change is pending at a time', () => {
  const c = new TestCluster(['a', 'b', 'c']);
  c.elect('a');
  c.isolate('b');
  c.isolate('c');
  assert.deepEqual(c.get('a').raft.proposeConfChange(change('addLearner', 'd')), { ok: true });
  c.settle();
  assert.deepEqual(c.get('a').raft.proposeConfChange(change('addLearner', 'e')), { ok: false, reason: 'confChangeRefused' });
});

test('joint consensus: replacing two voters enters and then automatically leaves a joint config', () => {
  const c = new TestCluster(['a', 'b', 'c']);
  c.elect('a');
  c.add('d', null);
  c.add('e', null);
  const cc: ConfChange = {
    transition: 'auto',
    changes: [
      { type: 'addVoter', nodeId: 'd' },
      { type: 'addVoter', nodeId: 'e' },
      { type: 'removeNode', nodeId: 'b' },
      { type: 'removeNode', nodeId: 'c' },
    ],
    context: EMPTY,
  };
  assert.deepEqual(c.get('a').raft.proposeConfChange(cc), { ok: true });
  c.settle();
  c.tickAll(3);
  const conf = c.get('a').raft.status().confState;
  assert.deepEqual(conf.voters, ['a', 'd', 'e']);
  assert.deepEqual(conf.votersOutgoing, [], 'the joint configuration was left');
  c.get('a').raft.propose([bytes('after')]);
  c.settle();
  assert.deepEqual(c.appliedData('e'), ['after']);
});

test('a simple change of two voters at once is refused', () => {
  const c = new TestCluster(['a', 'b', 'c']);
  c.elect('a');
  const cc: ConfChange = {
    transition: 'auto',
    changes: [{ type: 'addVoter', nodeId: 'd' }],
    context: EMPTY,
  };
  assert.deepEqual(c.get('a').raft.proposeConfChange(cc), { ok: true });
  c.settle();
  const two: ConfChange = { transition: 'joint', changes: [], context: EMPTY };
  assert.deepEqual(c.get('a').raft.proposeConfChange(two), { ok: false, reason: 'confChangeRefused' }, 'nothing to leave');
});

test('a leader removed by a committed change steps down, and the rest elect a new one', () => {
  const c = new TestCluster(['a', 'b', 'c']);
  c.elect('a');
  assert.deepEqual(c.get('a').raft.proposeConfChange(change('removeNode', 'a')), { ok: true });
  c.settle();
  assert.notEqual(c.get('a').raft.status().role, 'leader');
  c.members.delete('a');
  for (let i = 0; i < 40 && c.leader() === undefined; i++) c.tickAll();
  const leader = c.leader();
  assert.ok(leader === 'b' || leader === 'c');
  c.get(leader).raft.propose([bytes('z')]);
  c.settle();
  assert.deepEqual(c.appliedData('b'), ['z']);
});

test('a member added after the leader last snapshotted takes that snapshot, then the entries that add it', () => {
  const c = new TestCluster(['a', 'b', 'c']);
  c.elect('a');
  c.get('a').raft.propose([bytes('x')]);
  c.settle();
  const leader = c.get('a');
  const applied = leader.raft.status().applied;
  leader.storage.createSnapshot(applied, leader.raft.status().confState, bytes('state'));
  leader.storage.compact(applied);
  // The snapshot's configuration does not name d: only the log after it does.
  assert.deepEqual(leader.raft.proposeConfChange(change('addLearner', 'd')), { ok: true });
  c.add('d', null);
  c.settle();
  c.tickAll(3);
  leader.raft.propose([bytes('y')]);
  c.settle();
  assert.equal(c.get('d').storage.snapshot().metadata.index, applied);
  assert.deepEqual(c.get('d').raft.status().confState.learners, ['d']);
  assert.deepEqual(c.appliedData('d'), ['y']);
});

test('conf changes of a Ready handed out before a snapshot arrived do not alter the snapshot configuration', () => {
  const storage = new MemoryStorage();
  bootstrapStorage(storage, ['a', 'b', 'x']);
  const x = new Raft({ id: 'x', storage, electionTick: 10, heartbeatTick: 1, random: seeded(1) });
  const handle = (rd: Ready): void => {
    if (rd.snapshot) storage.applySnapshot(rd.snapshot);
    storage.append(rd.entries);
    if (rd.hardState) storage.setHardState(rd.hardState);
  };
  let rd = x.ready();
  handle(rd);
  x.advance(rd);
  // Entry 4 adds learner d and is committed: the application is handed it…
  const addD: Entry = { term: 2, index: 4, kind: EntryKind.ConfChange, data: encodeConfChange(change('addLearner', 'd')) };
  x.step({ type: 'app', from: 'a', to: 'x', term: 2, logIndex: 3, logTerm: 1, entries: [addD], commit: 4 });
  const pending = x.ready();
  assert.deepEqual(pending.committedEntries.map((e) => e.index), [4]);
  handle(pending);
  // …but before it is done, a snapshot at 10 arrives, taken after d had been removed again.
  const conf = { voters: ['a', 'b', 'x'], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false };
  x.step({ type: 'snap', from: 'a', to: 'x', term: 2, snapshot: { metadata: { index: 10, term: 2, confState: conf }, data: EMPTY } });
  x.advance(pending);
  rd = x.ready();
  assert.equal(rd.snapshot?.metadata.index, 10);
  handle(rd);
  x.advance(rd);
  assert.deepEqual(x.status().confState, conf);
});
