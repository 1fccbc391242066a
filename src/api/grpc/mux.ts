/**
 * One client port for gRPC and HTTP/1.1, as etcd serves them (gRPC, JSON gateway, /health,
 * /metrics, /version on the same port).
 *
 * Plaintext: node's http2.createServer() cannot fall back to HTTP/1.1, so we accept TCP
 * ourselves and look at the first bytes. gRPC clients (grpc-go/etcdctl, grpc-js) speak h2c with
 * prior knowledge, so an HTTP/2 connection opens with the 24-byte client preface
 * "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n". Bytes are compared as they arrive (the preface may come in
 * pieces); the first mismatching byte decides HTTP/1.1 (no HTTP/1.1 method starts "PRI * H").
 * The peeked bytes are put back with socket.unshift() and the socket is handed to an internal
 * http2 or http server with emit('connection'): node's Http2Session takes bytes still buffered
 * on the socket before consuming its handle, and the HTTP/1.1 parser reads them as 'data'.
 * An HTTP/2 connection first goes through a short handshake of ours that looks at its first
 * request (see authority.ts: grpc-go may send a URL as :authority, which nghttp2 refuses).
 *
 * TLS: ALPN decides: "h2" goes through the same preface check and authority handshake to the
 * internal http2 server, anything else (http/1.1 or no ALPN) to the http server. This is what
 * http2.createSecureServer({allowHTTP1}) does, but keeps one code path and gives both sides the
 * raw stream/request API. The server prefers http/1.1 when a client offers both: gRPC clients
 * offer only h2, while HTTP clients that offer both (curl, browsers) then get /health, /metrics
 * and the gateway over HTTP/1.1, the only protocol the http side speaks (etcd answers them over
 * HTTP/2 too; the answers are the same). A TLS handshake has the sniff timeout to complete. A
 * verified client certificate's CN is recorded for the connection's http2 session, where the
 * calls find it (tls-identity.ts).
 *
 * close(): stop accepting, GOAWAY to every HTTP/2 session (open calls may finish), idle
 * HTTP/1.1 connections closed, and after a grace period everything still open is destroyed.
 */
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { h2Handshake, type HandshakeLimits } from './authority.ts';
import { setSessionCommonName, verifiedCommonName } from './tls-identity.ts';
import { tlsHandshakeFailure } from '../../util/tls-errors.ts';
import {
  grpcSessionMemoryMiBMax,
  grpcStreamsPerSessionMax,
  muxCloseGraceMs,
  muxFirstRequestGraceMs,
  muxHandshakeBytesMax,
  muxSniffTimeoutMs,
} from './limits.ts';

export const HTTP2_PREFACE: Buffer = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export type Http2StreamHandler = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void;
export type Http1RequestHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

export interface ClientPortOptions {
  host: string;
  /** 0 picks a free port; see address(). */
  port: number;
  /** Serve TLS (key, cert, ca, requestCert, …); ALPN h2/http1.1 is added. */
  tls?: tls.TlsOptions;
  /** A TLS handshake failed (no, an untrusted or an expired client certificate, …): why, and from where if known. */
  onTlsError?: (reason: string, remote: string | undefined) => void;
  /** SETTINGS_MAX_CONCURRENT_STREAMS per connection. Default grpcStreamsPerSessionMax. */
  streamsPerSessionMax?: number;
  /** nghttp2 memory budget per connection, MiB. Default grpcSessionMemoryMiBMax. */
  sessionMemoryMiBMax?: number;
  /** Time a connection has to identify its protocol (TLS: to complete its handshake). Default muxSniffTimeoutMs. */
  sniffTimeoutMs?: number;
  /**
   * Server-initiated HTTP/2 PING interval (etcd --grpc-keepalive-interval, default 2h there);
   * a session that does not answer within keepaliveTimeoutMs (etcd: 20 s) is closed. 0 = off.
   */
  keepaliveIntervalMs?: number;
  keepaliveTimeoutMs?: number;
}

export interface ClientPort {
  address(): net.AddressInfo;
  /**
   * Stops accepting, sends GOAWAY, lets open calls run for up to graceMs (default
   * muxCloseGraceMs), then destroys what is left. Resolves when every connection is closed.
   */
  close(graceMs?: number): Promise<void>;
  /** New certificate material for connections accepted from now on (a plaintext port ignores it). */
  reloadTls(tlsOptions: tls.SecureContextOptions): void;
  /** The internal servers, e.g. to read counters or attach listeners. */
  readonly http2Server: http2.Http2Server;
  readonly http1Server: http.Server;
}

function ignore(): void {}

export async function listenClientPort(
  options: ClientPortOptions,
  onStream: Http2StreamHandler,
  onRequest: Http1RequestHandler,
): Promise<ClientPort> {
  const sniffTimeoutMs = options.sniffTimeoutMs ?? muxSniffTimeoutMs;
  const keepaliveIntervalMs = options.keepaliveIntervalMs ?? 0;
  const keepaliveTimeoutMs = options.keepaliveTimeoutMs ?? 20_000;
  let closing = false;

  const h2 = http2.createServer({
    settings: { maxConcurrentStreams: options.streamsPerSessionMax ?? grpcStreamsPerSessionMax },
    maxSessionMemory: options.sessionMemoryMiBMax ?? grpcSessionMemoryMiBMax,
  });
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on('stream', onStream);
  h2.on('sessionError', ignore); // the session is destroyed and its streams see 'close'
  // The CN of the connection being handed to h2: node creates its session synchronously.
  let handingOver: string | undefined;
  h2.on('session', (session: http2.ServerHttp2Session) => {
    if (handingOver !== undefined) setSessionCommonName(session, handingOver);
    sessions.add(session);
    let timer: NodeJS.Timeout | undefined;
    if (keepaliveIntervalMs > 0) timer = keepalive(session, keepaliveIntervalMs, keepaliveTimeoutMs);
    session.once('close', () => {
      sessions.delete(session);
      if (timer !== undefined) clearInterval(timer);
    });
    if (closing) session.close();
  });

  const h1 = http.createServer((req, res) => {
    if (closing) res.setHeader('connection', 'close');
    onRequest(req, res);
  });
  // Request and header timeouts of http.Server run from a timer started on 'listening';
  // h1 never listens itself, so start them here.
  h1.emit('listening');

  const sockets = new Set<net.Socket>();
  const sniffing = new Set<net.Socket>();

  const toHttp2 = (socket: Duplex, commonName: string | undefined): void => {
    handingOver = commonName;
    try {
      h2.emit('connection', socket);
    } finally {
      handingOver = undefined;
    }
  };
  const handshakeLimits: HandshakeLimits = { ackTimeoutMs: sniffTimeoutMs, firstRequestGraceMs: muxFirstRequestGraceMs, bytesMax: muxHandshakeBytesMax };
  const toHttp1 = (socket: net.Socket): void => {
    h1.emit('connection', socket);
  };

  const sniff = (socket: net.Socket, commonName?: string): void => {
    sniffing.add(socket);
    let seen: Buffer | undefined;
    const onTimeout = (): void => {
      socket.destroy();
    };
    const onData = (chunk: Buffer): void => {
      seen = seen === undefined ? chunk : Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, HTTP2_PREFACE.length);
      const h2c = seen.compare(HTTP2_PREFACE, 0, n, 0, n) === 0;
      if (h2c && n < HTTP2_PREFACE.length) return; // a prefix of the preface so far: wait
      socket.removeListener('data', onData);
      socket.removeListener('timeout', onTimeout);
      socket.removeListener('error', ignore);
      socket.setTimeout(0);
      if (h2c) {
        // Still "sniffing" (close() destroys it) until the handshake hands the socket over.
        h2Handshake(socket, seen, handshakeLimits, (stream) => {
          sniffing.delete(socket);
          if (stream !== null) toHttp2(stream, commonName);
        });
        return;
      }
      sniffing.delete(socket);
      socket.pause();
      socket.unshift(seen);
      toHttp1(socket);
      // We paused the socket; the http server only listens for 'data', which does not
      // resume an explicitly paused stream. The unshifted bytes are emitted first.
      socket.resume();
    };
    socket.on('error', ignore);
    socket.once('close', () => sniffing.delete(socket));
    socket.on('data', onData);
    socket.setTimeout(sniffTimeoutMs, onTimeout);
  };

  let front: net.Server;
  if (options.tls !== undefined) {
    front = tls.createServer({ ...options.tls, ALPNProtocols: ['http/1.1', 'h2'], handshakeTimeout: sniffTimeoutMs, noDelay: true });
    front.on('secureConnection', (socket: tls.TLSSocket) => {
      if (closing) {
        socket.destroy();
        return;
      }
      // An h2 client must still open with the preface, and may send a URL as :authority.
      if (socket.alpnProtocol === 'h2') sniff(socket, verifiedCommonName(socket));
      else toHttp1(socket);
    });
    const onTlsError = options.onTlsError;
    // The socket is destroyed by node.
    front.on('tlsClientError', (err: Error, socket: tls.TLSSocket) => {
      const reason = tlsHandshakeFailure(err, socket);
      if (reason !== null) onTlsError?.(reason, socket.remoteAddress === undefined ? undefined : `${socket.remoteAddress}:${socket.remotePort}`);
    });
  } else {
    front = net.createServer({ noDelay: true }, sniff);
  }
  front.on('connection', (socket: net.Socket) => {
    if (closing) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true); // gRPC is request/response: Nagle would add delayed-ACK stalls
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    front.once('error', reject);
    front.listen(options.port, options.host, () => {
      front.removeListener('error', reject);
      resolve();
    });
  });

  let closed: Promise<void> | undefined;
  const close = (graceMs: number = muxCloseGraceMs): Promise<void> => {
    if (closed !== undefined) return closed;
    closing = true;
    const frontClosed = new Promise<void>((resolve) => front.close(() => resolve()));
    for (const socket of sniffing) socket.destroy();
    for (const session of sessions) session.close(); // GOAWAY; closes once its streams end
    h1.close(ignore); // closes idle keep-alive connections and stops h1's timeout timer
    const force = setTimeout(() => {
      for (const session of sessions) session.destroy();
      h1.closeAllConnections();
      for (const socket of sockets) socket.destroy();
    }, graceMs);
    closed = frontClosed.then(() => clearTimeout(force));
    return closed;
  };

  return {
    address: () => front.address() as net.AddressInfo,
    close,
    reloadTls: (tlsOptions: tls.SecureContextOptions): void => {
      if (front instanceof tls.Server) front.setSecureContext(tlsOptions);
    },
    http2Server: h2,
    http1Server: h1,
  };
}

/** Pings the client every intervalMs; a ping unanswered for timeoutMs closes the session. */
function keepalive(session: http2.ServerHttp2Session, intervalMs: number, timeoutMs: number): NodeJS.Timeout {
  const timer = setInterval(() => {
    if (session.closed || session.destroyed) return;
    const dead = setTimeout(() => session.destroy(), timeoutMs);
    dead.unref();
    const sent = session.ping((err) => {
      if (err === null) clearTimeout(dead);
    });
    if (!sent) clearTimeout(dead); // too many pings outstanding; try again next interval
  }, intervalMs);
  timer.unref();
  return timer;
}
