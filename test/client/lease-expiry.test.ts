/**
 * A kept-alive lease that cannot be renewed is reported lost once the cluster let it expire:
 * the only member the client knows is frozen (SIGSTOP) past the lease's TTL while the others go
 * on; when it wakes, the client learns the lease is gone and emits 'lost', and the lease's key
 * is gone. Against a 3-member Conclave cluster and, where installed, etcd 3.4.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '../../src/client/index.ts';
import { etcdAvailable, startCluster, type Flavour, type ProcessCluster } from '../helpers/processes.ts';

function suite(flavour: Flavour): void {
  describe(`lease expiry against ${flavour}`, { skip: flavour === 'etcd' && !etcdAvailable() ? 'etcd not installed' : false }, () => {
    let cluster: ProcessCluster;

    before(async () => {
      cluster = await startCluster(flavour, 3);
    });

    after(async () => {
      for (const m of cluster?.members ?? []) m.child?.kill('SIGCONT');
      await cluster?.destroy();
    });

    test("a lease whose only member is frozen past its TTL is reported 'lost'", async () => {
      const urls = cluster.members.map((m) => m.clientUrl);
      const observer = new Client({ endpoints: urls });
      const status = await observer.status();
      const members = await observer.memberList();
      const follower = urls.findIndex((u) => !members.find((m) => m.id === status.leader)!.clientUrls.includes(u));
      const client = new Client({ endpoints: [urls[follower]!], limits: { pingIntervalMs: 500, pingTimeoutMs: 500, callTimeoutMs: 3_000 } });
      try {
        const lease = await client.lease(2);
        await client.put('exp/key', 'v', { lease: lease.id });
        let lostAt = 0;
        lease.on('lost', () => (lostAt = Date.now()));
        const child = cluster.members[follower]!.child!;
        child.kill('SIGSTOP');
        await sleep(4_000);
        assert.equal(await observer.getString('exp/key'), undefined, 'the cluster expired the lease');
        assert.equal(lostAt, 0, 'not declared lost while the client cannot tell');
        child.kill('SIGCONT');
        const error = await Promise.race([lease.lost, sleep(15_000, undefined, { ref: false }).then(() => undefined)]);
        assert.ok(error !== undefined, "'lost' after the member woke");
        assert.equal(lease.isLost, true);
        assert.ok(lostAt > 0);
      } finally {
        client.close();
        observer.close();
      }
    });
  });
}

suite('conclave');
suite('etcd');
