/**
 * Quorum arithmetic over a (possibly joint) voter configuration. A joint configuration needs
 * a majority of each half; an empty half imposes no constraint, so a non-joint configuration
 * is simply a joint one with an empty outgoing half.
 */
import type { NodeId } from './types.ts';

export type VoteResult = 'won' | 'lost' | 'pending';

/** The highest index acknowledged by a majority of `voters`; Infinity for an empty set. */
export function majorityCommitted(voters: ReadonlySet<NodeId>, matchOf: (id: NodeId) => number): number {
  if (voters.size === 0) return Infinity;
  const matches: number[] = [];
  for (const id of voters) matches.push(matchOf(id));
  matches.sort((a, b) => b - a);
  return matches[Math.floor(voters.size / 2)]!;
}

export function majorityVote(voters: ReadonlySet<NodeId>, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.size === 0) return 'won';
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === undefined) missing++;
    else if (v) granted++;
  }
  const needed = Math.floor(voters.size / 2) + 1;
  if (granted >= needed) return 'won';
  if (granted + missing >= needed) return 'pending';
  return 'lost';
}

export function jointCommitted(
  incoming: ReadonlySet<NodeId>,
  outgoing: ReadonlySet<NodeId>,
  matchOf: (id: NodeId) => number,
): number {
  const c = Math.min(majorityCommitted(incoming, matchOf), majorityCommitted(outgoing, matchOf));
  return c === Infinity ? 0 : c;
}

export function jointVote(
  incoming: ReadonlySet<NodeId>,
  outgoing: ReadonlySet<NodeId>,
  votes: ReadonlyMap<NodeId, boolean>,
): VoteResult {
  const a = majorityVote(incoming, votes);
  const b = majorityVote(outgoing, votes);
  if (a === b) return a;
  if (a === 'lost' || b === 'lost') return 'lost';
  return 'pending';
}
