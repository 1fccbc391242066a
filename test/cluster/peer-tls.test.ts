/**
 * Peer TLS between `conclave serve` processes: three members on https:// peer URLs with peer
 * client-certificate auth replicate; a member whose peer certificate comes from another CA is
 * refused by the others and never receives the data (nor, like etcd, serves clients), and so is
 * one whose certificate's CN is not --peer-cert-allowed-cn; --auto-tls and --peer-auto-tls make a
 * working cluster on self-signed certificates.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { etcdAvailable, etcdctl, startCluster, type ProcessCluster } from '../helpers/processes.ts';
import { makeTestPki, type TestPki } from '../helpers/pki.ts';

let dir: string;
let pki: TestPki;
const clusters: ProcessCluster[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'conclave-peer-tls-'));
  pki = await makeTestPki(dir);
});

after(async () => {
  await Promise.all(clusters.map((c) => c.destroy()));
  rmSync(dir, { recursive: true, force: true });
});

const peerFlags = (): Record<string, string> => ({
  'peer-cert-file': pki.server.cert,
  'peer-key-file': pki.server.key,
  'peer-trusted-ca-file': pki.ca,
  'peer-client-cert-auth': 'true',
});

/** What a member holds under `key`, read from its own state (serializable). */
async function localValue(cluster: ProcessCluster, i: number, key: string, tls: string[] = []): Promise<string> {
  const r = await etcdctl(cluster.members[i]!.clientUrl, [...tls, 'get', key, '--consistency=s', '--print-value-only']);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

async function eventually(what: string, check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) if (await check()) return;
  assert.fail(what);
}

test('three members on https:// peer URLs with peer client-certificate auth replicate', { skip: !etcdAvailable() && 'needs etcdctl' }, async () => {
  const cluster = await startCluster('conclave', 3, { peerScheme: 'https', flags: peerFlags() });
  clusters.push(cluster);
  const put = await etcdctl(cluster.members[0]!.clientUrl, ['put', 'replicated', 'over-tls']);
  assert.equal(put.code, 0, put.stderr);
  for (const i of [0, 1, 2]) await eventually(`member ${i} has the value`, async () => (await localValue(cluster, i, 'replicated')) === 'over-tls');
  const members = await etcdctl(cluster.endpoints, ['member', 'list']);
  assert.equal((members.stdout.match(/https:\/\/127\.0\.0\.1:\d+/g) ?? []).length, 3, members.stdout);
  // Dials may be refused while the others start; no certificate is ever refused.
  for (const m of cluster.members) assert.doesNotMatch(m.output, /rejected connection|certificate|alert/i, m.output);
});

/**
 * A cluster whose m2 presents `outsider` as its peer certificate (the others their own): m0 and
 * m1 start without it, and a put through m0 reaches m1.
 */
async function clusterWithOutsider(flags: Record<string, string>, outsider: { cert: string; key: string }, key: string, value: string): Promise<ProcessCluster> {
  const cluster = await startCluster('conclave', 3, {
    peerScheme: 'https',
    flags,
    memberFlags: { 2: { 'peer-cert-file': outsider.cert, 'peer-key-file': outsider.key } },
    expectHealthy: [0, 1],
  });
  clusters.push(cluster);
  const put = await etcdctl(cluster.members[0]!.clientUrl, ['put', key, value]);
  assert.equal(put.code, 0, put.stderr);
  await eventually('member 1 has the value', async () => (await localValue(cluster, 1, key)) === value);
  return cluster;
}

test('a member whose peer certificate comes from another CA is refused and gets nothing', { skip: !etcdAvailable() && 'needs etcdctl' }, async () => {
  const cluster = await clusterWithOutsider(peerFlags(), pki.otherServer, 'secret', 'for-members-only');
  // The good members refuse m2's certificate when it dials them, and cannot verify its listener.
  await eventually('the refusal is logged', async () => /rejected connection.*UNABLE_TO_VERIFY_LEAF_SIGNATURE/.test(cluster.members[0]!.output + cluster.members[1]!.output));
  // m2 never hears from the cluster, so (as etcd) it never serves clients.
  const read = await etcdctl(cluster.members[2]!.clientUrl, ['get', 'secret', '--consistency=s']);
  assert.notEqual(read.code, 0, read.stdout);
  assert.doesNotMatch(read.stdout, /for-members-only/);
});

test('--peer-cert-allowed-cn: a member whose certificate carries another Common Name is refused', { skip: !etcdAvailable() && 'needs etcdctl' }, async () => {
  // m2's certificate is signed by the same CA, for the same address, but its CN is "alice".
  const cluster = await clusterWithOutsider({ ...peerFlags(), 'peer-cert-allowed-cn': 'server' }, pki.client, 'cn', 'checked');
  await eventually('the refusal is logged', async () => /rejected connection.*CommonName authentication failed/.test(cluster.members[0]!.output + cluster.members[1]!.output));
  assert.doesNotMatch(cluster.members[0]!.output + cluster.members[1]!.output, /UNABLE_TO_VERIFY|SAN/, 'refused for its name only');
});

test('--auto-tls and --peer-auto-tls: self-signed certificates made at startup, a working cluster', { skip: !etcdAvailable() && 'needs etcdctl' }, async () => {
  const cluster = await startCluster('conclave', 3, { clientScheme: 'https', peerScheme: 'https', clientTls: {}, flags: { 'auto-tls': 'true', 'peer-auto-tls': 'true' } });
  clusters.push(cluster);
  const insecure = ['--insecure-transport=false', '--insecure-skip-tls-verify'];
  const put = await etcdctl(cluster.endpoints, [...insecure, 'put', 'auto', 'tls']);
  assert.equal(put.code, 0, put.stderr);
  for (const i of [0, 1, 2]) await eventually(`member ${i} has the value`, async () => (await localValue(cluster, i, 'auto', insecure)) === 'tls');
  for (const m of cluster.members) {
    for (const side of ['client', 'peer']) assert.ok(existsSync(join(m.dataDir, 'fixtures', side, 'cert.pem')), `${m.name} ${side} certificate`);
  }
  // Without skipping verification, a self-signed certificate is not trusted.
  const verified = await etcdctl(cluster.endpoints, ['--insecure-transport=false', 'get', 'auto']);
  assert.notEqual(verified.code, 0);
});
