/**
 * etcd's JSON gateway on the client port: every RPC is a POST under /v3/ (and the /v3beta/
 * alias), with the request message as JSON in etcd's conventions (proto field names, bytes as
 * base64, 64-bit integers as strings, enums by name or number) and the response likewise, with
 * fields at their default value left out. Errors come back as {"error","message","code"} with
 * the HTTP status grpc-gateway gives each gRPC code.
 *
 * A server-streaming method answers a chunked body of one {"result":…} line per message; an
 * error ends it with an {"error":{"grpc_code","http_code","message","http_status"}} line
 * (grpc-gateway's stream error), under that HTTP status if no message went out before.
 * A client that goes away before the answer aborts the operation's signal, as a canceled gRPC
 * call does.
 */
import http from 'node:http';
import { once } from 'node:events';
import type { Type } from 'protobufjs';
import { GrpcError, Status, statusText } from '../grpc/index.ts';
import { toGrpcError } from './errors.ts';

export type GatewayRoute = GatewayUnaryRoute | GatewayStreamRoute;

export interface GatewayUnaryRoute {
  readonly kind?: 'unary';
  readonly requestType: Type;
  readonly responseType: Type;
  /** The operation, taking the decoded request message and the HTTP request (for its headers). */
  handle(request: unknown, req: http.IncomingMessage, signal: AbortSignal): Promise<unknown>;
}

export interface GatewayStreamRoute {
  readonly kind: 'stream';
  readonly requestType: Type;
  readonly responseType: Type;
  /** A server-streaming operation: `send` writes one response and resolves when the client can take more. */
  handle(request: unknown, req: http.IncomingMessage, signal: AbortSignal, send: (response: unknown) => Promise<void>): Promise<void>;
}

export const GATEWAY_LIMITS = {
  /**
   * Body bytes read per request, as a multiple of the largest request message: base64 inflates
   * bytes by 4/3, and JSON adds names and quotes. A larger body is refused unread.
   */
  bodyBytesOverMessageMax: 4,
} as const;

const HTTP_STATUS: Record<number, number> = {
  [Status.OK]: 200,
  [Status.CANCELLED]: 499,
  [Status.UNKNOWN]: 500,
  [Status.INVALID_ARGUMENT]: 400,
  [Status.DEADLINE_EXCEEDED]: 504,
  [Status.NOT_FOUND]: 404,
  [Status.ALREADY_EXISTS]: 409,
  [Status.PERMISSION_DENIED]: 403,
  [Status.RESOURCE_EXHAUSTED]: 429,
  [Status.FAILED_PRECONDITION]: 400,
  [Status.ABORTED]: 409,
  [Status.OUT_OF_RANGE]: 400,
  [Status.UNIMPLEMENTED]: 501,
  [Status.INTERNAL]: 500,
  [Status.UNAVAILABLE]: 503,
  [Status.DATA_LOSS]: 500,
  [Status.UNAUTHENTICATED]: 401,
};

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Drops fields at their proto3 default, as grpc-gateway does without EmitDefaults. */
export function omitDefaults(v: Json): Json | undefined {
  if (v === null || v === false || v === 0 || v === '' || v === '0') return undefined;
  if (Array.isArray(v)) return v.length === 0 ? undefined : v.map((x) => omitDefaults(x) ?? {});
  if (typeof v === 'object') {
    const out: { [k: string]: Json } = {};
    for (const [k, x] of Object.entries(v)) {
      const kept = omitDefaults(x);
      if (kept !== undefined) out[k] = kept;
    }
    return out;
  }
  return v;
}

/** The JSON text of a response message, in the gateway's conventions. */
export function toGatewayJson(type: Type, response: unknown): string {
  const message = type.fromObject(response as Record<string, unknown>);
  const object = type.toObject(message, { longs: String, enums: String, bytes: String, oneofs: false }) as Json;
  return JSON.stringify(omitDefaults(object) ?? {});
}

export function sendJson(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** A plain-text error as Go's http.Error writes it (grpc-gateway and etcd's own handlers use it). */
export function sendHttpError(res: http.ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  const body = `${text}\n`;
  res.writeHead(status, {
    ...headers,
    'content-type': 'text/plain; charset=utf-8',
    'x-content-type-options': 'nosniff',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

export function sendGrpcError(res: http.ServerResponse, e: GrpcError): void {
  sendJson(res, HTTP_STATUS[e.code] ?? 500, JSON.stringify({ error: e.message, message: e.message, code: e.code }));
}

/** The last line of a failed stream (grpc-gateway's StreamError, fields at their default left out). */
function sendStreamError(res: http.ServerResponse, e: GrpcError): void {
  const httpCode = HTTP_STATUS[e.code] ?? 500;
  if (!res.headersSent) res.writeHead(httpCode, { 'content-type': 'application/json' });
  const error = omitDefaults({ grpc_code: e.code, http_code: httpCode, message: e.message, http_status: http.STATUS_CODES[httpCode] ?? '' });
  res.end(`${JSON.stringify({ error: error ?? {} })}\n`);
}

/** Writes one message of a stream: {"result":…} and a newline, as grpc-gateway's JSON marshaler delimits them. */
async function sendStreamMessage(res: http.ServerResponse, type: Type, message: unknown, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted();
  if (!res.headersSent) res.writeHead(200, { 'content-type': 'application/json' });
  if (!res.write(`{"result":${toGatewayJson(type, message)}}\n`)) await once(res, 'drain', { signal });
}

/** etcd's gateway passes requests to its gRPC server, which refuses messages over its limit thus. */
function tooLarge(size: number, max: number): GrpcError {
  return new GrpcError(Status.RESOURCE_EXHAUSTED, statusText.receivedTooLarge(size, max));
}

/** The request body; past `max` bytes, the gRPC refusal, with the body's size as read so far. */
export async function readBody(req: http.IncomingMessage, max: number, messageBytesMax: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.byteLength;
    if (total > max) throw tooLarge(total, messageBytesMax);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

export class Gateway {
  private readonly routes = new Map<string, GatewayRoute>();

  /** `messageBytesMax`: the gRPC server's limit on request messages, which etcd's gateway meets too. */
  constructor(private readonly messageBytesMax: number) {}

  /** Registers `route` at /v3/<path> and /v3beta/<path>. */
  add(path: string, route: GatewayRoute): this {
    this.routes.set(`/v3/${path}`, route);
    this.routes.set(`/v3beta/${path}`, route);
    return this;
  }

  /** Whether the gateway answers `path`: everything under /v3/ and /v3beta/, as etcd mounts it. */
  matches(path: string): boolean {
    return path.startsWith('/v3/') || path.startsWith('/v3beta/');
  }

  async serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const route = this.routes.get((req.url ?? '').split('?')[0]!);
    // grpc-gateway's answers for a path it has no method for, and for a method a path lacks.
    if (route === undefined) return sendHttpError(res, 404, 'Not Found');
    if (req.method !== 'POST') return sendHttpError(res, 405, 'Method Not Allowed');
    const gone = new AbortController();
    const onClose = (): void => {
      if (!res.writableFinished) gone.abort(new GrpcError(Status.CANCELLED, statusText.cancelled));
    };
    res.once('close', onClose);
    // Set once the stream's method runs: its failures end the stream, not a plain error answer.
    let streaming = false;
    try {
      const body = await readBody(req, this.messageBytesMax * GATEWAY_LIMITS.bodyBytesOverMessageMax, this.messageBytesMax);
      let parsed: unknown;
      try {
        parsed = body.byteLength === 0 ? {} : JSON.parse(body.toString('utf8'));
      } catch (e) {
        throw new GrpcError(Status.INVALID_ARGUMENT, `invalid JSON: ${(e as Error).message}`);
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new GrpcError(Status.INVALID_ARGUMENT, 'request body must be a JSON object');
      let request;
      try {
        request = route.requestType.fromObject(parsed as Record<string, unknown>);
      } catch (e) {
        throw new GrpcError(Status.INVALID_ARGUMENT, (e as Error).message);
      }
      const size = route.requestType.encode(request).len;
      if (size > this.messageBytesMax) throw tooLarge(size, this.messageBytesMax);
      if (route.kind === 'stream') {
        streaming = true;
        await route.handle(request, req, gone.signal, (m) => sendStreamMessage(res, route.responseType, m, gone.signal));
        if (!res.headersSent) res.writeHead(200, { 'content-type': 'application/json' });
        res.end();
        return;
      }
      const response = await route.handle(request, req, gone.signal);
      sendJson(res, 200, toGatewayJson(route.responseType, response));
    } catch (e) {
      if (gone.signal.aborted) return; // nobody to answer
      const t = toGrpcError(e);
      const g = t instanceof GrpcError ? t : new GrpcError(Status.INTERNAL, (t as Error).message ?? String(t));
      if (streaming) sendStreamError(res, g);
      else sendGrpcError(res, g);
    } finally {
      res.off('close', onClose);
    }
  }
}
