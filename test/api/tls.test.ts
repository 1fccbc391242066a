/**
 * The client port over TLS: which protocol ALPN picks, client certificates required and
 * refused, and the verified certificate's CN on the call (CallContext.tlsCommonName), through
 * node's http2 session directly and through the authority handshake's rewriting stream.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { Type } from 'protobufjs';
import { etcdService, etcdType } from '../../src/api/etcd/proto/load.ts';
import { sessionCommonName } from '../../src/api/grpc/tls-identity.ts';
import { GrpcServer, HTTP2_PREFACE, listenClientPort, unary, type ClientPort } from '../../src/api/grpc/index.ts';
import { ACK, END_STREAM_AND_HEADERS, frame, HEADERS, rawBlock, SETTINGS } from '../helpers/h2-frames.ts';
import { makeTestPki, type KeyPair, type TestPki } from '../helpers/pki.ts';

const PutRequest: Type = etcdType('etcdserverpb.PutRequest');
const PutResponse: Type = etcdType('etcdserverpb.PutResponse');

let pki: TestPki;
let dir: string;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'conclave-tls-port-'));
  pki = await makeTestPki(dir);
});
after(() => rmSync(dir, { recursive: true, force: true }));

const read = (pair: KeyPair): { cert: Buffer; key: Buffer } => ({ cert: readFileSync(pair.cert), key: readFileSync(pair.key) });

/** A port whose Put answers with the caller's certificate CN as the value ("-" when there is none). */
async function cnEchoPort(requireClientCert: boolean, tlsErrors: string[] = []): Promise<ClientPort> {
  const server = new GrpcServer().addService(etcdService('etcdserverpb.KV'), {
    Put: unary<{ key: Buffer }, object>(async (req, call) => ({ prev_kv: { key: req.key, value: Buffer.from(call.tlsCommonName ?? '-') } })),
  });
  const options = { ...read(pki.server), ca: readFileSync(pki.ca), requestCert: requireClientCert, rejectUnauthorized: requireClientCert };
  return listenClientPort({ host: '127.0.0.1', port: 0, tls: options, onTlsError: (reason) => tlsErrors.push(reason) }, server.handleStream, (_q, res) => res.end('h1'));
}

function grpcPut(port: number, client: KeyPair | null): Promise<string> {
  const c = client === null ? null : read(client);
  const credentials = grpc.credentials.createSsl(readFileSync(pki.ca), c?.key ?? null, c?.cert ?? null);
  const channel = new grpc.Client(`127.0.0.1:${port}`, credentials, { 'grpc.ssl_target_name_override': 'localhost' });
  return new Promise<string>((resolve, reject) => {
    channel.makeUnaryRequest(
      '/etcdserverpb.KV/Put',
      (o: object) => Buffer.from(PutRequest.encode(PutRequest.fromObject(o)).finish()),
      (b: Buffer) => PutResponse.toObject(PutResponse.decode(b)) as { prev_kv: { value: Buffer } },
      { key: Buffer.from('k') },
      { deadline: Date.now() + 5000 },
      (err, v) => {
        channel.close();
        if (err !== null) reject(err);
        else resolve(v!.prev_kv.value.toString());
      },
    );
  });
}

describe('client certificates', () => {
  test('a verified client certificate’s CN reaches the call; none without client-certificate auth', async () => {
    const required = await cnEchoPort(true);
    const optional = await cnEchoPort(false);
    try {
      assert.equal(await grpcPut(required.address().port, pki.client), 'alice');
      // Not requested: the client sends no certificate, and the call has no CN.
      assert.equal(await grpcPut(optional.address().port, pki.client), '-');
      assert.equal(await grpcPut(optional.address().port, null), '-');
    } finally {
      await required.close(100);
      await optional.close(100);
    }
  });

  test('no certificate, one of another CA, or an expired one: the handshake fails and no call is made', async () => {
    const errors: string[] = [];
    const port = await cnEchoPort(true, errors);
    try {
      for (const client of [null, pki.otherClient, pki.expired]) {
        await assert.rejects(grpcPut(port.address().port, client), (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE);
      }
      assert.equal(await grpcPut(port.address().port, pki.client), 'alice');
      const text = errors.join('\n');
      assert.match(text, /peer did not return a certificate/);
      assert.match(text, /certificate rejected: UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
      assert.match(text, /certificate rejected: CERT_HAS_EXPIRED/);
    } finally {
      await port.close(100);
    }
  });
});

describe('protocols', () => {
  test('ALPN gives h2 to a client offering only h2, and http/1.1 to one offering both', async () => {
    const port = await cnEchoPort(false);
    const connect = (protocols: string[]): Promise<string | false | null> =>
      new Promise((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port: port.address().port, servername: 'localhost', ca: readFileSync(pki.ca), ALPNProtocols: protocols }, () => {
          resolve(s.alpnProtocol);
          s.destroy();
        });
        s.on('error', reject);
      });
    try {
      assert.equal(await connect(['h2']), 'h2');
      assert.equal(await connect(['h2', 'http/1.1']), 'http/1.1');
      assert.equal(await connect(['http/1.1']), 'http/1.1');
    } finally {
      await port.close(100);
    }
  });

  test('an h2 client sending a URL as :authority (grpc-go per endpoint) is served, with its CN', async () => {
    const seen: { authority: string | undefined; cn: string | undefined }[] = [];
    const onStream = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void => {
      seen.push({ authority: headers[':authority'], cn: sessionCommonName(stream.session) });
      stream.respond({ ':status': 200 }, { endStream: true });
    };
    const options = { ...read(pki.server), ca: readFileSync(pki.ca), requestCert: true, rejectUnauthorized: true };
    const port = await listenClientPort({ host: '127.0.0.1', port: 0, tls: options }, onStream, (_q, res) => res.end());
    const socket = tls.connect({ host: '127.0.0.1', port: port.address().port, servername: 'localhost', ca: readFileSync(pki.ca), ...read(pki.client), ALPNProtocols: ['h2'] });
    let received = Buffer.alloc(0);
    socket.on('data', (b: Buffer) => (received = Buffer.concat([received, b])));
    const authority = `https://127.0.0.1:${port.address().port}`;
    const block = rawBlock(authority, 'https');
    try {
      await new Promise((resolve) => socket.once('secureConnect', resolve));
      socket.write(Buffer.concat([HTTP2_PREFACE, frame(SETTINGS, 0, 0)]));
      for (let i = 0; i < 200 && received.length < 9; i++) await new Promise((r) => setTimeout(r, 10));
      socket.write(Buffer.concat([frame(SETTINGS, ACK, 0), frame(HEADERS, END_STREAM_AND_HEADERS, 1, block)]));
      for (let i = 0; i < 200 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(seen, [{ authority: authority.replace('//', '--'), cn: 'alice' }]);
    } finally {
      socket.destroy();
      await port.close(100);
    }
  });
});
