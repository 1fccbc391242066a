/**
 * Membership calls of the Cluster service: add, remove, update and promote members. Member ids
 * go in and come out as the server prints them (16 hex digits, as etcdctl shows them in hex).
 */
import { hexId, type Int64 } from '../api/etcd/convert.ts';
import { fromHeader, type PbHeaderIn, type ResponseHeader } from './kv.ts';
import { method, type CallOptions, type Rpc } from './rpc.ts';

export interface MemberInfo {
  id: string;
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
}

export interface MembersResult {
  header: ResponseHeader;
  members: MemberInfo[];
}

export interface MemberAddResult extends MembersResult {
  member: MemberInfo;
}

interface PbMemberIn {
  ID: Int64;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

interface PbMembersResponseIn {
  header: PbHeaderIn | null;
  members: PbMemberIn[];
  member?: PbMemberIn | null;
}

const CLUSTER = {
  list: method('etcdserverpb.Cluster', 'MemberList'),
  add: method('etcdserverpb.Cluster', 'MemberAdd'),
  remove: method('etcdserverpb.Cluster', 'MemberRemove'),
  update: method('etcdserverpb.Cluster', 'MemberUpdate'),
  promote: method('etcdserverpb.Cluster', 'MemberPromote'),
} as const;

export function fromMember(m: PbMemberIn): MemberInfo {
  return { id: hexId(m.ID), name: m.name ?? '', peerUrls: m.peerURLs ?? [], clientUrls: m.clientURLs ?? [], isLearner: m.isLearner === true };
}

/** A member id in hex (as printed) to the decimal string the wire takes; refuses anything else. */
export function memberIdWire(hex: string): string {
  if (!/^[0-9a-f]{1,16}$/i.test(hex)) throw new TypeError(`bad member ID arg (${JSON.stringify(hex)}), expecting ID in Hex`);
  return BigInt(`0x${hex}`).toString();
}

function fromMembers(r: PbMembersResponseIn): MembersResult {
  return { header: fromHeader(r.header), members: (r.members ?? []).map(fromMember) };
}

export class Cluster {
  constructor(private readonly rpc: Rpc) {}

  async list(options?: CallOptions): Promise<MembersResult> {
    return fromMembers(await this.rpc.unary<PbMembersResponseIn>(CLUSTER.list, {}, 'idempotent', options));
  }

  /** Adds a member (a learner with `isLearner`); it is started afterwards with the new membership. */
  async add(peerUrls: readonly string[], options?: { isLearner?: boolean } & CallOptions): Promise<MemberAddResult> {
    const r = await this.rpc.unary<PbMembersResponseIn>(CLUSTER.add, { peerURLs: peerUrls, isLearner: options?.isLearner === true }, 'mutation', options);
    if (!r.member) throw new Error('MemberAdd answered without the added member');
    return { ...fromMembers(r), member: fromMember(r.member) };
  }

  async remove(id: string, options?: CallOptions): Promise<MembersResult> {
    return fromMembers(await this.rpc.unary<PbMembersResponseIn>(CLUSTER.remove, { ID: memberIdWire(id) }, 'mutation', options));
  }

  async update(id: string, peerUrls: readonly string[], options?: CallOptions): Promise<MembersResult> {
    return fromMembers(await this.rpc.unary<PbMembersResponseIn>(CLUSTER.update, { ID: memberIdWire(id), peerURLs: peerUrls }, 'mutation', options));
  }

  async promote(id: string, options?: CallOptions): Promise<MembersResult> {
    return fromMembers(await this.rpc.unary<PbMembersResponseIn>(CLUSTER.promote, { ID: memberIdWire(id) }, 'mutation', options));
  }
}
