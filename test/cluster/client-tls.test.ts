/**
 * Client TLS as etcd 3.4 serves it: a Conclave member and an etcd 3.4 member, started side by
 * side with the same certificates (https:// client URLs, --cert-file, --key-file,
 * --trusted-ca-file, --client-cert-auth), answer etcdctl 3.4, HTTPS and the etcd3 npm client
 * alike: with a client certificate of the trusted CA everything works; without one, with one of
 * another CA, with an expired one, trusting the wrong CA or in plaintext every command fails the
 * same way and changes nothing. A key that does not match its certificate stops `conclave
 * serve` at once with etcd's message.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { freePorts } from '../helpers/ports.ts';
import { CONCLAVE_BIN, etcdAvailable, etcdctl, httpsGet, startCluster, type ClientTlsFiles, type EtcdctlResult, type ProcessCluster } from '../helpers/processes.ts';
import { makeTestPki, type TestPki } from '../helpers/pki.ts';

const SUITE_LIMITS = {
  /** Starting both members side by side. */
  startMs: 45_000,
  /** The whole suite: a hung etcdctl fails it instead of stalling the run. */
  suiteMs: 90_000,
  /** One HTTPS request. */
  httpMs: 5_000,
} as const;

let dir: string;
let pki: TestPki;
let conclave: ProcessCluster | undefined;
let etcd: ProcessCluster | undefined;

const goodClient = (): ClientTlsFiles => ({ ca: pki.ca, cert: pki.client.cert, key: pki.client.key });
const etcdctlTls = (files: ClientTlsFiles): string[] => ['--cacert', files.ca!, ...(files.cert === undefined ? [] : ['--cert', files.cert, '--key', files.key!])];

/** The same command against both; the outputs with the endpoint and timings normalized. */
async function both(args: string[], endpoints = (c: ProcessCluster) => c.endpoints): Promise<[EtcdctlResult, EtcdctlResult]> {
  const [a, b] = await Promise.all([etcdctl(endpoints(conclave!), args), etcdctl(endpoints(etcd!), args)]);
  const normalize = (r: EtcdctlResult): EtcdctlResult => {
    const clean = (s: string): string => s.replace(/https?:\/\/127\.0\.0\.1:\d+/g, '<endpoint>').replace(/took = [\d.]+[µnm]?s/g, 'took = <t>');
    return { code: r.code, stdout: clean(r.stdout), stderr: clean(r.stderr) };
  };
  return [normalize(a), normalize(b)];
}

/** The last "Error: …" line of stderr (etcdctl's verdict), without the retry log lines. */
const errorLine = (stderr: string): string => stderr.trim().split('\n').filter((l) => l.startsWith('Error:')).pop() ?? '';

function httpsPost(url: string, files: ClientTlsFiles, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      { method: 'POST', ca: readFileSync(files.ca!), cert: files.cert === undefined ? undefined : readFileSync(files.cert), key: files.key === undefined ? undefined : readFileSync(files.key), timeout: SUITE_LIMITS.httpMs },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

describe('client TLS: Conclave and etcd 3.4 with the same certificates', { skip: !etcdAvailable() && 'needs etcd and etcdctl 3.4', timeout: SUITE_LIMITS.suiteMs }, () => {
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'conclave-client-tls-'));
    pki = await makeTestPki(dir);
    const options = {
      clientScheme: 'https' as const,
      clientTls: goodClient(),
      flags: { 'cert-file': pki.server.cert, 'key-file': pki.server.key, 'trusted-ca-file': pki.ca, 'client-cert-auth': 'true' },
    };
    [conclave, etcd] = await Promise.all([startCluster('conclave', 1, options), startCluster('etcd', 1, options)]);
  }, { timeout: SUITE_LIMITS.startMs });

  after(async () => {
    await Promise.all([conclave?.destroy(), etcd?.destroy()]);
    rmSync(dir, { recursive: true, force: true });
  });

  test('etcdctl with --cacert, --cert and --key: put, get, endpoint health, endpoint status', async () => {
    const tls = etcdctlTls(goodClient());
    for (const args of [['put', 'greeting', 'hello'], ['get', 'greeting'], ['endpoint', 'health']]) {
      const [c, e] = await both([...tls, ...args]);
      assert.equal(c.code, 0, `${args.join(' ')}: ${c.stderr}`);
      assert.deepEqual([c.code, c.stdout], [e.code, e.stdout], args.join(' '));
    }
    // Per-endpoint calls: grpc-go sends the https:// URL as :authority.
    const [c, e] = await both([...tls, 'endpoint', 'status', '-w', 'json']);
    assert.deepEqual([c.code, e.code], [0, 0], c.stderr);
  });

  test('no client certificate, one of another CA, an expired one, the wrong CA, plaintext: the same failure, nothing changed', async () => {
    const cases: [string, string[], (c: ProcessCluster) => string][] = [
      ['no client certificate', [...etcdctlTls({ ca: pki.ca }), 'put', 'greeting', 'x1'], (c) => c.endpoints],
      ['client certificate of another CA', [...etcdctlTls({ ca: pki.ca, ...pki.otherClient }), 'put', 'greeting', 'x2'], (c) => c.endpoints],
      ['expired client certificate', [...etcdctlTls({ ca: pki.ca, ...pki.expired }), 'put', 'greeting', 'x3'], (c) => c.endpoints],
      ['server certificate of an untrusted CA', [...etcdctlTls({ ca: pki.otherCa, ...pki.client }), 'put', 'greeting', 'x4'], (c) => c.endpoints],
      ['plaintext to the TLS port', ['put', 'greeting', 'x5'], (c) => c.endpoints.replace('https://', 'http://')],
    ];
    const results = await Promise.all(cases.map(([, args, endpoints]) => both(args, endpoints)));
    for (const [i, [c, e]] of results.entries()) {
      const what = cases[i]![0];
      assert.notEqual(e.code, 0, `etcd: ${what}`);
      assert.equal(c.code, e.code, what);
      assert.equal(errorLine(c.stderr), errorLine(e.stderr), `${what}: ${c.stderr}`);
    }
    // The member says why it refused each handshake.
    const log = conclave!.members[0]!.output;
    for (const reason of ['peer did not return a certificate', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_HAS_EXPIRED']) assert.ok(log.includes(reason), `${reason} not in the log:\n${log}`);
    const [c, e] = await both([...etcdctlTls(goodClient()), 'get', 'greeting', '--print-value-only']);
    assert.deepEqual([c.stdout, e.stdout], ['hello\n', 'hello\n']);
  });

  test('HTTPS: /health and the JSON gateway with a client certificate, refused without one', async () => {
    for (const cluster of [conclave!, etcd!]) {
      const url = cluster.members[0]!.clientUrl;
      assert.deepEqual(await httpsGet(`${url}/health`, goodClient(), SUITE_LIMITS.httpMs), { status: 200, body: '{"health":"true"}' }, cluster.flavour);
      const range = await httpsPost(`${url}/v3/kv/range`, goodClient(), JSON.stringify({ key: Buffer.from('greeting').toString('base64') }));
      assert.equal(range.status, 200, cluster.flavour);
      const kvs = (JSON.parse(range.body) as { kvs: { value: string }[] }).kvs;
      assert.equal(Buffer.from(kvs[0]!.value, 'base64').toString(), 'hello', cluster.flavour);
      await assert.rejects(httpsGet(`${url}/health`, { ca: pki.ca }, SUITE_LIMITS.httpMs), cluster.flavour);
    }
  });

  test('the etcd3 npm client over TLS', async () => {
    for (const cluster of [conclave!, etcd!]) {
      const credentials = { rootCertificate: readFileSync(pki.ca), certChain: readFileSync(pki.client.cert), privateKey: readFileSync(pki.client.key) };
      const client = new Etcd3({ hosts: cluster.members[0]!.clientUrl, credentials, dialTimeout: 5_000 });
      try {
        await client.put('npm').value(cluster.flavour);
        assert.equal(await client.get('npm').string(), cluster.flavour);
        assert.equal(await client.get('greeting').string(), 'hello');
      } finally {
        client.close();
      }
      const anonymous = new Etcd3({ hosts: cluster.members[0]!.clientUrl, credentials: { rootCertificate: readFileSync(pki.ca) }, dialTimeout: 2_000 });
      try {
        await assert.rejects(async () => {
          await anonymous.put('npm').value('anonymous');
        }, cluster.flavour);
      } finally {
        anonymous.close();
      }
    }
  });

  // Last: it turns auth on.
  test("with auth enabled, the client certificate's CN is the user of a call without a token", async () => {
    const tls = etcdctlTls(goodClient());
    const asRoot = [...tls, '--user', 'root:rootpw'];
    const steps: string[][] = [
      [...tls, 'user', 'add', 'root:rootpw'],
      [...tls, 'user', 'grant-role', 'root', 'root'],
      [...tls, 'user', 'add', 'alice:alicepw'],
      [...tls, 'role', 'add', 'app'],
      [...tls, 'role', 'grant-permission', 'app', 'readwrite', '--prefix', 'app/'],
      [...tls, 'user', 'grant-role', 'alice', 'app'],
      [...tls, 'auth', 'enable'],
      // The certificate says CN=alice: no --user needed, and only alice's rights.
      [...tls, 'put', 'app/x', 'by-cn'],
      [...tls, 'get', 'app/x', '--print-value-only'],
      [...tls, 'put', 'greeting', 'not-allowed'],
      [...asRoot, 'get', 'greeting', '--print-value-only'],
      [...asRoot, 'auth', 'disable'],
    ];
    const outcomes: string[] = [];
    for (const args of steps) {
      const [c, e] = await both(args);
      assert.deepEqual([c.code, c.stdout, errorLine(c.stderr)], [e.code, e.stdout, errorLine(e.stderr)], args.slice(6).join(' '));
      outcomes.push(c.code === 0 ? c.stdout.trim() : errorLine(c.stderr));
    }
    assert.deepEqual(outcomes.slice(7, 11), ['OK', 'by-cn', 'Error: etcdserver: permission denied', 'hello']);
    const [denied] = await both([...tls, 'get', 'greeting', '--print-value-only']);
    assert.equal(denied.stdout, 'hello\n', 'auth is off again: the refused put changed nothing');
  });
});

test('conclave serve refuses a key that does not match its certificate, in one line, before listening', { timeout: 30_000 }, async () => {
  const base = mkdtempSync(join(tmpdir(), 'conclave-bad-cert-'));
  try {
    const certs = await makeTestPki(join(base, 'pki'));
    const [client, peer] = await freePorts(2);
    const args = [
      CONCLAVE_BIN,
      'serve',
      `--data-dir=${join(base, 'data')}`,
      `--listen-client-urls=https://127.0.0.1:${client}`,
      `--advertise-client-urls=https://127.0.0.1:${client}`,
      `--listen-peer-urls=http://127.0.0.1:${peer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peer}`,
      `--cert-file=${certs.mismatched.cert}`,
      `--key-file=${certs.mismatched.key}`,
    ];
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = execFile(process.execPath, args, { timeout: 20_000 }, (_err, _stdout, stderr) => resolve({ code: child.exitCode, stderr }));
    });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^conclave serve: --key-file: .*: tls: private key does not match public key \(--cert-file .*\)\n$/);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});
