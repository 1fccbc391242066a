/**
 * The member's maintenance operations in process: MoveLeader's refusals and timeout, and a
 * defragmentation during which the member keeps its leadership, a write proposed meanwhile
 * completes only after it (applying is paused, Raft is not), and serializable reads go on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig } from '../../src/server/config.ts';
import { Member, type Logger } from '../../src/server/member.ts';
import { ServerError } from '../../src/server/errors.ts';
import { freePorts } from '../helpers/ports.ts';

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };
const enc = (s: string) => Buffer.from(s);

async function cluster(dir: string, n: number): Promise<Member[]> {
  const ports = await freePorts(2 * n);
  const specs = Array.from({ length: n }, (_, i) => ({ name: `m${i}`, peer: ports[2 * i]!, client: ports[2 * i + 1]! }));
  const members: Member[] = [];
  for (const s of specs) {
    const config = resolveConfig(
      {
        name: s.name,
        'data-dir': join(dir, s.name),
        'listen-peer-urls': `http://127.0.0.1:${s.peer}`,
        'initial-advertise-peer-urls': `http://127.0.0.1:${s.peer}`,
        'listen-client-urls': `http://127.0.0.1:${s.client}`,
        'advertise-client-urls': `http://127.0.0.1:${s.client}`,
        'initial-cluster': specs.map((x) => `${x.name}=http://127.0.0.1:${x.peer}`).join(','),
        'heartbeat-interval': '20',
        'election-timeout': '200',
      },
      {},
    );
    members.push(await Member.start(config, quiet, (e) => assert.fail(String(e))));
  }
  await until(() => members.every((m) => m.status().leader !== '' && m.members().length === n));
  return members;
}

async function until(pred: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const code = (c: string) => (e: unknown) => e instanceof ServerError && e.code === c;

test('moveLeader: only the leader, only to a member; to self at once; to a stopped member it times out', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'conclave-maint-'));
  let members: Member[] = [];
  try {
    members = await cluster(dir, 3);
    const leader = members.find((m) => m.status().role === 'leader')!;
    const followers = members.filter((m) => m !== leader);
    await assert.rejects(followers[0]!.moveLeader(followers[1]!.id, 1000), code('NOT_LEADER'));
    await assert.rejects(leader.moveLeader('00000000000000aa', 1000), code('BAD_LEADER_TRANSFEREE'));
    await leader.moveLeader(leader.id, 1000);

    await followers[1]!.stop();
    const started = Date.now();
    await assert.rejects(leader.moveLeader(followers[1]!.id, 400), code('TIMEOUT_LEADER_TRANSFER'));
    assert.ok(Date.now() - started >= 400);
    await until(() => followers[0]!.status().leader !== '');

    const current = [leader, followers[0]!].find((m) => m.status().role === 'leader')!;
    const other = current === leader ? followers[0]! : leader;
    await current.moveLeader(other.id, 5000);
    assert.equal(other.status().role, 'leader');
    assert.equal(current.status().leader, other.id);
  } finally {
    for (const m of members) await m.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('defragment: the leader keeps leading; a write waits for it (applying is paused), serializable reads do not', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'conclave-maint-'));
  let members: Member[] = [];
  try {
    members = await cluster(dir, 3);
    const leader = members.find((m) => m.status().role === 'leader')!;
    const value = Buffer.alloc(8 * 1024, 'v');
    for (let i = 0; i < 300; i += 30) await Promise.all(Array.from({ length: 30 }, (_, j) => leader.write({ op: 'put', request: { key: enc(`big/${i + j}`), value } }, null)));
    // In the LMDB file before they are deleted, and the deletion too, so the file is mostly free pages.
    await leader.mvcc().sync();
    await leader.write({ op: 'deleteRange', request: { key: enc('big/'), rangeEnd: enc('big0') } }, null);
    await leader.write({ op: 'compact', revision: leader.mvcc().revision }, null);
    await leader.mvcc().compactionDone();
    await leader.mvcc().sync();
    const term = leader.status().raftTerm;
    const before = leader.mvcc().stats().dbBytes;

    const order: string[] = [];
    const defrag = leader.defragment();
    assert.equal(leader.defragment(), defrag, 'a second request joins the first');
    void defrag.then(() => order.push('defragmented'));
    // Settled on its own so that a failed assertion below does not leave it unhandled.
    const write = leader.write({ op: 'put', request: { key: enc('during'), value: enc('1') } }, null).then(
      () => order.push('written'),
      (e: unknown) => order.push(String(e)),
    );
    assert.equal((await leader.range({ key: enc('during') }, true)).count, 0, 'a serializable read answers at once, from the state before');
    const r = await defrag;
    assert.ok(r.afterBytes < before / 3, `${before} → ${r.afterBytes}`);
    await write;
    assert.deepEqual(order, ['defragmented', 'written']);
    assert.equal((await leader.range({ key: enc('during') }, false)).count, 1);
    assert.equal(leader.status().role, 'leader');
    assert.equal(leader.status().raftTerm, term);
    await until(() => members.every((m) => m.status().raftAppliedIndex === leader.status().raftAppliedIndex));
    const hashes = await Promise.all(members.map((m) => m.mvcc().hashKV()));
    assert.equal(new Set(hashes.map((h) => h.hash)).size, 1);
  } finally {
    for (const m of members) await m.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a stopping leader hands leadership to a connected voter first', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'conclave-maint-'));
  let members: Member[] = [];
  try {
    members = await cluster(dir, 3);
    // Every follower must have been heard from (a fresh cluster's leader may not have yet).
    const leader = members.find((m) => m.status().role === 'leader')!;
    await leader.write({ op: 'put', request: { key: enc('k'), value: enc('v') } }, null);
    const term = leader.status().raftTerm;
    await leader.stop();
    const successor = members.find((m) => m !== leader && m.status().role === 'leader');
    assert.ok(successor !== undefined, 'a successor leads as soon as stop() returns');
    assert.equal(successor.status().raftTerm, term + 1, 'by a transfer: one term later, no failed elections');
  } finally {
    for (const m of members) await m.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
