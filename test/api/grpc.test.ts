/**
 * The gRPC transport end to end with real clients: @grpc/grpc-js (and etcdctl when installed)
 * against GrpcServer on the one-port mux, serving the etcd protos with a fake in-memory
 * backend that belongs to this test only.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import type { Long } from 'protobufjs';
import { etcdService, etcdType } from '../../src/api/etcd/proto/load.ts';
import { Client } from '../helpers/grpc-client.ts';
import {
  bidiStream,
  FrameBuilder,
  GrpcError,
  GrpcServer,
  listenClientPort,
  serverStream,
  Status,
  unary,
  type ClientPort,
  type GrpcServerOptions,
} from '../../src/api/grpc/index.ts';

// ---- request shapes as the server receives them (see the convention in server.ts) ---------

interface RangeRequest { key: Buffer; revision: Long }
interface PutRequest { key: Buffer; value: Buffer; lease: Long; prev_kv: boolean }
interface WatchRequest { create_request: { key: Buffer; watch_id: Long } | null }
interface LeaseKeepAliveRequest { ID: Long }

const REV = (2n ** 60n + 1n).toString(); // beyond 2^53: exact only if int64 stays exact

// ---- fake backend and probes ---------------------------------------------------------------

interface Probes {
  kv: Map<string, string>;
  sleepAborts: { code: number }[];
  watchAborts: { code: number }[];
  snapshotWritten: number;
  handlerErrors: string[];
}

function newProbes(): Probes {
  return { kv: new Map(), sleepAborts: [], watchAborts: [], snapshotWritten: 0, handlerErrors: [] };
}

function header(): Record<string, string> {
  return { cluster_id: '14841639068965178418', member_id: '10276657743932975437', revision: REV, raft_term: '2' };
}

async function sleepUnlessAborted(ms: number, signal: AbortSignal, record: { code: number }[]): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch {
    record.push({ code: (signal.reason as GrpcError).code });
    throw signal.reason;
  }
}

function buildServer(p: Probes, options: GrpcServerOptions = {}): GrpcServer {
  const server = new GrpcServer({ ...options, onHandlerError: (err) => p.handlerErrors.push(String(err)) });
  server.addService(etcdService('etcdserverpb.KV'), {
    Range: unary<RangeRequest, object>(async (req) => {
      const key = req.key.toString();
      const value = p.kv.get(key);
      const kvs = value === undefined ? [] : [{ key: req.key, value: Buffer.from(value), create_revision: REV, mod_revision: REV, version: 1 }];
      // Echo the requested revision through count to prove request int64s arrive exactly.
      return { header: header(), kvs, count: req.revision.toString() === '0' ? kvs.length : req.revision.toString() };
    }),
    Put: unary<PutRequest, object>(async (req, call) => {
      const key = req.key.toString();
      if (key === 'err/grpc') throw new GrpcError(Status.INVALID_ARGUMENT, 'etcdserver: key is not provided');
      if (key === 'err/encoded') throw new GrpcError(Status.FAILED_PRECONDITION, '100% fail: ünïcode\nline');
      if (key === 'err/plain') throw new Error('boom');
      if (key === 'sleep') await sleepUnlessAborted(Number(req.value.toString()), call.signal, p.sleepAborts);
      const prev = p.kv.get(key);
      p.kv.set(key, req.value.toString());
      return {
        header: { ...header(), raft_term: req.lease.toString() },
        prev_kv: req.prev_kv && prev !== undefined ? { key: req.key, value: Buffer.from(prev) } : null,
      };
    }),
    // DeleteRange deliberately absent: UNIMPLEMENTED "unknown method".
  });
  server.addService(etcdService('etcdserverpb.Watch'), {
    Watch: bidiStream<WatchRequest, object>(async (call) => {
      try {
        for await (const req of call) {
          const c = req.create_request;
          if (c === null) continue;
          if (c.key.toString() === 'encoded') {
            // Three responses the handler encoded and framed itself, sent with one write.
            const frames = new FrameBuilder(16);
            for (const id of [101, 102, 103]) {
              frames.begin();
              frames.writer.raw(etcdType('etcdserverpb.WatchResponse').encode({ header: header(), watch_id: id, created: true }).finish());
              frames.end();
            }
            await call.writeFrames(frames.finish());
            continue;
          }
          if (c.key.toString() === 'fail-after-reply') {
            // Ends the call with an error while the client is still sending.
            await call.write({ header: header(), watch_id: c.watch_id, created: true });
            throw new GrpcError(Status.UNAVAILABLE, 'etcdserver: no leader');
          }
          await call.write({ header: header(), watch_id: c.watch_id, created: true, events: [{ type: 0, kv: { key: c.key, mod_revision: REV } }] });
        }
      } catch (err) {
        p.watchAborts.push({ code: (err as GrpcError).code });
        throw err;
      }
    }),
  });
  server.addService(etcdService('etcdserverpb.Lease'), {
    LeaseKeepAlive: bidiStream<LeaseKeepAliveRequest, object>(async (call) => {
      for await (const req of call) await call.write({ header: header(), ID: req.ID, TTL: 60 });
    }),
  });
  server.addService(etcdService('etcdserverpb.Maintenance'), {
    Status: unary<object, object>(async (_req, call) => {
      // Report what the transport saw, for the metadata test.
      return { header: header(), version: JSON.stringify({ token: call.metadata['token'], peer: call.peer, deadline: call.deadline !== undefined }) };
    }),
    Snapshot: serverStream<object, object>(async (_req, call) => {
      const chunks = Number(call.metadata['chunks'] ?? '3');
      const bytes = Number(call.metadata['chunk-bytes'] ?? '16');
      p.snapshotWritten = 0;
      for (let i = 0; i < chunks; i++) {
        await call.write({ header: header(), remaining_bytes: (chunks - i - 1) * bytes, blob: Buffer.alloc(bytes, i & 0xff) });
        p.snapshotWritten++;
      }
    }),
  });
  return server;
}

function http1Handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ method: req.method, url: req.url, body: Buffer.concat(chunks).toString(), httpVersion: req.httpVersion }));
  });
}

async function rejectsWith(p: Promise<unknown>, code: number, details: string | RegExp): Promise<void> {
  await assert.rejects(p, (err: grpc.ServiceError) => {
    assert.equal(err.code, code, `code (details: ${err.details})`);
    if (typeof details === 'string') assert.equal(err.details, details);
    else assert.match(err.details, details);
    return true;
  });
}

const KV = etcdService('etcdserverpb.KV');
const Watch = etcdService('etcdserverpb.Watch');
const Lease = etcdService('etcdserverpb.Lease');
const Maintenance = etcdService('etcdserverpb.Maintenance');

// ---- the tests ---------------------------------------------------------------------------------

describe('gRPC server with grpc-js as the client', () => {
  const probes = newProbes();
  const receiveBytesMax = 64 * 1024;
  let port: ClientPort;
  let address: string;
  let client: Client;

  before(async () => {
    const server = buildServer(probes, { receiveBytesMax });
    port = await listenClientPort({ host: '127.0.0.1', port: 0 }, server.handleStream, http1Handler);
    address = `127.0.0.1:${port.address().port}`;
    client = new Client(address);
  });

  after(async () => {
    client.close();
    await port.close(500);
  });

  test('unary round trip: put then range', async () => {
    const put = await client.unary(KV, 'Put', { key: Buffer.from('k1'), value: Buffer.from('v1'), lease: 7 });
    assert.equal((put.header as Record<string, string>).raft_term, '7');
    const put2 = await client.unary(KV, 'Put', { key: Buffer.from('k1'), value: Buffer.from('v2'), prev_kv: true });
    assert.equal(Buffer.from((put2.prev_kv as { value: Uint8Array }).value).toString(), 'v1');
    const r = await client.unary(KV, 'Range', { key: Buffer.from('k1') });
    const kvs = r.kvs as { key: Uint8Array; value: Uint8Array }[];
    assert.equal(kvs.length, 1);
    assert.equal(Buffer.from(kvs[0]!.value).toString(), 'v2');
    assert.equal(r.count, '1');
  });

  test('int64 is exact in both directions (2^60 + 1, 2^63 - 1)', async () => {
    const r = await client.unary(KV, 'Range', { key: Buffer.from('nope'), revision: REV });
    assert.equal(r.count, REV); // request int64 arrived as an exact Long
    assert.equal((r.header as Record<string, string>).revision, REV); // response string encoded exactly
    assert.equal((r.header as Record<string, string>).cluster_id, '14841639068965178418'); // uint64 > 2^63
    const max = (2n ** 63n - 1n).toString();
    const put = await client.unary(KV, 'Put', { key: Buffer.from('k2'), value: Buffer.from('x'), lease: max });
    assert.equal((put.header as Record<string, string>).raft_term, max);
  });

  test('GrpcError reaches the client with its exact code and message', async () => {
    await rejectsWith(client.unary(KV, 'Put', { key: Buffer.from('err/grpc') }), Status.INVALID_ARGUMENT, 'etcdserver: key is not provided');
  });

  test('messages with %, non-ASCII and newlines survive percent-encoding', async () => {
    await rejectsWith(client.unary(KV, 'Put', { key: Buffer.from('err/encoded') }), Status.FAILED_PRECONDITION, '100% fail: ünïcode\nline');
  });

  test('a plain thrown Error becomes INTERNAL with its message, and is reported', async () => {
    await rejectsWith(client.unary(KV, 'Put', { key: Buffer.from('err/plain') }), Status.INTERNAL, 'boom');
    assert.ok(probes.handlerErrors.some((e) => e.includes('boom')));
  });

  test('unknown method and unknown service: UNIMPLEMENTED in grpc-go words', async () => {
    await rejectsWith(client.unary(KV, 'DeleteRange', { key: Buffer.from('a') }), Status.UNIMPLEMENTED, 'unknown method DeleteRange for service etcdserverpb.KV');
    await rejectsWith(client.unary(etcdService('etcdserverpb.Cluster'), 'MemberList', {}), Status.UNIMPLEMENTED, 'unknown service etcdserverpb.Cluster');
  });

  test('oversize request: RESOURCE_EXHAUSTED, and the connection stays usable', async () => {
    const value = Buffer.alloc(receiveBytesMax + 100, 0x61);
    const req = KV.methods.Put!.resolvedRequestType!;
    const size = req.encode({ key: Buffer.from('big'), value }).finish().length;
    await rejectsWith(client.unary(KV, 'Put', { key: Buffer.from('big'), value }), Status.RESOURCE_EXHAUSTED, `grpc: received message larger than max (${size} vs. ${receiveBytesMax})`);
    // Exactly at the limit is accepted.
    const ok = Buffer.alloc(receiveBytesMax - 16, 0x62);
    const okSize = req.encode({ key: Buffer.from('big'), value: ok }).finish().length;
    assert.ok(okSize <= receiveBytesMax);
    await client.unary(KV, 'Put', { key: Buffer.from('big'), value: ok });
    assert.equal(probes.kv.get('big')?.length, ok.length);
  });

  test('deadline: client sees DEADLINE_EXCEEDED, the handler signal aborts', async () => {
    const before = probes.sleepAborts.length;
    const t0 = Date.now();
    await rejectsWith(client.unary(KV, 'Put', { key: Buffer.from('sleep'), value: Buffer.from('5000') }, { deadlineMs: 200 }), Status.DEADLINE_EXCEEDED, /deadline/i);
    assert.ok(Date.now() - t0 < 2000);
    for (let i = 0; i < 50 && probes.sleepAborts.length === before; i++) await sleep(20);
    assert.equal(probes.sleepAborts.length, before + 1);
    // The server's own timer and the client's RST race; either ends the handler.
    assert.ok([Status.DEADLINE_EXCEEDED, Status.CANCELLED].includes(probes.sleepAborts[before]!.code as 1 | 4));
  });

  test('metadata (token), peer and deadline reach the handler', async () => {
    const md = new grpc.Metadata();
    md.set('token', 'abc.def');
    const r = await client.unary(Maintenance, 'Status', {}, { metadata: md, deadlineMs: 5000 });
    const seen = JSON.parse(r.version as string) as { token: string; peer: string; deadline: boolean };
    assert.equal(seen.token, 'abc.def');
    assert.match(seen.peer, /^127\.0\.0\.1:\d+$/);
    assert.equal(seen.deadline, true);
  });

  test('bidi: watch echo keeps order across many messages', async () => {
    const call = client.bidi(Watch, 'Watch');
    const got: string[] = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on('data', (m: Record<string, unknown>) => got.push(`${m.watch_id as string}`));
      call.on('end', resolve);
      call.on('error', reject);
    });
    for (let i = 1; i <= 200; i++) call.write({ create_request: { key: Buffer.from(`w${i}`), watch_id: i } });
    call.end();
    await done;
    assert.deepEqual(got, Array.from({ length: 200 }, (_, i) => String(i + 1)));
  });

  test('bidi: a handler that fails while the client still sends ends the call with its status, after its replies', async () => {
    for (let round = 0; round < 20; round++) {
      const call = client.bidi(Watch, 'Watch');
      const got: string[] = [];
      const ended = new Promise<grpc.ServiceError>((resolve, reject) => {
        call.on('data', (m: Record<string, unknown>) => got.push(`${m.watch_id as string}`));
        call.on('error', resolve);
        call.on('end', () => reject(new Error('ended without an error')));
      });
      call.write({ create_request: { key: Buffer.from('fail-after-reply'), watch_id: 7 } });
      const err = await ended;
      assert.equal(err.code, grpc.status.UNAVAILABLE, err.details);
      assert.equal(err.details, 'etcdserver: no leader');
      assert.deepEqual(got, ['7']);
    }
  });

  test('bidi: messages the handler encoded itself arrive as separate messages, in order, between written ones', async () => {
    const call = client.bidi(Watch, 'Watch');
    const got: string[] = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on('data', (m: Record<string, unknown>) => got.push(`${m.watch_id as string}`));
      call.on('end', resolve);
      call.on('error', reject);
    });
    call.write({ create_request: { key: Buffer.from('w1'), watch_id: 1 } });
    call.write({ create_request: { key: Buffer.from('encoded'), watch_id: 2 } });
    call.write({ create_request: { key: Buffer.from('w3'), watch_id: 3 } });
    call.end();
    await done;
    assert.deepEqual(got, ['1', '101', '102', '103', '3']);
  });

  test('bidi: lease keep-alive answers each request', async () => {
    const call = client.bidi(Lease, 'LeaseKeepAlive');
    const ids: string[] = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on('data', (m: Record<string, unknown>) => ids.push(m.ID as string));
      call.on('end', resolve);
      call.on('error', reject);
    });
    call.write({ ID: '7587862594726232081' });
    call.write({ ID: 42 });
    call.end();
    await done;
    assert.deepEqual(ids, ['7587862594726232081', '42']);
  });

  test('client cancel of a bidi stream aborts the handler with CANCELLED', async () => {
    const before = probes.watchAborts.length;
    const call = client.bidi(Watch, 'Watch');
    call.on('error', () => {});
    const first = new Promise((resolve) => call.once('data', resolve));
    call.write({ create_request: { key: Buffer.from('c'), watch_id: 1 } });
    await first;
    call.cancel();
    for (let i = 0; i < 100 && probes.watchAborts.length === before; i++) await sleep(10);
    assert.deepEqual(probes.watchAborts.slice(before), [{ code: Status.CANCELLED }]);
  });

  test('server streaming: snapshot chunks arrive in order', async () => {
    const md = new grpc.Metadata();
    md.set('chunks', '10');
    md.set('chunk-bytes', '1000');
    const call = client.serverStream(Maintenance, 'Snapshot', {}, md);
    const blobs: Uint8Array[] = [];
    const remaining: string[] = [];
    for await (const m of call as AsyncIterable<Record<string, unknown>>) {
      blobs.push(m.blob as Uint8Array);
      remaining.push((m.remaining_bytes as string | undefined) ?? '0');
    }
    assert.equal(blobs.length, 10);
    blobs.forEach((b, i) => assert.ok(b.length === 1000 && b.every((x) => x === i)));
    assert.equal(remaining[0], '9000');
  });

  test('server streaming back-pressure: a paused consumer stalls the handler', async () => {
    const chunks = 200;
    const chunkBytes = 64 * 1024; // 12.5 MiB in all
    const md = new grpc.Metadata();
    md.set('chunks', String(chunks));
    md.set('chunk-bytes', String(chunkBytes));
    const call = client.serverStream(Maintenance, 'Snapshot', {}, md);
    let received = 0;
    const ended = new Promise<void>((resolve, reject) => {
      call.on('end', resolve);
      call.on('error', reject);
    });
    await new Promise<void>((resolve) => {
      call.on('data', () => {
        received++;
        if (received === 5) {
          call.pause();
          resolve();
        }
      });
    });
    await sleep(300);
    const stalledAt = probes.snapshotWritten;
    await sleep(300);
    assert.equal(probes.snapshotWritten, stalledAt, 'handler kept writing while the client was paused');
    // What the server holds beyond what the client took: its write buffer, the HTTP/2 window
    // and grpc-js's read-ahead — a few chunks, not the 200.
    const ahead = stalledAt - received;
    assert.ok(ahead < 32, `handler ran ${ahead} chunks (${(ahead * chunkBytes) / 2 ** 20} MiB) ahead of the client`);
    call.resume();
    await ended;
    assert.equal(received, chunks);
    assert.equal(probes.snapshotWritten, chunks);
  });

  test('many concurrent calls on one connection', async () => {
    const n = 1000;
    await Promise.all(Array.from({ length: n }, (_, i) => client.unary(KV, 'Put', { key: Buffer.from(`c/${i}`), value: Buffer.from(String(i)) })));
    const rs = await Promise.all(Array.from({ length: n }, (_, i) => client.unary(KV, 'Range', { key: Buffer.from(`c/${i}`) })));
    rs.forEach((r, i) => assert.equal(Buffer.from((r.kvs as { value: Uint8Array }[])[0]!.value).toString(), String(i)));
  });

  test('HTTP/1.1 on the same port goes to the http1 handler (GET, POST, keep-alive)', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const request = (method: string, path: string, body?: string): Promise<{ status: number; json: Record<string, string> }> =>
      new Promise((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port: port.address().port, method, path, agent }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(text) as Record<string, string> }));
        });
        req.on('error', reject);
        req.end(body);
      });
    const get = await request('GET', '/health');
    assert.deepEqual(get, { status: 200, json: { method: 'GET', url: '/health', body: '', httpVersion: '1.1' } });
    // "POST" shares its first byte with the HTTP/2 preface "PRI ...".
    const post = await request('POST', '/v3/kv/range', '{"key":"YQ=="}');
    assert.equal(post.json.body, '{"key":"YQ=="}');
    const again = await request('GET', '/version');
    assert.equal(again.json.url, '/version');
    agent.destroy();
  });

  test('etcdctl 3.4 (grpc-go) puts and gets through the server', async (t) => {
    const etcdctl = '/usr/bin/etcdctl';
    if (!existsSync(etcdctl)) {
      t.skip('etcdctl not installed (Debian package etcd-client); skipping the grpc-go interop check');
      return;
    }
    const run = (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
      new Promise((resolve) => {
        execFile(etcdctl, [`--endpoints=${address}`, '--command-timeout=5s', ...args], { timeout: 15_000, env: { ...process.env, ETCDCTL_API: '3' } }, (err, stdout, stderr) => {
          resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
        });
      });
    const put = await run('put', 'a', 'b');
    assert.equal(put.code, 0, put.stderr);
    assert.equal(put.stdout, 'OK\n');
    const get = await run('get', 'a');
    assert.equal(get.code, 0, get.stderr);
    assert.equal(get.stdout, 'a\nb\n');
    // grpc-go decodes the 2^60+1 revision exactly.
    const json = await run('get', 'a', '--write-out=json');
    assert.equal(json.code, 0, json.stderr);
    assert.match(json.stdout, new RegExp(`"revision":${REV}[,}]`));
    const bad = await run('put', 'err/grpc', 'x');
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /etcdserver: key is not provided/);
  });
});

describe('graceful close', () => {
  test('in-flight calls finish, open streams are cut after the grace period, the port stops accepting', async () => {
    const probes = newProbes();
    const server = buildServer(probes);
    const port = await listenClientPort({ host: '127.0.0.1', port: 0 }, server.handleStream, http1Handler);
    const address = `127.0.0.1:${port.address().port}`;
    const client = new Client(address);
    // An open bidi stream that never ends by itself.
    const watch = client.bidi(Watch, 'Watch');
    const watchEnded = new Promise<string>((resolve) => {
      watch.on('error', (e: grpc.ServiceError) => resolve(`error ${e.code}`));
      watch.on('end', () => resolve('end'));
      watch.on('data', () => {});
    });
    watch.write({ create_request: { key: Buffer.from('x'), watch_id: 1 } });
    await client.unary(KV, 'Range', { key: Buffer.from('x') }); // connection is up
    // A call in flight when close begins.
    const slow = client.unary(KV, 'Put', { key: Buffer.from('sleep'), value: Buffer.from('150') });
    await sleep(30);
    const t0 = Date.now();
    await port.close(600);
    const took = Date.now() - t0;
    await slow; // completed normally despite the GOAWAY
    assert.match(await watchEnded, /^(end|error \d+)$/);
    assert.ok(took >= 500 && took < 3000, `close took ${took} ms`);
    assert.equal(probes.watchAborts.length, 1, 'the watch handler was told');
    await assert.rejects(
      new Promise((resolve, reject) => {
        const s = http.get({ host: '127.0.0.1', port: Number(address.split(':')[1]) }, resolve);
        s.on('error', reject);
      }),
    );
    client.close();
  });

  test('close() with no connections resolves at once', async () => {
    const port = await listenClientPort({ host: '127.0.0.1', port: 0 }, new GrpcServer().handleStream, http1Handler);
    const t0 = Date.now();
    await port.close();
    assert.ok(Date.now() - t0 < 500);
  });
});
