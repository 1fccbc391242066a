/**
 * etcd's JSON gateway on the client port: every RPC is a POST under /v3/ (and the /v3beta/
 * alias), with the request message as JSON in etcd's conventions (proto field names, bytes as
 * base64, 64-bit integers as strings, enums by name or number) and the response likewise, with
 * fields at their default value left out. Errors come back as {"error","message","code"} with
 * the HTTP status grpc-gateway gives each gRPC code.
 */
import type http from 'node:http';
import type { Type } from 'protobufjs';
import { GrpcError, Status } from '../grpc/index.ts';
import { toGrpcError } from './errors.ts';

export interface GatewayRoute {
  readonly requestType: Type;
  readonly responseType: Type;
  /** The operation, taking the decoded request message and the HTTP request (for its headers). */
  handle(request: unknown, req: http.IncomingMessage): Promise<unknown>;
}

export const GATEWAY_LIMITS = {
  /** Base64 inflates bytes by 4/3; allow JSON's own overhead on top of the request limit. */
  bodyBytesOverRequestMax: 2,
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

export function sendGrpcError(res: http.ServerResponse, e: GrpcError): void {
  sendJson(res, HTTP_STATUS[e.code] ?? 500, JSON.stringify({ error: e.message, message: e.message, code: e.code }));
}

export async function readBody(req: http.IncomingMessage, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.byteLength;
    if (total > max) throw new GrpcError(Status.INVALID_ARGUMENT, 'etcdserver: request is too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

export class Gateway {
  private readonly routes = new Map<string, GatewayRoute>();

  constructor(private readonly requestBytesMax: number) {}

  /** Registers `route` at /v3/<path> and /v3beta/<path>. */
  add(path: string, route: GatewayRoute): this {
    this.routes.set(`/v3/${path}`, route);
    this.routes.set(`/v3beta/${path}`, route);
    return this;
  }

  matches(url: string): boolean {
    return this.routes.has(url.split('?')[0]!);
  }

  async serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const route = this.routes.get((req.url ?? '').split('?')[0]!)!;
    if (req.method !== 'POST') {
      sendJson(res, 405, JSON.stringify({ error: 'Method Not Allowed', code: Status.UNIMPLEMENTED }));
      return;
    }
    try {
      const body = await readBody(req, this.requestBytesMax * GATEWAY_LIMITS.bodyBytesOverRequestMax);
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
      const response = await route.handle(request, req);
      sendJson(res, 200, toGatewayJson(route.responseType, response));
    } catch (e) {
      const g = toGrpcError(e);
      sendGrpcError(res, g instanceof GrpcError ? g : new GrpcError(Status.INTERNAL, (g as Error).message ?? String(g)));
    }
  }
}
