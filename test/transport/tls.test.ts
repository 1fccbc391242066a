/**
 * The peer transport over TLS (https:// peer URLs): messages and snapshot streams flow when both
 * members hold certificates of the trusted CA; with client-certificate auth a member whose
 * certificate comes from another CA, or names another address, is refused by the listener, and
 * the dialer refuses a listener whose certificate it cannot verify.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type tls from 'node:tls';
import { checkPeerSan } from '../../src/transport/peer-san.ts';
import { Transport, type TransportHandlers, type TransportTls } from '../../src/transport/transport.ts';
import type { Message, MsgSnap } from '../../src/raft/types.ts';
import { makeTestPki, type KeyPair, type TestPki } from '../helpers/pki.ts';

let pki: TestPki;
let dir: string;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'conclave-peer-tls-'));
  pki = await makeTestPki(dir);
});
after(() => rmSync(dir, { recursive: true, force: true }));

interface Side {
  readonly received: Message[];
  readonly snapshots: Buffer[];
  readonly snapshotSent: boolean[];
  readonly logs: string[];
  readonly handlers: TransportHandlers;
}

function side(snapshotBody: Buffer = Buffer.alloc(0)): Side {
  const s: Side = {
    received: [],
    snapshots: [],
    snapshotSent: [],
    logs: [],
    handlers: {
      onMessage: (m) => s.received.push(m),
      onSnapshot: async (_m, body) => {
        const parts: Uint8Array[] = [];
        for await (const c of body) parts.push(c);
        s.snapshots.push(Buffer.concat(parts));
      },
      snapshotBody: async function* () {
        yield snapshotBody;
      },
      onUnreachable: () => {},
      onSnapshotSent: (_peer, ok) => s.snapshotSent.push(ok),
      membership: () => ({ clusterId: 'c1', members: [] }),
      isRemoved: () => false,
      onRemoved: () => {},
    },
  };
  return s;
}

/** TLS both ways with `pair` as certificate, trusting `ca`, requiring client certificates. */
function peerTls(pair: KeyPair, ca: string): TransportTls {
  const material = { cert: readFileSync(pair.cert), key: readFileSync(pair.key), ca: readFileSync(ca) };
  return { server: { ...material, requestCert: true, rejectUnauthorized: true }, dial: material };
}

async function until(what: string, pred: () => boolean, ms = 5000): Promise<void> {
  for (const end = Date.now() + ms; !pred() && Date.now() < end; ) await new Promise((r) => setTimeout(r, 10));
  assert.ok(pred(), what);
}

async function members(tlsA: TransportTls, tlsB: TransportTls, snapshotOfA?: Buffer) {
  const sa = side(snapshotOfA);
  const sb = side();
  const log = (s: Side) => (_level: string, msg: string) => void s.logs.push(msg);
  const a = new Transport({ memberId: 'a', clusterId: 'c', listenHost: '127.0.0.1', listenPort: 0, handlers: sa.handlers, tls: tlsA, log: log(sa) });
  const b = new Transport({ memberId: 'b', clusterId: 'c', listenHost: '127.0.0.1', listenPort: 0, handlers: sb.handlers, tls: tlsB, log: log(sb) });
  await a.start();
  await b.start();
  a.setPeer('b', `https://127.0.0.1:${b.port()}`);
  b.setPeer('a', `https://127.0.0.1:${a.port()}`);
  return { a, b, sa, sb };
}

// Rejections are never coalesced (coalesce.ts), so each one arrives.
const rejection = (from: string, to: string, index: number): Message => ({ type: 'appResp', from, to, term: 1, index, reject: true, hintIndex: 0, hintTerm: 0 });
const snap = (from: string, to: string): MsgSnap => ({
  type: 'snap',
  from,
  to,
  term: 1,
  snapshot: { metadata: { index: 9, term: 1, confState: { voters: ['a', 'b'], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false } }, data: new Uint8Array(0) },
});

test('with certificates of the trusted CA, messages and a snapshot stream flow both ways over TLS', async () => {
  const body = randomBytes(3 * 1024 * 1024 + 17);
  const { a, b, sa, sb } = await members(peerTls(pki.server, pki.ca), peerTls(pki.server, pki.ca), body);
  try {
    for (let i = 1; i <= 50; i++) a.send([rejection('a', 'b', i)]);
    b.send([rejection('b', 'a', 7)]);
    await until('messages both ways', () => sb.received.length === 50 && sa.received.length === 1);
    assert.deepEqual(sb.received.map((m) => (m.type === 'appResp' ? m.index : -1)), Array.from({ length: 50 }, (_, i) => i + 1));
    a.send([snap('a', 'b')]);
    await until('snapshot delivered', () => sa.snapshotSent.length === 1);
    assert.deepEqual(sa.snapshotSent, [true]);
    assert.ok(sb.snapshots[0]!.equals(body), 'the snapshot body arrives intact');
  } finally {
    await a.stop();
    await b.stop();
  }
});

test('client-certificate auth refuses a member whose certificate comes from another CA, both ways', async () => {
  // b holds a certificate of another CA but trusts the right one.
  const { a, b, sa, sb } = await members(peerTls(pki.server, pki.ca), peerTls(pki.otherServer, pki.ca), Buffer.from('x'));
  try {
    b.send([rejection('b', 'a', 1)]);
    a.send([rejection('a', 'b', 1)]);
    a.send([snap('a', 'b')]);
    await until('a refuses b and cannot verify it', () => sa.logs.some((l) => /rejected connection/.test(l)) && sa.logs.some((l) => /cannot reach peer b/.test(l)) && sa.snapshotSent.length === 1);
    // Give anything that slipped through time to arrive.
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(sa.received, []);
    assert.deepEqual(sb.received, []);
    assert.deepEqual(sb.snapshots, []);
    assert.deepEqual(sa.snapshotSent, [false]);
    assert.match(sa.logs.join('\n'), /rejected connection from "127\.0\.0\.1:\d+" \(error "certificate rejected: UNABLE_TO_VERIFY_LEAF_SIGNATURE"\)|rejected connection \(error "certificate rejected: UNABLE_TO_VERIFY_LEAF_SIGNATURE"\)/);
  } finally {
    await a.stop();
    await b.stop();
  }
});

test('client-certificate auth refuses a certificate of the right CA that names another address', async () => {
  // b's certificate is for 192.0.2.1; a's is good, so only a's address check stops b's dials.
  const { a, b, sa, sb } = await members(peerTls(pki.server, pki.ca), peerTls(pki.elsewhere, pki.ca));
  try {
    b.send([rejection('b', 'a', 1)]);
    await until('a refuses b', () => sa.logs.some((l) => /rejected connection/.test(l)));
    assert.match(sa.logs.join('\n'), /rejected connection from "127\.0\.0\.1:\d+" \(error "tls: certificate is valid for 192\.0\.2\.1, not 127\.0\.0\.1"\)/);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(sa.received, []);
    // The other way round, a's dialer finds that b's listener certificate is not for b's address.
    a.send([rejection('a', 'b', 2)]);
    await until('a refuses to talk to b', () => sa.logs.some((l) => /cannot reach peer b .*192\.0\.2\.1/.test(l)));
    assert.deepEqual(sb.received, []);
  } finally {
    await a.stop();
    await b.stop();
  }
});

test('the address check: IP SANs, DNS SANs that resolve to the address, or no SANs at all', async () => {
  const cert = (subjectaltname?: string) => ({ subjectaltname }) as tls.PeerCertificate;
  const resolve = async (name: string) => (name === 'm1.example' ? ['10.0.0.1'] : []);
  assert.equal(await checkPeerSan(cert('IP Address:10.0.0.1'), '10.0.0.1', resolve), null);
  assert.equal(await checkPeerSan(cert('IP Address:10.0.0.1'), '::ffff:10.0.0.1', resolve), null);
  assert.equal(await checkPeerSan(cert('IP Address:10.0.0.2, DNS:m1.example'), '10.0.0.1', resolve), null);
  assert.equal(await checkPeerSan(cert(undefined), '10.0.0.1', resolve), null);
  assert.equal(await checkPeerSan(cert('IP Address:10.0.0.2, DNS:m2.example'), '10.0.0.1', resolve), 'certificate is valid for 10.0.0.2, m2.example, not 10.0.0.1');
});

test('a plaintext dialer gets nothing through to a TLS listener', async () => {
  const { a, b, sa } = await members(peerTls(pki.server, pki.ca), {});
  try {
    // b dials by the URL's scheme: an http:// URL for a TLS listener.
    b.setPeer('a', `http://127.0.0.1:${a.port()}`);
    b.send([rejection('b', 'a', 1)]);
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(sa.received, []);
  } finally {
    await a.stop();
    await b.stop();
  }
});
