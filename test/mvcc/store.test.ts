import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MvccStore } from '../../src/mvcc/index.ts';
import type { KeyValue, MvccEvent, RangeRequest, TxnRequest } from '../../src/mvcc/index.ts';
import { attempt, b, norm, tempDir } from './helpers.ts';
import { requestFor } from './fixtures/workload.ts';

async function withStore(fn: (s: MvccStore) => void | Promise<void>, options?: Parameters<typeof MvccStore.open>[1]): Promise<void> {
  const { dir, cleanup } = tempDir();
  const s = await MvccStore.open(dir, options);
  try {
    await fn(s);
  } finally {
    await s.close();
    cleanup();
  }
}

const str = (u: Uint8Array): string => Buffer.from(u).toString();
const keys = (kvs: readonly KeyValue[]): string[] => kvs.map((kv) => str(kv.key));
const all: RangeRequest = { key: b('\0'), rangeEnd: b('\0') };

test('revisions start at 1; every write request is one main revision; versions reset after delete', () =>
  withStore((s) => {
    assert.equal(s.revision, 1);
    assert.deepEqual(s.range({ key: b('a') }), { revision: 1, kvs: [], more: false, count: 0 });
    assert.equal(s.put({ key: b('a'), value: b('1') }).revision, 2);
    assert.equal(s.put({ key: b('a'), value: b('2') }).revision, 3);
    const kv = s.range({ key: b('a') }).kvs[0]!;
    assert.deepEqual([kv.createRevision, kv.modRevision, kv.version, str(kv.value), kv.lease], [2, 3, 2, '2', 0n]);
    assert.deepEqual(norm(s.deleteRange({ key: b('a') })), { revision: 4, deleted: 1, prevKvs: [] });
    // Deleting nothing does not create a revision.
    assert.deepEqual(norm(s.deleteRange({ key: b('a') })), { revision: 4, deleted: 0, prevKvs: [] });
    assert.equal(s.put({ key: b('a'), value: b('3'), lease: 0x694d7b0b4c5e0a04n }).revision, 5);
    const again = s.range({ key: b('a') }).kvs[0]!;
    assert.deepEqual([again.createRevision, again.modRevision, again.version, again.lease], [5, 5, 1, 0x694d7b0b4c5e0a04n]);
    // Historical reads see each revision; the header revision is always the current one.
    const at3 = s.range({ key: b('a'), revision: 3 });
    assert.equal(at3.revision, 5);
    assert.equal(str(at3.kvs[0]!.value), '2');
    assert.equal(s.range({ key: b('a'), revision: 4 }).count, 0);
  }));

test('range conventions: single key, from-key "\\0", whole space, [key, end), prefix', () =>
  withStore((s) => {
    for (const k of ['a', 'ab', 'abc', 'b', 'c', '\0x']) s.put({ key: b(k), value: b(k) });
    assert.deepEqual(keys(s.range({ key: b('ab') }).kvs), ['ab']);
    assert.deepEqual(keys(s.range({ key: b('ab'), rangeEnd: new Uint8Array(0) }).kvs), ['ab']);
    assert.deepEqual(keys(s.range({ key: b('ab'), rangeEnd: b('\0') }).kvs), ['ab', 'abc', 'b', 'c']);
    assert.deepEqual(keys(s.range(all).kvs), ['\0x', 'a', 'ab', 'abc', 'b', 'c']);
    assert.deepEqual(keys(s.range({ key: b('a'), rangeEnd: b('b') }).kvs), ['a', 'ab', 'abc']);
    assert.deepEqual(keys(s.range({ key: b('ab'), rangeEnd: b('ac') }).kvs), ['ab', 'abc']); // prefix "ab"
    assert.deepEqual(keys(s.range({ key: b('c'), rangeEnd: b('a') }).kvs), []); // end ≤ key: empty
  }));

test('count is taken before limit and before the revision filters; more reflects the limit', () =>
  withStore((s) => {
    for (const k of ['a', 'b', 'c', 'd', 'e']) s.put({ key: b(k), value: b(k) }); // revisions 2..6
    let r = s.range({ key: b('a'), rangeEnd: b('z'), limit: 2 });
    assert.deepEqual([keys(r.kvs), r.more, r.count], [['a', 'b'], true, 5]);
    r = s.range({ key: b('a'), rangeEnd: b('z'), limit: 5 });
    assert.deepEqual([r.kvs.length, r.more, r.count], [5, false, 5]);
    r = s.range({ key: b('a'), rangeEnd: b('z'), minModRevision: 4 });
    assert.deepEqual([keys(r.kvs), r.more, r.count], [['c', 'd', 'e'], false, 5]);
    r = s.range({ key: b('a'), rangeEnd: b('z'), minModRevision: 4, limit: 2 });
    assert.deepEqual([keys(r.kvs), r.more, r.count], [['c', 'd'], true, 5]);
    r = s.range({ key: b('a'), rangeEnd: b('z'), maxCreateRevision: 3, limit: 2 });
    assert.deepEqual([keys(r.kvs), r.more, r.count], [['a', 'b'], false, 5]);
    r = s.range({ key: b('a'), rangeEnd: b('z'), countOnly: true, limit: 1 });
    assert.deepEqual([r.kvs.length, r.more, r.count], [0, false, 5]);
    r = s.range({ key: b('a'), rangeEnd: b('z'), keysOnly: true, limit: 1 });
    assert.deepEqual([keys(r.kvs), r.kvs[0]!.value.byteLength, r.kvs[0]!.modRevision], [['a'], 0, 2]);
  }));

test('sorting: targets, orders, and etcd\'s default-order limit quirk', () =>
  withStore((s) => {
    s.put({ key: b('a'), value: b('3') });
    s.put({ key: b('b'), value: b('1') });
    s.put({ key: b('c'), value: b('2') });
    s.put({ key: b('a'), value: b('4') }); // a: version 2, mod 5
    const q = (extra: Partial<RangeRequest>): string[] => keys(s.range({ key: b('a'), rangeEnd: b('z'), ...extra }).kvs);
    assert.deepEqual(q({ sortTarget: 'KEY', sortOrder: 'DESCEND' }), ['c', 'b', 'a']);
    assert.deepEqual(q({ sortTarget: 'VALUE', sortOrder: 'ASCEND' }), ['b', 'c', 'a']);
    assert.deepEqual(q({ sortTarget: 'MOD', sortOrder: 'DESCEND' }), ['a', 'c', 'b']);
    assert.deepEqual(q({ sortTarget: 'CREATE', sortOrder: 'DESCEND' }), ['c', 'b', 'a']);
    assert.deepEqual(q({ sortTarget: 'VERSION', sortOrder: 'DESCEND' }), ['a', 'b', 'c']); // ties keep key order
    assert.deepEqual(q({ sortTarget: 'VALUE' }), ['b', 'c', 'a']); // order NONE with a non-KEY target sorts ascending
    assert.deepEqual(q({ sortTarget: 'VALUE', sortOrder: 'DESCEND', limit: 1 }), ['a']);
    // With order NONE the fetch is cut at limit+1 keys before sorting (etcd behaviour): only a, b are sorted.
    assert.deepEqual(q({ sortTarget: 'VALUE', limit: 1 }), ['b']);
    const r = s.range({ key: b('a'), rangeEnd: b('z'), sortTarget: 'VALUE', limit: 1 });
    assert.deepEqual([r.more, r.count], [true, 3]);
    // Sorting by value with keysOnly still sorts by the values, then drops them.
    const ko = s.range({ key: b('a'), rangeEnd: b('z'), sortTarget: 'VALUE', sortOrder: 'ASCEND', keysOnly: true });
    assert.deepEqual(keys(ko.kvs), ['b', 'c', 'a']);
    assert.ok(ko.kvs.every((kv) => kv.value.byteLength === 0));
  }));

test('exact etcd error texts', () =>
  withStore(
    (s) => {
      s.put({ key: b('a'), value: b('1') });
      s.put({ key: b('a'), value: b('2') });
      s.put({ key: b('a'), value: b('3') });
      assert.deepEqual(attempt(() => s.range({ key: b('a'), revision: 5 })), { error: 'mvcc: required revision is a future revision' });
      s.compact(3);
      assert.deepEqual(attempt(() => s.range({ key: b('a'), revision: 2 })), { error: 'mvcc: required revision has been compacted' });
      assert.equal(s.range({ key: b('a'), revision: 3 }).kvs.length, 1); // the compact revision itself is readable
      assert.deepEqual(attempt(() => s.compact(3)), { error: 'mvcc: required revision has been compacted' });
      assert.deepEqual(attempt(() => s.compact(2)), { error: 'mvcc: required revision has been compacted' });
      assert.deepEqual(attempt(() => s.compact(5)), { error: 'mvcc: required revision is a future revision' });
      assert.deepEqual(attempt(() => s.put({ key: b('zz'), value: new Uint8Array(0), ignoreValue: true })), { error: 'etcdserver: key not found' });
      assert.deepEqual(attempt(() => s.put({ key: b('zz'), value: b('x'), ignoreLease: true })), { error: 'etcdserver: key not found' });
      assert.deepEqual(attempt(() => s.put({ key: b('a'), value: b('x'), ignoreValue: true })), { error: 'etcdserver: value is provided' });
      assert.deepEqual(attempt(() => s.put({ key: b('a'), value: b('x'), lease: 5n, ignoreLease: true })), { error: 'etcdserver: lease is provided' });
      assert.deepEqual(attempt(() => s.put({ key: new Uint8Array(0), value: b('x') })), { error: 'etcdserver: key is not provided' });
      assert.deepEqual(attempt(() => s.range({ key: new Uint8Array(0) })), { error: 'etcdserver: key is not provided' });
      assert.deepEqual(attempt(() => s.put({ key: b('a'), value: b('x'), lease: 77n })), { error: 'etcdserver: requested lease not found' });
      const put = (k: string) => ({ op: 'put' as const, request: { key: b(k), value: b('v') } });
      assert.deepEqual(attempt(() => s.txn({ compare: [], success: Array.from({ length: 129 }, (_, i) => put(`k${i}`)), failure: [] })), {
        error: 'etcdserver: too many operations in txn request',
      });
      assert.deepEqual(attempt(() => s.txn({ compare: [], success: [put('a'), put('a')], failure: [] })), { error: 'etcdserver: duplicate key given in txn request' });
      assert.equal(s.revision, 4, 'rejected requests change nothing');
    },
    { leaseExists: (id) => id === 5n || id === 0x694d7b0b4c5e0a04n },
  ));

test('duplicate keys in a txn branch are rejected before anything is applied (etcd checkIntervals rules)', () =>
  withStore((s) => {
    const put = (k: string) => ({ op: 'put' as const, request: { key: b(k), value: b('v') } });
    const del = (k: string, end?: string) => ({ op: 'deleteRange' as const, request: end === undefined ? { key: b(k) } : { key: b(k), rangeEnd: b(end) } });
    const txn = (success: TxnRequest['success'], failure: TxnRequest['failure'] = []) => ({ op: 'txn' as const, request: { compare: [], success, failure } });
    const dup = { error: 'etcdserver: duplicate key given in txn request' };
    const run = (success: TxnRequest['success'], failure: TxnRequest['failure'] = []) => attempt(() => s.txn({ compare: [], success, failure }));
    assert.deepEqual(run([put('a'), del('a')]), dup);
    assert.deepEqual(run([del('a', 'c'), put('b')]), dup);
    assert.deepEqual(run([del('a', '\0'), put('b')]), dup, 'a from-key delete covers everything after its key');
    assert.deepEqual(run([del('\0', '\0'), put('x')]), dup);
    assert.deepEqual(run([put('a'), txn([put('a')])]), dup);
    assert.deepEqual(run([del('a', 'c'), txn([put('b')])]), dup);
    assert.deepEqual(run([txn([put('a')]), txn([put('a')])]), dup);
    assert.deepEqual(run([], [put('q'), put('q')]), dup, 'the failure branch is checked too');
    // Allowed: overlapping deletes, puts outside the deleted span, then/else of a nested txn, separate branches.
    assert.ok(!('error' in run([del('a', 'c'), del('b', 'd'), put('d')])));
    assert.ok(!('error' in run([del('b', '\0'), put('a')])));
    assert.ok(!('error' in run([txn([put('n')], [put('n')])])));
    assert.ok(!('error' in run([put('m')], [put('m')])));
    assert.equal(s.range({ key: b('n') }).kvs.length, 1);
  }));

test('txn compares: every target and operator, ranges, and absent keys', () =>
  withStore((s) => {
    s.put({ key: b('a'), value: b('5'), lease: 7n }); // rev 2
    s.put({ key: b('b'), value: b('6') }); // rev 3
    s.put({ key: b('a'), value: b('5') }); // rev 4, a: create 2, mod 4, version 2, lease 0
    const ok = (compare: TxnRequest['compare']): boolean => s.txn({ compare, success: [], failure: [] }).succeeded;
    const k = b('a');
    assert.ok(ok([{ target: 'VALUE', result: 'EQUAL', key: k, value: b('5') }]));
    assert.ok(ok([{ target: 'VALUE', result: 'LESS', key: k, value: b('6') }]));
    assert.ok(ok([{ target: 'VALUE', result: 'GREATER', key: k, value: b('4') }]));
    assert.ok(ok([{ target: 'VALUE', result: 'NOT_EQUAL', key: k, value: b('x') }]));
    assert.ok(ok([{ target: 'VERSION', result: 'EQUAL', key: k, version: 2 }]));
    assert.ok(ok([{ target: 'CREATE', result: 'EQUAL', key: k, createRevision: 2 }]));
    assert.ok(ok([{ target: 'MOD', result: 'GREATER', key: k, modRevision: 3 }]));
    assert.ok(ok([{ target: 'LEASE', result: 'EQUAL', key: k, lease: 0n }]));
    assert.ok(!ok([{ target: 'MOD', result: 'LESS', key: k, modRevision: 4 }]));
    // A range compare must hold for every key in the range.
    assert.ok(ok([{ target: 'VALUE', result: 'GREATER', key: b('a'), rangeEnd: b('c'), value: b('4') }]));
    assert.ok(!ok([{ target: 'VALUE', result: 'EQUAL', key: b('a'), rangeEnd: b('c'), value: b('5') }]));
    assert.ok(ok([{ target: 'MOD', result: 'GREATER', key: b('\0'), rangeEnd: b('\0'), modRevision: 2 }]));
    // Absent keys: VALUE is always false; other targets compare against 0.
    const z = b('zz');
    assert.ok(!ok([{ target: 'VALUE', result: 'NOT_EQUAL', key: z, value: b('x') }]));
    assert.ok(ok([{ target: 'VERSION', result: 'EQUAL', key: z, version: 0 }]));
    assert.ok(ok([{ target: 'CREATE', result: 'EQUAL', key: z, createRevision: 0 }]));
    assert.ok(ok([{ target: 'LEASE', result: 'EQUAL', key: z, lease: 0n }]));
    assert.equal(s.revision, 4, 'compare-only txns do not create revisions');
  }));

test('a txn is one main revision with increasing sub revisions, reads inside see its earlier writes', () =>
  withStore((s) => {
    s.put({ key: b('a'), value: b('0') }); // rev 2
    s.put({ key: b('d'), value: b('old') }); // rev 3
    const res = s.txn({
      compare: [{ target: 'VALUE', result: 'EQUAL', key: b('a'), value: b('0') }],
      success: [
        { op: 'range', request: { key: b('a') } },
        { op: 'put', request: { key: b('a'), value: b('1'), prevKv: true } },
        { op: 'put', request: { key: b('b'), value: b('2') } },
        { op: 'range', request: { key: b('a'), rangeEnd: b('c') } },
        { op: 'deleteRange', request: { key: b('d'), prevKv: true } },
        { op: 'range', request: { key: b('a'), rangeEnd: b('e'), revision: 2 } },
        {
          op: 'txn',
          request: {
            // Evaluated before the outer txn wrote anything: a is still "0".
            compare: [{ target: 'VALUE', result: 'EQUAL', key: b('a'), value: b('0') }],
            success: [{ op: 'put', request: { key: b('c'), value: b('nested') } }],
            failure: [],
          },
        },
      ],
      failure: [],
    });
    assert.equal(res.revision, 4);
    assert.ok(res.succeeded);
    const r = res.responses;
    assert.equal(r[0]!.op === 'range' && r[0].response.revision, 3, 'a range before any write sees the starting revision');
    assert.equal(r[1]!.op === 'put' && str(r[1].response.prevKv!.value), '0');
    assert.equal(r[2]!.op === 'put' && r[2].response.revision, 4);
    assert.deepEqual(r[3]!.op === 'range' && [r[3].response.revision, keys(r[3].response.kvs), str(r[3].response.kvs[0]!.value)], [4, ['a', 'b'], '1']);
    assert.deepEqual(r[4]!.op === 'deleteRange' && [r[4].response.deleted, r[4].response.revision, str(r[4].response.prevKvs[0]!.value)], [1, 4, 'old']);
    assert.deepEqual(r[5]!.op === 'range' && keys(r[5].response.kvs), ['a']);
    assert.deepEqual(r[6]!.op === 'txn' && [r[6].response.succeeded, r[6].response.revision], [true, 0]);
    assert.deepEqual(keys(s.range(all).kvs), ['a', 'b', 'c']);
    assert.equal(s.revision, 4);
    // Sub revisions follow the order of changes: a 4.0, b 4.1, d deleted 4.2, c 4.3 (seen through commit events).
    const subs: string[] = [];
    const off = s.onCommit((_rev, events) => events.forEach((e) => subs.push(`${e.type} ${str(e.kv.key)}`)));
    s.txn({ compare: [], success: [{ op: 'put', request: { key: b('y'), value: b('1') } }, { op: 'deleteRange', request: { key: b('a'), rangeEnd: b('c') } }], failure: [] });
    off();
    assert.deepEqual(subs, ['PUT y', 'DELETE a', 'DELETE b']);
    // A txn reading at the revision it is about to create is rejected before it runs (etcd checkTxn).
    assert.deepEqual(
      attempt(() =>
        s.txn({ compare: [], success: [{ op: 'put', request: { key: b('x'), value: b('1') } }, { op: 'range', request: { key: b('x'), revision: 6 } }], failure: [] }),
      ),
      { error: 'mvcc: required revision is a future revision' },
    );
    assert.equal(s.range({ key: b('x') }).count, 0);
  }));

test('range reads: a scan of nearby revisions and one lookup per record agree, with skipped records, holes and unsorted revisions', () =>
  withStore(async (s) => {
    const name = (i: number): string => `k${String(i).padStart(3, '0')}`;
    // Each range's kvs must equal the point reads (always one lookup) of the same keys at the same revision.
    const check = (r: RangeRequest): void => {
      const got = s.range(r);
      const rev = r.revision ?? 0;
      const want = got.kvs.map((kv) => s.range({ key: kv.key, revision: rev, keysOnly: r.keysOnly ?? false }).kvs[0]);
      assert.deepEqual(norm(got.kvs), norm(want));
      assert.equal(got.kvs.length, got.count);
    };
    const every: RangeRequest = { key: b('k'), rangeEnd: b('l') };
    for (let i = 0; i < 40; i++) s.put({ key: b(name(i)), value: b(`v${i}`) }); // dense, in key order
    check(every);
    // Descending key order in one txn: sub revisions run against key order.
    s.txn({ compare: [], success: [50, 49, 48, 47, 46, 45].map((i) => ({ op: 'put' as const, request: { key: b(name(i)), value: b(`t${i}`) } })), failure: [] });
    check(every);
    // Tombstones and other keys' revisions between the wanted ones.
    for (let i = 0; i < 40; i += 3) s.deleteRange({ key: b(name(i)) });
    for (let i = 1; i < 40; i += 3) s.put({ key: b(name(i)), value: b(`w${i}`) });
    const mid = s.revision;
    for (let i = 0; i < 20; i++) s.put({ key: b(`other${i}`), value: b('x') });
    check(every);
    check({ ...every, keysOnly: true });
    check({ ...every, revision: mid - 10 });
    // Far-apart revisions (one lookup each), then holes left by physical compaction.
    for (let i = 0; i < 5; i++) {
      for (let j = 0; j < 30; j++) s.put({ key: b(`other${j}`), value: b('y') });
      s.put({ key: b(name(100 + i)), value: b('sparse') });
    }
    check({ key: b(name(100)), rangeEnd: b(name(200)) });
    // Values larger than LMDB's reusable read buffer.
    for (let i = 300; i < 306; i++) s.put({ key: b(name(i)), value: Buffer.alloc(300_000 + i, i) });
    check({ key: b(name(300)), rangeEnd: b(name(400)) });
    s.compact(mid);
    await s.compactionDone();
    check(every);
    // Inside a write: the range sees the write's own puts.
    const res = s.txn({
      compare: [],
      success: [
        ...[7, 8, 9, 10, 11].map((i) => ({ op: 'put' as const, request: { key: b(name(i)), value: b(`in${i}`) } })),
        { op: 'range', request: { key: b(name(7)), rangeEnd: b(name(12)) } },
      ],
      failure: [],
    });
    const inner = res.responses[5]!;
    assert.deepEqual(inner.op === 'range' && inner.response.kvs.map((kv) => str(kv.value)), ['in7', 'in8', 'in9', 'in10', 'in11']);
    check(every);
  }));

test('commit listeners get PUT/DELETE events with prevKv once per committed revision', () =>
  withStore((s) => {
    const got: Array<[number, MvccEvent[]]> = [];
    const off = s.onCommit((rev, events) => got.push([rev, [...events]]));
    s.put({ key: b('a'), value: b('1') });
    s.put({ key: b('a'), value: b('2') });
    s.deleteRange({ key: b('zzz') }); // no change, no event
    s.txn({ compare: [], success: [{ op: 'deleteRange', request: { key: b('a') } }, { op: 'put', request: { key: b('b'), value: b('3') } }], failure: [] });
    s.txn({ compare: [], success: [{ op: 'range', request: { key: b('a') } }], failure: [] });
    off();
    s.put({ key: b('c'), value: b('x') });
    assert.deepEqual(norm(got), [
      [2, [{ type: 'PUT', kv: { key: 'hex:61', createRevision: 2, modRevision: 2, version: 1, value: 'hex:31', lease: '0n' } }]],
      [
        3,
        [
          {
            type: 'PUT',
            kv: { key: 'hex:61', createRevision: 2, modRevision: 3, version: 2, value: 'hex:32', lease: '0n' },
            prevKv: { key: 'hex:61', createRevision: 2, modRevision: 2, version: 1, value: 'hex:31', lease: '0n' },
          },
        ],
      ],
      [
        4,
        [
          {
            type: 'DELETE',
            kv: { key: 'hex:61', createRevision: 0, modRevision: 4, version: 0, value: 'hex:', lease: '0n' },
            prevKv: { key: 'hex:61', createRevision: 2, modRevision: 3, version: 2, value: 'hex:32', lease: '0n' },
          },
          { type: 'PUT', kv: { key: 'hex:62', createRevision: 4, modRevision: 4, version: 1, value: 'hex:33', lease: '0n' } },
        ],
      ],
    ]);
  }));

test('write(): meta namespaces commit atomically with kv changes; a throwing callback leaves no trace', () =>
  withStore((s) => {
    const r = s.write(1, (tx) => {
      tx.put({ key: b('k'), value: b('v') });
      tx.meta.put('leases', b('\x01'), b('lease-1'));
      tx.meta.put('leases', b('\x02'), b('lease-2'));
      tx.meta.put('auth', b('enabled'), b('1'));
      return tx.revision;
    });
    assert.deepEqual(r, { status: 'applied', value: 2 });
    assert.equal(str(s.meta.get('leases', b('\x02'))!), 'lease-2');
    assert.deepEqual(
      s.meta.entries('leases').map((e) => [str(e.key), str(e.value)]),
      [
        ['\x01', 'lease-1'],
        ['\x02', 'lease-2'],
      ],
    );
    assert.equal(s.meta.entries('auth').length, 1);
    assert.throws(
      () =>
        s.write(2, (tx) => {
          tx.put({ key: b('k'), value: b('changed') });
          tx.deleteRange({ key: b('k') });
          tx.put({ key: b('new'), value: b('x') });
          tx.meta.delete('leases', b('\x01'));
          throw new Error('boom');
        }),
      /boom/,
    );
    assert.equal(s.revision, 2);
    assert.equal(s.consistentIndex(), 1);
    assert.deepEqual(keys(s.range(all).kvs), ['k']);
    assert.equal(str(s.range({ key: b('k') }).kvs[0]!.value), 'v');
    assert.equal(s.range({ key: b('k') }).kvs[0]!.version, 1);
    assert.equal(s.meta.entries('leases').length, 2);
    assert.throws(() => s.meta.get('Bad Namespace', b('x')), /invalid argument/);
    // The rolled-back write did not disturb the index: later writes continue normally.
    assert.equal(s.put({ key: b('k'), value: b('w') }).revision, 3);
    assert.equal(s.range({ key: b('k') }).kvs[0]!.version, 2);
  }));

test('apply(): exactly once by Raft index; failures still record the index', () =>
  withStore((s) => {
    assert.equal(s.consistentIndex(), 0);
    const put = { op: 'put' as const, request: { key: b('a'), value: b('1') } };
    assert.deepEqual(norm(s.apply(5, put)), { status: 'applied', response: { op: 'put', response: { revision: 2 } } });
    assert.deepEqual(s.apply(5, put), { status: 'skipped' });
    assert.deepEqual(s.apply(3, put), { status: 'skipped' });
    assert.equal(s.revision, 2);
    const failed = s.apply(6, { op: 'put', request: { key: b('nope'), value: new Uint8Array(0), ignoreValue: true } });
    assert.equal(failed.status, 'failed');
    assert.equal(failed.status === 'failed' && failed.error.message, 'etcdserver: key not found');
    assert.equal(failed.status === 'failed' && failed.error.code, 'MVCC_KEY_NOT_FOUND');
    assert.equal(s.consistentIndex(), 6);
    assert.deepEqual(norm(s.apply(7, { op: 'compact', revision: 2 })), { status: 'applied', response: { op: 'compact', response: { revision: 2 } } });
    const again = s.apply(8, { op: 'compact', revision: 2 });
    assert.equal(again.status === 'failed' && again.error.message, 'mvcc: required revision has been compacted');
    assert.equal(s.consistentIndex(), 8);
    // A read-only request through the log records its index too.
    assert.equal(s.apply(9, { op: 'range', request: { key: b('a') } }).status, 'applied');
    assert.equal(s.consistentIndex(), 9);
    assert.equal(s.revision, 2);
  }));

test('a store directory whose name has a dot is still a directory', async () => {
  const t = tempDir();
  try {
    const dir = `${t.dir}/member.conclave`;
    const s = await MvccStore.open(dir);
    s.put({ key: b('a'), value: b('1') });
    await s.sync();
    await s.close();
    const again = await MvccStore.open(dir);
    assert.equal(again.range({ key: b('a') }).count, 1);
    await again.close();
  } finally {
    t.cleanup();
  }
});

test('applyBatch: one LMDB transaction per run, same results, state, events and index as one apply per entry', async () => {
  const t1 = tempDir();
  const t2 = tempDir();
  const one = await MvccStore.open(t1.dir);
  const many = await MvccStore.open(t2.dir);
  try {
    const ev1: unknown[] = [];
    const ev2: unknown[] = [];
    one.onCommit((rev, events) => ev1.push(norm([rev, events])));
    many.onCommit((rev, events) => ev2.push(norm([rev, events])));
    const n = 900;
    const singles = [];
    for (let i = 1; i <= n; i++) singles.push(norm(one.apply(i, requestFor(i))));
    const batched = [];
    let i = 1;
    let size = 1;
    while (i <= n) {
      const entries = [];
      for (let k = 0; k < size && i <= n; k++, i++) entries.push({ index: i, request: requestFor(i) });
      batched.push(...many.applyBatch(entries).map(norm));
      size = (size * 7 + 3) % 97; // 0..96 entries per batch
    }
    assert.deepEqual(batched, singles);
    assert.deepEqual(ev2, ev1);
    assert.equal(many.consistentIndex(), n);
    assert.equal(many.revision, one.revision);
    assert.deepEqual(norm(many.range(all)), norm(one.range(all)));
    assert.deepEqual(await many.hashKV(), await one.hashKV());
    // Already-applied entries in a batch are skipped, new ones applied.
    const mixed = many.applyBatch([
      { index: n - 1, request: requestFor(n - 1) },
      { index: n + 1, request: { op: 'put', request: { key: b('fresh'), value: b('1') } } },
    ]);
    assert.deepEqual(mixed.map((r) => r.status), ['skipped', 'applied']);
    assert.equal(many.consistentIndex(), n + 1);
  } finally {
    await one.close();
    await many.close();
    t1.cleanup();
    t2.cleanup();
  }
});
