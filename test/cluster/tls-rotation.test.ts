/**
 * Certificate rotation without a restart, as etcd allows it: a member serving https:// client
 * and peer URLs gets its certificate and key files replaced on disk. New connections (a client's,
 * a peer's) are then served the new certificate, while the clients already connected carry on;
 * replaced files that do not fit together (a key that is not the certificate's) are refused with
 * a warning and the previous certificate stays in use. A client certificate that a replaced
 * --client-crl-file revokes is refused from then on.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { Etcd3 } from 'etcd3';
import { httpsGet, startCluster, type ProcessCluster } from '../helpers/processes.ts';
import { makeCrl, makeTestPki, type KeyPair, type TestPki } from '../helpers/pki.ts';
import { TLS_RELOAD_LIMITS } from '../../src/server/tls-reload.ts';

const LIMITS = {
  /** Longest wait for a rotation to show: a few of the member's file checks. */
  rotationMs: TLS_RELOAD_LIMITS.checkIntervalMs * 3,
  /** Between two looks at the served certificate. */
  pollMs: 250,
  /** One HTTPS request. */
  requestMs: 5_000,
} as const;

let dir: string;
let pki: TestPki;
let cluster: ProcessCluster;
let live: KeyPair;
/** Member 0's --client-crl-file. */
let crl: string;

/**
 * The common name of the certificate served at a URL's host and port (verified against the CA),
 * connecting with the client certificate `as` (default: the server's, which members use).
 */
function servedCn(url: string, as: KeyPair = pki.server): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: u.hostname, port: Number(u.port), ca: readFileSync(pki.ca), cert: readFileSync(as.cert), key: readFileSync(as.key) }, () => {
      const cn = socket.getPeerX509Certificate()?.subject.match(/CN=([^\n]+)/)?.[1] ?? '';
      socket.end();
      resolve(cn);
    });
    socket.on('error', reject);
  });
}

async function until(what: string, url: string, cn: string): Promise<void> {
  for (const deadline = Date.now() + LIMITS.rotationMs; Date.now() < deadline; await sleep(LIMITS.pollMs)) {
    if ((await servedCn(url)) === cn) return;
  }
  assert.fail(`${what}: ${url} did not serve CN=${cn} within ${LIMITS.rotationMs} ms`);
}

function install(pair: KeyPair): void {
  copyFileSync(pair.key, live.key);
  copyFileSync(pair.cert, live.cert);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'conclave-rotation-'));
  pki = await makeTestPki(join(dir, 'pki'));
  live = { cert: join(dir, 'live.pem'), key: join(dir, 'live-key.pem') };
  install(pki.server);
  crl = join(dir, 'crl.pem');
  await makeCrl(pki, [], crl);
  cluster = await startCluster('conclave', 3, {
    clientScheme: 'https',
    peerScheme: 'https',
    clientTls: { ca: pki.ca, cert: pki.server.cert, key: pki.server.key },
    flags: { 'trusted-ca-file': pki.ca, 'peer-trusted-ca-file': pki.ca, 'peer-client-cert-auth': 'true' },
    memberFlags: {
      // Member 0 serves the files that get replaced; the others keep theirs.
      0: { 'cert-file': live.cert, 'key-file': live.key, 'peer-cert-file': live.cert, 'peer-key-file': live.key, 'client-crl-file': crl },
      1: { 'cert-file': pki.server.cert, 'key-file': pki.server.key, 'peer-cert-file': pki.server.cert, 'peer-key-file': pki.server.key },
      2: { 'cert-file': pki.server.cert, 'key-file': pki.server.key, 'peer-cert-file': pki.server.cert, 'peer-key-file': pki.server.key },
    },
  });
});

after(async () => {
  await cluster?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

test('replaced certificate files are served to new client and peer connections; connected clients carry on; a mismatched pair is refused', async () => {
  const m0 = cluster.members[0]!;
  assert.equal(await servedCn(m0.clientUrl), 'server');
  const etcd = new Etcd3({ hosts: m0.clientUrl, credentials: { rootCertificate: readFileSync(pki.ca), certChain: readFileSync(pki.server.cert), privateKey: readFileSync(pki.server.key) } });
  try {
    await etcd.put('before').value('1');

    // The CA's other certificate (CN alice, also for 127.0.0.1) replaces the first.
    install(pki.client);
    await until('client port after the rotation', m0.clientUrl, 'alice');
    await until('peer port after the rotation', m0.peerUrl, 'alice');
    // The client connected before goes on working, and the cluster still replicates.
    await etcd.put('after').value('2');
    assert.equal(await etcd.get('before').string(), '1');
    for (const m of cluster.members.slice(1)) {
      const other = new Etcd3({ hosts: m.clientUrl, credentials: { rootCertificate: readFileSync(pki.ca), certChain: readFileSync(pki.server.cert), privateKey: readFileSync(pki.server.key) } });
      try {
        assert.equal(await other.get('after').string(), '2');
      } finally {
        other.close();
      }
    }

    // A certificate whose key is not its own: refused with a warning, the previous one stays.
    install(pki.mismatched);
    for (const deadline = Date.now() + LIMITS.rotationMs; !/cannot be used \(.*private key does not match public key/.test(m0.output); await sleep(LIMITS.pollMs)) {
      assert.ok(Date.now() < deadline, `no warning about the mismatched pair:\n${m0.output.slice(-2000)}`);
    }
    assert.equal(await servedCn(m0.clientUrl), 'alice');
    await etcd.put('still').value('3');
  } finally {
    etcd.close();
  }
});

/** GET /health with the client certificate `as`, on a new connection: "ok", or why the request failed. */
function healthAs(url: string, as: KeyPair): Promise<string> {
  return httpsGet(`${url}/health`, { ca: pki.ca, ...as }, LIMITS.requestMs).then(
    (r) => (r.status === 200 ? 'ok' : `HTTP ${r.status}`),
    (e: Error) => e.message,
  );
}

test('a client certificate that a replaced --client-crl-file revokes is refused; others still connect', async () => {
  const m0 = cluster.members[0]!;
  // A good pair again (the test before left a mismatched one, which holds back any reload).
  install(pki.server);
  await until('client port with the good pair again', m0.clientUrl, 'server');
  assert.equal(await healthAs(m0.clientUrl, pki.client), 'ok', 'alice is served before the revocation');
  await makeCrl(pki, [pki.client], crl);
  let outcome = 'ok';
  for (const deadline = Date.now() + LIMITS.rotationMs; outcome === 'ok' && Date.now() < deadline; await sleep(LIMITS.pollMs)) outcome = await healthAs(m0.clientUrl, pki.client);
  assert.notEqual(outcome, 'ok', `alice is refused once her certificate is on the list:\n${m0.output.slice(-3000)}`);
  assert.equal(await healthAs(m0.clientUrl, pki.server), 'ok', 'a certificate not on the list is still served');
});
