/**
 * The client's key-value, txn and lease calls against a 3-member Conclave cluster and, where
 * installed, a real etcd 3.4 (the same assertions for both): every option of get, put and
 * delete, txn comparisons and branches, and etcd's errors as typed classes. Imported through the
 * package's "exports" entry, as a user would.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Client,
  CompactedError,
  compare,
  DuplicateKeyError,
  EmptyKeyError,
  FutureRevisionError,
  KeyNotFoundError,
  LeaseNotFoundError,
  op,
  RequestTooLargeError,
  TooManyOpsError,
  ValueProvidedError,
  type KeyValue,
} from 'conclave';
import { etcdAvailable, startCluster, type Flavour, type ProcessCluster } from '../helpers/processes.ts';

const keys = (kvs: KeyValue[]): string[] => kvs.map((kv) => kv.key.toString());
const values = (kvs: KeyValue[]): string[] => kvs.map((kv) => kv.value.toString());

function suite(flavour: Flavour, size: number): void {
  describe(`client KV against ${flavour}`, { skip: flavour === 'etcd' && !etcdAvailable() ? 'etcd not installed' : false }, () => {
    let cluster: ProcessCluster;
    let client: Client;

    before(async () => {
      cluster = await startCluster(flavour, size);
      client = new Client({ endpoints: cluster.members.map((m) => m.clientUrl) });
    });

    after(async () => {
      client?.close();
      await cluster?.destroy();
    });

    test('put and get one key, prevKv, ignoreValue, revisions and versions', async () => {
      const first = await client.put('k', 'v1');
      const second = await client.put('k', 'v2', { prevKv: true });
      assert.equal(second.header.revision, first.header.revision + 1);
      assert.equal(second.prevKv?.value.toString(), 'v1');
      const got = await client.get('k');
      assert.equal(got.count, 1);
      assert.deepEqual(
        { value: got.kvs[0]!.value.toString(), create: got.kvs[0]!.createRevision, mod: got.kvs[0]!.modRevision, version: got.kvs[0]!.version },
        { value: 'v2', create: first.header.revision, mod: second.header.revision, version: 2 },
      );
      assert.equal(await client.getString('k', { revision: first.header.revision }), 'v1');
      assert.equal(await client.getString('k', { serializable: true }), 'v2', 'a serializable read through the member the put acknowledged... or another that caught up');
      await client.put('k', '', { ignoreValue: true });
      await assert.rejects(client.put('k', 'x', { ignoreValue: true }), ValueProvidedError);
      assert.equal(await client.getString('k'), 'v2');
      assert.equal(await client.getString('missing'), undefined);
      await assert.rejects(client.put('missing', '', { ignoreValue: true }), KeyNotFoundError);
      await assert.rejects(client.put('', 'x'), EmptyKeyError);
      await assert.rejects(client.put('x', 'y', { lease: 123456789n }), LeaseNotFoundError);
    });

    test('prefix, range, from-key, limit, sort and filters', async () => {
      for (const [k, v] of [['r/c', '1'], ['r/a', '3'], ['r/b', '2'], ['r/b', '2b'], ['s', 'x']]) await client.put(k!, v!);
      assert.deepEqual(keys((await client.get('r/', { prefix: true })).kvs), ['r/a', 'r/b', 'r/c']);
      // One key is one key, with greater keys present (an empty range_end on the wire would mean "from key" to etcd).
      assert.deepEqual(keys((await client.get('r/a')).kvs), ['r/a']);
      assert.deepEqual(keys((await client.get('r/')).kvs), []);
      assert.deepEqual(keys((await client.get('r/a', { rangeEnd: 'r/c' })).kvs), ['r/a', 'r/b']);
      assert.deepEqual(keys((await client.get('r/b', { fromKey: true })).kvs).filter((k) => k.startsWith('r/') || k === 's'), ['r/b', 'r/c', 's']);
      const limited = await client.get('r/', { prefix: true, limit: 2 });
      assert.deepEqual([keys(limited.kvs), limited.more, limited.count], [['r/a', 'r/b'], true, 3]);
      assert.deepEqual(keys((await client.get('r/', { prefix: true, sort: { target: 'KEY', order: 'DESCEND' } })).kvs), ['r/c', 'r/b', 'r/a']);
      assert.deepEqual(keys((await client.get('r/', { prefix: true, sort: { target: 'CREATE', order: 'ASCEND' } })).kvs), ['r/c', 'r/a', 'r/b']);
      assert.deepEqual(keys((await client.get('r/', { prefix: true, sort: { target: 'MOD', order: 'DESCEND' } })).kvs), ['r/b', 'r/a', 'r/c']);
      assert.deepEqual(values((await client.get('r/', { prefix: true, sort: { target: 'VALUE', order: 'ASCEND' } })).kvs), ['1', '2b', '3']);
      assert.deepEqual(keys((await client.get('r/', { prefix: true, sort: { target: 'VERSION', order: 'DESCEND' }, limit: 1 })).kvs), ['r/b']);
      const keysOnly = await client.get('r/', { prefix: true, keysOnly: true });
      assert.deepEqual(values(keysOnly.kvs), ['', '', '']);
      const countOnly = await client.get('r/', { prefix: true, countOnly: true });
      assert.deepEqual([countOnly.kvs.length, countOnly.count], [0, 3]);
      const a = (await client.get('r/a')).kvs[0]!;
      assert.deepEqual(keys((await client.get('r/', { prefix: true, minModRevision: a.modRevision })).kvs), ['r/a', 'r/b']);
      assert.deepEqual(keys((await client.get('r/', { prefix: true, maxCreateRevision: a.createRevision })).kvs), ['r/a', 'r/c']);
    });

    test('delete one key, a prefix and a range, with prevKv', async () => {
      for (const k of ['d/1', 'd/2', 'd/3', 'e/1', 'e/2']) await client.put(k, `v${k}`);
      const one = await client.delete('d/1', { prevKv: true });
      assert.deepEqual([one.deleted, values(one.prevKvs)], [1, ['vd/1']]);
      const prefix = await client.delete('d/', { prefix: true });
      assert.deepEqual([prefix.deleted, prefix.prevKvs.length], [2, 0]);
      const range = await client.delete('e/1', { rangeEnd: 'e/9', prevKv: true });
      assert.deepEqual(keys(range.prevKvs), ['e/1', 'e/2']);
      assert.equal((await client.get('e/', { prefix: true })).count, 0);
    });

    test('compaction: reads below it fail with CompactedError, beyond the head with FutureRevisionError', async () => {
      const r1 = await client.put('c', '1');
      await client.put('c', '2');
      const head = (await client.put('c', '3')).header.revision;
      await client.compact(head - 1, { physical: true });
      await assert.rejects(client.get('c', { revision: r1.header.revision }), CompactedError);
      assert.equal(await client.getString('c', { revision: head - 1 }), '2');
      await assert.rejects(client.get('c', { revision: head + 1000 }), FutureRevisionError);
    });

    test('txn: comparisons of every target, both branches, nested txns and their results', async () => {
      const lease = await client.grant(60);
      const p = await client.put('t/a', '1', { lease: lease.id });
      await client.put('t/b', '2');
      const ok = await client
        .txn()
        .if(
          compare.value('t/a', '=', '1'),
          compare.version('t/a', '>', 0),
          compare.createRevision('t/a', '=', p.header.revision),
          compare.modRevision('t/b', '>', p.header.revision),
          compare.lease('t/a', '=', lease.id),
          compare.value('t/', '!=', 'zzz', { prefix: true }),
        )
        .then(op.put('t/a', '10', { prevKv: true }), op.get('t/b'), op.delete('t/b', { prevKv: true }), op.txn([compare.version('t/c', '=', 0)], [op.put('t/c', 'new')], []))
        .else(op.get('t/a'))
        .commit();
      assert.equal(ok.succeeded, true);
      assert.deepEqual(
        ok.responses.map((r) => r.kind),
        ['put', 'get', 'delete', 'txn'],
      );
      const [put, get, del, nested] = ok.responses;
      assert.equal(put?.kind === 'put' && put.prevKv?.value.toString(), '1');
      assert.equal(get?.kind === 'get' && get.kvs[0]?.value.toString(), '2');
      assert.equal(del?.kind === 'delete' && del.deleted, 1);
      assert.equal(nested?.kind === 'txn' && nested.succeeded, true);
      assert.equal(await client.getString('t/c'), 'new');

      const failed = await client.txn().if(compare.value('t/a', '=', '1')).then(op.put('t/a', 'no')).else(op.get('t/a')).commit();
      assert.equal(failed.succeeded, false);
      assert.equal(failed.responses[0]?.kind === 'get' && failed.responses[0].kvs[0]?.value.toString(), '10');
      // A read-only txn, and an empty one.
      const ro = await client.txn().then(op.get('t/a'), op.get('t/c')).commit();
      assert.deepEqual(ro.responses.map((r) => (r.kind === 'get' ? r.kvs[0]?.value.toString() : r.kind)), ['10', 'new']);
      assert.equal((await client.txn().commit()).succeeded, true);

      await assert.rejects(client.txn().then(op.put('dup', '1'), op.put('dup', '2')).commit(), DuplicateKeyError);
      await assert.rejects(client.txn().then(...Array.from({ length: 129 }, (_, i) => op.put(`many/${i}`, ''))).commit(), TooManyOpsError);
      // Awaiting the builder instead of commit() is refused, not silently hung.
      await assert.rejects(async () => await (client.txn().if() as unknown as Promise<unknown>), /not a promise/);
      await client.revoke(lease.id);
    });

    test('watch: a prefix with prevKv, a filter, a past start revision, and a compacted start as CompactedError', async () => {
      const watcher = client.watch('wt/', { prefix: true, prevKv: true });
      const noDeletes = client.watch('wt/', { prefix: true, filters: ['noDelete'] });
      await Promise.all([watcher.created, noDeletes.created]);
      const first = await client.put('wt/a', '1');
      await client.put('wt/a', '2');
      await client.put('wt-other', 'x');
      await client.delete('wt/a');
      const seen: string[] = [];
      for await (const e of watcher) {
        seen.push(`${e.type} ${e.kv.key} ${e.kv.value} prev=${e.prevKv?.value ?? '-'} @${e.kv.modRevision - first.header.revision}`);
        if (seen.length === 3) break;
      }
      assert.deepEqual(seen, ['put wt/a 1 prev=- @0', 'put wt/a 2 prev=1 @1', 'delete wt/a  prev=2 @3']);
      const puts: string[] = [];
      for await (const e of noDeletes) {
        puts.push(`${e.type} ${e.kv.value}`);
        if (puts.length === 2) break;
      }
      assert.deepEqual(puts, ['put 1', 'put 2']);
      assert.equal(noDeletes.revision >= first.header.revision + 1, true);

      // A progress notification moves the resume point past revisions with no event for us.
      const quiet = client.watch('wt/', { prefix: true });
      await quiet.created;
      const head = (await client.put('elsewhere', 'x')).header.revision;
      assert.ok(quiet.revision < head);
      for (const end = Date.now() + 5_000; quiet.revision < head && Date.now() < end; ) {
        quiet.requestProgress();
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(quiet.revision, head);
      quiet.close();

      const replay: number[] = [];
      for await (const e of client.watch('wt/a', { startRevision: first.header.revision })) {
        replay.push(e.kv.modRevision);
        if (replay.length === 3) break;
      }
      assert.deepEqual(replay, [first.header.revision, first.header.revision + 1, first.header.revision + 3]);

      // Compaction and watch through one member: another member may not have applied the compaction yet.
      const one = new Client({ endpoints: [cluster.members[0]!.clientUrl] });
      try {
        await one.compact(first.header.revision + 2);
        const compacted = one.watch('wt/a', { startRevision: first.header.revision });
        await assert.rejects(async () => {
          for await (const e of compacted) assert.fail(`no event expected, got ${e.type}`);
        }, (e: unknown) => e instanceof CompactedError && e.compactRevision === first.header.revision + 2);
      } finally {
        one.close();
      }
    });

    test('a request over --max-request-bytes fails with RequestTooLargeError', async () => {
      await assert.rejects(client.put('big', Buffer.alloc(1_600_000, 1)), RequestTooLargeError);
    });

    test('leases: grant, time to live with keys, list, keep-alive, revoke, and loss when revoked elsewhere', async () => {
      const lease = await client.lease(2);
      await client.put('l/1', 'x', { lease: lease.id });
      const ttl = await client.timeToLive(lease.id, { keys: true });
      assert.equal(ttl.grantedTtl, 2);
      assert.ok(ttl.ttl > 0 && ttl.ttl <= 2);
      assert.deepEqual(ttl.keys.map((k) => k.toString()), ['l/1']);
      assert.ok((await client.leases()).ids.includes(lease.id));
      let renewals = 0;
      lease.on('keepalive', () => renewals++);
      // An existing lease id kept alive by a second client (as etcdctl lease keep-alive).
      const granted = await client.grant(2);
      const kept = await client.keepAlive(granted.id);
      await assert.rejects(client.keepAlive(987654321n), LeaseNotFoundError);
      // Well past the TTL: the keep-alives hold the lease and its key.
      await new Promise((r) => setTimeout(r, 3_500));
      assert.ok(renewals >= 2, `renewed ${renewals} times`);
      assert.equal(await client.getString('l/1'), 'x');
      assert.ok((await client.timeToLive(granted.id)).ttl > 0, 'the lease kept alive by id lives past its TTL');
      await kept.revoke();
      const lost = lease.lost;
      const other = new Client({ endpoints: [cluster.members.at(-1)!.clientUrl] });
      try {
        await other.revoke(lease.id);
      } finally {
        other.close();
      }
      const error = await lost;
      assert.match(error.message, /lost/);
      assert.equal(lease.isLost, true);
      assert.equal(await client.getString('l/1'), undefined);
      assert.equal((await client.timeToLive(lease.id)).ttl, -1);
      await assert.rejects(client.revoke(lease.id), LeaseNotFoundError);
    });
  });
}

suite('conclave', 3);
suite('etcd', 1);
