/**
 * A small gRPC server over node:http2 streams with protobufjs codecs. It is mounted on the
 * client port by mux.ts (gRPC and HTTP/1.1 on one port, as etcd serves them) and carries no
 * etcd knowledge: the etcd layer registers its services with addService().
 *
 * ## Message convention (measured: decode alone is 1.5–2.5× faster than decode + toObject)
 *
 * Requests: the handler receives the message exactly as `Type.decode()` returns it, a protobufjs
 * message instance, never converted by toObject:
 *   - int64/uint64/sint64/fixed64 fields are `Long` (protobufjs's `Long`, from the long package),
 *     exact over the full 64-bit range; unset ones read a zero `Long` from the prototype;
 *   - bytes fields are `Buffer` views into the received frame (no copy; copy to keep them past
 *     the call if the frame is large);
 *   - unset scalar fields read their proto3 default from the prototype (false, 0, '', empty
 *     Buffer), unset message fields are `null`, repeated fields are arrays (possibly empty);
 *   - field names are the .proto names (the etcd root is loaded with keepCase).
 * Describe that shape with a TypeScript interface and pass it as the Req type parameter.
 *
 * Responses: the handler returns (or writes) a plain object or message instance that goes to
 * `Type.encode()` as is, without verify or fromObject (fromObject costs ~25% of encode time).
 * 64-bit fields may be a `Long`, a decimal string (exact) or a number (exact only up to 2^53);
 * never a bigint, which protobufjs silently encodes as 0. Bytes fields must be Uint8Array or
 * Buffer: a string is taken as base64. Fields left undefined or null are omitted. encode does
 * not validate, so a wrongly typed field goes out as junk rather than failing; only what makes
 * it throw (e.g. a null message) ends the call with INTERNAL "grpc: error while marshaling: …".
 *
 * ## Handlers
 * Built with unary(), serverStream(), clientStream() or bidiStream(), which carry the method
 * kind so addService() can check it against the .proto. A handler's promise settling ends the
 * call: resolving sends status OK (after any queued writes), throwing a GrpcError sends its
 * code and message, throwing anything else sends INTERNAL with the error's message.
 * `call.signal` aborts (reason: a GrpcError) when the client cancels, the deadline from
 * grpc-timeout passes, or the server ends the call (oversize or undecodable request).
 */
import type http2 from 'node:http2';
import type { Long, Method, Service, Type } from 'protobufjs';
import { respondStatus, ServerCall, type CallLimits, type MethodEntry } from './call.ts';
import { parseGrpcTimeout } from './framing.ts';
import {
  checkGrpcLimits,
  grpcReceiveBytesMax,
  grpcSendBytesMax,
  grpcStreamReceiveQueueMessagesMax,
  grpcStreamWriteBufferBytes,
  grpcStreamWriteBufferBytesMax,
  grpcTimeoutMsMax,
} from './limits.ts';
import { encodeGrpcMessage, GrpcError, Status, statusText } from './status.ts';

/** A 64-bit integer field as a handler receives it. */
export type Int64In = Long;
/** A 64-bit integer field as a handler may return it. */
export type Int64Out = Long | string | number;

/**
 * Request metadata: header names lower-case (HTTP/2 requires it), pseudo-headers left out,
 * everything else kept, including content-type, te, user-agent and grpc-*; a repeated header
 * is joined with ", ". etcd clients send their auth token as `token`; `-bin` values stay base64.
 */
export type Metadata = Readonly<Record<string, string>>;

export interface CallContext {
  /** Full method path, e.g. "/etcdserverpb.KV/Range". */
  readonly method: string;
  readonly metadata: Metadata;
  /** "address:port" of the client ("[v6addr]:port" for IPv6), or "unknown" once it is gone. */
  readonly peer: string;
  /** When the call expires, in Date.now() milliseconds (from grpc-timeout); undefined: never. */
  readonly deadline: number | undefined;
  /** Aborted with a GrpcError (CANCELLED, DEADLINE_EXCEEDED, …) when the call ends early. */
  readonly signal: AbortSignal;
  /**
   * The CN of the client's TLS certificate, when the port requires client certificates
   * (--client-cert-auth or --trusted-ca-file) and verified it; etcd takes it as the user name.
   * Undefined without TLS, without a verified certificate, or when the certificate has no CN.
   */
  readonly tlsCommonName?: string | undefined;
}

export interface ServerStream<Res> extends CallContext {
  /**
   * Queues one response message. Resolves at once while the stream buffers less than its
   * write buffer, else when the client has taken the backlog (HTTP/2 flow control), so a
   * handler that awaits each write holds bounded memory. Rejects (with the abort reason) once
   * the call is over. A handler that does not await and lets the backlog pass the hard cap has
   * its call reset with RESOURCE_EXHAUSTED.
   */
  write(message: Res): Promise<void>;
  /**
   * Queues responses the handler encoded and framed itself (whole gRPC frames, uncompressed,
   * each one message of the response type: see FrameBuilder), as they are, with one write to
   * the stream; back-pressure as for write(). The buffer is the stream's from then on: the
   * handler must not change it.
   */
  writeFrames(frames: Uint8Array): Promise<void>;
}

/**
 * The client's messages in order; iteration ends when the client half-closes and throws the
 * abort reason if the call ends first. One reader at a time.
 */
export interface ClientStream<Req> extends CallContext, AsyncIterable<Req> {}

export interface BidiStream<Req, Res> extends ServerStream<Res>, AsyncIterable<Req> {}

export type UnaryHandler<Req, Res> = (request: Req, call: CallContext) => Promise<Res>;
export type ServerStreamHandler<Req, Res> = (request: Req, call: ServerStream<Res>) => Promise<void>;
export type ClientStreamHandler<Req, Res> = (call: ClientStream<Req>) => Promise<Res>;
export type BidiStreamHandler<Req, Res> = (call: BidiStream<Req, Res>) => Promise<void>;

export type MethodKind = 'unary' | 'serverStream' | 'clientStream' | 'bidiStream';

/**
 * A unary response's own encoding, for a hot method whose handler returns its result in its own
 * shape: `encode` writes the protobuf bytes directly (no protobufjs object built and walked);
 * `toMessage` gives the plain object protobufjs (and the JSON gateway) takes. Both must describe
 * the same message.
 */
export interface UnaryEncoding<Res> {
  encode(response: Res): Uint8Array;
  toMessage(response: Res): unknown;
}

/** A handler with its kind, type-erased so one service's methods fit in one record. */
export type MethodImpl =
  | { readonly kind: 'unary'; readonly fn: UnaryHandler<unknown, unknown>; readonly encoding?: UnaryEncoding<unknown> }
  | { readonly kind: 'serverStream'; readonly fn: ServerStreamHandler<unknown, unknown> }
  | { readonly kind: 'clientStream'; readonly fn: ClientStreamHandler<unknown, unknown> }
  | { readonly kind: 'bidiStream'; readonly fn: BidiStreamHandler<unknown, unknown> };

/** Method name as in the .proto (e.g. "Range") → implementation. Absent methods: UNIMPLEMENTED. */
export type ServiceImpl = Readonly<Record<string, MethodImpl>>;

// The casts below erase Req/Res; addService() pairs each handler with its method's own types,
// and the call decodes requests with that method's request type, so the erasure is sound.
export function unary<Req, Res>(fn: UnaryHandler<Req, Res>, encoding?: UnaryEncoding<Res>): MethodImpl {
  return { kind: 'unary', fn: fn as UnaryHandler<unknown, unknown>, encoding: encoding as UnaryEncoding<unknown> | undefined };
}

/** What a unary method's handler answered, as the plain object protobufjs takes (see UnaryEncoding). */
export function unaryMessage(impl: MethodImpl & { kind: 'unary' }, response: unknown): unknown {
  return impl.encoding === undefined ? response : impl.encoding.toMessage(response);
}
export function serverStream<Req, Res>(fn: ServerStreamHandler<Req, Res>): MethodImpl {
  return { kind: 'serverStream', fn: fn as ServerStreamHandler<unknown, unknown> };
}
export function clientStream<Req, Res>(fn: ClientStreamHandler<Req, Res>): MethodImpl {
  return { kind: 'clientStream', fn: fn as ClientStreamHandler<unknown, unknown> };
}
export function bidiStream<Req, Res>(fn: BidiStreamHandler<Req, Res>): MethodImpl {
  return { kind: 'bidiStream', fn: fn as BidiStreamHandler<unknown, unknown> };
}

export interface GrpcServerOptions {
  /** Largest request message (after decompression). Default grpcReceiveBytesMax (etcd's). */
  receiveBytesMax?: number;
  /** Largest response message. Default grpcSendBytesMax. */
  sendBytesMax?: number;
  /** Unsent bytes per stream before write() waits. Default grpcStreamWriteBufferBytes. */
  writeBufferBytes?: number;
  /** Unsent bytes per stream before the call is reset. Default grpcStreamWriteBufferBytesMax. */
  writeBufferBytesMax?: number;
  /** Decoded requests queued per streaming call before the stream is paused. */
  receiveQueueMessagesMax?: number;
  /**
   * HTTP/2 requests that are not gRPC (not a POST of application/grpc*), e.g. the JSON gateway
   * or /health spoken over h2c. Default: answer 415 as grpc-go does.
   */
  otherStream?: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void;
  /** Sees errors thrown by handlers that are not GrpcErrors (they go out as INTERNAL), to log. */
  onHandlerError?: (err: unknown, method: string) => void;
}

function kindOf(m: Method): MethodKind {
  if (m.requestStream === true) return m.responseStream === true ? 'bidiStream' : 'clientStream';
  return m.responseStream === true ? 'serverStream' : 'unary';
}

function resolvedTypes(m: Method): { request: Type; response: Type } {
  m.resolve();
  const request = m.resolvedRequestType;
  const response = m.resolvedResponseType;
  if (request === null || response === null) {
    throw new Error(`grpc: method ${m.name} has unresolved message types`);
  }
  return { request, response };
}

const GRPC_CONTENT_TYPE = 'application/grpc';

export class GrpcServer {
  private readonly methods = new Map<string, MethodEntry>();
  private readonly services = new Set<string>();
  private readonly limits: CallLimits;
  private readonly otherStream: GrpcServerOptions['otherStream'];

  constructor(options: GrpcServerOptions = {}) {
    this.limits = {
      receiveBytesMax: options.receiveBytesMax ?? grpcReceiveBytesMax,
      sendBytesMax: options.sendBytesMax ?? grpcSendBytesMax,
      writeBufferBytes: options.writeBufferBytes ?? grpcStreamWriteBufferBytes,
      writeBufferBytesMax: options.writeBufferBytesMax ?? grpcStreamWriteBufferBytesMax,
      receiveQueueMessagesMax: options.receiveQueueMessagesMax ?? grpcStreamReceiveQueueMessagesMax,
      onHandlerError: options.onHandlerError,
    };
    checkGrpcLimits({ ...this.limits, streamsPerSessionMax: 1 });
    if (!Number.isInteger(this.limits.receiveQueueMessagesMax) || this.limits.receiveQueueMessagesMax < 1) {
      throw new RangeError('grpc: receiveQueueMessagesMax must be a positive integer');
    }
    this.otherStream = options.otherStream;
  }

  /**
   * Serves `service` (a resolved protobufjs Service) with `impl`. Throws if impl names a method
   * the service lacks, a handler's kind differs from the method's, or a path is taken twice.
   */
  addService(service: Service, impl: ServiceImpl): this {
    const name = service.fullName.startsWith('.') ? service.fullName.slice(1) : service.fullName;
    const entries: MethodEntry[] = [];
    for (const [methodName, handler] of Object.entries(impl)) {
      const method = service.methods[methodName];
      if (method === undefined) throw new Error(`grpc: service ${name} has no method ${methodName}`);
      const kind = kindOf(method);
      if (kind !== handler.kind) {
        throw new Error(`grpc: ${name}/${methodName} is ${kind} but its handler is ${handler.kind}`);
      }
      const path = `/${name}/${methodName}`;
      if (this.methods.has(path)) throw new Error(`grpc: ${path} is already registered`);
      const types = resolvedTypes(method);
      entries.push({ path, handler, requestType: types.request, responseType: types.response });
    }
    for (const e of entries) this.methods.set(e.path, e);
    this.services.add(name);
    return this;
  }

  /** Paths served, sorted; for diagnostics and tests. */
  paths(): string[] {
    return [...this.methods.keys()].sort();
  }

  /** The http2 'stream' listener: pass it to listenClientPort (or any http2 server). */
  readonly handleStream = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void => {
    stream.on('error', ignore); // resets and lost connections surface as 'close'
    const ct = headers['content-type'];
    if (headers[':method'] !== 'POST' || ct === undefined || !ct.startsWith(GRPC_CONTENT_TYPE)) {
      this.notGrpc(stream, headers, ct);
      return;
    }
    // Echo the client's form: "application/grpc" or "application/grpc+proto".
    let contentType = GRPC_CONTENT_TYPE;
    if (ct.length > GRPC_CONTENT_TYPE.length) {
      const sep = ct.charCodeAt(GRPC_CONTENT_TYPE.length);
      if (sep === 0x2b /* + */) {
        const subtype = ct.slice(GRPC_CONTENT_TYPE.length + 1).split(';')[0]!.trim();
        if (subtype !== 'proto') {
          respondStatus(stream, GRPC_CONTENT_TYPE, Status.INTERNAL, statusText.noCodec(subtype));
          return;
        }
        contentType = 'application/grpc+proto';
      } else if (sep !== 0x3b /* ; */) {
        this.notGrpc(stream, headers, ct);
        return;
      }
    }
    const path = headers[':path'] ?? '';
    const entry = this.methods.get(path);
    if (entry === undefined) {
      respondStatus(stream, contentType, Status.UNIMPLEMENTED, this.unknownPathText(path));
      return;
    }
    let gzip = false;
    const encoding = headers['grpc-encoding'];
    if (encoding !== undefined && encoding !== 'identity') {
      if (encoding !== 'gzip') {
        respondStatus(stream, contentType, Status.UNIMPLEMENTED, statusText.noDecompressor(String(encoding)));
        return;
      }
      gzip = true;
    }
    let timeoutMs: number | undefined;
    const timeout = headers['grpc-timeout'];
    if (timeout !== undefined) {
      try {
        timeoutMs = parseGrpcTimeout(String(timeout), grpcTimeoutMsMax);
      } catch (err) {
        const e = err as GrpcError;
        respondStatus(stream, contentType, e.code, e.message);
        return;
      }
    }
    new ServerCall(stream, headers, entry, this.limits, contentType, gzip, timeoutMs);
  };

  private notGrpc(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, ct: string | undefined): void {
    if (this.otherStream !== undefined) {
      this.otherStream(stream, headers);
      return;
    }
    // grpc-go's early abort for requests that are not gRPC.
    const post = headers[':method'] === 'POST';
    const message = post
      ? `invalid gRPC request content-type ${JSON.stringify(ct ?? '')}`
      : `invalid gRPC request method ${JSON.stringify(headers[':method'] ?? '')}`;
    stream.respond(
      {
        ':status': post ? 415 : 405,
        'content-type': GRPC_CONTENT_TYPE,
        'grpc-status': String(Status.INTERNAL),
        'grpc-message': encodeGrpcMessage(message),
      },
      { endStream: true },
    );
    stream.resume(); // discard any body
  }

  /** grpc-go's texts: malformed path, unknown service, or unknown method of a known service. */
  private unknownPathText(path: string): string {
    const sm = path.startsWith('/') ? path.slice(1) : path;
    const pos = sm.lastIndexOf('/');
    if (pos === -1) return statusText.malformedMethod(path);
    const service = sm.slice(0, pos);
    const method = sm.slice(pos + 1);
    return this.services.has(service) ? statusText.unknownMethod(service, method) : statusText.unknownService(service);
  }
}

function ignore(): void {}

export { GrpcError, Status } from './status.ts';
