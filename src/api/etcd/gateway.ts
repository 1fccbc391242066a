/**
 * etcd's JSON gateway on the client port: every RPC is a POST under /v3/ (and the /v3beta/
 * alias), with the request message as JSON in etcd's conventions (proto field names, bytes as
 * base64, 64-bit integers as strings, enums by name or number) and the response likewise, with
 * fields at their default value left out. Errors come back as {"error","message","code"} with
 * the HTTP status grpc-gateway gives each gRPC code. A server-streaming method answers with one
 * line per message, {"result":…}, and a failure after the first as {"error":{…}} (grpc-gateway's
 * stream form). A client that goes away before the answer is complete aborts the operation's
 * signal, as a canceled gRPC call does.
 */
import http from 'node:http';
import type { Type } from 'protobufjs';
import { GrpcError, Status, statusText } from '../grpc/index.ts';
import { toGrpcError } from './errors.ts';

export interface GatewayRoute {
  readonly requestType: Type;
  readonly responseType: Type;
  /** The operation, taking the decoded request message and the HTTP request (for its headers). */
  handle(request: unknown, req: http.IncomingMessage, signal: AbortSignal): Promise<unknown>;
}

/** A server-streaming method on the gateway. */
export interface GatewayStreamRoute {
  readonly requestType: Type;
  readonly responseType: Type;
  /** The messages to send, from the decoded request message and the HTTP request. */
  stream(request: unknown, req: http.IncomingMessage, signal: AbortSignal): AsyncIterable<unknown>;
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
  // grpc-gateway v1, which etcd 3.4 serves with (v2 says 400).
  [Status.FAILED_PRECONDITION]: 412,
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

/** grpc-gateway's error line in a stream, after the first message (the HTTP status is sent by then). */
function streamErrorLine(e: GrpcError): string {
  const httpCode = HTTP_STATUS[e.code] ?? 500;
  return JSON.stringify({ error: { grpc_code: e.code, http_code: httpCode, message: e.message, http_status: http.STATUS_CODES[httpCode] ?? '' } });
}

/** Aborts (CANCELLED, as a gRPC call's signal) when the client goes away before the answer is complete. */
function clientGone(res: http.ServerResponse): AbortSignal {
  const gone = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) gone.abort(new GrpcError(Status.CANCELLED, statusText.cancelled));
  });
  return gone.signal;
}

function asGrpcError(e: unknown): GrpcError {
  const g = toGrpcError(e);
  return g instanceof GrpcError ? g : new GrpcError(Status.INTERNAL, (g as Error).message ?? String(g));
}

export class Gateway {
  private readonly routes = new Map<string, GatewayRoute>();
  private readonly streams = new Map<string, GatewayStreamRoute>();

  /** `messageBytesMax`: the gRPC server's limit on request messages, which etcd's gateway meets too. */
  constructor(private readonly messageBytesMax: number) {}

  /** Registers `route` at /v3/<path> and /v3beta/<path>. */
  add(path: string, route: GatewayRoute): this {
    this.routes.set(`/v3/${path}`, route);
    this.routes.set(`/v3beta/${path}`, route);
    return this;
  }

  /** Registers a server-streaming `route` at /v3/<path> and /v3beta/<path>. */
  addStream(path: string, route: GatewayStreamRoute): this {
    this.streams.set(`/v3/${path}`, route);
    this.streams.set(`/v3beta/${path}`, route);
    return this;
  }

  /** Whether the gateway answers `path`: everything under /v3/ and /v3beta/, as etcd mounts it. */
  matches(path: string): boolean {
    return path.startsWith('/v3/') || path.startsWith('/v3beta/');
  }

  async serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0]!;
    const route = this.routes.get(path) ?? this.streams.get(path);
    // grpc-gateway's answers for a path it has no method for, and for a method a path lacks.
    if (route === undefined) return sendHttpError(res, 404, 'Not Found');
    if (req.method !== 'POST') return sendHttpError(res, 405, 'Method Not Allowed');
    let request;
    try {
      request = await this.readRequest(req, route.requestType);
    } catch (e) {
      return sendGrpcError(res, asGrpcError(e));
    }
    const gone = clientGone(res);
    if ('stream' in route) return this.serveStream(route, request, req, res, gone);
    try {
      const response = await route.handle(request, req, gone);
      sendJson(res, 200, toGatewayJson(route.responseType, response));
    } catch (e) {
      if (!gone.aborted) sendGrpcError(res, asGrpcError(e));
    }
  }

  /** The request message from the body, within the gRPC server's limits. */
  private async readRequest(req: http.IncomingMessage, requestType: Type): Promise<unknown> {
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
      request = requestType.fromObject(parsed as Record<string, unknown>);
    } catch (e) {
      throw new GrpcError(Status.INVALID_ARGUMENT, (e as Error).message);
    }
    const size = requestType.encode(request).len;
    if (size > this.messageBytesMax) throw tooLarge(size, this.messageBytesMax);
    return request;
  }

  /** One {"result":…} line per message, waiting for the client to take each; stops when it goes. */
  private async serveStream(route: GatewayStreamRoute, request: unknown, req: http.IncomingMessage, res: http.ServerResponse, signal: AbortSignal): Promise<void> {
    const messages = route.stream(request, req, signal)[Symbol.asyncIterator]();
    let started = false;
    try {
      for (let next = await messages.next(); next.done !== true; next = await messages.next()) {
        if (signal.aborted) break;
        if (!started) {
          res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
          started = true;
        }
        const line = `{"result":${toGatewayJson(route.responseType, next.value)}}\n`;
        if (!res.write(line)) await new Promise<void>((resolve) => (res.writableNeedDrain && !signal.aborted ? res.once('drain', resolve).once('close', resolve) : resolve()));
      }
    } catch (e) {
      if (signal.aborted) return; // nobody to tell
      const g = asGrpcError(e);
      if (!started) return sendGrpcError(res, g);
      res.write(`${streamErrorLine(g)}\n`);
    } finally {
      await messages.return?.(undefined);
    }
    if (!started && !signal.aborted) res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.end();
  }
}
