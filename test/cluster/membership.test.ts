/**
 * Changing a running cluster's membership with etcdctl 3.4, as operators do: add a member and
 * start it with --initial-cluster-state existing, add a learner and promote it once it caught
 * up, update a member's peer URLs, remove a member (the leader too), and the refusals on the way.
 * The same session runs against a 3-member Conclave cluster and (when installed) a real etcd 3.4
 * cluster, and both must print the expected transcript below once ids and URLs are named.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { etcdAvailable, etcdctl, startCluster, waitHealthy, type ProcessCluster } from '../helpers/processes.ts';
import { freePorts } from '../helpers/ports.ts';

const SESSION_LIMITS = {
  /** The whole session against one system. */
  sessionMs: 120_000,
  /** How long a learner may take to be promotable (etcd: caught up with the leader). */
  promoteMs: 20_000,
  /** How long a cluster may take to count as healthy for a membership change. */
  healthyMs: 15_000,
  /** How long a removed member may take to exit. */
  exitMs: 10_000,
} as const;

/** Names what differs between two clusters: member ids, the cluster id, URLs. */
class Names {
  private readonly map = new Map<string, string>();

  constructor(cluster: ProcessCluster) {
    for (const m of cluster.members) this.learnMember(cluster, m.name);
  }

  learnMember(cluster: ProcessCluster, name: string): void {
    const m = cluster.members.find((x) => x.name === name)!;
    this.map.set(m.peerUrl, `<${name}-peer>`);
    this.map.set(m.clientUrl, `<${name}-client>`);
  }

  /** A URL, or a member or cluster id in hex (etcdctl prints ids without leading zeros). */
  set(raw: string, name: string): void {
    this.map.set(/^[0-9a-f]+$/.test(raw) ? raw.replace(/^0+/, '') : raw, name);
  }

  apply(text: string): string {
    return text
      .replace(/https?:\/\/127\.0\.0\.1:\d+/g, (u) => this.map.get(u) ?? u)
      .replace(/\b[0-9a-f]{8,16}\b/g, (t) => this.map.get(t.replace(/^0+/, '')) ?? t)
      // etcdctl prints ids with %16x: a shorter id is padded with spaces.
      .replace(/(Member|cluster) +</g, '$1 <');
  }
}

interface MemberLine {
  readonly id: string;
  readonly status: string;
  readonly name: string;
  readonly peers: string;
}

async function memberList(endpoint: string): Promise<MemberLine[]> {
  const r = await etcdctl(endpoint, ['member', 'list']);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout
    .trim()
    .split('\n')
    .map((line) => {
      const [id, status, name, peers] = line.split(', ');
      return { id: id!, status: status!, name: name!, peers: peers! };
    });
}

/** The member list with names for ids, one line per member in name order (ids sort differently). */
async function namedList(endpoint: string, names: Names): Promise<string> {
  const r = await etcdctl(endpoint, ['member', 'list']);
  assert.equal(r.code, 0, r.stderr);
  return names.apply(r.stdout).trim().split('\n').sort().join('\n');
}

/** etcdctl's outcome as one line: stdout (ids named, the cluster list sorted), or the error. */
function outcome(r: { code: number; stdout: string; stderr: string }, names: Names): string {
  if (r.code !== 0) return `exit ${r.code}: ${r.stderr.trim().split('\n').at(-1)}`;
  return names
    .apply(r.stdout)
    .trim()
    .replace(/ETCD_INITIAL_CLUSTER="([^"]*)"/, (_, list: string) => `ETCD_INITIAL_CLUSTER="${list.split(',').sort().join(',')}"`);
}

async function until<T>(what: string, timeoutMs: number, attempt: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await attempt();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** A membership change, retried while etcd calls the cluster unhealthy (members connected < 5 s). */
function change(endpoint: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return until(`etcdctl ${args.join(' ')}`, SESSION_LIMITS.healthyMs, async () => {
    const r = await etcdctl(endpoint, args);
    return r.stderr.includes('unhealthy cluster') ? undefined : r;
  });
}

/** Runs the session against one cluster and returns its transcript. */
async function session(cluster: ProcessCluster): Promise<string[]> {
  const out: string[] = [];
  const names = new Names(cluster);
  const before = await memberList(cluster.endpoints);
  for (const m of before) names.set(m.id, `<${m.name}>`);
  const clusterId = /"cluster_id":(\d+)/.exec((await etcdctl(cluster.endpoints, ['member', 'list', '-w', 'json'])).stdout)?.[1];
  assert.ok(clusterId !== undefined);
  names.set(BigInt(clusterId).toString(16), '<cluster>');
  const ep0 = cluster.members[0]!.clientUrl;

  // A voter: added (unstarted), then started with --initial-cluster-state existing.
  const j = await cluster.prepareJoin([0, 1, 2]);
  names.learnMember(cluster, 'm3');
  const add = await change(ep0, ['member', 'add', 'm3', `--peer-urls=${cluster.members[j]!.peerUrl}`]);
  const m3 = /Member\s+([0-9a-f]+) added/.exec(add.stdout)?.[1];
  assert.ok(m3 !== undefined, add.stdout + add.stderr);
  names.set(m3, '<m3>');
  out.push(outcome(add, names));
  out.push(await namedList(ep0, names));
  await cluster.start(j);
  await waitHealthy(cluster);
  const ep3 = cluster.members[j]!.clientUrl;
  out.push(outcome(await etcdctl(ep3, ['put', 'joined', 'yes']), names));
  out.push(outcome(await etcdctl(ep0, ['get', 'joined']), names));
  out.push(await namedList(ep3, names));
  out.push(outcome(await change(ep3, ['member', 'add', 'again', `--peer-urls=${cluster.members[j]!.peerUrl}`]), names));

  // A learner: only one at a time; a voter cannot be promoted; the learner can once caught up.
  const k = await cluster.prepareJoin([0, 1, 2, 3]);
  names.learnMember(cluster, 'm4');
  const addLearner = await change(ep0, ['member', 'add', 'm4', `--peer-urls=${cluster.members[k]!.peerUrl}`, '--learner']);
  const m4 = /Member\s+([0-9a-f]+) added/.exec(addLearner.stdout)?.[1];
  assert.ok(m4 !== undefined, addLearner.stdout + addLearner.stderr);
  names.set(m4, '<m4>');
  out.push(outcome(addLearner, names));
  const [spare] = await freePorts(1);
  out.push(outcome(await change(ep0, ['member', 'add', 'm5', `--peer-urls=http://127.0.0.1:${spare}`, '--learner']), names));
  out.push(outcome(await change(ep0, ['member', 'promote', m3]), names));
  await cluster.start(k);
  // A learner serves serializable reads only.
  const ep4 = cluster.members[k]!.clientUrl;
  await until('the learner serves', SESSION_LIMITS.healthyMs, async () => ((await etcdctl(ep4, ['get', 'joined', '--consistency=s'])).code === 0 ? true : undefined));
  out.push(outcome(await etcdctl(ep4, ['get', 'joined', '--consistency=s']), names));
  out.push(outcome(await etcdctl(ep4, ['put', 'on', 'learner']), names));
  const promoted = await until('learner promoted', SESSION_LIMITS.promoteMs, async () => {
    const r = await etcdctl(ep0, ['member', 'promote', m4]);
    return r.code === 0 || !/in sync with leader|unhealthy cluster/.test(r.stderr) ? r : undefined;
  });
  out.push(outcome(promoted, names));
  // A member publishes its name and client URLs once it runs; until then it is "unstarted".
  await until('m4 published', SESSION_LIMITS.healthyMs, async () => ((await namedList(ep0, names)).includes('started, m4,') ? true : undefined));

  // Update: a second peer URL for m4 (its first keeps working).
  names.set(`http://127.0.0.1:${spare}`, '<spare>');
  out.push(outcome(await etcdctl(ep0, ['member', 'update', m4, `--peer-urls=${cluster.members[k]!.peerUrl},http://127.0.0.1:${spare}`]), names));
  out.push(outcome(await etcdctl(ep0, ['member', 'update', m4, `--peer-urls=${cluster.members[1]!.peerUrl}`]), names));

  // Remove m0 (perhaps the leader) through m1; unknown ids are refused.
  const m0 = before.find((m) => m.name === 'm0')!.id;
  const ep1 = cluster.members[1]!.clientUrl;
  out.push(outcome(await change(ep1, ['member', 'remove', m0]), names));
  // If m0 led, the others elect a new leader first.
  const put = await until('a write after the removal', SESSION_LIMITS.healthyMs, async () => {
    const r = await etcdctl(ep1, ['put', 'after', 'removal']);
    return r.code === 0 ? r : undefined;
  });
  out.push(outcome(await etcdctl(ep1, ['member', 'remove', m0]), names));
  out.push(await namedList(ep1, names));
  out.push(outcome(put, names));
  out.push(outcome(await etcdctl(cluster.members[k]!.clientUrl, ['get', 'after', '--consistency=s']), names));
  return out;
}

const EXPECTED = [
  [
    'Member <m3> added to cluster <cluster>',
    '',
    'ETCD_NAME="m3"',
    'ETCD_INITIAL_CLUSTER="m0=<m0-peer>,m1=<m1-peer>,m2=<m2-peer>,m3=<m3-peer>"',
    'ETCD_INITIAL_ADVERTISE_PEER_URLS="<m3-peer>"',
    'ETCD_INITIAL_CLUSTER_STATE="existing"',
  ].join('\n'),
  ['<m0>, started, m0, <m0-peer>, <m0-client>, false', '<m1>, started, m1, <m1-peer>, <m1-client>, false', '<m2>, started, m2, <m2-peer>, <m2-client>, false', '<m3>, unstarted, , <m3-peer>, , false'].join('\n'),
  'OK',
  'joined\nyes',
  ['<m0>, started, m0, <m0-peer>, <m0-client>, false', '<m1>, started, m1, <m1-peer>, <m1-client>, false', '<m2>, started, m2, <m2-peer>, <m2-client>, false', '<m3>, started, m3, <m3-peer>, <m3-client>, false'].join('\n'),
  'exit 1: Error: etcdserver: Peer URLs already exists',
  [
    'Member <m4> added to cluster <cluster>',
    '',
    'ETCD_NAME="m4"',
    'ETCD_INITIAL_CLUSTER="m0=<m0-peer>,m1=<m1-peer>,m2=<m2-peer>,m3=<m3-peer>,m4=<m4-peer>"',
    'ETCD_INITIAL_ADVERTISE_PEER_URLS="<m4-peer>"',
    'ETCD_INITIAL_CLUSTER_STATE="existing"',
  ].join('\n'),
  'exit 1: Error: etcdserver: too many learner members in cluster',
  'exit 1: Error: etcdserver: can only promote a learner member',
  'joined\nyes',
  'exit 1: Error: etcdserver: rpc not supported for learner',
  'Member <m4> promoted in cluster <cluster>',
  'Member <m4> updated in cluster <cluster>',
  'exit 1: Error: etcdserver: Peer URLs already exists',
  'Member <m0> removed from cluster <cluster>',
  'exit 1: Error: etcdserver: member not found',
  [
    '<m1>, started, m1, <m1-peer>, <m1-client>, false',
    '<m2>, started, m2, <m2-peer>, <m2-client>, false',
    '<m3>, started, m3, <m3-peer>, <m3-client>, false',
    '<m4>, started, m4, <m4-peer>,<spare>, <m4-client>, false',
  ].join('\n'),
  'OK',
  'after\nremoval',
];

for (const flavour of ['conclave', 'etcd'] as const) {
  describe(`membership changes with etcdctl against ${flavour}`, { skip: flavour === 'etcd' && !etcdAvailable() ? 'etcd 3.4 is not installed' : false, timeout: SESSION_LIMITS.sessionMs }, () => {
    let cluster: ProcessCluster;
    before(async () => {
      cluster = await startCluster(flavour, 3);
    });
    after(async () => {
      await cluster?.destroy();
    });

    test('add, join, learner, promote, update, remove: the expected transcript', async () => {
      let transcript: string[] = [];
      try {
        transcript = await session(cluster);
        assert.deepEqual(transcript, EXPECTED);
      } catch (e) {
        const logs = cluster.members.map((m) => `--- ${m.name}\n${m.output.slice(-3000)}`).join('\n');
        throw new Error(`${(e as Error).message}\ntranscript:\n${transcript.join('\n---\n')}\n${logs}`, { cause: e });
      }
      if (flavour === 'conclave') {
        // The removed member stops by itself.
        await until('removed member exits', SESSION_LIMITS.exitMs, async () => (cluster.members[0]!.child === null ? true : undefined)).catch((e: Error) => {
          throw new Error(`${e.message}\n${cluster.members[0]!.output.slice(-3000)}`);
        });
      }
    });
  });
}
