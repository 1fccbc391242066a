/**
 * etcd's Cluster service: MemberList from any member; MemberAdd, MemberRemove, MemberUpdate
 * and MemberPromote decided by the leader (it knows who is connected and how far a learner has
 * caught up), so a follower forwards them to the leader's gateway (forward.ts).
 */
import type { Service } from 'protobufjs';
import type { CallContext, ServiceImpl } from '../grpc/index.ts';
import type { Member } from '../../server/member.ts';
import type { MemberRecord } from '../../server/members.ts';
import { idToDecimal } from '../../server/ids.ts';
import { header, hexId, type Int64, type PbHeader } from './convert.ts';
import { callerOf } from './auth.ts';
import { forwardToLeader } from './forward.ts';
import { grpcHandler } from './kv.ts';

interface PbMember {
  ID: string;
  name: string;
  peerURLs: readonly string[];
  clientURLs: readonly string[];
  isLearner: boolean;
}
interface PbMemberAddRequest {
  peerURLs?: string[] | null;
  isLearner?: boolean | null;
}
interface PbMemberId {
  ID: Int64;
}
interface PbMemberUpdateRequest {
  ID: Int64;
  peerURLs?: string[] | null;
}
interface PbMembersResponse {
  header: PbHeader;
  members: PbMember[];
  member?: PbMember;
}

function pbMember(m: MemberRecord): PbMember {
  return { ID: idToDecimal(m.id), name: m.name, peerURLs: m.peerUrls, clientURLs: m.clientUrls, isLearner: m.isLearner };
}

export class ClusterApi {
  constructor(private readonly member: Member) {}

  list(): PbMembersResponse {
    // etcd's Cluster service fills the header without a revision.
    return { header: header(this.member.header(), 0), members: this.member.members().map(pbMember) };
  }

  async add(r: PbMemberAddRequest, call: CallContext): Promise<PbMembersResponse> {
    await this.checkAdmin(call);
    if (!this.member.isLeader()) return this.viaLeader('cluster/member/add', r, call);
    const added = await this.member.memberAdd(r.peerURLs ?? [], r.isLearner === true);
    return { ...this.list(), member: pbMember(added) };
  }

  async remove(r: PbMemberId, call: CallContext): Promise<PbMembersResponse> {
    await this.checkAdmin(call);
    if (!this.member.isLeader()) return this.viaLeader('cluster/member/remove', { ID: String(r.ID) }, call);
    await this.member.memberRemove(hexId(r.ID));
    return this.list();
  }

  async update(r: PbMemberUpdateRequest, call: CallContext): Promise<PbMembersResponse> {
    await this.checkAdmin(call);
    if (!this.member.isLeader()) return this.viaLeader('cluster/member/update', { ID: String(r.ID), peerURLs: r.peerURLs ?? [] }, call);
    await this.member.memberUpdate(hexId(r.ID), r.peerURLs ?? []);
    return this.list();
  }

  async promote(r: PbMemberId, call: CallContext): Promise<PbMembersResponse> {
    await this.checkAdmin(call);
    if (!this.member.isLeader()) return this.viaLeader('cluster/member/promote', { ID: String(r.ID) }, call);
    await this.member.memberPromote(hexId(r.ID));
    return this.list();
  }

  /** Membership changes need the root role once auth is enabled (etcd's admin permission). */
  private async checkAdmin(call: CallContext): Promise<void> {
    this.member.auth.checkAdmin(await callerOf(this.member, call));
  }

  /** The leader's answer, with this member's header (the client asked this member). */
  private async viaLeader(path: string, body: object, call: CallContext): Promise<PbMembersResponse> {
    const res = await forwardToLeader<Partial<PbMembersResponse>>(this.member, path, body, call);
    return { ...res, header: header(this.member.header(), 0), members: res.members ?? [] };
  }
}

export function clusterService(api: ClusterApi, service: Service): [Service, ServiceImpl] {
  return [
    service,
    {
      MemberList: grpcHandler(async () => api.list()),
      MemberAdd: grpcHandler((r: PbMemberAddRequest, call) => api.add(r, call)),
      MemberRemove: grpcHandler((r: PbMemberId, call) => api.remove(r, call)),
      MemberUpdate: grpcHandler((r: PbMemberUpdateRequest, call) => api.update(r, call)),
      MemberPromote: grpcHandler((r: PbMemberId, call) => api.promote(r, call)),
    },
  ];
}
