/**
 * Unary calls across member failures, on a 3-member Conclave cluster (and the same checks on a
 * real etcd 3.4 cluster where installed): calls continue on the other members when the leader
 * is killed; a put is applied at most once — acknowledged exactly once, or reported as
 * IndeterminateError — never re-sent by a retry; a put that surely never left (dead endpoint)
 * is sent on to a live one.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, IndeterminateError, NoEndpointAvailableError } from '../../src/client/index.ts';
import { etcdAvailable, restartStopped, startCluster, type Flavour, type ProcessCluster } from '../helpers/processes.ts';
import { history } from './history.ts';
import { freePort } from '../helpers/ports.ts';


function suite(flavour: Flavour): void {
  describe(`client failover against ${flavour}`, { skip: flavour === 'etcd' && !etcdAvailable() ? 'etcd not installed' : false }, () => {
    let cluster: ProcessCluster;
    let urls: string[];

    before(async () => {
      cluster = await startCluster(flavour, 3);
      urls = cluster.members.map((m) => m.clientUrl);
    });

    after(async () => {
      await cluster?.destroy();
    });

    async function leaderIndex(client: Client): Promise<number> {
      const status = await client.status();
      const members = await client.memberList();
      const leaderUrls = members.find((m) => m.id === status.leader)?.clientUrls ?? [];
      const i = urls.findIndex((u) => leaderUrls.includes(u));
      assert.ok(i >= 0, `leader ${status.leader} among ${JSON.stringify(members)}`);
      return i;
    }

    test('puts while the leader is killed: each applied at most once, acknowledged or indeterminate; reads never fail', async () => {
      const client = new Client({ endpoints: urls });
      try {
        const victim = await leaderIndex(client);
        const acked: string[] = [];
        const indeterminate: string[] = [];
        let readsAfterKill = 0;
        let killedAt = 0;
        let stop = false;
        const writer = async (w: number): Promise<void> => {
          for (let n = 0; !stop; n++) {
            const value = `${w}-${n}`;
            try {
              await client.put('fo/key', value);
              acked.push(value);
            } catch (e) {
              if (!(e instanceof IndeterminateError)) throw e;
              indeterminate.push(value);
            }
          }
        };
        let slowestRead = 0;
        const reader = async (): Promise<void> => {
          while (!stop) {
            const t = Date.now();
            await client.get('fo/key');
            if (killedAt > 0) readsAfterKill++;
            slowestRead = Math.max(slowestRead, Date.now() - t);
          }
        };
        const first = (await client.put('fo/key', 'start')).header.revision;
        const loops = [...Array.from({ length: 6 }, (_, w) => writer(w)), reader()];
        await sleep(1_000);
        const ackedBeforeKill = acked.length;
        killedAt = Date.now();
        await cluster.kill(victim);
        // Until puts and reads flow again (a put forwarded to the dead leader waits out the
        // server's request timeout, 6 s in etcd and Conclave, and ends indeterminate).
        for (const end = Date.now() + 15_000; Date.now() < end && (acked.length - ackedBeforeKill < 50 || readsAfterKill < 50); ) await sleep(100);
        stop = true;
        const window = Date.now() - killedAt;
        await Promise.all(loops);
        const ackedAfterKill = acked.length - ackedBeforeKill;
        assert.ok(ackedAfterKill > 0, 'puts continue on the other members');
        assert.ok(readsAfterKill > 0, 'reads continue on the other members');

        const last = (await client.get('fo/key')).kvs[0]!.modRevision;
        const applied = (await history(client, 'fo/key', first + 1, last)).map((e) => e.kv.value.toString());
        const counts = new Map<string, number>();
        for (const v of applied) counts.set(v, (counts.get(v) ?? 0) + 1);
        const twice = [...counts].filter(([, c]) => c > 1);
        assert.deepEqual(twice, [], 'no put applied twice');
        for (const v of acked) assert.equal(counts.get(v), 1, `acknowledged put ${v} applied once`);
        const unknown = new Set(indeterminate);
        for (const v of applied) assert.ok(acked.includes(v) || unknown.has(v), `applied ${v} was acknowledged or reported indeterminate`);
        const appliedIndeterminate = indeterminate.filter((v) => counts.has(v)).length;
        console.log(`${flavour}: ${acked.length} acked (${ackedAfterKill} after the kill), ${indeterminate.length} indeterminate (${appliedIndeterminate} of them applied), ${readsAfterKill} reads in the ${window} ms after the kill, slowest read ${slowestRead} ms`);
      } finally {
        client.close();
        await restartStopped(cluster);
      }
    });

    test('a put to a dead endpoint is sent on to a live one (it surely never left), once', async () => {
      const dead = `http://127.0.0.1:${await freePort()}`;
      const client = new Client({ endpoints: [dead, urls[0]!] });
      try {
        const revisions: number[] = [];
        for (let i = 0; i < 10; i++) revisions.push((await client.put('fo/dead', String(i))).header.revision);
        const applied = await history(client, 'fo/dead', revisions[0]!, revisions.at(-1)!);
        assert.deepEqual(applied.map((e) => e.kv.value.toString()), ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
      } finally {
        client.close();
      }
      const nowhere = new Client({ endpoints: [dead], limits: { callTimeoutMs: 500 } });
      try {
        await assert.rejects(nowhere.put('fo/x', 'y'), NoEndpointAvailableError);
        await assert.rejects(nowhere.get('fo/x'), NoEndpointAvailableError);
      } finally {
        nowhere.close();
      }
    });

  });
}

suite('conclave');
suite('etcd');
