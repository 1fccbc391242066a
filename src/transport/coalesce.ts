/**
 * Coalescing of the Raft messages queued for one peer before they are written, so a busy leader
 * sends one append per follower per write instead of one per proposal batch and commit update,
 * and a follower one acknowledgement instead of one per append.
 *
 * Only a message and the one queued right before it for the same peer are combined, and only
 * where the receiver ends up exactly as if it had stepped both in order, or as if the earlier
 * one had been lost on the wire (always safe in Raft; the later one supersedes it):
 *   app + app         contiguous appends of one term (the second starts where the first ends,
 *                     at the term of its last entry) → one append of both runs of entries, with
 *                     the newer commit index; the follower appends the same entries and commits
 *                     min(commit, last new index) as it would after the two;
 *   appResp + appResp two acceptances of one term → the one acknowledging the higher index
 *                     (the leader takes the maximum anyway); rejections are never combined;
 *   heartbeat + heartbeat         → the newer commit and the newer read context (a quorum for
 *                     a later ReadIndex context releases every read queued before it);
 *   heartbeatResp + heartbeatResp → the newer non-empty context, for the same reason;
 *   prop + prop       forwarded proposals → one proposal of both runs, in order.
 * Messages of different terms or types are left alone, and so is everything else.
 */
import type { Entry, Message, NodeId } from '../raft/types.ts';

export const COALESCE_LIMITS = {
  /** Entry bytes above which appends and proposals are not combined further (Raft's maxSizePerMsg). */
  entryBytesMax: 1024 * 1024,
} as const;

function entryBytes(entries: readonly Entry[]): number {
  let n = 0;
  for (const e of entries) n += e.data.byteLength;
  return n;
}

/** The two messages as one, or null if they must both be sent. `a` was queued before `b`. */
export function combine(a: Message, b: Message): Message | null {
  if (a.to !== b.to || a.from !== b.from || a.term !== b.term) return null;
  if (a.type === 'app' && b.type === 'app') {
    const last = a.entries.length > 0 ? a.entries[a.entries.length - 1]! : null;
    if (b.logIndex !== a.logIndex + a.entries.length) return null;
    if (b.logTerm !== (last === null ? a.logTerm : last.term)) return null;
    if (entryBytes(a.entries) + entryBytes(b.entries) > COALESCE_LIMITS.entryBytesMax && a.entries.length > 0 && b.entries.length > 0) return null;
    return { ...a, entries: b.entries.length === 0 ? a.entries : a.entries.concat(b.entries), commit: Math.max(a.commit, b.commit) };
  }
  if (a.type === 'appResp' && b.type === 'appResp') {
    if (a.reject || b.reject) return null;
    return a.index > b.index ? a : b;
  }
  if (a.type === 'heartbeat' && b.type === 'heartbeat') {
    return { ...b, commit: Math.max(a.commit, b.commit), context: b.context.byteLength > 0 ? b.context : a.context };
  }
  if (a.type === 'heartbeatResp' && b.type === 'heartbeatResp') {
    return b.context.byteLength > 0 ? b : a;
  }
  if (a.type === 'prop' && b.type === 'prop') {
    if (entryBytes(a.entries) + entryBytes(b.entries) > COALESCE_LIMITS.entryBytesMax) return null;
    return { ...b, entries: a.entries.concat(b.entries) };
  }
  return null;
}

/**
 * The messages with each one combined into the previous one for the same peer where combine()
 * allows. Order per peer is kept; messages for different peers may change places.
 */
export function coalesce(messages: readonly Message[]): Message[] {
  const out: Message[] = [];
  const lastFor = new Map<NodeId, number>();
  for (const m of messages) {
    const at = lastFor.get(m.to);
    if (at !== undefined) {
      const merged = combine(out[at]!, m);
      if (merged !== null) {
        out[at] = merged;
        continue;
      }
    }
    lastFor.set(m.to, out.length);
    out.push(m);
  }
  return out;
}
