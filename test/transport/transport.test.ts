import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeMessage, encodeMessage } from '../../src/transport/codec.ts';
import { fetchMembership } from '../../src/transport/membership-query.ts';
import { Transport, type TransportHandlers } from '../../src/transport/transport.ts';
import type { Message, MsgSnap } from '../../src/raft/types.ts';

const id = fc.constantFrom('a', 'b', '8e9e05c52164694d', 'ünï');
const num = fc.nat({ max: Number.MAX_SAFE_INTEGER });
const bytes = fc.uint8Array({ maxLength: 64 });
const entry = fc.record({ term: num, index: num, kind: fc.constantFrom(0 as const, 1 as const), data: bytes });
const confState = fc.record({
  voters: fc.array(id),
  votersOutgoing: fc.array(id),
  learners: fc.array(id),
  learnersNext: fc.array(id),
  autoLeave: fc.boolean(),
});
const base = { from: id, to: id, term: num };
const message: fc.Arbitrary<Message> = fc.oneof(
  fc.record({ type: fc.constant('app' as const), ...base, logTerm: num, logIndex: num, commit: num, entries: fc.array(entry, { maxLength: 5 }) }),
  fc.record({ type: fc.constant('appResp' as const), ...base, index: num, reject: fc.boolean(), hintIndex: num, hintTerm: num }),
  fc.record({ type: fc.constant('vote' as const), ...base, preVote: fc.boolean(), lastIndex: num, lastTerm: num, transfer: fc.boolean() }),
  fc.record({ type: fc.constant('voteResp' as const), ...base, preVote: fc.boolean(), reject: fc.boolean() }),
  fc.record({ type: fc.constant('heartbeat' as const), ...base, commit: num, context: bytes }),
  fc.record({ type: fc.constant('heartbeatResp' as const), ...base, context: bytes }),
  fc.record({
    type: fc.constant('snap' as const),
    ...base,
    snapshot: fc.record({ metadata: fc.record({ index: num, term: num, confState }), data: bytes }),
  }),
  fc.record({ type: fc.constant('prop' as const), ...base, entries: fc.array(entry, { maxLength: 5 }) }),
  fc.record({ type: fc.constant('readIndex' as const), ...base, context: bytes }),
  fc.record({ type: fc.constant('readIndexResp' as const), ...base, index: num, context: bytes }),
  fc.record({ type: fc.constant('timeoutNow' as const), ...base }),
  fc.record({ type: fc.constant('transferLeader' as const), ...base, target: id }),
);

test('every Raft message survives encoding and decoding exactly', () => {
  fc.assert(
    fc.property(message, (m) => {
      assert.deepEqual(decodeMessage(encodeMessage(m)), structuredClone(m));
    }),
    { numRuns: 2000 },
  );
});

test('a truncated message is rejected, not misread', () => {
  const m: Message = { type: 'heartbeat', from: 'a', to: 'b', term: 3, commit: 9, context: new Uint8Array([1, 2]) };
  const buf = encodeMessage(m);
  assert.throws(() => decodeMessage(buf.subarray(0, buf.byteLength - 1)), /truncated/);
});

interface Probe {
  received: Message[];
  unreachable: string[];
  snapshots: { m: MsgSnap; body: Buffer }[];
  snapshotSent: { peer: string; ok: boolean }[];
  removed: number;
  handlers: TransportHandlers;
  waitFor(pred: () => boolean): Promise<void>;
}

function probe(snapshotBody: Uint8Array[] = []): Probe {
  const p: Probe = {
    received: [],
    unreachable: [],
    snapshots: [],
    snapshotSent: [],
    removed: 0,
    handlers: {
      onMessage: (m) => p.received.push(m),
      onSnapshot: async (m, body) => {
        const parts: Uint8Array[] = [];
        for await (const c of body) parts.push(c);
        p.snapshots.push({ m, body: Buffer.concat(parts) });
      },
      snapshotBody: async function* () {
        for (const c of snapshotBody) yield c;
      },
      onUnreachable: (peer) => p.unreachable.push(peer),
      onSnapshotSent: (peer, ok) => p.snapshotSent.push({ peer, ok }),
      isRemoved: (id) => id === 'removed',
      onRemoved: () => p.removed++,
      membership: () => ({ clusterId: 'c1', members: [{ id: 'a', name: 'alpha', peerUrls: ['http://127.0.0.1:1'] }] }),
    },
    async waitFor(pred) {
      for (let i = 0; i < 200 && !pred(); i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(pred(), 'condition not reached within 2 s');
    },
  };
  return p;
}

async function pair(clusterB = 'c1', bodyA: Uint8Array[] = []) {
  const pa = probe(bodyA);
  const pb = probe();
  const a = new Transport({ memberId: 'a', clusterId: 'c1', listenHost: '127.0.0.1', listenPort: 0, handlers: pa.handlers });
  const b = new Transport({ memberId: 'b', clusterId: clusterB, listenHost: '127.0.0.1', listenPort: 0, handlers: pb.handlers });
  await a.start();
  await b.start();
  a.setPeer('b', `http://127.0.0.1:${b.port()}`);
  b.setPeer('a', `http://127.0.0.1:${a.port()}`);
  return { a, b, pa, pb };
}

const hb = (i: number): Message => ({ type: 'heartbeat', from: 'a', to: 'b', term: 1, commit: i, context: new Uint8Array(0) });

test('messages flow between two members in order, batched per event-loop turn', async () => {
  const { a, b, pb } = await pair();
  try {
    // Rejections are never coalesced (coalesce.ts), so each one arrives.
    const reject = (i: number): Message => ({ type: 'appResp', from: 'a', to: 'b', term: 1, index: i, reject: true, hintIndex: 0, hintTerm: 0 });
    a.send(Array.from({ length: 1000 }, (_, i) => reject(i)));
    await pb.waitFor(() => pb.received.length === 1000);
    assert.deepEqual(
      pb.received.map((m) => (m.type === 'appResp' ? m.index : -1)),
      Array.from({ length: 1000 }, (_, i) => i),
    );
  } finally {
    await a.stop();
    await b.stop();
  }
});

test('heartbeats queued in one turn for one peer arrive as one, with the newest commit', async () => {
  const { a, b, pb } = await pair();
  try {
    a.send(Array.from({ length: 100 }, (_, i) => hb(i)));
    await pb.waitFor(() => pb.received.length >= 1 && pb.received.some((m) => m.type === 'heartbeat' && m.commit === 99));
    assert.ok(pb.received.length < 100);
    const last = pb.received.at(-1);
    assert.equal(last?.type === 'heartbeat' ? last.commit : -1, 99);
  } finally {
    await a.stop();
    await b.stop();
  }
});

test('a member that is joining learns the membership over the peer port, without an id of its own', async () => {
  const { a, b } = await pair();
  try {
    const m = await fetchMembership(`http://127.0.0.1:${b.port()}`);
    assert.deepEqual(m, { clusterId: 'c1', members: [{ id: 'a', name: 'alpha', peerUrls: ['http://127.0.0.1:1'] }] });
  } finally {
    await a.stop();
    await b.stop();
  }
  await assert.rejects(fetchMembership(`http://127.0.0.1:${b.port()}`, undefined, 500));
});

test('a member that was removed is told so at the handshake', async () => {
  const pa = probe();
  const pr = probe();
  const a = new Transport({ memberId: 'a', clusterId: 'c1', listenHost: '127.0.0.1', listenPort: 0, handlers: pa.handlers });
  const r = new Transport({ memberId: 'removed', clusterId: 'c1', listenHost: '127.0.0.1', listenPort: 0, handlers: pr.handlers });
  await a.start();
  await r.start();
  try {
    a.setPeer('removed', `http://127.0.0.1:${r.port()}`);
    r.setPeer('a', `http://127.0.0.1:${a.port()}`);
    r.send([{ type: 'heartbeat', from: 'removed', to: 'a', term: 1, commit: 0, context: new Uint8Array(0) }]);
    await pr.waitFor(() => pr.removed > 0);
    assert.equal(pa.received.length, 0);
  } finally {
    await a.stop();
    await r.stop();
  }
});

test('a member of another cluster is refused at the handshake', async () => {
  const { a, b, pb } = await pair('c2');
  try {
    a.send([hb(1)]);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(pb.received.length, 0);
  } finally {
    await a.stop();
    await b.stop();
  }
});

test('messages from an unknown member are refused', async () => {
  const { a, b, pb } = await pair();
  try {
    b.removePeer('a');
    a.send([hb(1)]);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(pb.received.length, 0);
  } finally {
    await a.stop();
    await b.stop();
  }
});

test('a peer that is down is reported unreachable, and reconnected when it returns', async () => {
  const pa = probe();
  const a = new Transport({ memberId: 'a', clusterId: 'c1', listenHost: '127.0.0.1', listenPort: 0, handlers: pa.handlers });
  await a.start();
  const pb = probe();
  let b = new Transport({ memberId: 'b', clusterId: 'c1', listenHost: '127.0.0.1', listenPort: 0, handlers: pb.handlers });
  await b.start();
  const port = b.port();
  a.setPeer('b', `http://127.0.0.1:${port}`);
  b.setPeer('a', 'http://127.0.0.1:1');
  try {
    a.send([hb(1)]);
    await pb.waitFor(() => pb.received.length === 1);
    await b.stop();
    await pa.waitFor(() => pa.unreachable.includes('b'));
    b = new Transport({ memberId: 'b', clusterId: 'c1', listenHost: '127.0.0.1', listenPort: port, handlers: pb.handlers });
    await b.start();
    b.setPeer('a', 'http://127.0.0.1:1');
    const deadline = Date.now() + 5000;
    while (pb.received.length < 2 && Date.now() < deadline) {
      a.send([hb(2)]);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(pb.received.length >= 2, 'delivery resumed after the peer came back');
  } finally {
    await a.stop();
    await b.stop();
  }
});

test('a snapshot streams on its own connection and its outcome is reported', async () => {
  const body = [new Uint8Array(3 * 1024 * 1024).fill(7), new Uint8Array([1, 2, 3])];
  const { a, b, pa, pb } = await pair('c1', body);
  try {
    const snap: MsgSnap = {
      type: 'snap',
      from: 'a',
      to: 'b',
      term: 2,
      snapshot: { metadata: { index: 10, term: 2, confState: { voters: ['a', 'b'], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false } }, data: new Uint8Array([9]) },
    };
    a.send([snap]);
    await pa.waitFor(() => pa.snapshotSent.length === 1);
    assert.deepEqual(pa.snapshotSent, [{ peer: 'b', ok: true }]);
    assert.equal(pb.snapshots.length, 1);
    assert.deepEqual(pb.snapshots[0]!.m, snap);
    assert.equal(pb.snapshots[0]!.body.byteLength, 3 * 1024 * 1024 + 3);
    assert.deepEqual([...pb.snapshots[0]!.body.subarray(-3)], [1, 2, 3]);
  } finally {
    await a.stop();
    await b.stop();
  }
});

test('a request goes to the peer handler on its own connection and its answer or failure comes back', async () => {
  const { a, b, pb } = await pair();
  const seen: string[] = [];
  pb.handlers.onRequest = async (from, body) => {
    seen.push(from);
    const text = Buffer.from(body).toString();
    if (text === 'fail') throw new Error('no such thing');
    if (text === 'slow') await new Promise((r) => setTimeout(r, 500));
    return Buffer.from(text.toUpperCase());
  };
  try {
    assert.equal(Buffer.from(await a.request('b', Buffer.from('hash please'), 2000)).toString(), 'HASH PLEASE');
    await assert.rejects(a.request('b', Buffer.from('fail'), 2000), /no such thing/);
    await assert.rejects(a.request('b', Buffer.from('slow'), 100), /did not answer within 100 ms/);
    await assert.rejects(a.request('z', Buffer.from('x'), 100), /no connection to member z/);
    assert.deepEqual(seen, ['a', 'a', 'a']);
    // A member that does not know the asker refuses at the handshake.
    b.removePeer('a');
    await assert.rejects(a.request('b', Buffer.from('x'), 2000), /refused the request: unknown member a/);
    // Without a handler, requests are refused with a reason.
    pb.handlers.onRequest = undefined;
    b.setPeer('a', `http://127.0.0.1:${a.port()}`);
    await assert.rejects(a.request('b', Buffer.from('x'), 2000), /serves no peer requests/);
  } finally {
    await a.stop();
    await b.stop();
  }
});
