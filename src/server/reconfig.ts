/**
 * Whether a membership change is safe to make now, judged by the leader as etcd's strict
 * reconfiguration check does (--strict-reconfig-check, on by default): a change must leave
 * enough started members (published their name) to form a quorum of the new voter set, and
 * enough members connected to the leader that the cluster stays available. Pure functions of
 * the member records and the leader's view of its followers.
 */
import type { MemberRecord } from './members.ts';
import type { ServerErrorCode } from './errors.ts';

export const MEMBERSHIP_LIMITS = {
  /** Learners a cluster may have at once (etcd 3.4 allows one). */
  learnersMax: 1,
  /** A learner may be promoted once its log matches at least this share of the leader's. */
  learnerReadyFraction: 0.9,
} as const;

export interface LeaderView {
  readonly self: string;
  readonly members: readonly MemberRecord[];
  /** Whether the leader heard from this member recently (the leader itself counts as active). */
  active(id: string): boolean;
  /** The highest log index known to be on this member (the leader's own last index for itself). */
  match(id: string): number;
  readonly strict: boolean;
}

export type Refusal = ServerErrorCode | null;

const quorum = (voters: number): number => Math.floor(voters / 2) + 1;
const started = (m: MemberRecord): boolean => m.name !== '';
const voters = (v: LeaderView): MemberRecord[] => v.members.filter((m) => !m.isLearner);

/** Peer URLs must be absolute http(s) URLs with a host and a port, as etcd's types.NewURLs requires. */
export function validPeerUrls(urls: readonly string[]): boolean {
  if (urls.length === 0) return false;
  return urls.every((raw) => {
    try {
      const u = new URL(raw);
      return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '' && u.port !== '' && (u.pathname === '/' || u.pathname === '') && u.search === '';
    } catch {
      return false;
    }
  });
}

function urlsTaken(v: LeaderView, urls: readonly string[], except?: string): boolean {
  return v.members.some((m) => m.id !== except && m.peerUrls.some((u) => urls.includes(u)));
}

/**
 * etcd's order: a new voter needs a quorum of the grown voter set started; any addition needs
 * the leader connected to every voter; then the change itself must be valid (URLs unused, room
 * for a learner).
 */
function readyToAdd(v: LeaderView, isLearner: boolean): Refusal {
  if (!v.strict) return null;
  const current = voters(v);
  const startedCount = current.filter(started).length;
  // Growing a one-member cluster (restoring from a snapshot) is always allowed, as in etcd.
  if (!isLearner && !(startedCount === 1 && current.length === 1) && startedCount < quorum(current.length + 1)) return 'NOT_ENOUGH_STARTED';
  if (!current.every((m) => v.active(m.id))) return 'UNHEALTHY';
  return null;
}

export function checkAdd(v: LeaderView, peerUrls: readonly string[], isLearner: boolean): Refusal {
  if (!validPeerUrls(peerUrls)) return 'MEMBER_BAD_URLS';
  const notReady = readyToAdd(v, isLearner);
  if (notReady !== null) return notReady;
  if (urlsTaken(v, peerUrls)) return 'PEER_URL_EXISTS';
  if (isLearner && v.members.filter((m) => m.isLearner).length >= MEMBERSHIP_LIMITS.learnersMax) return 'TOO_MANY_LEARNERS';
  return null;
}

export function checkRemove(v: LeaderView, id: string): Refusal {
  const target = v.members.find((m) => m.id === id);
  if (target === undefined) return 'MEMBER_NOT_FOUND';
  if (!v.strict || target.isLearner) return null;
  const remaining = voters(v).filter((m) => m.id !== id);
  if (remaining.filter(started).length < quorum(remaining.length)) return 'NOT_ENOUGH_STARTED';
  // A member that is down is safe to remove: it is not part of the active quorum.
  if (id !== v.self && !v.active(id)) return null;
  const activeRemaining = remaining.filter((m) => v.active(m.id)).length;
  return activeRemaining < quorum(remaining.length) ? 'UNHEALTHY' : null;
}

export function checkPromote(v: LeaderView, id: string): Refusal {
  const target = v.members.find((m) => m.id === id);
  if (target === undefined) return 'MEMBER_NOT_FOUND';
  if (!target.isLearner) return 'MEMBER_NOT_LEARNER';
  if (v.match(id) < v.match(v.self) * MEMBERSHIP_LIMITS.learnerReadyFraction) return 'LEARNER_NOT_READY';
  return readyToAdd(v, false);
}

export function checkUpdate(v: LeaderView, id: string, peerUrls: readonly string[]): Refusal {
  if (!validPeerUrls(peerUrls)) return 'MEMBER_BAD_URLS';
  if (!v.members.some((m) => m.id === id)) return 'MEMBER_NOT_FOUND';
  return urlsTaken(v, peerUrls, id) ? 'PEER_URL_EXISTS' : null;
}
