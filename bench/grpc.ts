/**
 * Unary gRPC throughput: the same KV.Range handler (etcd protos, protobufjs codecs, a 100-byte
 * value) served by our GrpcServer through the one-port mux, and by @grpc/grpc-js's own Server.
 * The server runs in a worker thread, the client in the main thread, so each has a core; the
 * server thread's event-loop utilisation says whether the server or the client was the limit.
 *
 * Clients: "grpc-js" (the real client, as etcd's JS clients use) and "h2" (a bare node:http2
 * client that frames requests itself: cheap, so it loads the server harder).
 *
 * Each pairing runs --rounds times, alternating servers so machine load hits both alike; the
 * median round is printed. "server µs/op" is the server thread's busy time per call: the
 * cost of serving one call, meaningful even when the client is the bottleneck.
 *
 * Options: --seconds N (per run, default 5)  --rounds N (default 3)
 *          --concurrency N (calls in flight, default 64)
 *          --value-bytes N (default 100)  --client grpc-js|h2|both (default both)
 * Run: npm run bench -- grpc --seconds 5
 */
import http2 from 'node:http2';
import { performance } from 'node:perf_hooks';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import * as grpc from '@grpc/grpc-js';
import type { Long, Service, Type } from 'protobufjs';
import { etcdService } from '../src/api/etcd/proto/load.ts';
import { FrameReader, frameMessage } from '../src/api/grpc/framing.ts';
import { GrpcServer, listenClientPort, unary } from '../src/api/grpc/index.ts';

type ServerKind = 'mux' | 'grpc-js';
type ClientKind = 'grpc-js' | 'h2';

interface Options {
  seconds: number;
  rounds: number;
  concurrency: number;
  valueBytes: number;
  clients: ClientKind[];
}

function parse(args: string[]): Options {
  const o: Options = { seconds: 5, rounds: 3, concurrency: 64, valueBytes: 100, clients: ['grpc-js', 'h2'] };
  for (let i = 0; i < args.length; i++) {
    const v = args[i + 1];
    const num = (): number => {
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0) throw new Error(`bench grpc: ${args[i]} needs a positive number`);
      i++;
      return n;
    };
    switch (args[i]) {
      case '--seconds': o.seconds = num(); break;
      case '--rounds': o.rounds = Math.floor(num()); break;
      case '--concurrency': o.concurrency = Math.floor(num()); break;
      case '--value-bytes': o.valueBytes = Math.floor(num()); break;
      case '--client':
        if (v !== 'grpc-js' && v !== 'h2' && v !== 'both') throw new Error('bench grpc: --client grpc-js|h2|both');
        o.clients = v === 'both' ? ['grpc-js', 'h2'] : [v];
        i++;
        break;
      default:
        throw new Error(`bench grpc: unknown option ${args[i]}`);
    }
  }
  return o;
}

const KV: Service = etcdService('etcdserverpb.KV');
const rangeMethod = KV.methods.Range!;
rangeMethod.resolve();
const RangeRequest: Type = rangeMethod.resolvedRequestType!;
const RangeResponse: Type = rangeMethod.resolvedResponseType!;
const RANGE_PATH = '/etcdserverpb.KV/Range';

interface RangeReq { key: Buffer; revision: Long }

/** The handler both servers run: what a serializable one-key Range answers. */
function rangeResponse(req: RangeReq, value: Buffer): object {
  return {
    header: { cluster_id: '14841639068965178418', member_id: '10276657743932975437', revision: 12345, raft_term: 2 },
    kvs: [{ key: req.key, value, create_revision: 100, mod_revision: 12345, version: 7 }],
    count: 1,
  };
}

// ---- server side (worker thread) -------------------------------------------------------------

interface WorkerInput { role: 'grpc-bench-server'; kind: ServerKind; valueBytes: number }

async function serve(input: WorkerInput): Promise<void> {
  const value = Buffer.alloc(input.valueBytes, 0x76);
  let port: number;
  let stop: () => Promise<void>;
  if (input.kind === 'mux') {
    const server = new GrpcServer().addService(KV, {
      Range: unary<RangeReq, object>(async (req) => rangeResponse(req, value)),
    });
    const p = await listenClientPort({ host: '127.0.0.1', port: 0 }, server.handleStream, (_q, res) => res.end());
    port = p.address().port;
    stop = () => p.close(100);
  } else {
    const server = new grpc.Server();
    const definition: grpc.ServiceDefinition = {
      Range: {
        path: RANGE_PATH,
        requestStream: false,
        responseStream: false,
        requestSerialize: (o: object) => Buffer.from(RangeRequest.encode(o).finish()),
        requestDeserialize: (b: Buffer) => RangeRequest.decode(b),
        responseSerialize: (o: object) => Buffer.from(RangeResponse.encode(o).finish()),
        responseDeserialize: (b: Buffer) => RangeResponse.decode(b),
      },
    };
    server.addService(definition, {
      Range: (call: grpc.ServerUnaryCall<RangeReq, object>, cb: grpc.sendUnaryData<object>) => cb(null, rangeResponse(call.request, value)),
    });
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    stop = () => new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  }
  let elu = performance.eventLoopUtilization();
  parentPort!.on('message', (msg: string) => {
    if (msg === 'mark') {
      elu = performance.eventLoopUtilization();
    } else if (msg === 'elu') {
      parentPort!.postMessage({ elu: performance.eventLoopUtilization(elu).utilization });
    } else if (msg === 'stop') {
      void stop().then(() => process.exit(0));
    }
  });
  parentPort!.postMessage({ port });
}

if (!isMainThread && (workerData as WorkerInput | undefined)?.role === 'grpc-bench-server') {
  await serve(workerData as WorkerInput);
}

// ---- client side -------------------------------------------------------------------------------

interface Driver {
  call(): Promise<void>;
  close(): void;
}

function grpcJsDriver(port: number): Driver {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const serialize = (o: object): Buffer => Buffer.from(RangeRequest.encode(o).finish());
  const deserialize = (b: Buffer): object => RangeResponse.decode(b);
  const request = { key: Buffer.from('bench/key/0001') };
  return {
    call: () =>
      new Promise<void>((resolve, reject) => {
        client.makeUnaryRequest(RANGE_PATH, serialize, deserialize, request, (err) => (err !== null ? reject(err) : resolve()));
      }),
    close: () => client.close(),
  };
}

/** A bare HTTP/2 client: one connection, framed requests, status checked from trailers. */
function h2Driver(port: number): Driver {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', () => {});
  const body = frameMessage(RangeRequest.encode({ key: Buffer.from('bench/key/0001') }).finish());
  const headers = { ':method': 'POST', ':path': RANGE_PATH, 'content-type': 'application/grpc', te: 'trailers' };
  return {
    call: () =>
      new Promise<void>((resolve, reject) => {
        const req = session.request(headers);
        const reader = new FrameReader(1 << 24);
        let messages = 0;
        let status: string | undefined;
        req.on('response', (h) => (status = h['grpc-status'] as string | undefined));
        req.on('trailers', (t) => (status = t['grpc-status'] as string | undefined));
        req.on('data', (c: Buffer) => reader.push(c, (_z, m) => {
          RangeResponse.decode(m);
          messages++;
        }));
        req.on('error', reject);
        req.on('close', () => (status === '0' && messages === 1 ? resolve() : reject(new Error(`call failed: status ${status}`))));
        req.end(body);
      }),
    close: () => session.close(),
  };
}

interface RunResult { ops: number; p50: number; p99: number; serverElu: number; serverUsPerOp: number }

async function run(kind: ServerKind, clientKind: ClientKind, o: Options): Promise<RunResult> {
  // A worker does not get the parent's tsx loader hooks, so it registers tsx before loading
  // this file (which then sees workerData and serves).
  const self = JSON.stringify(import.meta.url);
  const worker = new Worker(
    `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${self}); })`,
    { eval: true, workerData: { role: 'grpc-bench-server', kind, valueBytes: o.valueBytes } satisfies WorkerInput },
  );
  const next = (): Promise<Record<string, number>> => new Promise((resolve) => worker.once('message', resolve));
  const { port } = await next();
  const driver = clientKind === 'grpc-js' ? grpcJsDriver(port!) : h2Driver(port!);
  try {
    const loop = async (until: number, latencies: number[] | undefined): Promise<number> => {
      let n = 0;
      while (performance.now() < until) {
        const t = performance.now();
        await driver.call();
        latencies?.push(performance.now() - t);
        n++;
      }
      return n;
    };
    // Warm up: JIT, connection, windows.
    const warm = performance.now() + Math.min(1000, o.seconds * 300);
    await Promise.all(Array.from({ length: o.concurrency }, () => loop(warm, undefined)));
    worker.postMessage('mark');
    const latencies: number[] = [];
    const start = performance.now();
    const counts = await Promise.all(Array.from({ length: o.concurrency }, () => loop(start + o.seconds * 1000, latencies)));
    const secs = (performance.now() - start) / 1000;
    worker.postMessage('elu');
    const { elu } = await next();
    latencies.sort((a, b) => a - b);
    const q = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))]!;
    const ops = counts.reduce((a, b) => a + b, 0) / secs;
    return { ops, p50: q(0.5), p99: q(0.99), serverElu: elu!, serverUsPerOp: (elu! * 1e6) / ops };
  } finally {
    driver.close();
    worker.postMessage('stop');
    await new Promise((resolve) => worker.once('exit', resolve));
  }
}

export async function benchGrpc(args: string[]): Promise<void> {
  const o = parse(args);
  console.log(
    `grpc bench: unary KV.Range (${o.valueBytes}-byte value), ${o.concurrency} calls in flight on one connection, ` +
      `${o.seconds}s per run, server in a worker thread, node ${process.version}`,
  );
  for (const clientKind of o.clients) {
    const results: Record<ServerKind, RunResult[]> = { mux: [], 'grpc-js': [] };
    for (let round = 0; round < o.rounds; round++) {
      for (const kind of ['mux', 'grpc-js'] as const) results[kind].push(await run(kind, clientKind, o));
    }
    for (const kind of ['mux', 'grpc-js'] as const) {
      const sorted = [...results[kind]].sort((a, b) => a.ops - b.ops);
      const r = sorted[sorted.length >> 1]!;
      const name = kind === 'mux' ? 'GrpcServer via mux' : '@grpc/grpc-js Server';
      console.log(
        `  client ${clientKind.padEnd(7)} server ${name.padEnd(21)} ` +
          `${Math.round(r.ops).toLocaleString('en-US').padStart(8)} ops/s  ` +
          `p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  ` +
          `server thread busy ${(r.serverElu * 100).toFixed(0)}%, ${r.serverUsPerOp.toFixed(0)} µs/op  ` +
          `(rounds: ${results[kind].map((x) => Math.round(x.ops)).join(', ')} ops/s)`,
      );
    }
  }
}

export default benchGrpc;
