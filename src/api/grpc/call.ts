/**
 * One gRPC call on one HTTP/2 stream: reads and decodes request frames, runs the handler,
 * writes framed responses with back-pressure, and ends with a status in trailers (or a
 * trailers-only response when nothing was sent yet). See server.ts for the handler contract.
 *
 * The unary path is the hot one: it allocates the call, a few listeners, and nothing lazy
 * (AbortController, metadata object, peer string) unless the handler asks for it.
 */
import http2 from 'node:http2';
import type { Type } from 'protobufjs';
import { FrameReader, frameLengths, frameMessage, gunzipMessage } from './framing.ts';
import type { BidiStream, Metadata, MethodImpl } from './server.ts';
import { encodeGrpcMessage, GrpcError, Status, statusText, toStatus } from './status.ts';
import { sessionCommonName } from './tls-identity.ts';

const { NGHTTP2_NO_ERROR, NGHTTP2_ENHANCE_YOUR_CALM } = http2.constants;

export interface MethodEntry {
  readonly path: string;
  readonly handler: MethodImpl;
  readonly requestType: Type;
  readonly responseType: Type;
}

export interface CallLimits {
  readonly receiveBytesMax: number;
  readonly sendBytesMax: number;
  readonly writeBufferBytes: number;
  readonly writeBufferBytesMax: number;
  readonly receiveQueueMessagesMax: number;
  readonly onHandlerError: ((err: unknown, method: string) => void) | undefined;
}

type Trailers = { 'grpc-status': string; 'grpc-message'?: string };

/** The trailers of a successful call (node copies header objects into its own list). */
const OK_TRAILERS: Trailers = { 'grpc-status': String(Status.OK) };

function trailersFor(code: Status, message: string): Trailers {
  return message === ''
    ? { 'grpc-status': String(code) }
    : { 'grpc-status': String(code), 'grpc-message': encodeGrpcMessage(message) };
}

/**
 * Ends a stream that has sent nothing with a trailers-only response. If the client is still
 * sending, RST_STREAM(NO_ERROR) follows (node sends it after the HEADERS frame) so it stops.
 */
export function respondStatus(stream: http2.ServerHttp2Stream, contentType: string, code: Status, message: string): void {
  if (stream.closed || stream.destroyed) return;
  stream.respond({ ':status': 200, 'content-type': contentType, ...trailersFor(code, message) }, { endStream: true });
  if (!stream.readableEnded) stream.close(NGHTTP2_NO_ERROR);
}

function ignore(): void {}

const RESOLVED: Promise<void> = Promise.resolve();

/** A rejected promise that does not count as unhandled if the handler never awaits it. */
function rejected<T>(err: unknown): Promise<T> {
  const p = Promise.reject(err);
  p.catch(ignore);
  return p as Promise<T>;
}

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(ignore);
  return { promise, resolve, reject };
}

/**
 * The call a stream belongs to. The stream's listeners are the shared functions below, which
 * find their call here: a call allocates no closures of its own (under tsx every named arrow
 * function also costs an Object.defineProperty for its name), which counts at 10k calls/s.
 */
const CALL = Symbol('grpc.call');
type CallStream = http2.ServerHttp2Stream & { [CALL]?: ServerCall };

function streamData(this: CallStream, chunk: Buffer): void {
  this[CALL]!.onData(chunk);
}
function streamEnd(this: CallStream): void {
  this[CALL]!.onEnd();
}
function streamClose(this: CallStream): void {
  this[CALL]!.onClose();
}
function streamDrain(this: CallStream): void {
  this[CALL]!.onDrain();
}
function streamWantTrailers(this: CallStream): void {
  this[CALL]!.onWantTrailers();
}

export class ServerCall implements BidiStream<unknown, unknown> {
  readonly method: string;
  readonly deadline: number | undefined;

  private readonly reader: FrameReader;
  /** True when the handler takes a stream of requests (client-streaming or bidi). */
  private readonly streamingIn: boolean;
  private headersSent = false;
  /** The final status went out, or the stream is gone: nothing more is sent. */
  private done = false;
  private handlerSettled = false;
  private abortReason: GrpcError | undefined;
  private controller: AbortController | undefined;
  private timer: NodeJS.Timeout | undefined;
  private trailers: Trailers | undefined;
  private cachedMetadata: Metadata | undefined;
  private cachedPeer: string | undefined;

  // Single request of unary and server-streaming calls.
  private request: unknown;
  private requests = 0;

  // Request stream of client-streaming and bidi calls.
  private queue: unknown[] = [];
  private inputEnded = false;
  private paused = false;
  private waiter: Deferred<IteratorResult<unknown>> | undefined;
  private drain: Deferred<void> | undefined;

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    private readonly headers: http2.IncomingHttpHeaders,
    private readonly entry: MethodEntry,
    private readonly limits: CallLimits,
    private readonly contentType: string,
    private readonly gzip: boolean,
    timeoutMs: number | undefined,
  ) {
    this.method = entry.path;
    this.reader = new FrameReader(limits.receiveBytesMax);
    const kind = entry.handler.kind;
    this.streamingIn = kind === 'clientStream' || kind === 'bidiStream';
    (stream as CallStream)[CALL] = this;
    stream.on('close', streamClose);
    stream.on('data', streamData);
    stream.on('end', streamEnd);
    if (timeoutMs !== undefined) {
      this.deadline = Date.now() + timeoutMs;
      this.timer = setTimeout(() => this.onDeadline(), timeoutMs);
    }
    if (this.streamingIn) this.invoke();
  }

  // ---- CallContext ------------------------------------------------------------------------

  get metadata(): Metadata {
    if (this.cachedMetadata === undefined) {
      const m: Record<string, string> = {};
      const h = this.headers;
      for (const k in h) {
        if (k.charCodeAt(0) === 0x3a /* : */) continue;
        const v = h[k];
        if (v !== undefined) m[k] = Array.isArray(v) ? v.join(', ') : v;
      }
      this.cachedMetadata = m;
    }
    return this.cachedMetadata;
  }

  get peer(): string {
    if (this.cachedPeer === undefined) {
      const socket = this.stream.session?.socket;
      const address = socket?.remoteAddress;
      if (address === undefined) return 'unknown';
      this.cachedPeer = address.includes(':') ? `[${address}]:${socket!.remotePort}` : `${address}:${socket!.remotePort}`;
    }
    return this.cachedPeer;
  }

  get tlsCommonName(): string | undefined {
    return sessionCommonName(this.stream.session);
  }

  get signal(): AbortSignal {
    this.controller ??= new AbortController();
    if (this.abortReason !== undefined && !this.controller.signal.aborted) this.controller.abort(this.abortReason);
    return this.controller.signal;
  }

  // ---- ServerStream -----------------------------------------------------------------------

  write(message: unknown): Promise<void> {
    const refused = this.refuseWrite();
    if (refused !== undefined) return refused;
    let frame: Buffer;
    try {
      frame = this.encode(message);
    } catch (err) {
      return rejected(err);
    }
    return this.send(frame);
  }

  writeFrames(frames: Uint8Array): Promise<void> {
    const refused = this.refuseWrite();
    if (refused !== undefined) return refused;
    let lengths: number[];
    try {
      lengths = frameLengths(frames);
    } catch (err) {
      return rejected(new GrpcError(Status.INTERNAL, (err as Error).message));
    }
    for (const len of lengths) {
      if (len > this.limits.sendBytesMax) {
        return rejected(new GrpcError(Status.RESOURCE_EXHAUSTED, statusText.sendTooLarge(len, this.limits.sendBytesMax)));
      }
    }
    if (frames.byteLength === 0) return RESOLVED;
    return this.send(Buffer.from(frames.buffer, frames.byteOffset, frames.byteLength));
  }

  /** Why no response may be written now, as a rejected promise; undefined if one may. */
  private refuseWrite(): Promise<void> | undefined {
    if (this.done) {
      return rejected(this.abortReason ?? new GrpcError(Status.CANCELLED, 'grpc: write after the call ended'));
    }
    const kind = this.entry.handler.kind;
    if (kind !== 'serverStream' && kind !== 'bidiStream') {
      return rejected(new GrpcError(Status.INTERNAL, 'grpc: write() on a call with a single response'));
    }
    return undefined;
  }

  /** Sends framed responses with back-pressure (see ServerStream.write). */
  private send(frames: Buffer): Promise<void> {
    const s = this.stream;
    if (s.writableLength > this.limits.writeBufferBytesMax) {
      // The handler ignores back-pressure; drop the call rather than the process.
      const err = new GrpcError(Status.RESOURCE_EXHAUSTED, statusText.writeBufferFull(this.limits.writeBufferBytesMax));
      this.done = true;
      this.abort(err);
      s.close(NGHTTP2_ENHANCE_YOUR_CALM);
      return rejected(err);
    }
    if (!this.headersSent) this.sendHeaders();
    const ok = s.write(frames);
    // write() returning false guarantees a later 'drain'; wait for it only past our own mark.
    if (ok || s.writableLength < this.limits.writeBufferBytes) return RESOLVED;
    if (this.drain === undefined) {
      this.drain = deferred<void>();
      s.once('drain', streamDrain);
    }
    return this.drain.promise;
  }

  // ---- AsyncIterable of requests ----------------------------------------------------------

  [Symbol.asyncIterator](): AsyncIterator<unknown> {
    return { next: () => this.next() };
  }

  private next(): Promise<IteratorResult<unknown>> {
    if (!this.streamingIn) return rejected(new GrpcError(Status.INTERNAL, 'grpc: this call has a single request'));
    if (this.abortReason !== undefined) return rejected(this.abortReason);
    if (this.queue.length > 0) {
      const value = this.queue.shift();
      if (this.paused && this.queue.length <= this.limits.receiveQueueMessagesMax >> 1) {
        this.paused = false;
        this.stream.resume();
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.inputEnded) return Promise.resolve({ value: undefined, done: true });
    if (this.waiter !== undefined) return rejected(new Error('grpc: concurrent next() on one request stream'));
    this.waiter = deferred<IteratorResult<unknown>>();
    return this.waiter.promise;
  }

  // ---- stream events ----------------------------------------------------------------------

  /** @internal (streamData) */
  onData(chunk: Buffer): void {
    if (this.done) return;
    try {
      this.reader.push(chunk, (compressed, message) => this.onFrame(compressed, message));
    } catch (err) {
      this.fail(err);
    }
  }

  /** Runs inside reader.push: a throw ends the call with the thrown status. */
  private onFrame(compressed: boolean, message: Buffer): void {
    if (this.done) return;
    let data = message;
    if (compressed) {
      if (!this.gzip) throw new GrpcError(Status.INTERNAL, statusText.compressedWithoutEncoding);
      data = gunzipMessage(message, this.limits.receiveBytesMax);
    }
    let decoded: unknown;
    try {
      decoded = this.entry.requestType.decode(data);
    } catch (err) {
      throw new GrpcError(Status.INTERNAL, statusText.unmarshal((err as Error).message));
    }
    if (!this.streamingIn) {
      if (++this.requests > 1) throw new GrpcError(Status.INTERNAL, statusText.tooManyRequests);
      this.request = decoded;
      return;
    }
    const w = this.waiter;
    if (w !== undefined) {
      this.waiter = undefined;
      w.resolve({ value: decoded, done: false });
      return;
    }
    this.queue.push(decoded);
    if (!this.paused && this.queue.length >= this.limits.receiveQueueMessagesMax) {
      // Stop reading: the client's flow-control window closes instead of our queue growing.
      this.paused = true;
      this.stream.pause();
    }
  }

  /**
   * The readable side ended. Node also ends it, just before 'aborted'/'close', when the client
   * resets the stream or the connection dies, and we cannot tell which yet: rstCode is set
   * after 'end' is emitted, in the same native callback. A unary call starts its handler at
   * once (a reset then aborts it through 'close'); a request stream reports its end one
   * macrotask later, so a reset shows up as the abort reason rather than a clean half-close.
   */
  /** @internal (streamEnd) */
  onEnd(): void {
    if (this.done) return;
    if (!this.streamingIn && !this.reader.partial) {
      this.inputEnded = true;
      if (this.requests === 0) this.finish(Status.INTERNAL, statusText.noRequest);
      else this.invoke();
      return;
    }
    setImmediate(() => this.onEndSettled());
  }

  private onEndSettled(): void {
    if (this.done || this.stream.aborted) return; // a reset: 'close' aborts the handler
    if (this.reader.partial) {
      this.finish(Status.INTERNAL, statusText.truncated);
      return;
    }
    this.inputEnded = true;
    const w = this.waiter;
    if (w !== undefined && this.queue.length === 0) {
      this.waiter = undefined;
      w.resolve({ value: undefined, done: true });
    }
  }

  /** @internal (streamClose) */
  onClose(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (!this.done) {
      // The stream went away before our status: the client cancelled (RST_STREAM) or the
      // connection died.
      this.done = true;
      this.abort(new GrpcError(Status.CANCELLED, statusText.cancelled));
    }
  }

  private onDeadline(): void {
    this.timer = undefined;
    this.finish(Status.DEADLINE_EXCEEDED, statusText.deadlineExceeded);
  }

  /** @internal (streamDrain) */
  onDrain(): void {
    const d = this.drain;
    this.drain = undefined;
    d?.resolve();
  }

  /** @internal (streamWantTrailers) */
  onWantTrailers(): void {
    const s = this.stream;
    s.sendTrailers(this.trailers ?? OK_TRAILERS);
    // A client still sending is told to stop with RST_STREAM(NO_ERROR), but only once the
    // trailers are out: sent at once, the reset overtakes them and the client (grpc-js) sees
    // "Call ended without gRPC status" instead of ours.
    setImmediate(() => {
      if (!s.closed && !s.destroyed && !s.readableEnded) s.close(NGHTTP2_NO_ERROR);
    });
  }

  // ---- handler ----------------------------------------------------------------------------

  private invoke(): void {
    const h = this.entry.handler;
    let p: Promise<unknown>;
    try {
      switch (h.kind) {
        case 'unary':
          p = h.fn(this.request, this);
          break;
        case 'serverStream':
          p = h.fn(this.request, this);
          break;
        case 'clientStream':
          p = h.fn(this);
          break;
        case 'bidiStream':
          p = h.fn(this);
          break;
      }
    } catch (err) {
      p = Promise.reject(err);
    }
    this.request = undefined;
    const single = h.kind === 'unary' || h.kind === 'clientStream';
    p.then(
      single ? (response: unknown) => this.onResponse(response) : () => this.onStreamEnd(),
      (err: unknown) => this.onHandlerError(err),
    );
  }

  private onResponse(response: unknown): void {
    this.handlerSettled = true;
    if (this.done) return;
    let frame: Buffer;
    try {
      frame = this.encode(response);
    } catch (err) {
      this.fail(err);
      return;
    }
    this.done = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    const s = this.stream;
    if (s.closed || s.destroyed) return;
    this.headersSent = true;
    s.respond({ ':status': 200, 'content-type': this.contentType }, { waitForTrailers: true });
    s.once('wantTrailers', streamWantTrailers);
    s.end(frame);
  }

  private onStreamEnd(): void {
    this.handlerSettled = true;
    this.finish(Status.OK, '');
  }

  private onHandlerError(err: unknown): void {
    this.handlerSettled = true;
    if (!(err instanceof GrpcError)) this.limits.onHandlerError?.(err, this.method);
    this.fail(err);
  }

  // ---- ending -----------------------------------------------------------------------------

  /** A response's gRPC frame: by the method's own encoding if it has one (a unary method's), else by protobufjs. */
  private encode(message: unknown): Buffer {
    const h = this.entry.handler;
    let bytes: Uint8Array;
    try {
      bytes = h.kind === 'unary' && h.encoding !== undefined ? h.encoding.encode(message) : this.entry.responseType.encode(message as { [k: string]: unknown }).finish();
    } catch (err) {
      throw new GrpcError(Status.INTERNAL, statusText.marshal((err as Error).message));
    }
    if (bytes.length > this.limits.sendBytesMax) {
      throw new GrpcError(Status.RESOURCE_EXHAUSTED, statusText.sendTooLarge(bytes.length, this.limits.sendBytesMax));
    }
    return frameMessage(bytes);
  }

  private sendHeaders(): void {
    this.headersSent = true;
    this.stream.respond({ ':status': 200, 'content-type': this.contentType }, { waitForTrailers: true });
    this.stream.once('wantTrailers', streamWantTrailers);
  }

  private fail(err: unknown): void {
    const { code, message } = toStatus(err);
    this.finish(code, message);
  }

  /** Sends the final status once; a handler still running learns of it through its signal. */
  private finish(code: Status, message: string): void {
    if (this.done) return;
    this.done = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (!this.handlerSettled && code !== Status.OK) this.abort(new GrpcError(code, message));
    const s = this.stream;
    if (s.closed || s.destroyed) return;
    if (!this.headersSent) {
      this.headersSent = true;
      respondStatus(s, this.contentType, code, message);
      return;
    }
    this.trailers = trailersFor(code, message);
    s.end(); // trailers follow the queued messages, from onWantTrailers
  }

  private abort(reason: GrpcError): void {
    if (this.abortReason !== undefined) return;
    this.abortReason = reason;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.controller?.abort(reason);
    const w = this.waiter;
    if (w !== undefined) {
      this.waiter = undefined;
      w.reject(reason);
    }
    const d = this.drain;
    if (d !== undefined) {
      this.drain = undefined;
      d.reject(reason);
    }
  }
}
