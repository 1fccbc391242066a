/**
 * The recipes under concurrency, each contender with its own client and session lease, against
 * a 3-member Conclave cluster and, where installed, a real etcd 3.4: the lock is never held by
 * two (fencing tokens strictly increase, holds do not overlap in revisions, an unguarded
 * read-modify-write counter loses no increment); one leader per election term; barriers release
 * everyone and no one early; queues keep FIFO and priority order; STM transfers keep the total.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  Barrier,
  Client,
  DoubleBarrier,
  Election,
  ElectionNotLeaderError,
  Mutex,
  PriorityQueue,
  Queue,
  stm,
  TooManyClientsError,
  type Lease,
} from '../../src/client/index.ts';
import { spawn } from 'node:child_process';
import { ETCDCTL_BIN, etcdAvailable, etcdctl, startCluster, type Flavour, type ProcessCluster } from '../helpers/processes.ts';

/** Runs a long-lived etcdctl command until its output contains `text` (or 10 s pass); returns the output. */
async function etcdctlUntil(args: string[], text: string, env: NodeJS.ProcessEnv): Promise<string> {
  const child = spawn(ETCDCTL_BIN, args, { env });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise((r) => child.once('exit', r));
  for (const end = Date.now() + 10_000; !out.includes(text) && Date.now() < end; ) await sleep(50);
  child.kill('SIGKILL');
  await exited;
  return out;
}

function suite(flavour: Flavour, size: number): void {
  describe(`client recipes against ${flavour}`, { skip: flavour === 'etcd' && !etcdAvailable() ? 'etcd not installed' : false }, () => {
    let cluster: ProcessCluster;
    let urls: string[];
    const open: { client: Client; lease?: Lease }[] = [];

    /** A client of its own and a session lease, as a separate process would have. */
    async function contender(ttl = 10): Promise<{ client: Client; lease: Lease }> {
      const client = new Client({ endpoints: urls });
      const lease = await client.lease(ttl);
      open.push({ client, lease });
      return { client, lease };
    }

    function plainClient(): Client {
      const client = new Client({ endpoints: urls });
      open.push({ client });
      return client;
    }

    before(async () => {
      cluster = await startCluster(flavour, size);
      urls = cluster.members.map((m) => m.clientUrl);
    });

    after(async () => {
      for (const { client, lease } of open) {
        lease?.close();
        client.close();
      }
      await cluster?.destroy();
    });

    test('lock: 5 contenders × 4 holds; tokens strictly increase, holds never overlap, no increment lost', async () => {
      const holds: { token: number; start: number; end: number; who: number }[] = [];
      const counterClient = plainClient();
      await counterClient.put('lock-counter', '0');
      let holding = 0;
      const worker = async (who: number): Promise<void> => {
        const { client, lease } = await contender();
        const mutex = new Mutex(client, lease, 'locks/one');
        for (let i = 0; i < 4; i++) {
          const token = await mutex.lock();
          holding++;
          assert.equal(holding, 1, 'only one holder in this process at a time');
          const start = mutex.header!.revision;
          // An unguarded read-modify-write: two holders at once would lose an increment.
          const n = Number(await client.getString('lock-counter'));
          await sleep(Math.random() * 10);
          const fenced = await client.txn().if(mutex.isOwner()).then().commit();
          assert.equal(fenced.succeeded, true, 'the fencing comparison holds while locked');
          await client.put('lock-counter', String(n + 1));
          holding--;
          const end = (await mutex.unlock())!.revision;
          holds.push({ token, start, end, who });
        }
      };
      await Promise.all(Array.from({ length: 5 }, (_, w) => worker(w)));
      assert.equal(await counterClient.getString('lock-counter'), '20');
      holds.sort((a, b) => a.token - b.token);
      for (let i = 0; i < holds.length; i++) {
        const h = holds[i]!;
        assert.ok(h.token <= h.start && h.start < h.end, `hold ${JSON.stringify(h)}`);
        if (i > 0) {
          const prev = holds[i - 1]!;
          assert.ok(prev.token < h.token, 'tokens strictly increase');
          assert.ok(prev.end <= h.start, `hold ${JSON.stringify(h)} starts after ${JSON.stringify(prev)} ended`);
        }
      }
      const keysLeft = await counterClient.get('locks/one/', { prefix: true });
      assert.equal(keysLeft.count, 0);
    });

    test('lock: tryLock fails while held; a holder whose session expires loses the lock to the next', async () => {
      const a = await contender(2);
      const b = await contender();
      const ma = new Mutex(a.client, a.lease, 'locks/two');
      const mb = new Mutex(b.client, b.lease, 'locks/two');
      const ta = await ma.lock();
      assert.equal(await mb.tryLock(), undefined);
      const waiting = mb.lock();
      // A dies: its lease is no longer renewed and expires; B takes over.
      a.lease.close();
      const tb = await waiting;
      assert.ok(tb > ta);
      assert.equal((await a.client.txn().if(ma.isOwner()).then().commit()).succeeded, false, 'the expired holder is fenced off');
      await mb.unlock();
    });

    test('lock interoperates with etcdctl lock on the same name', async () => {
      const { client, lease } = await contender();
      const mutex = new Mutex(client, lease, 'locks/ctl');
      await mutex.lock();
      let doneAt = 0;
      const ctl = etcdctl(cluster.endpoints, ['lock', 'locks/ctl', 'echo', 'got-it']).then((r) => {
        doneAt = Date.now();
        return r;
      });
      await sleep(700);
      assert.equal(doneAt, 0, 'etcdctl waits while we hold the lock');
      await mutex.unlock();
      const r = await ctl;
      assert.equal(r.stdout.trim(), 'got-it', r.stderr);
      // And the other way round: we wait while etcdctl holds it.
      const held = etcdctl(cluster.endpoints, ['lock', 'locks/ctl', 'sleep', '1']);
      await sleep(400);
      const before = Date.now();
      await mutex.lock();
      const waited = Date.now() - before;
      await mutex.unlock();
      assert.equal((await held).code, 0);
      assert.ok(waited >= 300, `waited ${waited} ms for etcdctl's hold`);
    });

    test('election interoperates with etcdctl elect: each sees the other lead, in turn', async () => {
      const { client, lease } = await contender();
      const env = { ...process.env, ETCDCTL_API: '3', ETCDCTL_ENDPOINTS: cluster.endpoints };
      const ctl = spawn(ETCDCTL_BIN, ['elect', 'elect/ctl', 'from-etcdctl'], { env });
      let out = '';
      ctl.stdout.on('data', (b: Buffer) => (out += b.toString()));
      const exited = new Promise((r) => ctl.once('exit', r));
      try {
        const election = new Election(client, lease, 'elect/ctl');
        for (const end = Date.now() + 10_000; !out.includes('from-etcdctl') && Date.now() < end; ) await sleep(50);
        assert.equal((await election.leader()).value.toString(), 'from-etcdctl');
        const campaign = election.campaign('from-client');
        await sleep(300);
        assert.equal((await election.leader()).value.toString(), 'from-etcdctl', 'we wait while etcdctl leads');
        ctl.kill('SIGINT'); // etcdctl resigns (revokes its session) on interrupt
        await campaign;
        assert.equal((await election.leader()).value.toString(), 'from-client');
        // etcdctl observes us as the leader.
        const observer = await etcdctlUntil(['elect', '-l', 'elect/ctl'], 'from-client', env);
        assert.match(observer, /from-client/);
        await election.resign();
      } finally {
        ctl.kill('SIGKILL');
        await exited;
      }
    });

    test('election: one leader per term, proclaim and observe, a resigned or expired leader cannot act', async () => {
      const observerClient = plainClient();
      const observed: string[] = [];
      const stopObserving = new AbortController();
      const observing = (async () => {
        try {
          for await (const kv of new Election(observerClient, (await contender()).lease, 'elect/one').observe({ signal: stopObserving.signal })) observed.push(kv.value.toString());
        } catch (e) {
          if (!stopObserving.signal.aborted) throw e;
        }
      })();
      const terms: { who: number; rev: number; start: number; end: number }[] = [];
      let leaders = 0;
      const candidate = async (who: number): Promise<void> => {
        const { client, lease } = await contender();
        const election = new Election(client, lease, 'elect/one');
        await election.campaign(`c${who}`);
        leaders++;
        assert.equal(leaders, 1, 'one leader at a time');
        const start = election.header!.revision;
        assert.equal((await election.leader()).value.toString(), `c${who}`);
        await election.proclaim(`c${who}-again`);
        assert.equal((await client.txn().if(election.isLeader()).then().commit()).succeeded, true);
        await sleep(50);
        leaders--;
        const rev = election.revision;
        const end = (await election.resign())!.revision;
        terms.push({ who, rev, start, end });
        await assert.rejects(election.proclaim('late'), ElectionNotLeaderError);
      };
      await Promise.all(Array.from({ length: 4 }, (_, w) => candidate(w)));
      terms.sort((a, b) => a.rev - b.rev);
      for (let i = 1; i < terms.length; i++) assert.ok(terms[i - 1]!.end <= terms[i]!.start, `term ${JSON.stringify(terms[i])} after ${JSON.stringify(terms[i - 1])}`);
      const expected = terms.flatMap((t) => [`c${t.who}`, `c${t.who}-again`]);
      const last = expected[expected.length - 1];
      for (const deadline = Date.now() + 5_000; observed[observed.length - 1] !== last && Date.now() < deadline; ) await sleep(20);
      stopObserving.abort();
      await observing;
      // The observer starts while the first leader may already have proclaimed: then it begins with that proclamation.
      assert.deepEqual(observed, observed[0] === expected[1] ? expected.slice(1) : expected, 'the observer saw every term, in order');

      // A leader whose session ends is replaced, and its proclaim fails.
      const a = await contender(2);
      const b = await contender();
      const ea = new Election(a.client, a.lease, 'elect/two');
      const eb = new Election(b.client, b.lease, 'elect/two');
      await ea.campaign('a');
      const bWins = eb.campaign('b');
      a.lease.close();
      await bWins;
      assert.equal((await eb.leader()).value.toString(), 'b');
      await assert.rejects(ea.proclaim('a2'), ElectionNotLeaderError);
      await eb.resign();
    });

    test('barrier: waiters block until release, then all proceed', async () => {
      const holder = new Barrier(plainClient(), 'barrier/one');
      await holder.hold();
      let released = false;
      let passed = 0;
      const waiters = Array.from({ length: 4 }, async () => {
        await new Barrier(plainClient(), 'barrier/one').wait();
        assert.equal(released, true, 'no waiter passes before the release');
        passed++;
      });
      await sleep(500);
      assert.equal(passed, 0);
      released = true;
      await holder.release();
      await Promise.all(waiters);
      assert.equal(passed, 4);
      await new Barrier(plainClient(), 'barrier/one').wait();
    });

    test('double barrier: no one passes enter before all 4 entered, nor leave before all left; a 5th is refused', async () => {
      const count = 4;
      let entering = 0;
      let leaving = 0;
      const participants = await Promise.all(Array.from({ length: count }, () => contender()));
      const runs = participants.map(async ({ client, lease }, i) => {
        const barrier = new DoubleBarrier(client, lease, 'dbarrier/one', count);
        await sleep(i * 150);
        entering++;
        await barrier.enter();
        assert.equal(entering, count, 'enter returns only once everyone entered');
        if (i === 0) {
          const extra = await contender();
          await assert.rejects(new DoubleBarrier(extra.client, extra.lease, 'dbarrier/one', count).enter(), TooManyClientsError);
        }
        await sleep(i * 150);
        leaving++;
        await barrier.leave();
        assert.equal(leaving, count, 'leave returns only once everyone left');
      });
      await Promise.all(runs);
      assert.equal((await plainClient().get('dbarrier/one/', { prefix: true })).count, 0);
    });

    test('queue: consumers waiting on an empty queue, a producer; FIFO claims, each item once', async () => {
      const watcherClient = plainClient();
      const claims = watcherClient.watch('queue/one/', { prefix: true, prevKv: true, filters: ['noPut'] });
      await claims.created;
      const got: string[] = [];
      const consumers = Array.from({ length: 3 }, async () => {
        const q = new Queue(plainClient(), 'queue/one');
        while (got.length < 20) {
          const stop = new AbortController();
          const timer = setTimeout(() => stop.abort(), 1_000);
          try {
            got.push((await q.dequeue({ signal: stop.signal })).toString());
          } catch (e) {
            if (!stop.signal.aborted) throw e;
          } finally {
            clearTimeout(timer);
          }
        }
      });
      await sleep(300);
      const producer = new Queue(plainClient(), 'queue/one');
      for (let i = 0; i < 20; i++) await producer.enqueue(String(i));
      await Promise.all(consumers);
      assert.deepEqual([...got].sort((a, b) => Number(a) - Number(b)), Array.from({ length: 20 }, (_, i) => String(i)), 'each item dequeued once');
      const order: string[] = [];
      for await (const e of claims) {
        order.push(e.prevKv!.value.toString());
        if (order.length === 20) break;
      }
      assert.deepEqual(order, Array.from({ length: 20 }, (_, i) => String(i)), 'claimed in the order enqueued');
    });

    test('priority queue: lowest priority number first, FIFO within a priority, with concurrent producers', async () => {
      const items = [3, 1, 2, 1, 0, 3, 2, 0, 1, 3].map((p, i) => ({ p, label: `${p}:${i}` }));
      const producers = [0, 1].map(async (which) => {
        const pq = new PriorityQueue(plainClient(), 'pq/one');
        for (const it of items.filter((_, i) => i % 2 === which)) await pq.enqueue(it.label, it.p);
      });
      await Promise.all(producers);
      const consumer = new PriorityQueue(plainClient(), 'pq/one');
      const out: string[] = [];
      for (let i = 0; i < items.length; i++) out.push((await consumer.dequeue()).toString());
      const priorities = out.map((l) => Number(l.split(':')[0]));
      assert.deepEqual(priorities, [...priorities].sort((a, b) => a - b), `priority order: ${out.join(' ')}`);
      // Within a priority, each producer's items keep their order.
      for (const which of [0, 1]) {
        const mine = out.filter((l) => Number(l.split(':')[1]) % 2 === which);
        for (let p = 0; p <= 3; p++) {
          const idx = mine.filter((l) => l.startsWith(`${p}:`)).map((l) => Number(l.split(':')[1]));
          assert.deepEqual(idx, [...idx].sort((a, b) => a - b), `FIFO within priority ${p}`);
        }
      }
    });

    test('STM: concurrent transfers between 5 accounts keep the total, with conflicts retried', async () => {
      const setup = plainClient();
      const accounts = Array.from({ length: 5 }, (_, i) => `acct/${i}`);
      for (const a of accounts) await setup.put(a, '100');
      let applies = 0;
      let commits = 0;
      const worker = async (seed: number): Promise<void> => {
        const client = plainClient();
        for (let i = 0; i < 15; i++) {
          const from = accounts[(seed + i) % 5]!;
          const to = accounts[(seed * 3 + i * 7 + 1) % 5]!;
          if (from === to) continue;
          await stm(client, async (tx) => {
            applies++;
            const a = Number(await tx.get(from));
            const b = Number(await tx.get(to));
            const amount = Math.min(a, 1 + ((seed + i) % 30));
            tx.put(from, String(a - amount));
            tx.put(to, String(b + amount));
          });
          commits++;
        }
      };
      await Promise.all(Array.from({ length: 4 }, (_, s) => worker(s)));
      const balances = await Promise.all(accounts.map(async (a) => Number(await setup.getString(a))));
      assert.equal(balances.reduce((x, y) => x + y, 0), 500, `balances ${balances}`);
      assert.ok(balances.every((b) => b >= 0));
      assert.ok(applies >= commits);
      console.log(`${flavour} STM: ${commits} commits, ${applies - commits} conflicting tries retried`);
    });
  });
}

suite('conclave', 3);
suite('etcd', 1);
