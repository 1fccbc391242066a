/**
 * The gRPC transport at the wire: raw HTTP/2 and TCP clients that do what grpc-js never does
 * (split prefaces and frames, bad headers, compressed frames, no client-side deadline), the
 * framing and status codecs, service registration checks, TLS with ALPN, keepalive and GOAWAY.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import type { Long, Type } from 'protobufjs';
import { etcdService, etcdType, loadEtcdProtos } from '../../src/api/etcd/proto/load.ts';
import { FrameBuilder, FrameReader, frameLengths, frameMessage, parseGrpcTimeout } from '../../src/api/grpc/framing.ts';
import {
  bidiStream,
  clientStream,
  decodeGrpcMessage,
  encodeGrpcMessage,
  GrpcError,
  GrpcServer,
  HTTP2_PREFACE,
  listenClientPort,
  serverStream,
  Status,
  unary,
  type ClientPort,
  type GrpcServerOptions,
} from '../../src/api/grpc/index.ts';

const PutRequest: Type = etcdType('etcdserverpb.PutRequest');
const PutResponse: Type = etcdType('etcdserverpb.PutResponse');
const WatchRequest: Type = etcdType('etcdserverpb.WatchRequest');
const WatchResponse: Type = etcdType('etcdserverpb.WatchResponse');

interface Put { key: Buffer; value: Buffer; lease: Long }
interface WatchReq { create_request: { watch_id: Long } | null }

const putFrame = (key: string, value = ''): Buffer =>
  frameMessage(PutRequest.encode({ key: Buffer.from(key), value: Buffer.from(value) }).finish());
const watchFrame = (id: number): Buffer => frameMessage(WatchRequest.encode({ create_request: { watch_id: id } }).finish());

interface Seen {
  aborts: { method: string; code: number }[];
  received: number[];
}

function buildServer(seen: Seen, options: GrpcServerOptions = {}): GrpcServer {
  const record = (method: string, signal: AbortSignal): void => {
    signal.addEventListener('abort', () => seen.aborts.push({ method, code: (signal.reason as GrpcError).code }), { once: true });
  };
  return new GrpcServer(options)
    .addService(etcdService('etcdserverpb.KV'), {
      Put: unary<Put, object | null>(async (req, call) => {
        const key = req.key.toString();
        if (key === 'sleep') {
          record('Put', call.signal);
          await new Promise((resolve) => call.signal.addEventListener('abort', resolve));
        }
        if (key === 'unencodable') return null; // protobufjs encodes most junk silently, but not null
        return { header: { revision: req.value.length }, prev_kv: { key: req.key, value: req.value } };
      }),
    })
    .addService(etcdService('etcdserverpb.Watch'), {
      Watch: bidiStream<WatchReq, object>(async (call) => {
        record('Watch', call.signal);
        if (call.metadata['mode'] === 'flood') {
          // Ignores back-pressure on purpose: writes without awaiting.
          const blob = { events: [{ kv: { key: Buffer.alloc(60 * 1024, 1) } }] };
          for (let i = 0; i < 10_000 && !call.signal.aborted; i++) void call.write(blob).catch(() => {});
          await new Promise((resolve) => call.signal.addEventListener('abort', resolve));
          return;
        }
        if (call.metadata['mode'] === 'lazy') await sleep(Number(call.metadata['delay']));
        for await (const req of call) {
          const id = Number(req.create_request?.watch_id ?? -1);
          seen.received.push(id);
          await call.write({ watch_id: id, created: true });
        }
      }),
    })
    .addService(etcdService('etcdserverpb.Maintenance'), {
      Snapshot: serverStream<object, object>(async (_req, call) => {
        record('Snapshot', call.signal);
        await call.write({ blob: Buffer.from('one') });
        await new Promise((resolve) => call.signal.addEventListener('abort', resolve));
      }),
    });
}

interface RawResult {
  status: number | undefined;
  headers: http2.IncomingHttpHeaders;
  trailersOnly: boolean;
  trailers: http2.IncomingHttpHeaders | undefined;
  messages: Buffer[];
  rstCode: number | undefined;
}

function grpcStatus(r: RawResult): { code: number; message: string | undefined } {
  const src = r.trailersOnly ? r.headers : r.trailers ?? {};
  const msg = src['grpc-message'];
  return { code: Number(src['grpc-status']), message: msg === undefined ? undefined : decodeGrpcMessage(String(msg)) };
}

/** One request on a raw http2 session; pieces are written with a pause between them. */
async function rawCall(
  session: http2.ClientHttp2Session,
  path: string,
  pieces: Buffer[],
  extraHeaders: http2.OutgoingHttpHeaders = {},
  opts: { end?: boolean; pauseMs?: number } = {},
): Promise<RawResult> {
  const req = session.request({
    ':method': 'POST',
    ':path': path,
    'content-type': 'application/grpc',
    te: 'trailers',
    ...extraHeaders,
  });
  const result: RawResult = { status: undefined, headers: {}, trailersOnly: false, trailers: undefined, messages: [], rstCode: undefined };
  const reader = new FrameReader(1 << 30);
  req.on('response', (headers, flags) => {
    result.status = Number(headers[':status']);
    result.headers = headers;
    result.trailersOnly = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
  });
  req.on('trailers', (t) => (result.trailers = t));
  req.on('data', (chunk: Buffer) => reader.push(chunk, (_c, m) => result.messages.push(Buffer.from(m))));
  req.on('error', () => {});
  const closed = new Promise<void>((resolve) => req.on('close', resolve));
  for (const [i, piece] of pieces.entries()) {
    if (i > 0 && opts.pauseMs !== undefined) await sleep(opts.pauseMs);
    if (!req.closed) req.write(piece);
  }
  if (opts.end !== false && !req.closed) req.end();
  await closed;
  result.rstCode = req.rstCode;
  return result;
}

describe('wire behaviour', () => {
  const seen: Seen = { aborts: [], received: [] };
  let port: ClientPort;
  let url: string;
  let session: http2.ClientHttp2Session;

  before(async () => {
    const server = buildServer(seen, { receiveBytesMax: 1024, writeBufferBytesMax: 1024 * 1024, receiveQueueMessagesMax: 4 });
    port = await listenClientPort({ host: '127.0.0.1', port: 0 }, server.handleStream, (_req, res) => res.end('h1'));
    url = `http://127.0.0.1:${port.address().port}`;
    session = http2.connect(url);
  });

  after(async () => {
    session.close();
    await port.close(200);
  });

  test('HTTP/2 preface sent one byte at a time is still recognised', async () => {
    const socket = net.connect(port.address().port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    const firstFrame = new Promise<Buffer>((resolve) => socket.once('data', resolve));
    for (const byte of HTTP2_PREFACE) {
      socket.write(Buffer.from([byte]));
      await sleep(2);
    }
    socket.write(Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])); // empty SETTINGS
    const frame = await firstFrame;
    assert.equal(frame[3], 4, 'server answers with a SETTINGS frame');
    socket.destroy();
  });

  test('HTTP/1.1 request split after its first byte goes to the http1 handler', async () => {
    const socket = net.connect(port.address().port, '127.0.0.1');
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString()));
    const ended = new Promise((resolve) => socket.on('close', resolve));
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write('P');
    await sleep(20);
    socket.write('UT /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    await ended;
    assert.match(text, /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nh1$/);
  });

  test('a message split across DATA frames and several messages in one chunk', async () => {
    const frame = putFrame('split', 'value');
    const r = await rawCall(session, '/etcdserverpb.KV/Put', [frame.subarray(0, 2), frame.subarray(2, 9), frame.subarray(9)], {}, { pauseMs: 10 });
    assert.deepEqual(grpcStatus(r), { code: 0, message: undefined });
    assert.equal(r.headers['content-type'], 'application/grpc');
    const res = PutResponse.decode(r.messages[0]!) as unknown as { prev_kv: { value: Buffer } };
    assert.equal(res.prev_kv.value.toString(), 'value');
    const before = seen.received.length;
    const w = await rawCall(session, '/etcdserverpb.Watch/Watch', [Buffer.concat([watchFrame(1), watchFrame(2), watchFrame(3)])]);
    assert.deepEqual(grpcStatus(w).code, 0);
    assert.deepEqual(seen.received.slice(before), [1, 2, 3]);
    assert.deepEqual(w.messages.map((m) => Number((WatchResponse.decode(m) as unknown as { watch_id: Long }).watch_id)), [1, 2, 3]);
  });

  test('immediate errors are trailers-only responses', async () => {
    const r = await rawCall(session, '/etcdserverpb.KV/Range', [putFrame('a')]);
    assert.equal(r.status, 200);
    assert.equal(r.trailersOnly, true);
    assert.deepEqual(grpcStatus(r), { code: Status.UNIMPLEMENTED, message: 'unknown method Range for service etcdserverpb.KV' });
    const m = await rawCall(session, '/nopath', []);
    assert.deepEqual(grpcStatus(m), { code: Status.UNIMPLEMENTED, message: 'malformed method name: "/nopath"' });
  });

  test('content-type: +proto echoed, +json refused, non-gRPC gets 415, GET gets 405', async () => {
    const p = await rawCall(session, '/etcdserverpb.KV/Put', [putFrame('ct')], { 'content-type': 'application/grpc+proto' });
    assert.equal(p.headers['content-type'], 'application/grpc+proto');
    assert.equal(grpcStatus(p).code, 0);
    const j = await rawCall(session, '/etcdserverpb.KV/Put', [putFrame('ct')], { 'content-type': 'application/grpc+json' });
    assert.deepEqual(grpcStatus(j), { code: Status.INTERNAL, message: 'grpc: no codec registered for content-subtype json' });
    const t = await rawCall(session, '/etcdserverpb.KV/Put', [Buffer.from('{}')], { 'content-type': 'application/json' });
    assert.equal(t.status, 415);
    const g = await rawCall(session, '/health', [], { ':method': 'GET' });
    assert.equal(g.status, 405);
  });

  test('unary with no message, two messages or a truncated frame: INTERNAL', async () => {
    const none = await rawCall(session, '/etcdserverpb.KV/Put', []);
    assert.equal(grpcStatus(none).code, Status.INTERNAL);
    assert.match(grpcStatus(none).message!, /no request message/);
    const two = await rawCall(session, '/etcdserverpb.KV/Put', [Buffer.concat([putFrame('a'), putFrame('b')])]);
    assert.match(grpcStatus(two).message!, /more than one request message/);
    const cut = await rawCall(session, '/etcdserverpb.KV/Put', [putFrame('abc').subarray(0, 7)]);
    assert.deepEqual(grpcStatus(cut), { code: Status.INTERNAL, message: 'grpc: request ended inside a message frame' });
    const garbage = await rawCall(session, '/etcdserverpb.KV/Put', [frameMessage(Buffer.from([0x0a, 0x7f]))]);
    assert.equal(grpcStatus(garbage).code, Status.INTERNAL);
    assert.match(grpcStatus(garbage).message!, /^grpc: error unmarshalling request: /);
  });

  test('oversize header is refused before its body arrives, and the stream is reset', async () => {
    const header = Buffer.from([0, 0, 0x10, 0, 0]); // announces 1 MiB, sends none of it
    const r = await rawCall(session, '/etcdserverpb.KV/Put', [header], {}, { end: false });
    assert.deepEqual(grpcStatus(r), { code: Status.RESOURCE_EXHAUSTED, message: 'grpc: received message larger than max (1048576 vs. 1024)' });
    assert.equal(r.rstCode, http2.constants.NGHTTP2_NO_ERROR);
  });

  test('compression: gzip frames are inflated, a flag without encoding or an unknown encoding is refused', async () => {
    const plain = PutRequest.encode({ key: Buffer.from('gz'), value: Buffer.from('zipped') }).finish();
    const zipped = gzipSync(plain);
    const frame = Buffer.concat([Buffer.from([1, 0, 0, 0, 0]), zipped]);
    frame.writeUInt32BE(zipped.length, 1);
    const ok = await rawCall(session, '/etcdserverpb.KV/Put', [frame], { 'grpc-encoding': 'gzip' });
    assert.equal(grpcStatus(ok).code, 0);
    assert.equal((PutResponse.decode(ok.messages[0]!) as unknown as { prev_kv: { value: Buffer } }).prev_kv.value.toString(), 'zipped');
    const noEnc = await rawCall(session, '/etcdserverpb.KV/Put', [frame]);
    assert.deepEqual(grpcStatus(noEnc), { code: Status.INTERNAL, message: 'grpc: compressed flag set with identity or empty encoding' });
    const snappy = await rawCall(session, '/etcdserverpb.KV/Put', [frame], { 'grpc-encoding': 'snappy' });
    assert.deepEqual(grpcStatus(snappy), { code: Status.UNIMPLEMENTED, message: 'grpc: Decompressor is not installed for grpc-encoding "snappy"' });
    // A small compressed frame that inflates past the limit.
    const bomb = gzipSync(PutRequest.encode({ key: Buffer.from('b'), value: Buffer.alloc(4096) }).finish());
    const bombFrame = Buffer.concat([Buffer.from([1, 0, 0, 0, 0]), bomb]);
    bombFrame.writeUInt32BE(bomb.length, 1);
    const b = await rawCall(session, '/etcdserverpb.KV/Put', [bombFrame], { 'grpc-encoding': 'gzip' });
    assert.equal(grpcStatus(b).code, Status.RESOURCE_EXHAUSTED);
  });

  test('server-side deadline without a client timer: DEADLINE_EXCEEDED and the handler aborts', async () => {
    const before = seen.aborts.length;
    const t0 = Date.now();
    const r = await rawCall(session, '/etcdserverpb.KV/Put', [putFrame('sleep')], { 'grpc-timeout': '100m' });
    const took = Date.now() - t0;
    assert.deepEqual(grpcStatus(r), { code: Status.DEADLINE_EXCEEDED, message: 'context deadline exceeded' });
    assert.ok(took >= 90 && took < 1000, `took ${took} ms`);
    assert.deepEqual(seen.aborts.slice(before), [{ method: 'Put', code: Status.DEADLINE_EXCEEDED }]);
    const bad = await rawCall(session, '/etcdserverpb.KV/Put', [putFrame('a')], { 'grpc-timeout': '12x' });
    assert.deepEqual(grpcStatus(bad), { code: Status.INTERNAL, message: 'malformed grpc-timeout: 12x' });
  });

  test('a response encode cannot take ends the call with INTERNAL', async () => {
    const r = await rawCall(session, '/etcdserverpb.KV/Put', [putFrame('unencodable')]);
    assert.equal(grpcStatus(r).code, Status.INTERNAL);
    assert.match(grpcStatus(r).message!, /^grpc: error while marshaling: /);
  });

  test('reset of a server stream after its first message aborts the handler', async () => {
    const before = seen.aborts.length;
    const req = session.request({ ':method': 'POST', ':path': '/etcdserverpb.Maintenance/Snapshot', 'content-type': 'application/grpc' });
    req.on('error', () => {});
    req.end(frameMessage(new Uint8Array(0)));
    await new Promise((resolve) => req.once('data', resolve));
    req.close(http2.constants.NGHTTP2_CANCEL);
    for (let i = 0; i < 100 && seen.aborts.length === before; i++) await sleep(5);
    assert.deepEqual(seen.aborts.slice(before), [{ method: 'Snapshot', code: Status.CANCELLED }]);
  });

  test('a handler ignoring write() back-pressure is cut at the hard cap with ENHANCE_YOUR_CALM', async () => {
    const before = seen.aborts.length;
    const req = session.request({ ':method': 'POST', ':path': '/etcdserverpb.Watch/Watch', 'content-type': 'application/grpc', mode: 'flood' });
    req.on('error', () => {});
    req.pause(); // never read
    await new Promise((resolve) => req.on('close', resolve));
    assert.equal(req.rstCode, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    assert.deepEqual(seen.aborts.slice(before), [{ method: 'Watch', code: Status.RESOURCE_EXHAUSTED }]);
  });

  test('a handler that does not read its request stream pauses the client (inbound flow control)', async () => {
    const s2 = http2.connect(url); // fresh connection: a clean flow-control window
    const req = s2.request({ ':method': 'POST', ':path': '/etcdserverpb.Watch/Watch', 'content-type': 'application/grpc', mode: 'lazy', delay: '400' });
    req.on('error', () => {});
    req.on('data', () => {});
    const big = (id: number): Buffer => frameMessage(WatchRequest.encode({ create_request: { watch_id: id, key: Buffer.alloc(900, 7) } }).finish());
    let accepted = 0;
    // The server queues 4 messages, then stops reading; node's stream and session windows
    // (64 KiB each by default) hold the rest, so the client's writes back up.
    for (let i = 1; i <= 400; i++) {
      req.write(big(i));
      accepted = i;
    }
    await sleep(200);
    const stuck = req.writableLength;
    assert.ok(stuck > 100 * 1024, `client buffered only ${stuck} bytes: the server kept reading`);
    req.end();
    const before = seen.received.length;
    await new Promise((resolve) => req.on('close', resolve));
    assert.deepEqual(seen.received.slice(before), Array.from({ length: accepted }, (_, i) => i + 1));
    s2.close();
  });

  test('HTTP/2 request that is not gRPC can be routed to otherStream', async () => {
    const server = new GrpcServer({
      otherStream: (stream, headers) => {
        stream.respond({ ':status': 200, 'content-type': 'text/plain' });
        stream.end(`h2 ${headers[':path']}`);
      },
    });
    const p = await listenClientPort({ host: '127.0.0.1', port: 0 }, server.handleStream, (_q, res) => res.end());
    const s = http2.connect(`http://127.0.0.1:${p.address().port}`);
    const req = s.request({ ':path': '/health' });
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    await new Promise((resolve) => req.on('end', resolve));
    assert.equal(body, 'h2 /health');
    s.close();
    await p.close(100);
  });
});

describe('client streaming, keepalive and GOAWAY', () => {
  test('clientStream handler sums the stream and returns one response', async () => {
    // etcd has no client-streaming RPC; declare one over etcd message types in a private root.
    const root = loadEtcdProtos();
    const service = new protobuf.Service('Sum');
    service.add(new protobuf.Method('Sum', 'rpc', 'etcdserverpb.LeaseKeepAliveRequest', 'etcdserverpb.LeaseKeepAliveResponse', true, false));
    root.define('test').add(service);
    root.resolveAll();
    const server = new GrpcServer();
    server.addService(service, {
      Sum: clientStream<{ ID: Long }, object>(async (call) => {
        let total = 0;
        for await (const r of call) total += Number(r.ID);
        return { ID: total, TTL: call.metadata['x-n'] ?? 0 };
      }),
    });
    const port = await listenClientPort({ host: '127.0.0.1', port: 0 }, server.handleStream, (_q, res) => res.end());
    const client = new grpc.Client(`127.0.0.1:${port.address().port}`, grpc.credentials.createInsecure());
    const req = etcdType('etcdserverpb.LeaseKeepAliveRequest');
    const res = etcdType('etcdserverpb.LeaseKeepAliveResponse');
    const md = new grpc.Metadata();
    md.set('x-n', '3');
    const result = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const call = client.makeClientStreamRequest(
        '/test.Sum/Sum',
        (o: object) => Buffer.from(req.encode(req.fromObject(o)).finish()),
        (b: Buffer) => res.toObject(res.decode(b), { longs: String }),
        md,
        {},
        (err, value) => (err !== null ? reject(err) : resolve(value!)),
      );
      call.write({ ID: 1 });
      call.write({ ID: 2 });
      call.write({ ID: 39 });
      call.end();
    });
    assert.deepEqual(result, { ID: '42', TTL: '3' });
    client.close();
    await port.close(100);
  });

  test('server pings on the keepalive interval; close() sends GOAWAY', async () => {
    const port = await listenClientPort({ host: '127.0.0.1', port: 0, keepaliveIntervalMs: 40, keepaliveTimeoutMs: 1000 }, new GrpcServer().handleStream, (_q, res) => res.end());
    const s = http2.connect(`http://127.0.0.1:${port.address().port}`);
    let pings = 0;
    s.on('ping', () => pings++);
    const goaway = new Promise<number>((resolve) => s.on('goaway', (code: number) => resolve(code)));
    await sleep(250);
    assert.ok(pings >= 3, `only ${pings} pings`);
    const closing = port.close(200);
    assert.equal(await goaway, http2.constants.NGHTTP2_NO_ERROR);
    await closing;
    s.destroy();
  });

  test('a silent plaintext connection is dropped after the sniff timeout', async () => {
    const port = await listenClientPort({ host: '127.0.0.1', port: 0, sniffTimeoutMs: 100 }, new GrpcServer().handleStream, (_q, res) => res.end());
    const socket = net.connect(port.address().port, '127.0.0.1');
    const t0 = Date.now();
    await new Promise((resolve) => socket.on('close', resolve));
    assert.ok(Date.now() - t0 < 1000);
    await port.close(100);
  });
});

describe('TLS with ALPN', () => {
  let dir: string | undefined;
  let key: Buffer | undefined;
  let cert: Buffer | undefined;
  before(() => {
    try {
      dir = mkdtempSync(join(tmpdir(), 'conclave-grpc-tls-'));
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore', timeout: 20_000 });
      key = readFileSync(join(dir, 'key.pem'));
      cert = readFileSync(join(dir, 'cert.pem'));
    } catch {
      key = undefined;
    }
  });
  after(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  test('grpc-js over TLS (h2) and HTTPS/1.1 share the port', async (t) => {
    if (key === undefined || cert === undefined) {
      t.skip('openssl could not make a test certificate');
      return;
    }
    const seen: Seen = { aborts: [], received: [] };
    const port = await listenClientPort({ host: '127.0.0.1', port: 0, tls: { key, cert } }, buildServer(seen).handleStream, (req, res) => res.end(`h1 ${req.url} ${(req.socket as { encrypted?: boolean }).encrypted === true}`));
    const n = port.address().port;
    // An IP as TLS server name is deprecated (RFC 6066); name the certificate's host instead.
    const client = new grpc.Client(`127.0.0.1:${n}`, grpc.credentials.createSsl(cert), { 'grpc.ssl_target_name_override': 'localhost' });
    const value = await new Promise<Record<string, unknown>>((resolve, reject) => {
      client.makeUnaryRequest(
        '/etcdserverpb.KV/Put',
        (o: object) => Buffer.from(PutRequest.encode(PutRequest.fromObject(o)).finish()),
        (b: Buffer) => PutResponse.toObject(PutResponse.decode(b), { longs: String }),
        { key: Buffer.from('tls'), value: Buffer.from('secret') },
        (err, v) => (err !== null ? reject(err) : resolve(v!)),
      );
    });
    assert.equal((value.header as { revision: string }).revision, '6');
    const body = await new Promise<string>((resolve, reject) => {
      https.get({ host: '127.0.0.1', servername: 'localhost', port: n, path: '/health', ca: cert }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve(text));
      }).on('error', reject);
    });
    assert.equal(body, 'h1 /health true');
    client.close();
    await port.close(100);
  });
});

describe('codecs and registration', () => {
  test('FrameReader reassembles any chunking of any message sequence', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 20 }),
        (messages, cuts) => {
          const wire = Buffer.concat(messages.map((m) => frameMessage(m)));
          const reader = new FrameReader(300);
          const got: Buffer[] = [];
          let off = 0;
          for (let i = 0; off < wire.length; i++) {
            const n = cuts[i % cuts.length]!;
            reader.push(wire.subarray(off, off + n), (compressed, m) => {
              assert.equal(compressed, false);
              got.push(Buffer.from(m));
            });
            off += n;
          }
          assert.equal(reader.partial, false);
          assert.deepEqual(got, messages.map((m) => Buffer.from(m)));
        },
      ),
    );
  });

  test('FrameBuilder frames messages as frameMessage does; frameLengths reads them back and refuses partial frames', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }), (messages) => {
        const b = new FrameBuilder(1);
        for (const m of messages) {
          b.begin();
          b.writer.raw(m);
          b.end();
        }
        const frames = b.finish();
        assert.deepEqual(Buffer.from(frames), Buffer.concat(messages.map((m) => frameMessage(m))));
        assert.deepEqual(frameLengths(frames), messages.map((m) => m.length));
        if (frames.length > 0) assert.throws(() => frameLengths(frames.subarray(0, frames.length - 1)), /truncated frame/);
      }),
    );
    const b = new FrameBuilder(1);
    assert.throws(() => b.end(), /outside a frame/);
    b.begin();
    assert.throws(() => b.finish(), /inside a frame/);
  });

  test('FrameReader refuses an oversize header at once', () => {
    const reader = new FrameReader(10);
    assert.throws(() => reader.push(Buffer.from([0, 0, 0, 0, 11]), () => {}), (e: GrpcError) => e.code === Status.RESOURCE_EXHAUSTED && e.message === 'grpc: received message larger than max (11 vs. 10)');
  });

  test('grpc-timeout: every unit, limits and malformed values', () => {
    const max = 1e12;
    assert.equal(parseGrpcTimeout('2H', max), 7_200_000);
    assert.equal(parseGrpcTimeout('3M', max), 180_000);
    assert.equal(parseGrpcTimeout('5S', max), 5_000);
    assert.equal(parseGrpcTimeout('250m', max), 250);
    assert.equal(parseGrpcTimeout('1500u', max), 2);
    assert.equal(parseGrpcTimeout('1n', max), 1); // tiny but positive still expires
    assert.equal(parseGrpcTimeout('0S', max), 0);
    assert.equal(parseGrpcTimeout('99999999H', 1000), 1000);
    for (const bad of ['', 'S', '5', '5s', '123456789S', '-1S', '1.5S', ' 1S']) {
      assert.throws(() => parseGrpcTimeout(bad, max), (e: GrpcError) => e.code === Status.INTERNAL, bad);
    }
  });

  test('grpc-message percent-encoding per the spec', () => {
    assert.equal(encodeGrpcMessage('plain text ~'), 'plain text ~');
    assert.equal(encodeGrpcMessage('100%'), '100%25');
    assert.equal(encodeGrpcMessage('a\nb'), 'a%0Ab');
    assert.equal(encodeGrpcMessage('ü'), '%C3%BC');
    assert.equal(decodeGrpcMessage('%zz%4'), '%zz%4'); // malformed escapes kept
    fc.assert(fc.property(fc.string({ unit: 'grapheme' }), (s) => assert.equal(decodeGrpcMessage(encodeGrpcMessage(s)), s)));
  });

  test('addService checks method names, kinds and duplicates', () => {
    const kv = etcdService('etcdserverpb.KV');
    const noop = async (): Promise<object> => ({});
    assert.throws(() => new GrpcServer().addService(kv, { Nope: unary(noop) }), /has no method Nope/);
    assert.throws(() => new GrpcServer().addService(kv, { Range: bidiStream(async () => {}) }), /is unary but its handler is bidiStream/);
    const s = new GrpcServer().addService(kv, { Range: unary(noop) });
    assert.throws(() => s.addService(kv, { Range: unary(noop) }), /already registered/);
    assert.deepEqual(s.paths(), ['/etcdserverpb.KV/Range']);
    assert.throws(() => new GrpcServer({ writeBufferBytes: 10, writeBufferBytesMax: 5 }), /writeBufferBytesMax/);
  });

  test('GrpcError keeps code, message and cause', () => {
    const cause = new Error('disk');
    const e = new GrpcError(Status.UNAVAILABLE, 'etcdserver: request timed out', { cause });
    assert.equal(e.code, 14);
    assert.equal(e.cause, cause);
    assert.ok(e instanceof Error);
  });
});
