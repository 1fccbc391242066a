/**
 * The shapes of network partition the nemesis cuts, as sets of blocked directed links between
 * member names (the proxy in proxy.ts enforces them). Pure functions of the members, the
 * leader and a random stream, so a seed reproduces the same cuts.
 */
import type { Prng } from '../../sim/prng.ts';

export type Link = readonly [from: string, to: string];

export const PARTITION_KINDS = ['majority-minority', 'isolated-leader', 'bridge', 'one-way'] as const;
export type PartitionKind = (typeof PARTITION_KINDS)[number];

export interface Partition {
  readonly kind: PartitionKind;
  /** A readable description, e.g. "m0 m1 | m2" or "m0 -/-> m1 m2". */
  readonly description: string;
  readonly blocked: readonly Link[];
}

/** Every link between the two groups, both ways. */
function between(a: readonly string[], b: readonly string[]): Link[] {
  const links: Link[] = [];
  for (const x of a) {
    for (const y of b) links.push([x, y], [y, x]);
  }
  return links;
}

function groups(...gs: (readonly string[])[]): string {
  return gs.map((g) => [...g].sort().join(' ')).join(' | ');
}

/**
 * One partition of `kind` among `members` (at least 3). `leader` may be undefined when none is
 * known: the leader-centred shapes then centre on a random member.
 */
export function planPartition(kind: PartitionKind, members: readonly string[], leader: string | undefined, rng: Prng): Partition {
  if (members.length < 3) throw new Error(`a partition needs at least 3 members, got ${members.length}`);
  const centre = leader !== undefined && members.includes(leader) ? leader : rng.pick(members);
  const others = members.filter((m) => m !== centre);
  switch (kind) {
    case 'majority-minority': {
      // The minority gets the leader half of the time, so both old and new leaders are tested.
      const shuffled = rng.shuffle(others);
      const minoritySize = Math.floor((members.length - 1) / 2);
      const minority = rng.chance(0.5) ? [centre, ...shuffled.slice(0, minoritySize - 1)] : shuffled.slice(0, minoritySize);
      const majority = members.filter((m) => !minority.includes(m));
      return { kind, description: groups(majority, minority), blocked: between(majority, minority) };
    }
    case 'isolated-leader':
      return { kind, description: groups([centre], others), blocked: between([centre], others) };
    case 'bridge': {
      // Two halves that see only the bridge member (Jepsen's "bridge"): each half, with the
      // bridge, is a majority, so the bridge must not let both elect leaders that commit.
      const shuffled = rng.shuffle(members);
      const bridge = shuffled[0]!;
      const rest = shuffled.slice(1);
      const half = Math.ceil(rest.length / 2);
      const left = rest.slice(0, half);
      const right = rest.slice(half);
      return { kind, description: `${groups(left)} <${bridge}> ${groups(right)}`, blocked: between(left, right) };
    }
    case 'one-way': {
      // The centre can hear but not be heard, or be heard but not hear.
      const mute = rng.chance(0.5);
      const blocked: Link[] = others.map((o): Link => (mute ? [centre, o] : [o, centre]));
      return { kind, description: mute ? `${centre} -/-> ${others.join(' ')}` : `${others.join(' ')} -/-> ${centre}`, blocked };
    }
  }
}
