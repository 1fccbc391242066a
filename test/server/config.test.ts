import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, resolveConfig } from '../../src/server/config.ts';
import { clusterId, memberId } from '../../src/server/ids.ts';

test('with no flags: a single member on 127.0.0.1:2379/2380 with data in ./default.conclave', () => {
  const c = resolveConfig({}, {});
  assert.equal(c.name, 'default');
  assert.equal(c.dataDir, 'default.conclave');
  assert.deepEqual(c.listenClientUrls, ['http://127.0.0.1:2379']);
  assert.deepEqual([...c.initialCluster], [['default', ['http://127.0.0.1:2380']]]);
  assert.equal(c.initialClusterState, 'new');
  assert.equal(c.quotaBackendBytes, 2 * 1024 * 1024 * 1024);
  assert.equal(c.maxRequestBytes, 1572864);
  assert.equal(c.maxTxnOps, 128);
});

test('flags beat environment variables, which beat the config file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'conclave-config-'));
  try {
    const file = join(dir, 'conf.yml');
    writeFileSync(file, '# a comment\nname: fromfile\nsnapshot-count: 7\nmax-txn-ops: "9"\nlog-level: warn\n');
    const c = resolveConfig({ 'config-file': file, 'max-txn-ops': '11' }, { CONCLAVE_SNAPSHOT_COUNT: '8' });
    assert.equal(c.name, 'fromfile');
    assert.equal(c.snapshotCount, 8);
    assert.equal(c.maxTxnOps, 11);
    assert.equal(c.logLevel, 'warn');
    writeFileSync(file, 'no-such-setting: 1\n');
    assert.throws(() => resolveConfig({ 'config-file': file }, {}), /unknown setting "no-such-setting"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a three-member initial cluster resolves, and bad settings are refused with clear errors', () => {
  const cluster = 'a=http://127.0.0.1:12380,b=http://127.0.0.1:22380,c=http://127.0.0.1:32380';
  const c = resolveConfig({ name: 'b', 'initial-cluster': cluster, 'initial-advertise-peer-urls': 'http://127.0.0.1:22380' }, {});
  assert.deepEqual([...c.initialCluster.keys()], ['a', 'b', 'c']);
  assert.throws(() => resolveConfig({ name: 'x', 'initial-cluster': cluster }, {}), /couldn't find local name "x"/);
  assert.throws(() => resolveConfig({ 'initial-cluster-state': 'maybe' }, {}), ConfigError);
  assert.throws(() => resolveConfig({ 'heartbeat-interval': '300', 'election-timeout': '1000' }, {}), /at least as 5 times/);
  assert.throws(() => resolveConfig({ 'listen-client-urls': 'localhost' }, {}), /not a valid URL/);
  assert.throws(() => resolveConfig({ 'max-txn-ops': '-1' }, {}), /positive integer/);
});

test("member and cluster IDs are derived exactly as etcd derives them", () => {
  // etcd 3.4's default single member (peer http://localhost:2380, token etcd-cluster).
  const m = memberId(['http://localhost:2380'], 'etcd-cluster');
  assert.equal(m, '8e9e05c52164694d');
  assert.equal(clusterId([m]), 'cdf818194e3a8c32');
  assert.notEqual(memberId(['http://localhost:2380'], 'other-token'), m);
});

test('--auth-token and --auth-token-ttl: simple tokens for 300 s by default; JWT options parsed; bad ones refused', () => {
  const c = resolveConfig({}, {});
  assert.deepEqual(c.authToken, { kind: 'simple' });
  assert.equal(c.authTokenTtl, 300);
  const jwt = resolveConfig({ 'auth-token': 'jwt,pub-key=/k/pub.pem,priv-key=/k/priv.pem,sign-method=ES256,ttl=10m', 'auth-token-ttl': '60' }, {});
  assert.deepEqual(jwt.authToken, { kind: 'jwt', signMethod: 'ES256', publicKeyFile: '/k/pub.pem', privateKeyFile: '/k/priv.pem', ttlMs: 600_000 });
  assert.equal(jwt.authTokenTtl, 60);
  assert.throws(() => resolveConfig({ 'auth-token': 'jwt,pub-key=/k/pub.pem' }, {}), ConfigError);
  assert.throws(() => resolveConfig({ 'auth-token': 'oauth' }, {}), /unknown token type "oauth"/);
  assert.throws(() => resolveConfig({ 'auth-token-ttl': '0' }, {}), /positive integer/);
});

test('the corruption check flags: Go durations and booleans as etcd takes them', () => {
  const c = resolveConfig({}, {});
  assert.equal(c.corruptCheckIntervalMs, 0);
  assert.equal(c.initialCorruptCheck, false);
  const d = (v: string) => resolveConfig({ 'experimental-corrupt-check-time': v }, {}).corruptCheckIntervalMs;
  assert.equal(d('30s'), 30_000);
  assert.equal(d('1m30s'), 90_000);
  assert.equal(d('250ms'), 250);
  assert.equal(d('1.5h'), 5_400_000);
  assert.equal(d('0'), 0);
  assert.throws(() => d('30'), /invalid duration "30"/);
  assert.throws(() => d('5 s'), /invalid duration/);
  assert.equal(resolveConfig({}, { CONCLAVE_EXPERIMENTAL_INITIAL_CORRUPT_CHECK: 'true' }).initialCorruptCheck, true);
  assert.equal(resolveConfig({ 'experimental-initial-corrupt-check': 'T' }, {}).initialCorruptCheck, true);
  assert.throws(() => resolveConfig({ 'experimental-initial-corrupt-check': 'yes' }, {}), /invalid boolean value "yes" for --experimental-initial-corrupt-check/);
});
