/**
 * The KV service's hand-written response encoding (kv-encoding.ts) against protobufjs: for random
 * store results (keys, values, revisions up to 2^53, leases beyond it, nested txns), the bytes
 * decode to exactly what protobufjs's encoding of the gateway's object decodes to; so do the
 * watch events and headers it encodes; fields at their default are left out, as etcd leaves them out.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Type } from 'protobufjs';
import { etcdType } from '../../src/api/etcd/proto/load.ts';
import { header as pbHeader, keyValue as pbKeyValue } from '../../src/api/etcd/convert.ts';
import { DELETE_RANGE_ENCODING, encodeEvent, encodeHeader, PUT_ENCODING, RANGE_ENCODING, TXN_ENCODING, type KvReply } from '../../src/api/etcd/kv-encoding.ts';
import type { UnaryEncoding } from '../../src/api/grpc/index.ts';
import type { DeleteRangeResponse, KeyValue, MvccEvent, PutResponse, RangeResponse, ResponseOp, TxnResponse } from '../../src/mvcc/index.ts';
import type { ResponseHeader } from '../../src/server/member.ts';

const revision = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 200 }), fc.maxSafeNat());
const keyValue: fc.Arbitrary<KeyValue> = fc.record({
  key: fc.uint8Array({ maxLength: 40 }),
  createRevision: revision,
  modRevision: revision,
  version: revision,
  value: fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ minLength: 200, maxLength: 300 })),
  lease: fc.oneof(fc.constant(0n), fc.bigInt({ min: 1n, max: (1n << 63n) - 1n })),
});
const range: fc.Arbitrary<RangeResponse> = fc.record({ revision, kvs: fc.array(keyValue, { maxLength: 5 }), more: fc.boolean(), count: revision });
const put: fc.Arbitrary<PutResponse> = fc.oneof(fc.record({ revision }), fc.record({ revision, prevKv: keyValue }));
const del: fc.Arbitrary<DeleteRangeResponse> = fc.record({ revision, deleted: revision, prevKvs: fc.array(keyValue, { maxLength: 3 }) });
const { txn } = fc.letrec<{ txn: TxnResponse; op: ResponseOp }>((tie) => ({
  txn: fc.record({ revision, succeeded: fc.boolean(), responses: fc.array(tie('op'), { maxLength: 3, depthIdentifier: 'txn' }) }),
  op: fc.oneof(
    { depthSize: 'small', depthIdentifier: 'txn' },
    fc.record({ op: fc.constant('range' as const), response: range }),
    fc.record({ op: fc.constant('put' as const), response: put }),
    fc.record({ op: fc.constant('deleteRange' as const), response: del }),
    fc.record({ op: fc.constant('txn' as const), response: tie('txn') as fc.Arbitrary<TxnResponse> }),
  ),
}));
const memberHeader: fc.Arbitrary<ResponseHeader> = fc.record({
  clusterId: fc.constantFrom('cdf818194e3a8c32', 'ffffffffffffffff', '1'),
  memberId: fc.constantFrom('8e9e05c52164694d', '0', '7fffffffffffffff'),
  revision: fc.constant(-1), // never used: the result's revision is the header's
  raftTerm: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 1000 })),
});

/** A message as a plain object with every field, longs and bytes as strings (for comparing encodings). */
function decoded(type: Type, bytes: Uint8Array): unknown {
  return type.toObject(type.decode(bytes), { longs: String, bytes: String, defaults: true, arrays: true });
}

function sameAsProtobufjs<R>(name: string, encoding: UnaryEncoding<KvReply<R>>, response: fc.Arbitrary<R>): void {
  const type = etcdType(`etcdserverpb.${name}`);
  fc.assert(
    fc.property(memberHeader, response, (h, r) => {
      const reply = { header: h, response: r };
      const ours = encoding.encode(reply);
      const theirs = type.encode(encoding.toMessage(reply) as Record<string, unknown>).finish();
      assert.deepEqual(decoded(type, ours), decoded(type, theirs));
    }),
    { numRuns: 300 },
  );
}

test('RangeResponse decodes as protobufjs encodes it', () => sameAsProtobufjs('RangeResponse', RANGE_ENCODING, range));
test('PutResponse decodes as protobufjs encodes it', () => sameAsProtobufjs('PutResponse', PUT_ENCODING, put));
test('DeleteRangeResponse decodes as protobufjs encodes it', () => sameAsProtobufjs('DeleteRangeResponse', DELETE_RANGE_ENCODING, del));
test('TxnResponse (nested txns included) decodes as protobufjs encodes it', () => sameAsProtobufjs('TxnResponse', TXN_ENCODING, txn));

test('watch events and headers decode as protobufjs encodes them', () => {
  const Event = etcdType('mvccpb.Event');
  const Header = etcdType('etcdserverpb.ResponseHeader');
  const event: fc.Arbitrary<MvccEvent> = fc.oneof(
    fc.record({ type: fc.constantFrom('PUT' as const, 'DELETE' as const), kv: keyValue }),
    fc.record({ type: fc.constantFrom('PUT' as const, 'DELETE' as const), kv: keyValue, prevKv: keyValue }),
  );
  fc.assert(
    fc.property(event, memberHeader, revision, (e, h, rev) => {
      const pb = { type: e.type === 'PUT' ? 0 : 1, kv: pbKeyValue(e.kv), prev_kv: e.prevKv === undefined ? null : pbKeyValue(e.prevKv) };
      assert.deepEqual(decoded(Event, encodeEvent(e)), decoded(Event, Event.encode(pb).finish()));
      assert.deepEqual(decoded(Header, encodeHeader(h, rev)), decoded(Header, Header.encode(pbHeader(h, rev)).finish()));
    }),
    { numRuns: 300 },
  );
});

test('fields at their default are left out, as etcd encodes them', () => {
  const h: ResponseHeader = { clusterId: 'cdf818194e3a8c32', memberId: '8e9e05c52164694d', revision: 0, raftTerm: 2 };
  const bytes = RANGE_ENCODING.encode({ header: h, response: { revision: 5, kvs: [], more: false, count: 0 } });
  // header (field 1) holding cluster_id, member_id, revision 5, raft_term 2; no kvs, more or count.
  assert.equal(bytes[0], (1 << 3) | 2);
  assert.equal(bytes.length, 2 + bytes[1]!);
  const kv = { key: Buffer.from('k'), createRevision: 0, modRevision: 0, version: 0, value: Buffer.alloc(0), lease: 0n };
  const withKv = RANGE_ENCODING.encode({ header: h, response: { revision: 5, kvs: [kv], more: false, count: 1 } });
  // + kvs (field 2) holding only key "k" (2 + 3 bytes) + count 1 (2 bytes).
  assert.equal(withKv.length, bytes.length + 5 + 2);
});
