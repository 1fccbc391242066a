/**
 * A cluster of real `conclave serve` processes used through the etcd3 npm client: writes and
 * reads, typed errors, leader failure with the survivors carrying on, a killed member catching
 * up after restart, and every acknowledged write surviving a restart of the whole cluster.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3, EtcdLeaseInvalidError } from 'etcd3';
import { startCluster, waitHealthy, type ProcessCluster } from '../helpers/processes.ts';

let cluster: ProcessCluster;

before(async () => {
  cluster = await startCluster('conclave', 3);
});

after(async () => {
  await cluster?.destroy();
});

function client(endpoints: string[] = cluster.members.map((m) => m.clientUrl)): Etcd3 {
  return new Etcd3({ hosts: endpoints, dialTimeout: 2_000 });
}

interface StatusJson {
  leader?: string;
  header?: { member_id?: string };
}

/** Index of the member that is leader, asked through the gateway's Maintenance.Status. */
async function leaderIndex(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    for (let i = 0; i < cluster.members.length; i++) {
      const m = cluster.members[i]!;
      if (m.child === null) continue;
      try {
        const res = await fetch(`${m.clientUrl}/v3/maintenance/status`, { method: 'POST', body: '{}' });
        const s = (await res.json()) as StatusJson;
        if (s.leader !== undefined && s.leader === s.header?.member_id) return i;
      } catch {
        // not answering; try the next one
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('no leader found');
}

test('etcd3 client: put, get, prefix, delete, txn and typed errors', async () => {
  const etcd = client();
  try {
    await etcd.put('app/a').value('1');
    await etcd.put('app/b').value('2');
    await etcd.put('other').value('x');
    assert.equal(await etcd.get('app/a').string(), '1');
    assert.deepEqual(await etcd.getAll().prefix('app/').strings(), { 'app/a': '1', 'app/b': '2' });
    assert.equal(await etcd.getAll().prefix('app/').count(), 2);
    assert.equal(await etcd.get('missing').string(), null);

    const won = await etcd.if('app/a', 'Value', '==', '1').then(etcd.put('app/a').value('10')).else(etcd.put('app/a').value('lost')).commit();
    assert.equal(won.succeeded, true);
    const lost = await etcd.if('app/a', 'Value', '==', '1').then(etcd.put('app/a').value('again')).commit();
    assert.equal(lost.succeeded, false);
    assert.equal(await etcd.get('app/a').string(), '10');

    const deleted = await etcd.delete().prefix('app/');
    assert.equal(deleted.deleted, '2');
    assert.equal(await etcd.getAll().prefix('app/').count(), 0);

    // Each comparison of a txn on the same key as its put is fine; two puts of one key are not.
    await assert.rejects(
      etcd.if('k', 'Version', '==', 0).then(etcd.put('k').value('1'), etcd.put('k').value('2')).commit(),
      (e: Error) => e.message.includes('etcdserver: duplicate key given in txn request'),
    );
    await assert.rejects(etcd.put('').value('v').exec(), (e: Error) => e.message.includes('etcdserver: key is not provided'));
    // The client maps etcd's text to its typed error, so the wording must be etcd's.
    await assert.rejects(etcd.put('leased').value('v').lease('1234').exec(), (e: Error) => e instanceof EtcdLeaseInvalidError);
  } finally {
    etcd.close();
  }
});

test('every member serves linearizable reads of a write made through another', async () => {
  const writer = client([cluster.members[0]!.clientUrl]);
  const readers = cluster.members.slice(1).map((m) => client([m.clientUrl]));
  try {
    for (let i = 0; i < 20; i++) {
      await writer.put('lin').value(String(i));
      for (const r of readers) assert.equal(await r.get('lin').string(), String(i));
    }
  } finally {
    writer.close();
    for (const r of readers) r.close();
  }
});

test('the leader is killed: the others elect a new one, and it catches up after restart', async () => {
  const etcd = client();
  try {
    const old = await leaderIndex();
    await cluster.kill(old);
    const survivors = client(cluster.members.filter((_, i) => i !== old).map((m) => m.clientUrl));
    try {
      // Writes may fail while the survivors elect a leader; retry until one is acknowledged.
      let written = false;
      for (let attempt = 0; attempt < 50 && !written; attempt++) {
        try {
          await survivors.put('after-kill').value('yes');
          written = true;
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      assert.ok(written, 'the two survivors never accepted a write');
      for (let i = 0; i < 50; i++) await survivors.put(`during/${i}`).value(String(i));
    } finally {
      survivors.close();
    }
    await cluster.start(old);
    await waitHealthy(cluster);
    const restarted = client([cluster.members[old]!.clientUrl]);
    try {
      assert.equal(await restarted.get('after-kill').string(), 'yes');
      assert.equal(await restarted.getAll().prefix('during/').count(), 50);
    } finally {
      restarted.close();
    }
  } finally {
    etcd.close();
  }
});

test('every acknowledged write survives SIGKILL of the whole cluster', async () => {
  const etcd = client();
  const acknowledged: string[] = [];
  try {
    await Promise.all(
      Array.from({ length: 8 }, async (_, w) => {
        for (let i = 0; i < 25; i++) {
          const key = `durable/${w}/${i}`;
          await etcd.put(key).value(key);
          acknowledged.push(key);
        }
      }),
    );
  } finally {
    etcd.close();
  }
  for (let i = 0; i < cluster.members.length; i++) await cluster.kill(i);
  for (let i = 0; i < cluster.members.length; i++) await cluster.start(i);
  await waitHealthy(cluster);
  const after = client();
  try {
    const stored = await after.getAll().prefix('durable/').strings();
    for (const key of acknowledged) assert.equal(stored[key], key, `acknowledged write ${key} was lost`);
    assert.equal(Object.keys(stored).length, acknowledged.length);
  } finally {
    after.close();
  }
});

test('SIGTERM shuts a member down cleanly (exit code 0)', async () => {
  const m = cluster.members[2]!;
  const child = m.child!;
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  await cluster.stop(2);
  assert.equal(await exit, 0);
  await cluster.start(2);
  await waitHealthy(cluster);
});
