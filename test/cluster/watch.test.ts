/**
 * The Watch service end to end, through the etcd3 client and etcdctl: events written through
 * one member arrive on a watcher of another, in order; a watch from a past revision replays the
 * history; a watch from a compacted revision is canceled with the compact revision.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Etcd3 } from 'etcd3';
import { ETCDCTL_BIN, etcdctl, startCluster, type ProcessCluster } from '../helpers/processes.ts';

let cluster: ProcessCluster;

before(async () => {
  cluster = await startCluster('conclave', 3);
});

after(async () => {
  await cluster?.destroy();
});

test('a watcher on one member sees every write made through another, in order, with prev_kv', async () => {
  const writer = new Etcd3({ hosts: [cluster.members[0]!.clientUrl] });
  const watcherClient = new Etcd3({ hosts: [cluster.members[2]!.clientUrl] });
  try {
    const seen: string[] = [];
    const watcher = await watcherClient.watch().prefix('w/').withPreviousKV().create();
    const done = new Promise<void>((resolve) => {
      watcher.on('put', (kv, prev) => {
        seen.push(`put ${kv.key.toString()}=${kv.value.toString()} prev=${prev?.value.toString() ?? '-'}`);
        if (seen.length === 21) resolve();
      });
      watcher.on('delete', (kv) => {
        seen.push(`delete ${kv.key.toString()}`);
        if (seen.length === 21) resolve();
      });
    });
    for (let i = 0; i < 10; i++) await writer.put(`w/${i}`).value('a');
    for (let i = 0; i < 10; i++) await writer.put(`w/${i}`).value('b');
    await writer.put('other').value('x');
    await writer.delete().key('w/0');
    await done;
    const expected = [
      ...Array.from({ length: 10 }, (_, i) => `put w/${i}=a prev=-`),
      ...Array.from({ length: 10 }, (_, i) => `put w/${i}=b prev=a`),
      'delete w/0',
    ];
    assert.deepEqual(seen, expected);
    await watcher.cancel();
  } finally {
    writer.close();
    watcherClient.close();
  }
});

test('etcdctl watch --rev replays history; a compacted start revision is refused', async () => {
  const put = async (k: string, v: string): Promise<number> => {
    const r = await etcdctl(cluster.endpoints, ['put', k, v, '-w', 'json']);
    return Number((JSON.parse(r.stdout) as { header: { revision: number } }).header.revision);
  };
  const first = await put('h', '1');
  await put('h', '2');
  await put('h', '3');
  // etcdctl watch runs until stopped: read its output until the three events are in.
  const out = await new Promise<string>((resolve) => {
    const child = spawn(ETCDCTL_BIN, ['watch', 'h', `--rev=${first}`], { env: { ...process.env, ETCDCTL_API: '3', ETCDCTL_ENDPOINTS: cluster.endpoints } });
    let text = '';
    child.stdout.on('data', (b: Buffer) => {
      text += b.toString();
      if (text.split('\n').length > 9) child.kill('SIGTERM');
    });
    child.on('close', () => resolve(text));
    setTimeout(() => child.kill('SIGTERM'), 5_000);
  });
  assert.equal(out, 'PUT\nh\n1\nPUT\nh\n2\nPUT\nh\n3\n');

  // Compaction and watch through one member: another member may not have applied the compaction yet.
  const one = cluster.members[0]!.clientUrl;
  await etcdctl(one, ['compact', String(first + 1)]);
  const etcd = new Etcd3({ hosts: one });
  try {
    const canceled = new Promise<Error>((resolve) => {
      void etcd
        .watch()
        .key('h')
        .startRevision(String(first))
        .create()
        .then((w) => w.on('error', resolve));
    });
    const err = await canceled;
    assert.match(err.message, /compacted/);
  } finally {
    etcd.close();
  }
});
