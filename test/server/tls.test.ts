/**
 * TLS settings: from flags, CONCLAVE_* variables and etcd's config-file sections; the files
 * loaded and checked at startup with etcd's error texts; --auto-tls certificates made once and
 * reused.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { ConfigError, resolveConfig } from '../../src/server/config.ts';
import { dialOptions, loadRoleTls, loadServerTls, serverOptions } from '../../src/server/tls.ts';
import { makeTestPki, type TestPki } from '../helpers/pki.ts';

let pki: TestPki;
let dir: string;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'conclave-tls-config-'));
  pki = await makeTestPki(join(dir, 'pki'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** A TLS log that keeps its lines. */
function logger(): { info: string[]; warn: string[]; log: { info(m: string): void; warn(m: string): void } } {
  const info: string[] = [];
  const warn: string[] = [];
  return { info, warn, log: { info: (m) => void info.push(m), warn: (m) => void warn.push(m) } };
}

const quiet = { info() {}, warn() {} };

test('TLS flags, their environment variables and etcd’s config-file sections', () => {
  const c = resolveConfig({ 'cert-file': 'c.pem', 'key-file': 'k.pem', 'client-cert-auth': 'true', 'peer-auto-tls': '1' }, { CONCLAVE_TRUSTED_CA_FILE: 'ca.pem', CONCLAVE_PEER_CLIENT_CERT_AUTH: 'True' });
  assert.deepEqual(c.clientTls, { certFile: 'c.pem', keyFile: 'k.pem', trustedCaFile: 'ca.pem', clientCertAuth: true, autoTls: false, crlFile: '' });
  assert.deepEqual(c.peerTls, { certFile: '', keyFile: '', trustedCaFile: '', clientCertAuth: true, autoTls: true, crlFile: '' });
  assert.throws(() => resolveConfig({ 'auto-tls': 'yes' }, {}), /invalid boolean value "yes" for --auto-tls/);

  const file = join(dir, 'etcd.yml');
  writeFileSync(
    file,
    [
      'name: m1',
      'client-transport-security:',
      '  cert-file: /c/cert.pem',
      '  key-file: /c/key.pem',
      '  client-cert-auth: true',
      '  trusted-ca-file: /c/ca.pem',
      '  auto-tls: false',
      '  crl-file: /c/crl.pem',
      'peer-transport-security:',
      '  cert-file: /p/cert.pem',
      '  key-file: "/p/key.pem"',
      '  client-cert-auth: true',
      '  trusted-ca-file:',
      '  auto-tls: false',
      '  allowed-cn: member',
      '  crl-file: /p/crl.pem',
      'snapshot-count: 5',
    ].join('\n'),
  );
  const f = resolveConfig({ 'config-file': file }, { CONCLAVE_PEER_TRUSTED_CA_FILE: '/env/ca.pem' });
  assert.equal(f.name, 'm1');
  assert.equal(f.snapshotCount, 5);
  assert.deepEqual(f.clientTls, { certFile: '/c/cert.pem', keyFile: '/c/key.pem', trustedCaFile: '/c/ca.pem', clientCertAuth: true, autoTls: false, crlFile: '/c/crl.pem' });
  assert.deepEqual(f.peerTls, { certFile: '/p/cert.pem', keyFile: '/p/key.pem', trustedCaFile: '/env/ca.pem', clientCertAuth: true, autoTls: false, crlFile: '/p/crl.pem' });
  assert.equal(f.peerCertAllowedCn, 'member');
  assert.equal(resolveConfig({ 'peer-cert-allowed-cn': 'm' }, {}).peerCertAllowedCn, 'm');
  assert.equal(resolveConfig({}, {}).peerCertAllowedCn, '');
  assert.equal(resolveConfig({ 'client-crl-file': '/f' }, { CONCLAVE_PEER_CRL_FILE: '/e' }).peerTls.crlFile, '/e');
  writeFileSync(file, 'peer-transport-security:\n  crl-check: true\n');
  assert.throws(() => resolveConfig({ 'config-file': file }, {}), /unknown setting "peer-crl-check"/);
});

function clientConfig(flags: Record<string, string>) {
  return resolveConfig({ 'data-dir': join(dir, 'data'), 'listen-client-urls': 'https://127.0.0.1:2379', 'advertise-client-urls': 'https://127.0.0.1:2379', ...flags }, {});
}

test('the certificate, key and CA are checked at startup, with etcd’s texts', async () => {
  const load = (flags: Record<string, string>) => loadServerTls(clientConfig(flags), quiet);
  const ok = await load({ 'cert-file': pki.server.cert, 'key-file': pki.server.key, 'trusted-ca-file': pki.ca });
  assert.equal(ok.peer, null);
  assert.equal(ok.client?.clientCertAuth, true, 'a trusted CA file alone requires client certificates, as in etcd 3.4');
  assert.deepEqual(ok.client?.cert, readFileSync(pki.server.cert));

  const cases: [Record<string, string>, RegExp][] = [
    [{}, /^TLS key\/cert \(--cert-file, --key-file\) must be provided for client url https:\/\/127\.0\.0\.1:2379 with HTTPS scheme$/],
    [{ 'cert-file': pki.server.cert }, /KeyFile and CertFile must both be present\[key: , cert: .*server\.pem\]/],
    [{ 'cert-file': '/no/such.pem', 'key-file': pki.server.key }, /^--cert-file: open \/no\/such\.pem: no such file or directory$/],
    [{ 'cert-file': pki.server.cert, 'key-file': '/no/key.pem' }, /^--key-file: open \/no\/key\.pem: no such file or directory$/],
    [{ 'cert-file': pki.mismatched.cert, 'key-file': pki.mismatched.key }, /tls: private key does not match public key/],
    [{ 'cert-file': pki.server.key, 'key-file': pki.server.key }, /tls: failed to find any PEM data in certificate input/],
    [{ 'cert-file': pki.server.cert, 'key-file': pki.server.cert }, /tls: failed to find any PEM data in key input/],
    [{ 'cert-file': pki.server.cert, 'key-file': pki.server.key, 'trusted-ca-file': '/no/ca.pem' }, /^--trusted-ca-file: open \/no\/ca\.pem: no such file or directory$/],
    [{ 'cert-file': pki.server.cert, 'key-file': pki.server.key, 'trusted-ca-file': pki.server.key }, /--trusted-ca-file: .*: no PEM certificate found/],
    [{ 'cert-file': pki.server.cert, 'key-file': pki.server.key, 'client-crl-file': '/no/crl.pem' }, /^--client-crl-file: open \/no\/crl\.pem: no such file or directory$/],
    [{ 'cert-file': pki.server.cert, 'key-file': pki.server.key, 'client-crl-file': pki.ca }, /--client-crl-file: .*: no PEM certificate revocation list found/],
  ];
  for (const [flags, expected] of cases) await assert.rejects(load(flags), (e: Error) => e instanceof ConfigError && expected.test(e.message), JSON.stringify(flags));

  const peer = resolveConfig({ 'data-dir': join(dir, 'data'), 'listen-peer-urls': 'https://127.0.0.1:2380', 'initial-advertise-peer-urls': 'https://127.0.0.1:2380' }, {});
  await assert.rejects(loadRoleTls('peer', peer, quiet), /^ConfigError: cannot listen on TLS for 127\.0\.0\.1:2380: KeyFile and CertFile are not presented/);
});

test('an http:// URL ignores the certificate, with etcd’s warning', async () => {
  const log = logger();
  const c = resolveConfig({ 'cert-file': pki.server.cert, 'key-file': pki.server.key, 'client-cert-auth': 'true' }, {});
  const m = await loadRoleTls('client', c, log.log);
  assert.notEqual(m, null);
  assert.match(log.warn.join('\n'), /scheme is HTTP while key and cert files are present; ignoring key and cert files/);
  assert.match(log.warn.join('\n'), /scheme is HTTP while --client-cert-auth is enabled; ignoring client cert auth for this URL/);
});

test('--auto-tls and --peer-auto-tls make a self-signed certificate under <data-dir>/fixtures once, then reuse it', async () => {
  const dataDir = join(dir, 'auto');
  const config = () =>
    resolveConfig(
      {
        'data-dir': dataDir,
        'listen-client-urls': 'https://127.0.0.1:2379,https://localhost:12379',
        'advertise-client-urls': 'https://127.0.0.1:2379',
        'listen-peer-urls': 'https://127.0.0.1:2380',
        'initial-advertise-peer-urls': 'https://127.0.0.1:2380',
        'auto-tls': 'true',
        'peer-auto-tls': 'true',
      },
      {},
    );
  const log = logger();
  const first = await loadServerTls(config(), log.log);
  assert.equal(log.info.filter((l) => /created a self-signed/.test(l)).length, 2);
  const client = new X509Certificate(readFileSync(join(dataDir, 'fixtures/client/cert.pem')));
  assert.equal(client.subjectAltName, 'IP Address:127.0.0.1, DNS:localhost');
  assert.equal(client.ca, false);
  assert.match(client.subject, /O=conclave/);
  assert.equal(client.publicKey.asymmetricKeyDetails?.namedCurve, 'secp521r1');
  const peer = new X509Certificate(readFileSync(join(dataDir, 'fixtures/peer/cert.pem')));
  assert.equal(peer.subjectAltName, 'IP Address:127.0.0.1');
  assert.equal(statSync(join(dataDir, 'fixtures/peer/key.pem')).mode & 0o777, 0o600);
  assert.equal(first.peer?.selfSigned, true);
  // The other members cannot verify a self-signed peer certificate: the dialer does not check it.
  assert.equal(dialOptions(first.peer).rejectUnauthorized, false);
  assert.equal(dialOptions(null).rejectUnauthorized, undefined);
  assert.equal(serverOptions(first.client!).requestCert, false);

  const again = await loadServerTls(config(), logger().log);
  assert.deepEqual(again.client?.cert, first.client?.cert, 'a restart reuses the certificate');

  // Peer certificate auth cannot work on self-signed certificates: refused rather than dropped.
  const both = resolveConfig({ 'data-dir': join(dir, 'auto3'), 'peer-auto-tls': 'true', 'peer-client-cert-auth': 'true' }, {});
  await assert.rejects(loadRoleTls('peer', both, quiet), /--peer-auto-tls cannot be combined with --peer-client-cert-auth/);

  // Given files win over --auto-tls, with etcd's warning.
  const log2 = logger();
  const given = await loadRoleTls('client', resolveConfig({ 'data-dir': join(dir, 'auto2'), 'auto-tls': 'true', 'cert-file': pki.server.cert, 'key-file': pki.server.key }, {}), log2.log);
  assert.equal(given?.selfSigned, false);
  assert.match(log2.warn.join('\n'), /ignoring client auto TLS since certs given/);
});

test('--cipher-suites: etcd’s names, its error for an unknown one, and only those suites offered over TLS 1.2', async () => {
  assert.throws(() => resolveConfig({ 'cipher-suites': 'BOGUS' }, {}), (e: unknown) => e instanceof ConfigError && e.message === 'unexpected TLS cipher suite "BOGUS"');
  assert.throws(() => resolveConfig({ 'cipher-suites': 'TLS_RSA_WITH_RC4_128_SHA' }, {}), /RC4 or 3DES/);
  assert.deepEqual(resolveConfig({}, {}).cipherSuites, []);
  const allowed = 'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384';
  const config = clientConfig({ 'cert-file': pki.server.cert, 'key-file': pki.server.key, 'cipher-suites': ` ${allowed} ,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305` });
  assert.deepEqual(config.cipherSuites, [allowed, 'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305']);
  const material = (await loadServerTls(config, logger().log)).client!;
  assert.equal(material.ciphers, 'ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305');
  assert.equal(dialOptions(material).ciphers, material.ciphers);

  const server = tls.createServer(serverOptions(material), (socket) => socket.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  /** The suite a TLS 1.2 client offering only `ciphers` gets, or the handshake's error. */
  const handshake = (ciphers: string): Promise<string> =>
    new Promise((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port, ca: readFileSync(pki.ca), servername: 'localhost', maxVersion: 'TLSv1.2', ciphers }, () => {
        resolve(socket.getCipher().name);
        socket.destroy();
      });
      socket.on('error', (e) => resolve(`error: ${e.message}`));
    });
  try {
    assert.equal(await handshake('ECDHE-ECDSA-AES256-GCM-SHA384'), 'ECDHE-ECDSA-AES256-GCM-SHA384');
    assert.match(await handshake('ECDHE-ECDSA-AES128-GCM-SHA256'), /^error: .*handshake failure/i);
  } finally {
    server.close();
  }
});
