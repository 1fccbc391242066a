/**
 * The Watch service's response encoding: hand-written events responses decode exactly as
 * protobufjs's encoding of the same response; a watcher's queued events messages merge into one
 * response (bounded, whole revisions) while other kinds of message stay in place; fragments.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { etcdType } from '../../src/api/etcd/proto/load.ts';
import { header, keyValue } from '../../src/api/etcd/convert.ts';
import { WATCH_API_LIMITS, WatchResponseEncoder } from '../../src/api/etcd/watch-response.ts';
import { eventBytes, type MvccEvent } from '../../src/mvcc/index.ts';
import type { ResponseHeader } from '../../src/server/member.ts';
import { FrameReader } from '../../src/api/grpc/framing.ts';
import { FrameBuilder } from '../../src/api/grpc/index.ts';
import type { WatchMessage } from '../../src/watch/index.ts';

const WatchResponse = etcdType('etcdserverpb.WatchResponse');
const memberHeader = (): ResponseHeader => ({ clusterId: 'cdf818194e3a8c32', memberId: '8e9e05c52164694d', revision: 99, raftTerm: 7 });

function put(key: string, rev: number, value: string | Buffer, prev?: MvccEvent['kv']): MvccEvent {
  const kv = { key: Buffer.from(key), createRevision: 2, modRevision: rev, version: rev - 1, value: Buffer.from(value), lease: 0n };
  return prev === undefined ? { type: 'PUT', kv } : { type: 'PUT', kv, prevKv: prev };
}

function del(key: string, rev: number): MvccEvent {
  return { type: 'DELETE', kv: { key: Buffer.from(key), createRevision: 0, modRevision: rev, version: 0, value: Buffer.alloc(0), lease: 0n } };
}

/** A response as a plain object with every field (for comparing encodings). */
function decode(bytes: Uint8Array): Record<string, unknown> {
  return WatchResponse.toObject(WatchResponse.decode(bytes), { longs: String, bytes: String, defaults: true, arrays: true });
}

/** What protobufjs makes of the events response the service means. */
function reference(revision: number, watchId: number, events: MvccEvent[], fragment = false): Record<string, unknown> {
  const pb = events.map((e) => ({ type: e.type === 'PUT' ? 0 : 1, kv: keyValue(e.kv), prev_kv: e.prevKv === undefined ? null : keyValue(e.prevKv) }));
  return decode(WatchResponse.encode({ header: header(memberHeader(), revision), watch_id: watchId, events: pb, fragment }).finish());
}

/** The responses encodeTaken frames, decoded. */
function encode(taken: WatchMessage[]): Record<string, unknown>[] {
  const frames = new FrameBuilder(16);
  new WatchResponseEncoder(memberHeader).encodeTaken(frames, taken);
  const out: Record<string, unknown>[] = [];
  new FrameReader(1 << 30).push(Buffer.from(frames.finish()), (compressed, m) => {
    assert.equal(compressed, false);
    out.push(decode(m));
  });
  return out;
}

const ev = (watchId: number, revision: number, events: MvccEvent[], fragment = false): WatchMessage => ({
  type: 'events',
  watchId,
  revision,
  events,
  bytes: events.reduce((n, e) => n + eventBytes(e), 0),
  fragment,
});

test('events responses decode as protobufjs encodes them: watch id 0, deletes, prevKv, several events', () => {
  const a2 = put('a', 2, 'x');
  const a3 = put('a', 3, 'y', a2.kv);
  const b3 = del('b', 3);
  assert.deepEqual(encode([ev(0, 2, [a2])]), [reference(2, 0, [a2])]);
  assert.deepEqual(encode([ev(5, 3, [a3, b3])]), [reference(3, 5, [a3, b3])]);
  assert.deepEqual(encode([ev(300, 3, [b3])]), [reference(3, 300, [b3])], 'a watch id of two varint bytes');
});

test('a watcher\'s queued events merge into one response; other messages are barriers; watchers keep their own order', () => {
  const e = [2, 3, 4, 5].map((r) => put(`k${r}`, r, `v${r}`));
  const taken: WatchMessage[] = [
    { type: 'created', watchId: 1, revision: 1 },
    ev(0, 2, [e[0]!]),
    ev(1, 2, [e[0]!]),
    ev(0, 3, [e[1]!]),
    { type: 'progress', watchId: -1, revision: 3 },
    ev(0, 4, [e[2]!]),
    ev(1, 4, [e[2]!]),
    { type: 'canceled', watchId: 1, revision: 4, compactRevision: 0, reason: '' },
    ev(0, 5, [e[3]!]),
  ];
  const got = encode(taken);
  const control = (o: object): Record<string, unknown> => decode(WatchResponse.encode(o).finish());
  assert.deepEqual(got, [
    control({ header: header(memberHeader(), 1), watch_id: 1, created: true }),
    reference(3, 0, [e[0]!, e[1]!]),
    reference(2, 1, [e[0]!]),
    control({ header: header(memberHeader(), 3), watch_id: -1 }),
    reference(4, 0, [e[2]!]),
    reference(4, 1, [e[2]!]),
    control({ header: header(memberHeader(), 4), watch_id: 1, canceled: true, compact_revision: 0, cancel_reason: '' }),
    reference(5, 0, [e[3]!]),
  ]);
});

test('a merged response stops at mergedResponseBytesMax, between revisions; a larger revision goes alone', () => {
  const third = Buffer.alloc(Math.floor(WATCH_API_LIMITS.mergedResponseBytesMax / 3), 'v');
  const r2 = put('a', 2, third);
  const r3 = put('b', 3, third);
  const r4 = [put('c', 4, third), put('d', 4, third), put('e', 4, third)]; // one txn, over the limit
  const r5 = put('f', 5, 'small');
  assert.deepEqual(encode([ev(9, 2, [r2]), ev(9, 3, [r3]), ev(9, 4, r4), ev(9, 5, [r5])]), [
    reference(3, 9, [r2, r3]),
    reference(4, 9, r4),
    reference(5, 9, [r5]),
  ]);
});

test('a fragmenting watcher gets a large response in fragments, all but the last marked', () => {
  const big = Buffer.alloc(Math.floor(WATCH_API_LIMITS.fragmentBytesMax / 2) - 100, 'v');
  const r2 = [put('a', 2, big), put('b', 2, big), put('c', 2, big)];
  assert.deepEqual(encode([ev(4, 2, r2, true)]), [reference(2, 4, r2.slice(0, 2), true), reference(2, 4, r2.slice(2), false)]);
  assert.deepEqual(encode([ev(4, 2, r2, false)]), [reference(2, 4, r2)], 'not split for a watcher that did not ask');
});

test('one events list handed to several watchers encodes the same for each, alone or merged', () => {
  const list = [put('a', 6, 'x'), del('b', 6), put('c', 7, 'z')];
  const later = [put('d', 8, 'w'), put('e', 8, 'v')];
  assert.deepEqual(encode([ev(1, 7, list), ev(2, 7, list), ev(2, 8, later), ev(3, 8, later)]), [
    reference(7, 1, list),
    reference(8, 2, [...list, ...later]),
    reference(8, 3, later),
  ]);
});

test('merged runs of the same lists are encoded alike for every watcher; runs that only start alike are not confused', () => {
  const r = [6, 7, 8].map((rev) => [put(`k${rev}`, rev, `v${rev}`)]);
  const other = [put('x', 8, 'other')];
  const taken: WatchMessage[] = [];
  for (let rev = 6; rev <= 8; rev++) for (const id of [1, 2, 3]) taken.push(ev(id, rev, id === 3 && rev === 8 ? other : r[rev - 6]!));
  taken.push(ev(4, 6, r[0]!), ev(4, 7, r[1]!));
  assert.deepEqual(encode(taken), [
    reference(8, 1, r.flat()),
    reference(8, 2, r.flat()),
    reference(8, 3, [...r[0]!, ...r[1]!, ...other]),
    reference(7, 4, [...r[0]!, ...r[1]!]),
  ]);
});
