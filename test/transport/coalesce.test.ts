import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Raft } from '../../src/raft/raft.ts';
import { MemoryStorage, bootstrapStorage } from '../../src/raft/storage.ts';
import { EntryKind, type Entry, type Message, type MsgApp, type NodeId } from '../../src/raft/types.ts';
import { coalesce, combine } from '../../src/transport/coalesce.ts';

const enc = new TextEncoder();
const entry = (index: number, term: number, text = `e${index}`): Entry => ({ index, term, kind: EntryKind.Normal, data: enc.encode(text) });
const app = (logIndex: number, logTerm: number, entries: Entry[], commit: number, to = 'b', term = 2): MsgApp => ({
  type: 'app',
  from: 'a',
  to,
  term,
  logIndex,
  logTerm,
  entries,
  commit,
});

test('contiguous appends of one term become one, with the newer commit', () => {
  const m = combine(app(4, 1, [entry(5, 2), entry(6, 2)], 4), app(6, 2, [entry(7, 2)], 5));
  assert.deepEqual(m, app(4, 1, [entry(5, 2), entry(6, 2), entry(7, 2)], 5));
  // A commit-only append after entries folds into them.
  assert.deepEqual(combine(app(4, 1, [entry(5, 2)], 4), app(5, 2, [], 5)), app(4, 1, [entry(5, 2)], 5));
});

test('appends that are not contiguous, or of another term or peer, stay apart', () => {
  assert.equal(combine(app(4, 1, [entry(5, 2)], 4), app(6, 2, [entry(7, 2)], 4)), null); // gap
  assert.equal(combine(app(4, 1, [entry(5, 2)], 4), app(5, 1, [entry(6, 2)], 4)), null); // wrong prev term
  assert.equal(combine(app(4, 1, [entry(5, 2)], 4), app(4, 1, [entry(5, 2)], 4)), null); // a resend
  assert.equal(combine(app(4, 1, [entry(5, 2)], 4), app(5, 2, [], 5, 'b', 3)), null); // newer term
  assert.equal(combine(app(4, 1, [], 4, 'b'), app(4, 1, [], 5, 'c')), null); // another peer
});

test('acknowledgements keep the highest accepted index; rejections are never combined', () => {
  const ok = (index: number): Message => ({ type: 'appResp', from: 'b', to: 'a', term: 2, index, reject: false, hintIndex: 0, hintTerm: 0 });
  const no = (index: number): Message => ({ type: 'appResp', from: 'b', to: 'a', term: 2, index, reject: true, hintIndex: 3, hintTerm: 1 });
  assert.deepEqual(combine(ok(5), ok(7)), ok(7));
  assert.deepEqual(combine(ok(7), ok(5)), ok(7));
  assert.equal(combine(ok(5), no(6)), null);
  assert.equal(combine(no(6), ok(5)), null);
});

test('heartbeats keep the newer commit and the newest read context', () => {
  const hb = (commit: number, ctx: string): Message => ({ type: 'heartbeat', from: 'a', to: 'b', term: 2, commit, context: enc.encode(ctx) });
  assert.deepEqual(combine(hb(3, 'r1'), hb(4, 'r2')), hb(4, 'r2'));
  assert.deepEqual(combine(hb(3, 'r1'), hb(4, '')), hb(4, 'r1'));
  const resp = (ctx: string): Message => ({ type: 'heartbeatResp', from: 'b', to: 'a', term: 2, context: enc.encode(ctx) });
  assert.deepEqual(combine(resp('r1'), resp('r2')), resp('r2'));
  assert.deepEqual(combine(resp('r1'), resp('')), resp('r1'));
});

test('coalesce combines only with the previous message for the same peer, keeping order per peer', () => {
  const vote: Message = { type: 'vote', from: 'a', to: 'b', term: 2, preVote: false, lastIndex: 4, lastTerm: 1, transfer: false };
  const out = coalesce([app(4, 1, [entry(5, 2)], 4), app(4, 1, [entry(5, 2)], 4, 'c'), app(5, 2, [], 5), vote, app(5, 2, [entry(6, 2)], 5), app(5, 2, [], 5, 'c')]);
  assert.deepEqual(out, [app(4, 1, [entry(5, 2)], 5), app(4, 1, [entry(5, 2)], 5, 'c'), vote, app(5, 2, [entry(6, 2)], 5)]);
});

/**
 * Three real Raft members; each one's outgoing messages wait in a queue per link, and a link is
 * delivered (coalesced or not, at random) whole at random moments while proposals and ReadIndex
 * requests arrive at random members. Every proposal must commit exactly once, in the same order
 * on every member, and every ReadIndex request must be answered.
 */
function runCluster(seed: number, useCoalesce: boolean): { logs: string[][]; reads: number; asked: number; accepted: number } {
  let x = seed >>> 0 || 1;
  const rnd = (): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
  const ids: NodeId[] = ['a', 'b', 'c'];
  const members = new Map<NodeId, { raft: Raft; storage: MemoryStorage; log: string[] }>();
  for (const id of ids) {
    const storage = new MemoryStorage();
    bootstrapStorage(storage, ids);
    members.set(id, { raft: new Raft({ id, storage, electionTick: 10, heartbeatTick: 1, random: rnd }), storage, log: [] });
  }
  const links = new Map<string, Message[]>();
  let reads = 0;
  const drain = (id: NodeId): void => {
    const m = members.get(id)!;
    while (m.raft.hasReady()) {
      const rd = m.raft.ready();
      if (rd.snapshot !== null) m.storage.applySnapshot(rd.snapshot);
      m.storage.append(rd.entries);
      if (rd.hardState !== null) m.storage.setHardState(rd.hardState);
      for (const msg of [...rd.messages, ...rd.messagesAfterPersist]) {
        const k = `${msg.from}>${msg.to}`;
        if (!links.has(k)) links.set(k, []);
        links.get(k)!.push(msg);
      }
      for (const e of rd.committedEntries) if (e.kind === EntryKind.Normal && e.data.byteLength > 0) m.log.push(new TextDecoder().decode(e.data));
      reads += rd.readStates.length;
      m.raft.advance(rd);
    }
  };
  const deliver = (k: string): void => {
    const queued = links.get(k) ?? [];
    links.set(k, []);
    for (const msg of useCoalesce ? coalesce(queued) : queued) {
      members.get(msg.to)!.raft.step(msg);
      drain(msg.to);
    }
  };
  members.get('a')!.raft.campaign();
  for (let settle = 0; settle < 20; settle++) {
    for (const id of ids) drain(id);
    for (const k of [...links.keys()]) deliver(k);
  }
  let proposed = 0;
  let asked = 0;
  const accepted = new Set<string>();
  for (let step = 0; step < 400; step++) {
    const r = rnd();
    const id = ids[Math.floor(rnd() * 3)]!;
    const m = members.get(id)!;
    if (r < 0.4) {
      const names = Array.from({ length: 1 + Math.floor(rnd() * 4) }, () => `p${proposed++}`);
      if (m.raft.propose(names.map((n) => enc.encode(n))).ok) for (const n of names) accepted.add(n);
    } else if (r < 0.55) {
      if (m.raft.readIndex(enc.encode(`read-${asked}`)).ok) asked++;
    } else {
      const keys = [...links.keys()].filter((k) => links.get(k)!.length > 0);
      if (keys.length > 0) deliver(keys[Math.floor(rnd() * keys.length)]!);
    }
    drain(id);
    if (rnd() < 0.05) for (const mm of members.values()) mm.raft.tick();
  }
  for (let settle = 0; settle < 50; settle++) {
    for (const id of ids) drain(id);
    for (const k of [...links.keys()]) deliver(k);
    for (const mm of members.values()) mm.raft.tick();
  }
  for (let settle = 0; settle < 20; settle++) {
    for (const id of ids) drain(id);
    for (const k of [...links.keys()]) deliver(k);
  }
  const logs = ids.map((id) => members.get(id)!.log);
  assert.deepEqual([...logs[0]!].sort(), [...accepted].sort(), 'every accepted proposal committed exactly once');
  return { logs, reads, asked, accepted: accepted.size };
}

test('a cluster whose links coalesce commits every proposal once, in one order, and answers every read', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 2 ** 31 }), (seed) => {
      const r = runCluster(seed, true);
      assert.deepEqual(r.logs[1], r.logs[0]);
      assert.deepEqual(r.logs[2], r.logs[0]);
      assert.equal(r.reads, r.asked);
    }),
    { numRuns: 60 },
  );
  // The harness itself: a stable run commits plenty, and the same holds without coalescing.
  const plain = runCluster(1, false);
  assert.ok(plain.accepted > 100);
  assert.deepEqual(plain.logs[1], plain.logs[0]);
  assert.equal(plain.reads, plain.asked);
  assert.deepEqual(runCluster(1, true).logs[0], plain.logs[0]);
});
