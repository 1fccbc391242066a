/**
 * Calls with failover, safe retries, deadlines and auth.
 *
 * Endpoints are used round-robin; one that fails (connection error, "no leader", "not leader",
 * …) is passed over for a cool-down while others are healthy. A call has one overall deadline
 * covering every try; between tries it backs off exponentially (capped, with jitter).
 *
 * What may be tried again depends on the call's safety:
 *   - `idempotent` calls (reads, read-only txns, lease queries, Authenticate) are retried after any
 *     transient failure: connection errors, UNAVAILABLE, "too many requests", a server timeout;
 *   - `mutation` calls are retried only when the server surely did not apply them: the request
 *     never left (dial failed, stream refused), or the server refused it before proposing it
 *     ("no leader", "not leader", "too many requests", "rpc not supported for learner", an
 *     invalid token). Any failure after the request may have been seen surfaces as
 *     IndeterminateError: a write is never sent twice by the client.
 *
 * Auth: with a user and password the client calls Authenticate on first use and sends the token
 * as the `token` metadata; "invalid auth token" (it expired, or a member restarted) makes it
 * authenticate again and retry once.
 */
import type { Method, Type } from 'protobufjs';
import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { etcdService } from '../api/etcd/proto/load.ts';
import { Status } from '../api/grpc/status.ts';
import {
  AuthNotEnabledError,
  CancelledError,
  ClientClosedError,
  ConnectionError,
  DeadlineExceededError,
  EtcdError,
  IndeterminateError,
  InvalidAuthTokenError,
  LeaderChangedError,
  LearnerNotSupportedError,
  NoEndpointAvailableError,
  NoLeaderError,
  NotCapableError,
  NotLeaderError,
  ServerTimeoutError,
  StoppedError,
  TooManyRequestsError,
  UnavailableError,
} from './errors.ts';
import type { ClientLimits, TlsOptions } from './options.ts';
import { Endpoint, type Call, type CallSink } from './transport.ts';

/** A gRPC method of the etcd API: its path and message types. */
export interface MethodDesc {
  readonly path: string;
  readonly request: Type;
  readonly response: Type;
}

const methods = new Map<string, MethodDesc>();

/** The method `name` of service `service` (e.g. "etcdserverpb.KV", "Range"). */
export function method(service: string, name: string): MethodDesc {
  const key = `${service}/${name}`;
  let desc = methods.get(key);
  if (desc === undefined) {
    const m: Method | null = etcdService(service).methods[name] ?? null;
    if (m === null || m.resolvedRequestType === null || m.resolvedResponseType === null) throw new Error(`no method ${key} in the etcd protos`);
    desc = { path: `/${key}`, request: m.resolvedRequestType, response: m.resolvedResponseType };
    methods.set(key, desc);
  }
  return desc;
}

export type Safety = 'idempotent' | 'mutation';

export interface CallOptions {
  /** Overall time for the call, tries included (default: limits.callTimeoutMs). */
  timeoutMs?: number;
  /** Aborts the call (CancelledError; a mutation already sent: IndeterminateError). */
  signal?: AbortSignal;
}

type Verdict = 'retry' | 'fail' | 'indeterminate';

/** Whether a failed try may be repeated, and whether its endpoint is to blame. */
export function judge(error: EtcdError, safety: Safety, deadlinePassed: boolean): { verdict: Verdict; endpointFault: boolean } {
  const transient = safety === 'idempotent' ? 'retry' : 'indeterminate';
  if (error instanceof ConnectionError) return { verdict: safety === 'idempotent' || !error.sent ? 'retry' : 'indeterminate', endpointFault: true };
  if (error instanceof NoLeaderError || error instanceof NotLeaderError || error instanceof LearnerNotSupportedError || error instanceof NotCapableError) {
    return { verdict: 'retry', endpointFault: true };
  }
  if (error instanceof TooManyRequestsError) return { verdict: 'retry', endpointFault: false };
  if (error instanceof DeadlineExceededError) return { verdict: deadlinePassed ? (safety === 'idempotent' ? 'fail' : 'indeterminate') : transient, endpointFault: false };
  if (error instanceof ServerTimeoutError || error instanceof LeaderChangedError) return { verdict: transient, endpointFault: false };
  // CANCELLED from the server: it ended the call (e.g. shutting down), not the caller.
  if (error instanceof StoppedError || error instanceof UnavailableError || error instanceof CancelledError) return { verdict: transient, endpointFault: true };
  return { verdict: 'fail', endpointFault: false };
}

/** Exponential back-off with full jitter in the upper half: [d/2, d). */
export function backoffMs(attempt: number, limits: ClientLimits): number {
  const d = Math.min(limits.backoffMaxMs, limits.backoffBaseMs * 2 ** Math.min(attempt, 30));
  return d / 2 + Math.random() * (d / 2);
}

export interface StreamHandle {
  readonly call: Call;
  readonly endpoint: Endpoint;
}

export class Rpc {
  private next = 0;
  private token: string | null = null;
  private authenticating: Promise<string | null> | null = null;
  private closed = false;
  private authenticationCount = 0;
  /** Aborted on close(): ends every wait and stream of the client. */
  readonly closing = new AbortController();

  readonly endpoints: readonly Endpoint[];

  constructor(
    urls: readonly string[],
    tls: TlsOptions | undefined,
    readonly limits: ClientLimits,
    private readonly auth: { username: string; password: string } | undefined,
  ) {
    this.endpoints = urls.map((u) => new Endpoint(u, tls, limits));
    // One listener per call in flight: as many as the application runs at once.
    setMaxListeners(Infinity, this.closing.signal);
  }

  /** How many times the client has authenticated (once, plus once per token refused). */
  get authentications(): number {
    return this.authenticationCount;
  }

  /** The next endpoint in turn that is not cooling down (the soonest-cooled one if none is). */
  pick(exclude?: Endpoint): Endpoint {
    const n = this.endpoints.length;
    for (let i = 0; i < n; i++) {
      const ep = this.endpoints[(this.next + i) % n]!;
      if (ep.healthy && (ep !== exclude || n === 1)) {
        this.next = (this.next + i + 1) % n;
        return ep;
      }
    }
    const candidates = this.endpoints.filter((e) => e !== exclude || n === 1);
    return candidates.reduce((a, b) => (b.cooldownEnds < a.cooldownEnds ? b : a));
  }

  /** One unary call with failover and the retries its safety allows. */
  async unary<Res>(desc: MethodDesc, request: object, safety: Safety, options: CallOptions = {}): Promise<Res> {
    const bytes = desc.request.encode(request).finish();
    const deadline = Date.now() + (options.timeoutMs ?? this.limits.callTimeoutMs);
    let reauthenticated = false;
    let lastEndpoint: Endpoint | undefined;
    // The last reason an endpoint gave for refusing us (a certificate, a reset): more telling
    // than the dial that ran out of time at the deadline, which is what the last attempt sees.
    let lastRefusal: ConnectionError | undefined;
    for (let attempt = 0; ; attempt++) {
      this.checkOpen(options.signal);
      const endpoint = this.pick(lastEndpoint);
      lastEndpoint = endpoint;
      let token: string | null = null;
      try {
        token = desc.path === AUTHENTICATE_PATH ? null : await this.currentToken(deadline);
        const reply = await this.callOnce(endpoint, desc, bytes, token, deadline, options.signal);
        endpoint.succeeded();
        // The decoded message has the shape the caller's Res describes (protobufjs's convention).
        return desc.response.decode(reply) as unknown as Res;
      } catch (e) {
        if (!(e instanceof EtcdError)) throw e;
        if (e instanceof InvalidAuthTokenError && this.auth !== undefined && !reauthenticated) {
          reauthenticated = true;
          this.forgetToken(token);
          continue;
        }
        // Canceled here (the caller's signal, or close()) after the request may have left.
        if (e instanceof CancelledError && (options.signal?.aborted === true || this.closed)) {
          throw safety === 'mutation' ? new IndeterminateError(desc.path, e) : this.closed ? new ClientClosedError('client closed', Status.CANCELLED, { cause: e }) : e;
        }
        const { verdict, endpointFault } = judge(e, safety, Date.now() >= deadline);
        if (endpointFault) endpoint.failed();
        if (verdict === 'fail') throw e;
        if (verdict === 'indeterminate') throw new IndeterminateError(desc.path, e);
        if (e instanceof ConnectionError && e.cause !== undefined) lastRefusal = e;
        const wait = backoffMs(attempt, this.limits);
        if (Date.now() + wait >= deadline) {
          if (!(e instanceof ConnectionError)) throw e;
          const reason = e.cause === undefined ? (lastRefusal ?? e) : e;
          throw new NoEndpointAvailableError(`${desc.path}: no endpoint answered before the deadline: ${reason.message}`, Status.UNAVAILABLE, { cause: reason });
        }
        await this.pause(wait, options.signal);
      }
    }
  }

  /**
   * Opens a stream (watch, keep-alive) on an endpoint other than `avoid` when another is
   * healthy, retrying connection failures with back-off until the deadline.
   */
  async openStream(desc: MethodDesc, sink: CallSink, avoid: Endpoint | undefined, extraMetadata: Record<string, string> = {}): Promise<StreamHandle> {
    const deadline = Date.now() + this.limits.callTimeoutMs;
    let exclude = avoid;
    for (let attempt = 0; ; attempt++) {
      this.checkOpen(undefined);
      const endpoint = this.pick(exclude);
      try {
        const token = await this.currentToken(deadline);
        const call = await endpoint.open(desc.path, { ...this.metadata(token), ...extraMetadata }, undefined, sink);
        return { call, endpoint };
      } catch (e) {
        if (!(e instanceof EtcdError)) throw e;
        const { verdict, endpointFault } = judge(e, 'idempotent', false);
        if (endpointFault) endpoint.failed();
        exclude = endpoint;
        const wait = backoffMs(attempt, this.limits);
        if (verdict !== 'retry' || Date.now() + wait >= deadline) throw e;
        await this.pause(wait, undefined);
      }
    }
  }

  /** Encodes a message of `desc`'s request type. */
  encode(desc: MethodDesc, message: object): Uint8Array {
    return desc.request.encode(message).finish();
  }

  /** The current token; authenticates first when the client has credentials and no token. */
  async currentToken(deadline: number): Promise<string | null> {
    if (this.auth === undefined || this.token !== null) return this.token;
    this.authenticating ??= this.authenticate(deadline).finally(() => {
      this.authenticating = null;
    });
    return this.authenticating;
  }

  /** Drops `token` (it was refused) so the next call authenticates again. */
  forgetToken(token: string | null): void {
    if (this.token === token) this.token = null;
  }

  /** Waits `ms`, ending early (CancelledError / ClientClosedError) on abort or close. */
  async pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
    const signals = signal === undefined ? [this.closing.signal] : [this.closing.signal, signal];
    try {
      await sleep(ms, undefined, { signal: AbortSignal.any(signals) });
    } catch {
      this.checkOpen(signal);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.closing.abort(new ClientClosedError('client closed'));
    for (const ep of this.endpoints) ep.close();
  }

  metadata(token: string | null): Record<string, string> {
    return token === null ? {} : { token };
  }

  private checkOpen(signal: AbortSignal | undefined): void {
    if (this.closed) throw new ClientClosedError('client closed');
    if (signal?.aborted) throw new CancelledError('context canceled', Status.CANCELLED, { cause: signal.reason });
  }

  private async authenticate(deadline: number): Promise<string | null> {
    const auth = this.auth!;
    const desc = method('etcdserverpb.Auth', 'Authenticate');
    try {
      const res = await this.unary<{ token: string }>(desc, { name: auth.username, password: auth.password }, 'idempotent', { timeoutMs: Math.max(1, deadline - Date.now()) });
      this.token = res.token;
      this.authenticationCount++;
    } catch (e) {
      // As etcd's client: a cluster without auth takes requests without a token.
      if (!(e instanceof AuthNotEnabledError)) throw e;
      this.token = null;
      return null;
    }
    return this.token;
  }

  private callOnce(endpoint: Endpoint, desc: MethodDesc, bytes: Uint8Array, token: string | null, deadline: number, signal: AbortSignal | undefined): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      let reply: Buffer | undefined;
      let call: Call | undefined;
      const onAbort = (): void => call?.cancel();
      const sink: CallSink = {
        message: (data) => {
          // A view into the received chunk, whose memory the HTTP/2 session may reuse: keep a copy.
          reply = Buffer.from(data);
        },
        end: (error) => {
          signal?.removeEventListener('abort', onAbort);
          this.closing.signal.removeEventListener('abort', onAbort);
          if (error !== null) reject(error);
          else if (reply === undefined) reject(new EtcdError(`${desc.path}: no response message`, Status.INTERNAL));
          else resolve(reply);
        },
      };
      endpoint.open(desc.path, this.metadata(token), deadline, sink).then(
        (c) => {
          call = c;
          signal?.addEventListener('abort', onAbort);
          this.closing.signal.addEventListener('abort', onAbort);
          if (signal?.aborted || this.closed) c.cancel();
          c.send(bytes);
          c.halfClose();
        },
        (e: unknown) => reject(e),
      );
    });
  }
}

const AUTHENTICATE_PATH = '/etcdserverpb.Auth/Authenticate';
