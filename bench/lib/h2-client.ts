/**
 * A bare gRPC client over node:http2 for the benchmarks: unary calls and bidirectional streams
 * carrying already-encoded messages, framed with the server's own framing code. Much cheaper per
 * message than @grpc/grpc-js, so that on a machine whose cores the servers share, the client
 * takes as little from them as it can (and the same for every server it drives).
 */
import http2 from 'node:http2';
import { FrameReader, frameMessage } from '../../src/api/grpc/framing.ts';

export const H2_CLIENT_LIMITS = {
  /** Largest response message accepted. */
  receiveBytesMax: 64 << 20,
  /** HTTP/2 flow-control window per stream and per connection: a watch stream may carry a lot. */
  streamWindowBytes: 4 << 20,
  sessionWindowBytes: 32 << 20,
} as const;

export class GrpcCallError extends Error {
  constructor(
    readonly path: string,
    readonly status: string | undefined,
    readonly grpcMessage: string | undefined,
  ) {
    super(`${path}: grpc-status ${status ?? 'missing'}${grpcMessage ? ` (${decodeURIComponent(grpcMessage)})` : ''}`);
  }
}

/** One HTTP/2 connection (h2c, prior knowledge) to a gRPC server at url (http://host:port). */
export function connectH2(url: string): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url, { settings: { initialWindowSize: H2_CLIENT_LIMITS.streamWindowBytes } });
    session.once('error', reject);
    session.once('connect', () => {
      session.off('error', reject);
      // Errors after connecting surface on the calls' streams.
      session.on('error', () => {});
      session.setLocalWindowSize(H2_CLIENT_LIMITS.sessionWindowBytes);
      resolve(session);
    });
  });
}

function callHeaders(path: string): http2.OutgoingHttpHeaders {
  return { ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' };
}

/** Watches a call's status (headers of a trailers-only answer, or trailers). */
function trackStatus(path: string, stream: http2.ClientHttp2Stream, onEnd: (err: Error | null) => void): void {
  let status: string | undefined;
  let message: string | undefined;
  const take = (h: http2.IncomingHttpHeaders): void => {
    if (h['grpc-status'] !== undefined) {
      status = h['grpc-status'] as string;
      message = h['grpc-message'] as string | undefined;
    }
  };
  stream.on('response', take);
  stream.on('trailers', take);
  let ended = false;
  const end = (err: Error | null): void => {
    if (ended) return;
    ended = true;
    onEnd(err);
  };
  stream.on('error', (e) => end(e));
  stream.on('close', () => end(status === '0' ? null : new GrpcCallError(path, status, message)));
}

/** One unary call: the encoded request out, the encoded response back. */
export function unaryCall(session: http2.ClientHttp2Session, path: string, request: Uint8Array): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const stream = session.request(callHeaders(path));
    const reader = new FrameReader(H2_CLIENT_LIMITS.receiveBytesMax);
    let response: Buffer | undefined;
    stream.on('data', (chunk: Buffer) => reader.push(chunk, (_z, m) => (response = m)));
    trackStatus(path, stream, (err) => {
      if (err !== null) reject(err);
      else if (response === undefined) reject(new GrpcCallError(path, '0', 'no response message'));
      else resolve(response);
    });
    stream.end(frameMessage(request));
  });
}

export interface BidiCall {
  /** Sends one encoded request. */
  write(request: Uint8Array): void;
  /** Cancels the call (RST_STREAM CANCEL). */
  cancel(): void;
  /** Settles when the call ends: resolved on status OK, rejected otherwise. */
  readonly done: Promise<void>;
}

/** A bidirectional streaming call; onMessage gets each encoded response (a view, valid only during the call). */
export function bidiCall(session: http2.ClientHttp2Session, path: string, onMessage: (message: Buffer) => void): BidiCall {
  const stream = session.request(callHeaders(path));
  const reader = new FrameReader(H2_CLIENT_LIMITS.receiveBytesMax);
  stream.on('data', (chunk: Buffer) => reader.push(chunk, (_z, m) => onMessage(m)));
  const done = new Promise<void>((resolve, reject) => trackStatus(path, stream, (err) => (err === null ? resolve() : reject(err))));
  return {
    write: (request) => void stream.write(frameMessage(request)),
    cancel: () => stream.close(http2.constants.NGHTTP2_CANCEL),
    done,
  };
}
