/**
 * A @grpc/grpc-js client for our etcd protos, with protobufjs doing the encoding: calls name a
 * service (etcdService('etcdserverpb.KV'), …) and a method; requests are plain objects as
 * protobufjs's fromObject takes them, responses plain objects with 64-bit integers as strings.
 */
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import type { Service, Type } from 'protobufjs';

const serialize = (t: Type) => (o: object): Buffer => Buffer.from(t.encode(t.fromObject(o)).finish());
const deserialize = (t: Type) => (b: Buffer): Record<string, unknown> => t.toObject(t.decode(b), { longs: String });

export class GrpcTestClient {
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

  bidi(service: Service, method: string): grpc.ClientDuplexStream<object, Record<string, unknown>> {
    const t = this.types(service, method);
    return this.raw.makeBidiStreamRequest(t.path, serialize(t.req), deserialize(t.res), new grpc.Metadata(), {});
  }

  close(): void {
    this.raw.close();
  }
}
