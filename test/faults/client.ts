/**
 * Clients of the fault harness: the etcd3 npm client, one per member endpoint, with its fault
 * handling switched off. A retry inside the client would apply one recorded operation twice
 * (a put retried after a lost answer lands again, after writes that followed it), which the
 * checkers would rightly call an anomaly: the harness must know of every attempt. So each call
 * goes once to one endpoint, under a deadline, and its outcome is classified here.
 */
import { Etcd3 } from 'etcd3';
import { noop } from 'cockatiel';
import * as grpc from '@grpc/grpc-js';
import { etcdService } from '../../src/api/etcd/proto/load.ts';

export const CLIENT_LIMITS = {
  /** Deadline of one unary call; past it the outcome of a write is unknown. */
  callTimeoutMs: 2_500,
  /** How long a client waits for a connection to its member. */
  dialTimeoutMs: 1_000,
} as const;

export function connect(url: string, callTimeoutMs: number = CLIENT_LIMITS.callTimeoutMs): Etcd3 {
  return new Etcd3({
    hosts: url,
    dialTimeout: CLIENT_LIMITS.dialTimeoutMs,
    faultHandling: { host: () => noop, global: noop },
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + callTimeoutMs }),
    grpcOptions: { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 1000 },
  });
}

/**
 * Whether a failed write certainly did not take effect. Only a refusal the server gives before
 * it proposes anything qualifies; everything else (a timeout, a dropped connection, "leader
 * changed", an unknown error) may have been applied, so the operation is indeterminate.
 */
export function definitelyNotApplied(e: unknown): boolean {
  const message = e instanceof Error ? e.message : String(e);
  // Never reached a server: no connection could be made.
  if (/ECONNREFUSED|No connection established|failed to connect|Channel closed before call started/i.test(message)) return true;
  // Refused before proposing (etcd's texts): a full queue, a learner, no space.
  return /etcdserver: (too many requests|rpc not supported for learner|mvcc: database space exceeded)/.test(message);
}

export function errorText(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 200);
}

/** Harness time: ms since the run started, on the monotonic clock all clients share. */
export type Clock = () => number;

const hashKvMethod = (() => {
  const m = etcdService('etcdserverpb.Maintenance').methods['HashKV']!;
  m.resolve();
  return { req: m.resolvedRequestType!, res: m.resolvedResponseType! };
})();

/**
 * Maintenance.HashKV at `revision` (the etcd3 client does not have it), over a raw gRPC call
 * with our own protos: the hash of the member's key space up to that revision.
 */
export function hashKV(url: string, revision: string, timeoutMs: number = CLIENT_LIMITS.callTimeoutMs): Promise<string> {
  const client = new grpc.Client(new URL(url).host, grpc.credentials.createInsecure());
  const { req, res } = hashKvMethod;
  return new Promise<string>((resolve, reject) => {
    client.makeUnaryRequest(
      '/etcdserverpb.Maintenance/HashKV',
      (o: object) => Buffer.from(req.encode(req.fromObject(o)).finish()),
      (b: Buffer) => res.toObject(res.decode(b), { longs: String }) as { hash?: number },
      { revision },
      { deadline: Date.now() + timeoutMs },
      (err, out) => (err !== null || out === undefined ? reject(err ?? new Error('no answer')) : resolve(String(out.hash ?? 0))),
    );
  }).finally(() => client.close());
}
