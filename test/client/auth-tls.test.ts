/**
 * Auth and TLS, against a real etcd 3.4 (Conclave's server side of both is being built
 * elsewhere): the client authenticates with a user and password, sends the token on unary calls
 * and streams, authenticates again when the token expires, and maps auth failures to their
 * classes; over TLS it verifies the server against a CA and presents a client certificate
 * (certificates made by openssl for the test).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AuthFailedError, Client, NoEndpointAvailableError, PermissionDeniedError, UserEmptyError } from '../../src/client/index.ts';
import { ETCD_BIN, etcdAvailable, etcdctl, startCluster, type ProcessCluster } from '../helpers/processes.ts';
import { freePorts } from '../helpers/ports.ts';

const OPENSSL = '/usr/bin/openssl';

describe('client auth against etcd', { skip: etcdAvailable() ? false : 'etcd not installed' }, () => {
  let cluster: ProcessCluster;

  before(async () => {
    // Tokens live 1 s after their last use, so the test can watch one expire.
    cluster = await startCluster('etcd', 1, { flags: { 'auth-token-ttl': '1' } });
    const ctl = async (...args: string[]): Promise<void> => {
      const r = await etcdctl(cluster.endpoints, args);
      assert.equal(r.code, 0, `etcdctl ${args.join(' ')}: ${r.stderr}`);
    };
    await ctl('user', 'add', 'root:rootpw');
    await ctl('user', 'add', 'alice:alicepw');
    await ctl('role', 'add', 'apps');
    await ctl('role', 'grant-permission', 'apps', 'readwrite', 'a/', '--prefix=true');
    await ctl('user', 'grant-role', 'alice', 'apps');
    await ctl('auth', 'enable');
  });

  after(async () => {
    await cluster?.destroy();
  });

  test('a user reads, writes, watches and keeps a lease alive within its permissions; others are refused', async () => {
    const alice = new Client({ endpoints: [cluster.members[0]!.clientUrl], auth: { username: 'alice', password: 'alicepw' } });
    const anonymous = new Client({ endpoints: [cluster.members[0]!.clientUrl] });
    const wrong = new Client({ endpoints: [cluster.members[0]!.clientUrl], auth: { username: 'alice', password: 'nope' } });
    try {
      const watcher = alice.watch('a/', { prefix: true });
      await watcher.created;
      await alice.put('a/1', 'x');
      assert.equal(await alice.getString('a/1'), 'x');
      for await (const e of watcher) {
        assert.equal(`${e.type} ${e.kv.key}`, 'put a/1');
        break;
      }
      await assert.rejects(alice.put('b/1', 'x'), PermissionDeniedError);
      await assert.rejects(alice.get('b/1'), PermissionDeniedError);
      const lease = await alice.lease(2);
      await alice.put('a/leased', 'v', { lease: lease.id });
      await sleep(3_000);
      assert.equal(await alice.getString('a/leased'), 'v', 'the keep-alive stream carries the token');
      await lease.revoke();

      await assert.rejects(anonymous.get('a/1'), UserEmptyError);
      await assert.rejects(wrong.get('a/1'), AuthFailedError);
    } finally {
      alice.close();
      anonymous.close();
      wrong.close();
    }
  });

  test('an expired token is replaced: the client authenticates again and the call succeeds', async () => {
    const root = new Client({ endpoints: [cluster.members[0]!.clientUrl], auth: { username: 'root', password: 'rootpw' } });
    try {
      await root.put('b/1', 'root may');
      assert.equal(root.rpc.authentications, 1);
      await sleep(2_500);
      assert.equal(await root.getString('b/1'), 'root may');
      assert.equal(root.rpc.authentications, 2, 'the refused token was replaced once');
    } finally {
      root.close();
    }
  });
});

describe('client TLS against etcd', { skip: etcdAvailable() && existsSync(OPENSSL) ? false : 'etcd or openssl not installed' }, () => {
  let dir: string;
  let etcd: ChildProcess | undefined;
  let url: string;
  const pem = (name: string): Buffer => readFileSync(join(dir, name));

  /** A key and a certificate for `cn` signed by the test CA (or self-signed CA when ca is undefined). */
  function issue(name: string, cn: string, usage: string, ca?: string): void {
    const openssl = (...args: string[]): void => void execFileSync(OPENSSL, args, { cwd: dir, stdio: 'pipe' });
    openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`);
    if (ca === undefined) {
      openssl('req', '-x509', '-new', '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-days', '1', '-out', `${name}.crt`);
      return;
    }
    writeFileSync(join(dir, `${name}.ext`), `subjectAltName=IP:127.0.0.1\nextendedKeyUsage=${usage}\n`);
    openssl('req', '-new', '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-out', `${name}.csr`);
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-days', '1', '-extfile', `${name}.ext`, '-out', `${name}.crt`);
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'client-tls-'));
    issue('ca', 'test ca', '');
    issue('other-ca', 'another ca', '');
    issue('server', '127.0.0.1', 'serverAuth', 'ca');
    issue('client', 'client', 'clientAuth', 'ca');
    const [clientPort, peerPort] = await freePorts(2);
    url = `https://127.0.0.1:${clientPort}`;
    const peer = `http://127.0.0.1:${peerPort}`;
    etcd = spawn(
      ETCD_BIN,
      [
        '--name=tls',
        `--data-dir=${join(dir, 'data')}`,
        `--listen-client-urls=${url}`,
        `--advertise-client-urls=${url}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=tls=${peer}`,
        `--cert-file=${join(dir, 'server.crt')}`,
        `--key-file=${join(dir, 'server.key')}`,
        `--trusted-ca-file=${join(dir, 'ca.crt')}`,
        '--client-cert-auth=true',
      ],
      { stdio: 'ignore' },
    );
    // Ready when a TLS client gets an answer.
    const probe = new Client({ endpoints: [url], tls: { ca: pem('ca.crt'), cert: pem('client.crt'), key: pem('client.key') } });
    try {
      for (const end = Date.now() + 20_000; ; ) {
        try {
          await probe.status({ timeoutMs: 1_000 });
          break;
        } catch (e) {
          if (Date.now() > end) throw e;
          await sleep(200);
        }
      }
    } finally {
      probe.close();
    }
  });

  after(async () => {
    if (etcd !== undefined && etcd.exitCode === null) {
      const exited = new Promise((r) => etcd!.once('exit', r));
      etcd.kill('SIGKILL');
      await exited;
    }
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  test('with the CA and a client certificate: KV, txn and watch over https (also for host:port endpoints)', async () => {
    const client = new Client({ endpoints: [url.replace('https://', '')], tls: { ca: pem('ca.crt'), cert: pem('client.crt'), key: pem('client.key') } });
    try {
      assert.deepEqual(client.endpoints, [url]);
      const watcher = client.watch('tls/', { prefix: true });
      await watcher.created;
      await client.put('tls/k', 'secret');
      assert.equal(await client.getString('tls/k'), 'secret');
      for await (const e of watcher) {
        assert.equal(e.kv.value.toString(), 'secret');
        break;
      }
    } finally {
      client.close();
    }
  });

  test('a server certificate from another CA, or no client certificate, is refused', async () => {
    const untrusted = new Client({ endpoints: [url], tls: { ca: pem('other-ca.crt'), cert: pem('client.crt'), key: pem('client.key') }, limits: { callTimeoutMs: 1_000 } });
    const anonymous = new Client({ endpoints: [url], tls: { ca: pem('ca.crt') }, limits: { callTimeoutMs: 1_000 } });
    const plain = new Client({ endpoints: [url.replace('https', 'http')], limits: { callTimeoutMs: 1_000 } });
    try {
      await assert.rejects(untrusted.get('tls/k'), (e: unknown) => e instanceof NoEndpointAvailableError && /certificate/i.test(e.message));
      await assert.rejects(anonymous.get('tls/k'), NoEndpointAvailableError);
      await assert.rejects(plain.get('tls/k'), NoEndpointAvailableError);
    } finally {
      untrusted.close();
      anonymous.close();
      plain.close();
    }
  });
});
