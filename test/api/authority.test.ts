/**
 * The client port's HTTP/2 handshake (src/api/grpc/authority.ts) with a client that behaves as
 * grpc-go does: it sends nothing but its preface until it has the server's SETTINGS, and its
 * requests carry a URL as :authority, which nghttp2 alone would refuse.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type http2 from 'node:http2';
import net from 'node:net';
import { scrubHeaderBlock } from '../../src/api/grpc/authority.ts';
import { HTTP2_PREFACE, listenClientPort } from '../../src/api/grpc/index.ts';
import { ACK, END_STREAM_AND_HEADERS, frame, HEADERS, literal, rawBlock, SETTINGS } from '../helpers/h2-frames.ts';

/**
 * The header block etcdctl 3.4 sent for `endpoint status` to http://127.0.0.1:23791: POST,
 * http, :path /etcdserverpb.Maintenance/Status and :authority "http://127.0.0.1:23791", both
 * Huffman-coded literals with incremental indexing, then content-type, user-agent, te, ….
 */
const ETCDCTL_BLOCK = Buffer.from(
  '8386459760a924882d9dcb6571afa066a925a87510ac6e48d36a3f41909d29aee30c044eae05c0b86e09975f0f5f8b1d75d0620d263d4c4d65647a8b9acac8b4c7602bb2caecff40027465864d833505b11f40899acac8b24d494f6a7f867df75b7c56ff408d25062d495875996ee5b1063d5f03332e34',
  'hex',
);

test('scrubHeaderBlock rewrites a scheme in :authority, raw or Huffman-coded, and nothing else', () => {
  const raw = rawBlock('https://h:1');
  assert.equal(scrubHeaderBlock(raw, 0, raw.length), true);
  assert.ok(raw.includes(Buffer.from('https:--h:1')));
  const plain = rawBlock('h:1');
  assert.equal(scrubHeaderBlock(plain, 0, plain.length), false);
  assert.deepEqual(plain, rawBlock('h:1'));
  const pathOnly = Buffer.concat([Buffer.from([0x83]), literal(4, 'http://not-an-authority')]);
  assert.equal(scrubHeaderBlock(pathOnly, 0, pathOnly.length), false);

  const huffman = Buffer.from(ETCDCTL_BLOCK);
  assert.equal(scrubHeaderBlock(huffman, 0, huffman.length), true);
  const changed = [...huffman].flatMap((b, i) => (b === ETCDCTL_BLOCK[i] ? [] : [i]));
  assert.ok(changed.length > 0 && changed.every((i) => i >= 29 && i < 45), `bytes changed outside the authority: ${changed}`);
  // A truncated block is left for nghttp2 to refuse.
  const cut = Buffer.from(ETCDCTL_BLOCK.subarray(0, 30));
  assert.doesNotThrow(() => scrubHeaderBlock(cut, 0, cut.length));
});

/** How long the raw client waits for the server's answers. */
const WAIT_MS = 10_000;

test('a grpc-go-like client with a URL as :authority gets its requests served', async () => {
  const seen: http2.IncomingHttpHeaders[] = [];
  const port = await listenClientPort(
    { host: '127.0.0.1', port: 0 },
    (stream, headers) => {
      seen.push(headers);
      stream.respond({ ':status': 200 });
      stream.end();
    },
    (_req, res) => res.end(),
  );
  const socket = net.connect(port.address().port, '127.0.0.1');
  let received = Buffer.alloc(0);
  socket.on('data', (b: Buffer) => (received = Buffer.concat([received, b])));
  const waitFor = async (what: string, done: () => boolean): Promise<void> => {
    // Generous: a loaded CI machine may take seconds to schedule the server's side.
    const end = Date.now() + WAIT_MS;
    while (!done() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    assert.ok(done(), what);
  };
  try {
    socket.write(Buffer.concat([HTTP2_PREFACE, frame(SETTINGS, 0, 0)]));
    await waitFor('server SETTINGS', () => received.length >= 9 && received[3] === SETTINGS);
    socket.write(Buffer.concat([frame(SETTINGS, ACK, 0), frame(HEADERS, END_STREAM_AND_HEADERS, 1, ETCDCTL_BLOCK)]));
    // The same block again on a second stream (the client's HPACK table then holds it twice).
    socket.write(frame(HEADERS, END_STREAM_AND_HEADERS, 3, ETCDCTL_BLOCK));
    socket.write(frame(HEADERS, END_STREAM_AND_HEADERS, 5, rawBlock('http://127.0.0.1:1')));
    await waitFor('three requests', () => seen.length === 3);
    assert.deepEqual(
      seen.map((h) => [h[':path'], h[':authority']]),
      [
        ['/etcdserverpb.Maintenance/Status', 'http:--127.0.0.1:23791'],
        ['/etcdserverpb.Maintenance/Status', 'http:--127.0.0.1:23791'],
        ['/x', 'http:--127.0.0.1:1'],
      ],
    );
  } finally {
    socket.destroy();
    await port.close(100);
  }
});
