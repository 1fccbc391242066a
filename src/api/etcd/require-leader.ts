/**
 * etcd's `hasleader` call metadata (clientv3.WithRequireLeader, used by the Kubernetes API
 * server and by Conclave's own client): a stream opened with it is refused while the member
 * knows no leader, and an open one ends with "etcdserver: no leader" (UNAVAILABLE) once the
 * member has been without a leader for a few election timeouts, so the client reconnects to a
 * member that has one instead of waiting on one cut off from the cluster. Streams without it
 * are untouched, as in etcd.
 */
import { bidiStream, serverStream, type BidiStream, type CallContext, type MethodImpl, type ServerStream, type ServiceImpl } from '../grpc/index.ts';
import { serverError } from '../../server/errors.ts';
import { toGrpcError } from './errors.ts';

export const REQUIRE_LEADER_LIMITS = {
  /** How many leaderless checks in a row (one per election timeout) end the streams, as etcd's maxNoLeaderCnt. */
  noLeaderChecks: 3,
};

export interface LeaderSource {
  /** Whether the member currently knows a leader. */
  hasLeader(): boolean;
}

const METADATA_KEY = 'hasleader';

function requiresLeader(call: CallContext): boolean {
  return call.metadata[METADATA_KEY] === 'true';
}

function noLeader(): Error {
  return toGrpcError(serverError('NO_LEADER')) as Error;
}

/** Watches the member's leader and ends the registered streams once it has been gone too long. */
export class LeaderMonitor {
  private readonly streams = new Set<AbortController>();
  private leaderlessChecks = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly source: LeaderSource,
    private readonly checkEveryMs: number,
    private readonly limits = REQUIRE_LEADER_LIMITS,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => this.check(), this.checkEveryMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * Wraps the streaming methods of a service: a call with `hasleader` is refused without a
   * leader, else runs with a signal that also aborts when the monitor gives up on the leader.
   */
  wrap(impl: ServiceImpl): ServiceImpl {
    const wrapped: Record<string, MethodImpl> = {};
    for (const [method, m] of Object.entries(impl)) {
      if (m.kind === 'bidiStream') wrapped[method] = bidiStream((call: BidiStream<unknown, unknown>) => this.run(call, (c) => m.fn(c)));
      else if (m.kind === 'serverStream') wrapped[method] = serverStream((req: unknown, call: ServerStream<unknown>) => this.run(call, (c) => m.fn(req, c)));
      else wrapped[method] = m;
    }
    return wrapped;
  }

  private check(): void {
    this.leaderlessChecks = this.source.hasLeader() ? 0 : this.leaderlessChecks + 1;
    if (this.leaderlessChecks < this.limits.noLeaderChecks) return;
    for (const s of this.streams) s.abort(noLeader());
    this.streams.clear();
  }

  private async run<C extends ServerStream<unknown>>(call: C, handler: (call: C) => Promise<void>): Promise<void> {
    if (!requiresLeader(call)) return handler(call);
    if (!this.source.hasLeader()) throw noLeader();
    const ended = new AbortController();
    this.streams.add(ended);
    try {
      await handler(endedBy(call, ended.signal));
    } finally {
      this.streams.delete(ended);
    }
    // The handler saw the abort as the end of its call and returned: the client gets the reason.
    if (ended.signal.aborted) throw ended.signal.reason;
  }
}

/**
 * The same call, but its signal also aborts with `end`, and iterating its requests (for a
 * request stream) rejects with end's reason: a handler waiting for the client's next message
 * stops as it does when the client goes away.
 */
function endedBy<C extends ServerStream<unknown>>(call: C, end: AbortSignal): C {
  const signal = AbortSignal.any([call.signal, end]);
  const aborted = new Promise<never>((_, reject) => end.addEventListener('abort', () => reject(end.reason), { once: true }));
  aborted.catch(() => {});
  return new Proxy(call, {
    get(target, prop) {
      if (prop === 'signal') return signal;
      if (prop === Symbol.asyncIterator) {
        const iterable = target as unknown as AsyncIterable<unknown>;
        return () => {
          const inner = iterable[Symbol.asyncIterator]();
          return { next: () => Promise.race([inner.next(), aborted]) };
        };
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
