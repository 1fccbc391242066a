/**
 * The client's streams across member failures, on a 3-member Conclave cluster (and the same
 * checks on a real etcd 3.4 cluster where installed): a watcher resumes on another member with
 * no event lost or repeated; a kept-alive lease outlives the member its keep-alives went to.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, IndeterminateError, type WatchEvent } from '../../src/client/index.ts';
import { etcdAvailable, restartStopped, startCluster, type Flavour, type ProcessCluster } from '../helpers/processes.ts';
import { history } from './history.ts';


const show = (e: WatchEvent): string => `${e.type} ${e.kv.key} ${e.kv.value} @${e.kv.modRevision}`;

function suite(flavour: Flavour): void {
  describe(`client stream failover against ${flavour}`, { skip: flavour === 'etcd' && !etcdAvailable() ? 'etcd not installed' : false }, () => {
    let cluster: ProcessCluster;
    let urls: string[];

    before(async () => {
      cluster = await startCluster(flavour, 3);
      urls = cluster.members.map((m) => m.clientUrl);
    });

    after(async () => {
      await cluster?.destroy();
    });

    test('a watcher resumes on another member when its member is killed, twice: no event lost or repeated', async () => {
      const watchClient = new Client({ endpoints: urls });
      const writeClient = new Client({ endpoints: urls });
      try {
        const first = (await writeClient.put('fw/start', '')).header.revision;
        const watcher = watchClient.watch('fw/', { prefix: true, prevKv: true, startRevision: first });
        await watcher.created;
        const seen: WatchEvent[] = [];
        const consumer = (async () => {
          for await (const e of watcher) seen.push(e);
        })();
        let stop = false;
        let written = 0;
        const writer = (async () => {
          for (let n = 0; !stop; n++) {
            try {
              if (n % 7 === 6) await writeClient.delete(`fw/${n % 5}`);
              else await writeClient.put(`fw/${n % 5}`, String(n));
              written++;
            } catch (e) {
              if (!(e instanceof IndeterminateError)) throw e;
            }
          }
        })();
        const victims: string[] = [];
        for (let round = 0; round < 2; round++) {
          await sleep(800);
          const url = watcher.endpoint;
          assert.ok(url !== undefined, 'the watcher is streaming');
          victims.push(url);
          await cluster.kill(urls.indexOf(url));
          await sleep(1_500);
          await restartStopped(cluster);
        }
        await sleep(500);
        stop = true;
        await writer;
        const last = (await writeClient.put('fw/end', '')).header.revision;
        while (watcher.revision < last) await sleep(50);
        watcher.close();
        await consumer;
        const expected = await history(writeClient, 'fw/', first, last, true);
        assert.ok(written > 50, `${written} writes`);
        assert.equal(seen.length, expected.length, `events seen ${seen.length}, in history ${expected.length}`);
        assert.deepEqual(seen.map(show), expected.map(show));
        assert.deepEqual(
          seen.map((e) => e.prevKv?.value.toString()),
          expected.map((e) => e.prevKv?.value.toString()),
        );
        assert.notEqual(victims[0], victims[1] ?? victims[0] + 'x', 'the second kill hit the member the watcher moved to');
      } finally {
        watchClient.close();
        writeClient.close();
        await restartStopped(cluster);
      }
    });

    test('a kept-alive lease outlives the member its keep-alives went to', async () => {
      const client = new Client({ endpoints: urls });
      try {
        const lease = await client.lease(2);
        await client.put('fl/key', 'v', { lease: lease.id });
        await sleep(300);
        const url = lease.endpoint;
        assert.ok(url !== undefined);
        await cluster.kill(urls.indexOf(url));
        await sleep(5_000);
        assert.equal(lease.isLost, false);
        assert.equal(await client.getString('fl/key'), 'v');
        assert.ok((await client.timeToLive(lease.id)).ttl > 0);
        assert.notEqual(lease.endpoint, url);
        await lease.revoke();
      } finally {
        client.close();
        await restartStopped(cluster);
      }
    });
  });
}

suite('conclave');
suite('etcd');
