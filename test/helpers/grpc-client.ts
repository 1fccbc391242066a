/**
 * A @grpc/grpc-js client for etcd's services, built from our protobufjs types (no generated
 * code): unary, server-streaming and bidirectional calls, with metadata (e.g. an auth `token`).
 * Responses come back as plain objects (64-bit integers as strings, bytes as Buffers).
 */
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import type { Service, Type } from 'protobufjs';

const serialize = (t: Type) => (o: object): Buffer => Buffer.from(t.encode(t.fromObject(o)).finish());
const deserialize = (t: Type) => (b: Buffer): Record<string, unknown> => t.toObject(t.decode(b), { longs: String });

export class Client {
  readonly raw: grpc.Client;

  constructor(address: string, options: grpc.ClientOptions = {}) {
    this.raw = new grpc.Client(address, grpc.credentials.createInsecure(), options);
  }

  private types(service: Service, method: string): { path: string; req: Type; res: Type } {
    const m = service.methods[method];
    assert.ok(m, `no method ${method}`);
    m.resolve();
    return { path: `/${service.fullName.slice(1)}/${method}`, req: m.resolvedRequestType!, res: m.resolvedResponseType! };
  }

  unary(service: Service, method: string, request: object, opts: { metadata?: grpc.Metadata; deadlineMs?: number } = {}): Promise<Record<string, unknown>> {
    const t = this.types(service, method);
    const callOptions: grpc.CallOptions = opts.deadlineMs === undefined ? {} : { deadline: Date.now() + opts.deadlineMs };
    return new Promise((resolve, reject) => {
      this.raw.makeUnaryRequest(t.path, serialize(t.req), deserialize(t.res), request, opts.metadata ?? new grpc.Metadata(), callOptions, (err, value) => {
        if (err !== null) reject(err);
        else resolve(value!);
      });
    });
  }

  serverStream(service: Service, method: string, request: object, metadata = new grpc.Metadata()): grpc.ClientReadableStream<Record<string, unknown>> {
    const t = this.types(service, method);
    return this.raw.makeServerStreamRequest(t.path, serialize(t.req), deserialize(t.res), request, metadata, {});
  }

  bidi(service: Service, method: string, metadata = new grpc.Metadata()): grpc.ClientDuplexStream<object, Record<string, unknown>> {
    const t = this.types(service, method);
    return this.raw.makeBidiStreamRequest(t.path, serialize(t.req), deserialize(t.res), metadata, {});
  }

  close(): void {
    this.raw.close();
  }
}
