/**
 * Leases: the unary calls (grant, revoke, time to live, list) and `Lease`, a granted lease that
 * keeps itself alive.
 *
 * A Lease renews over a LeaseKeepAlive stream every TTL / leaseKeepAlivesPerTtl. When the stream
 * fails it opens another on a different member. It emits 'keepalive' (remaining TTL in seconds)
 * after each renewal and 'lost' (LeaseLostError) once, when the lease is gone: the server
 * answered TTL 0 or "lease not found"; or no renewal succeeded before its expiry and the cluster
 * confirms it expired; or the server refuses keep-alives for good (e.g. permission denied).
 * A leader change renews every lease in etcd and Conclave, so the client asks before giving a
 * lease up rather than trusting its own clock.
 */
import { EventEmitter } from 'node:events';
import { big, num, type Int64 } from '../api/etcd/convert.ts';
import { Status } from '../api/grpc/status.ts';
import { ClientClosedError, EtcdError, LeaseLostError, LeaseNotFoundError, errorFromStatus } from './errors.ts';
import { fromHeader, type PbHeaderIn, type ResponseHeader } from './kv.ts';
import { backoffMs, judge, method, type Rpc } from './rpc.ts';
import type { Call, CallSink, Endpoint } from './transport.ts';

export interface LeaseGrantResult {
  header: ResponseHeader;
  id: bigint;
  /** Granted TTL in seconds. */
  ttl: number;
}

export interface LeaseTimeToLiveResult {
  header: ResponseHeader;
  id: bigint;
  /** Remaining seconds; -1 when the lease does not exist (expired or revoked). */
  ttl: number;
  grantedTtl: number;
  keys: Buffer[];
}

interface PbLeaseGrantResponseIn {
  header: PbHeaderIn | null;
  ID: Int64;
  TTL: Int64;
  error: string;
}

interface PbLeaseTimeToLiveResponseIn {
  header: PbHeaderIn | null;
  ID: Int64;
  TTL: Int64;
  grantedTTL: Int64;
  keys: Buffer[];
}

interface PbKeepAliveResponseIn {
  header: PbHeaderIn | null;
  ID: Int64;
  TTL: Int64;
}

export const LEASE_METHODS = {
  grant: method('etcdserverpb.Lease', 'LeaseGrant'),
  revoke: method('etcdserverpb.Lease', 'LeaseRevoke'),
  keepAlive: method('etcdserverpb.Lease', 'LeaseKeepAlive'),
  timeToLive: method('etcdserverpb.Lease', 'LeaseTimeToLive'),
  leases: method('etcdserverpb.Lease', 'LeaseLeases'),
} as const;

export async function grantLease(rpc: Rpc, ttl: number, id: bigint = 0n): Promise<LeaseGrantResult> {
  const r = await rpc.unary<PbLeaseGrantResponseIn>(LEASE_METHODS.grant, { TTL: ttl, ID: id.toString() }, 'mutation');
  // etcd 3.4 may report a failure in the message instead of the status.
  if (r.error) throw errorFromStatus(Status.UNKNOWN, r.error);
  return { header: fromHeader(r.header), id: big(r.ID), ttl: num(r.TTL) };
}

export async function revokeLease(rpc: Rpc, id: bigint): Promise<ResponseHeader> {
  const r = await rpc.unary<{ header: PbHeaderIn | null }>(LEASE_METHODS.revoke, { ID: id.toString() }, 'mutation');
  return fromHeader(r.header);
}

export async function leaseTimeToLive(rpc: Rpc, id: bigint, keys = false): Promise<LeaseTimeToLiveResult> {
  const r = await rpc.unary<PbLeaseTimeToLiveResponseIn>(LEASE_METHODS.timeToLive, { ID: id.toString(), keys }, 'idempotent');
  return { header: fromHeader(r.header), id: big(r.ID), ttl: num(r.TTL), grantedTtl: num(r.grantedTTL), keys: (r.keys ?? []).map((k) => Buffer.from(k)) };
}

export async function listLeases(rpc: Rpc): Promise<{ header: ResponseHeader; ids: bigint[] }> {
  const r = await rpc.unary<{ header: PbHeaderIn | null; leases: { ID: Int64 }[] }>(LEASE_METHODS.leases, {}, 'idempotent');
  return { header: fromHeader(r.header), ids: (r.leases ?? []).map((l) => big(l.ID)) };
}

export interface LeaseEvents {
  keepalive: [ttl: number];
  lost: [error: LeaseLostError];
}

/** A granted lease kept alive until close(), revoke() or its loss. */
export class Lease extends EventEmitter<LeaseEvents> {
  /** Date.now() by which the lease expires unless renewed (from the last renewal's TTL). */
  private expiresAt: number;
  private ttl: number;
  private call: Call | null = null;
  /** The next renewal on the current stream. */
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private lostError: LeaseLostError | null = null;
  /** Resolves with the loss (never if the lease is closed or revoked first). */
  readonly lost: Promise<LeaseLostError>;
  private resolveLost!: (e: LeaseLostError) => void;
  private readonly lostController = new AbortController();

  constructor(
    private readonly rpc: Rpc,
    readonly id: bigint,
    grantedTtl: number,
    grantedAt: number,
  ) {
    super();
    this.ttl = grantedTtl;
    this.expiresAt = grantedAt + grantedTtl * 1000;
    this.lost = new Promise((resolve) => (this.resolveLost = resolve));
    void this.run();
  }

  /** True once the lease is known to be gone. */
  get isLost(): boolean {
    return this.lostError !== null;
  }

  /** The URL of the member the keep-alive stream is on (undefined between streams). */
  get endpoint(): string | undefined {
    return this.call?.endpointUrl;
  }

  /** Aborted (with the LeaseLostError) when the lease is lost: ends waits that depend on it. */
  get lostSignal(): AbortSignal {
    return this.lostController.signal;
  }

  /** The id as etcd prints it in keys (lowercase hex, as Go's %x). */
  get hexId(): string {
    return this.id.toString(16);
  }

  /** Stops renewing; the lease expires after its TTL (its keys with it). */
  close(): void {
    this.stop();
  }

  /** Stops renewing and revokes the lease now (its keys are deleted). */
  async revoke(): Promise<void> {
    this.stop();
    await revokeLease(this.rpc, this.id);
  }

  private stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.call?.cancel();
  }

  private declareLost(reason: string): void {
    if (this.lostError !== null) return;
    this.lostError = new LeaseLostError(`lease ${this.hexId} lost: ${reason}`);
    this.stop();
    this.resolveLost(this.lostError);
    this.lostController.abort(this.lostError);
    this.emit('lost', this.lostError);
  }

  private async run(): Promise<void> {
    let avoid: Endpoint | undefined;
    for (let attempt = 0; !this.stopped; attempt++) {
      const ended = await this.stream(avoid, () => {
        attempt = 0;
      });
      this.call = null;
      if (this.stopped) return;
      if (ended.error instanceof LeaseNotFoundError) return this.declareLost(ended.error.message);
      if (ended.error instanceof ClientClosedError) return this.stop();
      if (ended.error instanceof EtcdError) {
        const { verdict, endpointFault } = judge(ended.error, 'idempotent', false);
        // A refusal that no retry changes (e.g. permission denied): the lease cannot be kept.
        if (verdict === 'fail') return this.declareLost(`keep-alive refused: ${ended.error.message}`);
        if (endpointFault) ended.endpoint?.failed();
      }
      avoid = ended.endpoint;
      if (Date.now() >= this.expiresAt && !(await this.stillAlive())) return;
      try {
        await this.rpc.pause(backoffMs(attempt, this.rpc.limits), undefined);
      } catch {
        return this.stop();
      }
    }
  }

  /** Past the expected expiry without a renewal: ask the cluster (false: declared lost). */
  private async stillAlive(): Promise<boolean> {
    try {
      const asked = Date.now();
      const r = await leaseTimeToLive(this.rpc, this.id);
      if (r.ttl > 0) {
        this.expiresAt = asked + r.ttl * 1000;
        return true;
      }
      this.declareLost('expired before it could be renewed');
      return false;
    } catch (e) {
      if (e instanceof ClientClosedError) this.stop();
      // Cannot tell yet (no member answers): keep trying to renew.
      return !this.stopped;
    }
  }

  /**
   * One keep-alive stream; resolves with why it ended. Renewals go out every TTL / n whether
   * or not the last was answered; each answer renews from the time its request was sent. A
   * stream that leaves the lease unrenewed past its expiry is given up (the caller then asks
   * the cluster whether the lease still lives).
   */
  private async stream(avoid: Endpoint | undefined, onRenewed: () => void): Promise<{ error: unknown; endpoint: Endpoint | undefined }> {
    const sentAt: number[] = [];
    let endpoint: Endpoint | undefined;
    let done!: (error: unknown) => void;
    const ended = new Promise<{ error: unknown; endpoint: Endpoint | undefined }>((resolve) => (done = (error) => resolve({ error, endpoint })));
    const sink: CallSink = {
      message: (data) => {
        const r = LEASE_METHODS.keepAlive.response.decode(data) as unknown as PbKeepAliveResponseIn;
        const sent = sentAt.shift() ?? Date.now();
        const ttl = num(r.TTL);
        if (ttl <= 0) {
          this.declareLost('expired or revoked');
          return;
        }
        this.ttl = ttl;
        this.expiresAt = Math.max(this.expiresAt, sent + ttl * 1000);
        onRenewed();
        this.emit('keepalive', ttl);
      },
      end: (error) => {
        clearTimeout(this.timer);
        done(error ?? errorFromStatus(Status.UNAVAILABLE, 'keep-alive stream ended by the server'));
      },
    };
    const send = (call: Call): void => {
      if (this.stopped) return;
      if (Date.now() >= this.expiresAt) {
        call.cancel();
        return;
      }
      sentAt.push(Date.now());
      call.send(LEASE_METHODS.keepAlive.request.encode({ ID: this.id.toString() }).finish());
      this.timer = setTimeout(() => send(call), (this.ttl * 1000) / this.rpc.limits.leaseKeepAlivesPerTtl);
    };
    let call: Call;
    try {
      const handle = await this.rpc.openStream(LEASE_METHODS.keepAlive, sink, avoid);
      endpoint = handle.endpoint;
      call = handle.call;
      this.call = call;
    } catch (e) {
      return { error: e, endpoint: undefined };
    }
    if (this.stopped) call.cancel();
    else send(call);
    return ended;
  }
}
