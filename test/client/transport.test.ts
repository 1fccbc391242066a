/**
 * The client's HTTP/2 transport against scripted HTTP/2 servers: a gRPC reply split over many
 * DATA frames, a trailers-only error status, and — what the retry rule rests on — whether a
 * failed request may have reached the server: a refused dial or a stream refused with
 * REFUSED_STREAM (or left out by GOAWAY) surely did not; a stream reset after it was taken may have.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { frameMessage } from '../../src/api/grpc/framing.ts';
import { Status } from '../../src/api/grpc/status.ts';
import { ConnectionError, type EtcdError, KeyNotFoundError } from '../../src/client/errors.ts';
import { CLIENT_LIMITS } from '../../src/client/options.ts';
import { Endpoint } from '../../src/client/transport.ts';
import { freePort } from '../helpers/ports.ts';

const servers: http2.Http2Server[] = [];
after(() => {
  for (const s of servers) s.close();
});

async function serve(onStream: (stream: http2.ServerHttp2Stream) => void, onSession?: (session: http2.ServerHttp2Session) => void): Promise<string> {
  const server = http2.createServer();
  server.on('stream', (stream) => {
    stream.on('error', () => {});
    onStream(stream);
  });
  server.on('session', (s) => {
    s.on('error', () => {});
    onSession?.(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** One call: resolves with the messages and the end (null for status OK). */
async function call(url: string, request = Buffer.from('req')): Promise<{ messages: Buffer[]; error: EtcdError | null }> {
  const endpoint = new Endpoint(url, undefined, { ...CLIENT_LIMITS });
  const messages: Buffer[] = [];
  try {
    return await new Promise((resolve, reject) => {
      endpoint
        .open('/etcdserverpb.KV/Range', {}, Date.now() + 5_000, {
          message: (m) => messages.push(Buffer.from(m)),
          end: (error) => resolve({ messages, error }),
        })
        .then((c) => {
          c.send(request);
          c.halfClose();
        }, reject);
    });
  } finally {
    endpoint.close();
  }
}

test('a reply split across DATA frames is reassembled; the status comes from the trailers', async () => {
  const url = await serve((stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    const framed = Buffer.concat([frameMessage(Buffer.alloc(70_000, 7)), frameMessage(Buffer.from('second'))]);
    for (let i = 0; i < framed.length; i += 1000) stream.write(framed.subarray(i, i + 1000));
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end();
  });
  const { messages, error } = await call(url);
  assert.equal(error, null);
  assert.deepEqual(messages.map((m) => m.length), [70_000, 6]);
  assert.ok(messages[0]!.every((b) => b === 7));
});

test('a trailers-only error maps to its class by the (percent-encoded) text', async () => {
  const url = await serve((stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(Status.INVALID_ARGUMENT), 'grpc-message': 'etcdserver: key not found' }, { endStream: true });
  });
  const { error } = await call(url);
  assert.ok(error instanceof KeyNotFoundError, String(error));
  assert.equal(error.code, Status.INVALID_ARGUMENT);
});

test('a stream refused with REFUSED_STREAM was not sent; one reset after being taken may have been', async () => {
  const refused = await serve((stream) => stream.close(http2.constants.NGHTTP2_REFUSED_STREAM));
  const r1 = await call(refused);
  assert.ok(r1.error instanceof ConnectionError && r1.error.sent === false, String(r1.error));
  const reset = await serve((stream) => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR));
  const r2 = await call(reset);
  assert.ok(r2.error instanceof ConnectionError && r2.error.sent === true, String(r2.error));
});

test('a stream above the last stream id of a GOAWAY was not sent', async () => {
  // The server goes away as the connection opens: it takes no stream (last stream id 0).
  const url = await serve(
    () => assert.fail('no stream reaches the server'),
    (session) => session.goaway(http2.constants.NGHTTP2_NO_ERROR, 0),
  );
  const outcome = await call(url).then(
    (r) => r.error,
    (e: unknown) => e,
  );
  assert.ok(outcome instanceof ConnectionError && outcome.sent === false, String(outcome));
});

test('a dial to a port nobody listens on fails as not sent', async () => {
  const url = `http://127.0.0.1:${await freePort()}`;
  await assert.rejects(call(url), (e: unknown) => e instanceof ConnectionError && e.sent === false);
});
