/**
 * gRPC calls over node:http2, one HTTP/2 connection per endpoint.
 *
 * Why node:http2 and not @grpc/grpc-js: the retry rule ("re-send a write only if it surely did
 * not reach a server") needs to know exactly how far a request got, and grpc-js hides that
 * behind its own channel states, reconnects and transparent retries, which would also fight the
 * client's own endpoint failover. Here a request is sent only on a connection that completed its
 * handshake, and a failure says whether the request may have been seen: a dial that failed, or
 * a stream the server refused (RST_STREAM REFUSED_STREAM, or above a GOAWAY's last stream id),
 * was not; anything after that may have been. The wire framing is the server's own
 * (src/api/grpc/framing.ts), so both ends share one implementation of it.
 */
import http2 from 'node:http2';
import { FrameReader, frameMessage } from '../api/grpc/framing.ts';
import { decodeGrpcMessage, Status } from '../api/grpc/status.ts';
import { CancelledError, ConnectionError, DeadlineExceededError, errorFromStatus, type EtcdError } from './errors.ts';
import type { ClientLimits, TlsOptions } from './options.ts';

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM } = http2.constants;

/** Receives one call's messages, then exactly one end (null: status OK). */
export interface CallSink {
  message(data: Buffer): void;
  end(error: EtcdError | null): void;
}

interface SessionState {
  readonly session: http2.ClientHttp2Session;
  /** Streams above this id were refused by the server's GOAWAY (never processed). */
  goawayLastStreamId: number;
  /** Calls in progress on this connection. */
  readonly calls: Set<Call>;
  active: number;
  pingTimer: NodeJS.Timeout;
}

/** Maps an HTTP status without a grpc-status to a gRPC code, as the gRPC spec asks. */
function httpStatusToGrpc(status: number): Status {
  if (status === 401) return Status.UNAUTHENTICATED;
  if (status === 403) return Status.PERMISSION_DENIED;
  if (status === 404) return Status.UNIMPLEMENTED;
  if (status === 429 || status === 502 || status === 503 || status === 504) return Status.UNAVAILABLE;
  return Status.UNKNOWN;
}

function readStatus(headers: http2.IncomingHttpHeaders): { code: Status; message: string } | undefined {
  const raw = headers['grpc-status'];
  if (raw === undefined) return undefined;
  const code = Number(raw) as Status;
  const message = headers['grpc-message'];
  return { code, message: typeof message === 'string' ? decodeGrpcMessage(message) : '' };
}

/** One gRPC call on an HTTP/2 stream. */
export class Call {
  private status: { code: Status; message: string } | undefined;
  private ended = false;
  private deadlineTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly stream: http2.ClientHttp2Stream,
    private readonly state: SessionState,
    private readonly endpoint: string,
    private readonly sink: CallSink,
    receiveBytesMax: number,
    deadline: number | undefined,
  ) {
    const reader = new FrameReader(receiveBytesMax);
    stream.on('response', (headers) => {
      // Trailers-only responses carry the status in the headers.
      this.status = readStatus(headers);
      const http = Number(headers[':status']);
      if (this.status === undefined && http !== 200) this.status = { code: httpStatusToGrpc(http), message: `unexpected HTTP status ${http}` };
    });
    stream.on('trailers', (headers) => {
      this.status = readStatus(headers) ?? { code: Status.INTERNAL, message: 'server closed the stream without a grpc-status' };
    });
    stream.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk, (compressed, message) => {
          if (compressed) throw new Error('compressed message without a negotiated encoding');
          if (!this.ended) this.sink.message(message);
        });
      } catch (e) {
        this.abort(errorFromStatus(Status.INTERNAL, (e as Error).message));
      }
    });
    // 'close' always follows; errors are judged there.
    stream.on('error', () => {});
    stream.on('close', () => {
      if (this.status !== undefined) {
        this.finish(this.status.code === Status.OK ? null : errorFromStatus(this.status.code, this.status.message));
        return;
      }
      const refused = stream.rstCode === NGHTTP2_REFUSED_STREAM || (stream.id !== undefined && stream.id > state.goawayLastStreamId);
      this.finish(new ConnectionError(`${endpoint}: stream closed before a status (HTTP/2 code ${stream.rstCode})`, endpoint, !refused));
    });
    state.calls.add(this);
    if (deadline !== undefined) {
      this.deadlineTimer = setTimeout(() => this.abort(new DeadlineExceededError('context deadline exceeded', Status.DEADLINE_EXCEEDED)), Math.max(0, deadline - Date.now()));
    }
  }

  /** Sends one request message; false when the stream is buffering (wait for drain). */
  send(message: Uint8Array): boolean {
    if (this.ended || this.stream.destroyed) return true;
    return this.stream.write(frameMessage(message));
  }

  /** No more requests (the server may still answer). */
  halfClose(): void {
    if (!this.ended && !this.stream.destroyed) this.stream.end();
  }

  /**
   * The server's GOAWAY says it processed no stream above `lastStreamId`: a call above it ends
   * now as never sent (the server will not answer it).
   */
  refusedAbove(lastStreamId: number): void {
    if (this.stream.id !== undefined && this.stream.id > lastStreamId) {
      this.abort(new ConnectionError(`${this.endpoint}: the server went away before taking the request (GOAWAY)`, this.endpoint, false));
    }
  }

  /** Ends the call locally; the sink gets a CancelledError. */
  cancel(): void {
    this.abort(new CancelledError('context canceled', Status.CANCELLED));
  }

  /** Stops reading responses (HTTP/2 flow control holds the server back) until resume(). */
  pause(): void {
    this.stream.pause();
  }

  resume(): void {
    this.stream.resume();
  }

  get endpointUrl(): string {
    return this.endpoint;
  }

  private abort(error: EtcdError): void {
    if (this.ended) return;
    this.finish(error);
    if (!this.stream.destroyed) this.stream.close(NGHTTP2_CANCEL);
  }

  private finish(error: EtcdError | null): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.deadlineTimer);
    this.state.calls.delete(this);
    this.state.active--;
    if (this.state.active === 0) this.state.session.unref();
    this.sink.end(error);
  }
}

/** One member's client URL and its (lazily opened) HTTP/2 connection. */
export class Endpoint {
  private current: SessionState | null = null;
  private dialing: Promise<SessionState> | null = null;
  /** Date.now() before which this endpoint is passed over (after a failure). */
  private coolingUntil = 0;
  private closed = false;

  constructor(
    readonly url: string,
    private readonly tls: TlsOptions | undefined,
    private readonly limits: ClientLimits,
  ) {}

  get healthy(): boolean {
    return Date.now() >= this.coolingUntil;
  }

  get cooldownEnds(): number {
    return this.coolingUntil;
  }

  /** Marks the endpoint failing: it is passed over for a while, and its connection is dropped. */
  failed(): void {
    this.coolingUntil = Date.now() + this.limits.endpointCooldownMs;
    if (this.current !== null && this.current.active === 0) this.drop(this.current);
  }

  succeeded(): void {
    this.coolingUntil = 0;
  }

  /**
   * Starts a call. Rejects with ConnectionError(sent=false) when no connection could be made:
   * then the request was never sent.
   */
  async open(path: string, metadata: Record<string, string>, deadline: number | undefined, sink: CallSink): Promise<Call> {
    const state = await this.connect(deadline);
    const headers: http2.OutgoingHttpHeaders = {
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
      'user-agent': 'conclave-client',
      ...metadata,
    };
    if (deadline !== undefined) headers['grpc-timeout'] = `${Math.max(1, Math.min(99_999_999, deadline - Date.now()))}m`;
    let stream: http2.ClientHttp2Stream;
    try {
      stream = state.session.request(headers, { endStream: false });
    } catch (e) {
      this.drop(state);
      throw new ConnectionError(`${this.url}: ${(e as Error).message}`, this.url, false, { cause: e });
    }
    state.active++;
    state.session.ref();
    return new Call(stream, state, this.url, sink, this.limits.receiveBytesMax, deadline);
  }

  close(): void {
    this.closed = true;
    if (this.current !== null) this.drop(this.current);
  }

  private connect(deadline: number | undefined): Promise<SessionState> {
    if (this.closed) return Promise.reject(new ConnectionError(`${this.url}: client closed`, this.url, false));
    const s = this.current;
    if (s !== null && !s.session.closed && !s.session.destroyed) return Promise.resolve(s);
    this.dialing ??= this.dial(deadline).finally(() => {
      this.dialing = null;
    });
    return this.dialing;
  }

  private dial(deadline: number | undefined): Promise<SessionState> {
    const timeoutMs = Math.min(this.limits.dialTimeoutMs, deadline === undefined ? Infinity : Math.max(1, deadline - Date.now()));
    const session = http2.connect(this.url, { ...this.tls, settings: { enablePush: false } });
    return new Promise((resolve, reject) => {
      const fail = (message: string, cause?: unknown): void => {
        clearTimeout(timer);
        session.destroy();
        reject(new ConnectionError(`${this.url}: ${message}`, this.url, false, { cause }));
      };
      const timer = setTimeout(() => fail(`dial timed out after ${timeoutMs} ms`), timeoutMs);
      session.once('error', (e) => fail(e.message, e));
      session.once('connect', () => {
        clearTimeout(timer);
        session.removeAllListeners('error');
        const state: SessionState = { session, goawayLastStreamId: Infinity, calls: new Set(), active: 0, pingTimer: this.pinger(session) };
        session.on('error', () => {});
        session.on('goaway', (_code: number, lastStreamId: number) => {
          state.goawayLastStreamId = lastStreamId;
          if (this.current === state) this.current = null;
          for (const call of [...state.calls]) call.refusedAbove(lastStreamId);
        });
        session.on('close', () => {
          clearInterval(state.pingTimer);
          if (this.current === state) this.current = null;
        });
        session.unref();
        if (this.closed) {
          this.drop(state);
          reject(new ConnectionError(`${this.url}: client closed`, this.url, false));
          return;
        }
        this.current = state;
        resolve(state);
      });
    });
  }

  /** PINGs the connection; one unanswered in time means the peer is gone (e.g. partitioned). */
  private pinger(session: http2.ClientHttp2Session): NodeJS.Timeout {
    const timer = setInterval(() => {
      if (session.destroyed) return;
      const deadline = setTimeout(() => session.destroy(new Error('ping timed out')), this.limits.pingTimeoutMs);
      deadline.unref();
      const sent = session.ping((err) => {
        clearTimeout(deadline);
        if (err !== null) session.destroy(err);
      });
      if (!sent) clearTimeout(deadline);
    }, this.limits.pingIntervalMs);
    timer.unref();
    return timer;
  }

  private drop(state: SessionState): void {
    clearInterval(state.pingTimer);
    if (this.current === state) this.current = null;
    // Streams still open end with a connection error ("sent": they may have been processed).
    state.session.destroy();
  }
}
