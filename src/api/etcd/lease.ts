/**
 * etcd's Lease service: LeaseGrant, LeaseRevoke, LeaseKeepAlive, LeaseTimeToLive, LeaseLeases.
 *
 * Grant and revoke go through the log from any member. Keep-alives and remaining TTLs live only
 * in the leader's lessor, so a follower forwards those two to the leader (as etcd does), over the
 * leader's client URL (forward.ts): POST /v3/lease/keepalive (a unary JSON route, an
 * internal shortcut: etcd's own gateway route streams) and /v3/lease/timetolive.
 */
import type { Service } from 'protobufjs';
import { bidiStream, type BidiStream, type CallContext, type ServiceImpl } from '../grpc/index.ts';
import type { Member } from '../../server/member.ts';
import { big, header, num, type Int64, type PbHeader } from './convert.ts';
import { toGrpcError } from './errors.ts';
import { serverError } from '../../server/errors.ts';
import { callerOf } from './auth.ts';
import { forwardToLeader } from './forward.ts';
import { grpcHandler } from './kv.ts';

interface PbLeaseGrantRequest {
  TTL: Int64;
  ID: Int64;
}
interface PbLeaseId {
  ID: Int64;
}
interface PbLeaseTimeToLiveRequest {
  ID: Int64;
  keys: boolean;
}
interface PbKeepAliveResponse {
  header: PbHeader;
  ID: string;
  TTL: number;
}
interface PbTimeToLiveResponse {
  header: PbHeader;
  ID: string;
  TTL: number;
  grantedTTL: number;
  keys: Uint8Array[];
}

/** The lease operations shared by the gRPC service and the JSON gateway. */
export class LeaseApi {
  constructor(private readonly member: Member) {}

  async grant(pb: PbLeaseGrantRequest, call: CallContext) {
    const r = await this.member.leaseGrant(big(pb.ID), num(pb.TTL), await callerOf(this.member, call));
    return { header: header(this.member.header()), ID: r.id.toString(), TTL: r.ttl, error: '' };
  }

  /** Needs write access to the lease's keys, checked as the revoke applies. */
  async revoke(pb: PbLeaseId, call: CallContext) {
    await this.member.leaseRevoke(big(pb.ID), await callerOf(this.member, call));
    return { header: header(this.member.header()) };
  }

  async keepAlive(pb: PbLeaseId, call?: CallContext): Promise<PbKeepAliveResponse> {
    const id = big(pb.ID);
    if (this.member.isLeasePrimary()) {
      const ttl = await this.member.leaseRenew(id);
      if (ttl !== undefined) return { header: header(this.member.header()), ID: id.toString(), TTL: ttl };
      // Deposed meanwhile: the new leader answers.
    }
    const res = await forwardToLeader<{ TTL?: string | number }>(this.member, 'lease/keepalive', { ID: id.toString() }, call);
    return { header: header(this.member.header()), ID: id.toString(), TTL: Number(res.TTL ?? 0) };
  }

  /**
   * With keys, the caller must be allowed to read every attached key (as etcd ≥ 3.4.26 checks;
   * 3.4.23 listed them to anyone), and the auth state must not change meanwhile.
   */
  async timeToLive(pb: PbLeaseTimeToLiveRequest, call?: CallContext): Promise<PbTimeToLiveResponse> {
    const id = big(pb.ID);
    const keys = pb.keys === true;
    if (!keys || call === undefined) return this.lookUp(id, keys, call);
    const auth = this.member.auth;
    const revision = auth.state().revision;
    auth.checkLeaseKeysRead(await callerOf(this.member, call), id);
    const res = await this.lookUp(id, keys, call);
    if (auth.state().enabled && auth.state().revision !== revision) throw serverError('AUTH_OLD_REVISION');
    return res;
  }

  private async lookUp(id: bigint, keys: boolean, call: CallContext | undefined): Promise<PbTimeToLiveResponse> {
    if (!this.member.isLeasePrimary() && this.member.leaderClientUrl() !== undefined) {
      const res = await forwardToLeader<{ TTL?: string | number; grantedTTL?: string | number; keys?: string[] }>(this.member, 'lease/timetolive', { ID: id.toString(), keys }, call);
      return {
        header: header(this.member.header()),
        ID: id.toString(),
        TTL: Number(res.TTL ?? 0),
        grantedTTL: Number(res.grantedTTL ?? 0),
        keys: (res.keys ?? []).map((k) => new Uint8Array(Buffer.from(k, 'base64'))),
      };
    }
    // The leader (or a member with no leader: its replicated estimate) answers from its applied
    // state, after catching up with everything committed (a grant just acknowledged elsewhere).
    await this.member.linearizableBarrier();
    const ttl = this.member.leaseTimeToLive(id, keys);
    // etcd answers an unknown lease with TTL -1, not an error.
    if (ttl === undefined) return { header: header(this.member.header()), ID: id.toString(), TTL: -1, grantedTTL: 0, keys: [] };
    return { header: header(this.member.header()), ID: id.toString(), TTL: ttl.remainingTtl, grantedTTL: ttl.grantedTtl, keys: ttl.keys };
  }

  async leases() {
    await this.member.linearizableBarrier();
    return { header: header(this.member.header()), leases: this.member.lessorView().leases().map((l) => ({ ID: l.id.toString() })) };
  }
}

async function keepAliveStream(api: LeaseApi, call: BidiStream<PbLeaseId, PbKeepAliveResponse>): Promise<void> {
  try {
    for await (const req of call) await call.write(await api.keepAlive(req));
  } catch (e) {
    if (call.signal.aborted) return;
    throw toGrpcError(e);
  }
}

export function leaseService(api: LeaseApi, service: Service): [Service, ServiceImpl] {
  return [
    service,
    {
      LeaseGrant: grpcHandler((r: PbLeaseGrantRequest, call) => api.grant(r, call)),
      LeaseRevoke: grpcHandler((r: PbLeaseId, call) => api.revoke(r, call)),
      LeaseKeepAlive: bidiStream((call: BidiStream<PbLeaseId, PbKeepAliveResponse>) => keepAliveStream(api, call)),
      LeaseTimeToLive: grpcHandler((r: PbLeaseTimeToLiveRequest, call) => api.timeToLive(r, call)),
      LeaseLeases: grpcHandler(() => api.leases()),
    },
  ];
}

/** The gateway's keep-alive route: one renewal per POST (what forwarding followers use). */
export function keepAliveRoute(api: LeaseApi) {
  return (request: unknown, call: CallContext) => api.keepAlive(request as PbLeaseId, call).catch((e: unknown) => {
    throw toGrpcError(e);
  });
}
