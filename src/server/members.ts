/**
 * The cluster's members as the state machine records them: who they are (id, name), where
 * their peers and clients reach them, and whether they are learners. Kept in the MVCC store's
 * meta space, so it is part of every snapshot and every member agrees on it at each index.
 * Raft's own configuration says who votes; this says how to reach them.
 */
import type { MetaReader, MetaWriter } from '../mvcc/index.ts';

export const MEMBERS_NAMESPACE = 'members';

export interface MemberRecord {
  readonly id: string;
  readonly name: string;
  readonly peerUrls: readonly string[];
  readonly clientUrls: readonly string[];
  readonly isLearner: boolean;
}

/**
 * What a conf change carries in its context: the member being added (or updated), and who
 * proposed the change with which request id, so that the proposer's waiter learns it applied.
 */
export interface MemberContext {
  readonly name: string;
  readonly peerUrls: readonly string[];
  readonly proposer?: string;
  readonly requestId?: number;
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

export function encodeMemberContext(c: MemberContext): Uint8Array {
  return utf8.encode(JSON.stringify(c));
}

export function decodeMemberContext(data: Uint8Array): MemberContext {
  if (data.byteLength === 0) return { name: '', peerUrls: [] };
  const parsed = JSON.parse(fromUtf8.decode(data)) as Partial<MemberContext>;
  return {
    name: String(parsed.name ?? ''),
    peerUrls: Array.isArray(parsed.peerUrls) ? parsed.peerUrls.map(String) : [],
    ...(typeof parsed.proposer === 'string' && typeof parsed.requestId === 'number' ? { proposer: parsed.proposer, requestId: parsed.requestId } : {}),
  };
}

function key(id: string): Uint8Array {
  return Buffer.from(id.padStart(16, '0'), 'hex');
}

export function readMembers(meta: MetaReader): MemberRecord[] {
  return meta.entries(MEMBERS_NAMESPACE).map((e) => JSON.parse(fromUtf8.decode(e.value)) as MemberRecord);
}

export function readMember(meta: MetaReader, id: string): MemberRecord | undefined {
  const v = meta.get(MEMBERS_NAMESPACE, key(id));
  return v === undefined ? undefined : (JSON.parse(fromUtf8.decode(v)) as MemberRecord);
}

export function writeMember(meta: MetaWriter, m: MemberRecord): void {
  meta.put(MEMBERS_NAMESPACE, key(m.id), utf8.encode(JSON.stringify(m)));
}

export function deleteMember(meta: MetaWriter, id: string): void {
  meta.delete(MEMBERS_NAMESPACE, key(id));
}

/** Members removed from the cluster: their ids are never reused, and their peers refuse them. */
export const REMOVED_NAMESPACE = 'removed-members';

export function markRemoved(meta: MetaWriter, id: string): void {
  meta.put(REMOVED_NAMESPACE, key(id), new Uint8Array(0));
}

export function isRemoved(meta: MetaReader, id: string): boolean {
  return meta.get(REMOVED_NAMESPACE, key(id)) !== undefined;
}
