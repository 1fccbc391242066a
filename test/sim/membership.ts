/**
 * The membership model the checker keeps, independent of Raft's own bookkeeping: the
 * configuration in force after every applied index, and the safety rule for moving between
 * two configurations — any quorum of the old must intersect any quorum of the new.
 */
import { applyConfChange, confStateFromConfig, type MembershipConfig } from '../../src/raft/confchange.ts';
import type { ConfChange, ConfState, NodeId } from '../../src/raft/types.ts';

export const EMPTY_CONFIG: MembershipConfig = {
  incoming: new Set(),
  outgoing: new Set(),
  learners: new Set(),
  learnersNext: new Set(),
  autoLeave: false,
};

/** The configuration after `cc`, or the same one when Raft skips the change as invalid. */
export function nextConfig(current: MembershipConfig, cc: ConfChange): MembershipConfig {
  const r = applyConfChange(current, cc);
  return r.ok ? r.config : current;
}

export function members(c: MembershipConfig): Set<NodeId> {
  return new Set([...c.incoming, ...c.outgoing, ...c.learners, ...c.learnersNext]);
}

export function sameConfState(a: ConfState, b: ConfState): boolean {
  const eq = (x: readonly NodeId[], y: readonly NodeId[]): boolean => {
    if (x.length !== y.length) return false;
    const xs = [...x].sort();
    const ys = [...y].sort();
    return xs.every((v, i) => v === ys[i]);
  };
  return (
    eq(a.voters, b.voters) &&
    eq(a.votersOutgoing, b.votersOutgoing) &&
    eq(a.learners, b.learners) &&
    eq(a.learnersNext, b.learnersNext) &&
    a.autoLeave === b.autoLeave
  );
}

export function describeConfig(c: MembershipConfig): string {
  const cs = confStateFromConfig(c);
  let s = `{${cs.voters.join(',')}}`;
  if (cs.votersOutgoing.length > 0) s += `&{${cs.votersOutgoing.join(',')}}`;
  if (cs.learners.length > 0) s += ` L{${cs.learners.join(',')}}`;
  if (cs.learnersNext.length > 0) s += ` LN{${cs.learnersNext.join(',')}}`;
  if (cs.autoLeave) s += ' auto';
  return s;
}

/** The voter groups a decision needs a majority of (one, or two while joint). */
function groups(c: MembershipConfig): ReadonlySet<NodeId>[] {
  const out: ReadonlySet<NodeId>[] = [];
  if (c.incoming.size > 0) out.push(c.incoming);
  if (c.outgoing.size > 0) out.push(c.outgoing);
  return out;
}

function majority(n: number): number {
  return Math.floor(n / 2) + 1;
}

/**
 * Whether every quorum of `a` intersects every quorum of `b`. A quorum of a configuration is a
 * majority of each of its groups, so it suffices that some group of `a` and some group of `b`
 * have majorities that cannot avoid each other.
 */
export function quorumsIntersect(a: MembershipConfig, b: MembershipConfig): boolean {
  for (const ga of groups(a)) {
    for (const gb of groups(b)) {
      const union = new Set([...ga, ...gb]).size;
      if (majority(ga.size) + majority(gb.size) > union) return true;
    }
  }
  return false;
}

function sameSet(a: ReadonlySet<NodeId>, b: ReadonlySet<NodeId>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

/**
 * Why moving from `prev` to `next` breaks the joint-consensus rules, or null. Allowed moves:
 * a simple change of at most one voter; entering a joint configuration whose outgoing half is
 * exactly the previous voters; leaving a joint configuration for its incoming half.
 */
export function transitionProblem(prev: MembershipConfig, next: MembershipConfig): string | null {
  const prevJoint = prev.outgoing.size > 0;
  const nextJoint = next.outgoing.size > 0;
  if (prevJoint && nextJoint) {
    if (!sameSet(prev.incoming, next.incoming) || !sameSet(prev.outgoing, next.outgoing)) return 'changed voters while joint';
  } else if (prevJoint && !nextJoint) {
    if (!sameSet(prev.incoming, next.incoming)) return 'left the joint configuration for other voters than its incoming half';
  } else if (!prevJoint && nextJoint) {
    if (!sameSet(prev.incoming, next.outgoing)) return 'entered a joint configuration whose outgoing half is not the previous voters';
  } else {
    let changed = 0;
    for (const id of next.incoming) if (!prev.incoming.has(id)) changed++;
    for (const id of prev.incoming) if (!next.incoming.has(id)) changed++;
    if (changed > 1) return `a simple change altered ${changed} voters`;
  }
  if (prev.incoming.size > 0 && !quorumsIntersect(prev, next)) return 'two configurations in force allow disjoint quorums';
  return null;
}
