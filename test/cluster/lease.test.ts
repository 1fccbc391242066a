/**
 * The Lease service end to end on real processes: etcdctl's lease commands against Conclave and
 * a real etcd side by side (ids and remaining TTLs normalized), keys deleted on revoke and on
 * expiry, keep-alive through a follower and across a leader kill, the JSON gateway routes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import { etcdAvailable, etcdctl, startCluster, type ProcessCluster } from '../helpers/processes.ts';

/** Election timeout of the test clusters (the default flags): the slack an expiry may take. */
const ELECTION_TIMEOUT_MS = 1000;

let cluster: ProcessCluster;
let etcd: ProcessCluster | undefined;

before(async () => {
  [cluster, etcd] = await Promise.all([startCluster('conclave', 3), etcdAvailable() ? startCluster('etcd', 3) : Promise.resolve(undefined)]);
});

after(async () => {
  await Promise.all([cluster?.destroy(), etcd?.destroy()]);
});

async function ctl(c: ProcessCluster, args: string[], member?: number): Promise<string> {
  const r = await etcdctl(member === undefined ? c.endpoints : c.members[member]!.clientUrl, args);
  // Drop the client's retry warnings (timestamps, endpoints): the error line is what counts.
  const stderr = r.stderr.split('\n').filter((l) => !l.startsWith('{"level":"warn"')).join('\n');
  return r.code === 0 ? r.stdout : `exit ${r.code}: ${stderr.trim()}`;
}

function leaseHex(out: string): string {
  const m = /^lease ([0-9a-f]+) granted/.exec(out);
  assert.ok(m, `no lease id in ${JSON.stringify(out)}`);
  return m[1]!;
}

async function until(what: string, timeoutMs: number, fn: () => Promise<boolean>): Promise<number> {
  const start = Date.now();
  while (!(await fn())) {
    if (Date.now() - start > timeoutMs) assert.fail(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return Date.now() - start;
}

/** The etcdctl lease session of the comparison, with the id and remaining TTL normalized. */
async function leaseSession(c: ProcessCluster): Promise<string[]> {
  const out: string[] = [];
  // Grant through one member and use the lease through the others.
  const granted = await ctl(c, ['lease', 'grant', '60'], 0);
  const id = leaseHex(granted);
  out.push(granted);
  out.push(await ctl(c, ['put', '--lease', id, 'lk/a', '1'], 1));
  out.push(await ctl(c, ['put', '--lease', id, 'lk/b', '2'], 2));
  out.push(await ctl(c, ['lease', 'timetolive', '--keys', id], 1));
  out.push(await ctl(c, ['lease', 'timetolive', '-w', 'json', id], 2));
  out.push(await ctl(c, ['lease', 'list'], 0));
  out.push(await ctl(c, ['lease', 'keep-alive', '--once', id], 2));
  out.push(await ctl(c, ['lease', 'revoke', id], 1));
  out.push(await ctl(c, ['get', '--prefix', 'lk/'], 0));
  out.push(await ctl(c, ['lease', 'timetolive', id], 0));
  out.push(await ctl(c, ['lease', 'revoke', id], 0));
  out.push(await ctl(c, ['put', '--lease', '1234abcd', 'lk/c', '3'], 0));
  out.push(await ctl(c, ['lease', 'grant', '--help'], 0).then(() => 'help ok'));
  const normalized = out.map((s) =>
    s
      .replaceAll(id, '<id>')
      .replaceAll(String(BigInt(`0x${id}`)), '<id>')
      .replace(/remaining\(\d+s\)/g, 'remaining(<n>s)')
      .replace(/"(cluster_id|member_id|revision|raft_term)":\d+/g, '"$1":<n>')
      .replace(/"ttl":\d+/g, '"ttl":<n>')
      // etcd lists a lease's keys in Go map order (it varies run to run); Conclave in key order.
      .replace(/attached keys\(\[([^\]]*)\]\)/g, (_, keys: string) => `attached keys([${keys.split(' ').sort().join(' ')}])`),
  );
  return normalized;
}

test('etcdctl lease grant / put --lease / timetolive / list / keep-alive / revoke: same as etcd', async () => {
  const ours = await leaseSession(cluster);
  assert.match(ours[0]!, /^lease <id> granted with TTL\(60s\)/);
  assert.match(ours[3]!, /remaining\(<n>s\), attached keys\(\[lk\/a lk\/b\]\)/);
  assert.equal(ours[8], '', 'revoke deletes the attached keys');
  assert.match(ours[11]!, /etcdserver: requested lease not found/);
  if (etcd !== undefined) assert.deepEqual(ours, await leaseSession(etcd));
});

test('keys of an expired lease are deleted within TTL + election timeout', async () => {
  const ttlSeconds = 3;
  // Before the grant: the leader's countdown starts when it applies the grant, after this.
  const start = Date.now();
  const id = leaseHex(await ctl(cluster, ['lease', 'grant', String(ttlSeconds)], 1));
  for (const k of ['exp/a', 'exp/b']) assert.equal((await ctl(cluster, ['put', '--lease', id, k, 'v'], 2)).trim(), 'OK');
  const count = async (): Promise<number> => (await ctl(cluster, ['get', '--prefix', '--keys-only', 'exp/'], 0)).split('\n').filter((l) => l !== '').length;
  assert.equal(await count(), 2);
  await until('keys deleted', ttlSeconds * 1000 + ELECTION_TIMEOUT_MS + 2000, async () => (await count()) === 0);
  const elapsed = Date.now() - start;
  assert.ok(elapsed >= ttlSeconds * 1000, `expired after ${elapsed} ms, before its TTL`);
  assert.match(await ctl(cluster, ['lease', 'timetolive', id], 2), /already expired/);
});

test('the JSON gateway serves the lease routes, with the /v3/kv/lease aliases', async () => {
  const url = cluster.members[1]!.clientUrl;
  const post = async (path: string, body: object): Promise<{ status: number; json: Record<string, unknown> }> => {
    const r = await fetch(`${url}${path}`, { method: 'POST', body: JSON.stringify(body) });
    return { status: r.status, json: (await r.json()) as Record<string, unknown> };
  };
  const g = await post('/v3/lease/grant', { TTL: 30, ID: 777 });
  assert.equal(g.status, 200);
  assert.equal(g.json.ID, '777');
  assert.equal(g.json.TTL, '30');
  const again = await post('/v3/lease/grant', { TTL: 30, ID: 777 });
  assert.equal(again.json.message, 'etcdserver: lease already exists');
  const ttl = await post('/v3/kv/lease/timetolive', { ID: 777 });
  assert.equal(ttl.json.grantedTTL, '30');
  assert.ok(Number(ttl.json.TTL) > 25 && Number(ttl.json.TTL) <= 30, `remaining ${String(ttl.json.TTL)}`);
  const list = await post('/v3/kv/lease/leases', {});
  assert.ok((list.json.leases as Array<{ ID: string }>).some((l) => l.ID === '777'));
  assert.equal((await post('/v3/kv/lease/revoke', { ID: 777 })).status, 200);
  const gone = await post('/v3/lease/revoke', { ID: 777 });
  assert.equal(gone.json.message, 'etcdserver: requested lease not found');
  assert.equal((await post('/v3/lease/timetolive', { ID: 777 })).json.TTL, '-1');
});

async function leaderIndex(c: ProcessCluster): Promise<number> {
  const r = await etcdctl(c.endpoints, ['endpoint', 'status', '-w', 'json']);
  const statuses = JSON.parse(r.stdout) as Array<{ Endpoint: string; Status: { header: { member_id: number }; leader: number } }>;
  const leader = statuses.find((s) => s.Status.header.member_id === s.Status.leader);
  assert.ok(leader, 'no leader');
  return c.members.findIndex((m) => m.clientUrl === leader.Endpoint);
}

test('etcd3 keep-alive keeps a lease (TTL 5 s) alive across a leader kill', async () => {
  const leader = await leaderIndex(cluster);
  const others = cluster.members.filter((_, i) => i !== leader).map((m) => m.clientUrl);
  // The client talks to followers only, so its keep-alives are forwarded to the leader.
  const client = new Etcd3({ hosts: others });
  const reader = new Etcd3({ hosts: others });
  try {
    const lease = client.lease(5);
    let lost = false;
    lease.on('lost', () => (lost = true));
    await lease.put('ka/key').value('alive');
    await cluster.kill(leader);
    // Several TTLs, across the election.
    await new Promise((r) => setTimeout(r, 12_000));
    assert.equal(lost, false, 'lease lost');
    assert.equal(await reader.get('ka/key').string(), 'alive');
    const ttl = await etcdctl(others.join(','), ['lease', 'timetolive', BigInt(await lease.grant()).toString(16)]);
    assert.match(ttl.stdout, /granted with TTL\(5s\), remaining\([1-5]s\)/);
    await lease.revoke();
    assert.equal(await reader.get('ka/key').string(), null);
  } finally {
    client.close();
    reader.close();
    await cluster.start(leader);
  }
});

test('a killed and restarted member rebuilds its leases: a later revoke deletes the keys there too', async () => {
  const id = leaseHex(await ctl(cluster, ['lease', 'grant', '120'], 0));
  for (const k of ['rs/a', 'rs/b']) assert.equal((await ctl(cluster, ['put', '--lease', id, k, 'v'], 1)).trim(), 'OK');
  await cluster.kill(2);
  await cluster.start(2);
  assert.match(await ctl(cluster, ['lease', 'list'], 2), new RegExp(`found 1 leases\\n${id}\\n`));
  assert.match(await ctl(cluster, ['lease', 'revoke', id], 0), /revoked/);
  const local = (i: number) => ctl(cluster, ['get', '--prefix', '--keys-only', '--consistency=s', 'rs/'], i);
  await until('revoke applied on every member', 5000, async () => (await Promise.all([0, 1, 2].map(local))).every((o) => o === ''));
  const hashes = JSON.parse((await etcdctl(cluster.endpoints, ['endpoint', 'hashkv', '-w', 'json'])).stdout) as Array<{ HashKV: { hash: number } }>;
  assert.equal(new Set(hashes.map((h) => h.HashKV.hash)).size, 1, 'members disagree on the key space');
});
