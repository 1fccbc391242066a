/**
 * The safety invariants, checked after every simulation step against everything the
 * simulator can see: each member's status and in-memory log, each member's persisted storage,
 * every message sent, every entry applied and every read answered.
 *
 *  - Election Safety: at most one leader per term, over the whole history (across configs).
 *  - Log Matching: an (index, term) pair identifies one entry and one predecessor term, in
 *    every log anyone ever persisted or sent; hence equal (index, term) means equal prefixes.
 *  - Leader Completeness: an entry committed in term t is in the log of every leader of a
 *    later term (checked when a leader appears and when an older commit becomes known).
 *  - State Machine Safety: no two members apply different entries at one index; digests of the
 *    applied prefix agree; snapshots carry exactly the state of their index.
 *  - Commit: never beyond what some leader committed; per member monotonic, also across
 *    restarts (the persisted hard state never regresses); applied ≤ committed.
 *  - Votes: a voter grants at most one candidate per term, across crashes.
 *  - Membership: every applied change obeys the joint-consensus rules (old and new quorums
 *    intersect); each member's configuration is the one its applied index implies.
 *  - Linearizable reads: a read's index covers every write and read completed before it was
 *    requested, and the state it is served from reflects them.
 */
import type { Raft } from '../../src/raft/raft.ts';
import type { MembershipConfig } from '../../src/raft/confchange.ts';
import { confStateFromConfig, decodeConfChange } from '../../src/raft/confchange.ts';
import type { ConfState, Entry, EntryKind, HardState, NodeId, Snapshot } from '../../src/raft/types.ts';
import { EntryKind as Kinds } from '../../src/raft/types.ts';
import { EMPTY_CONFIG, describeConfig, nextConfig, sameConfState, transitionProblem } from './membership.ts';
import type { StateMachine } from './state-machine.ts';

export class Violation extends Error {
  constructor(
    readonly invariant: string,
    readonly detail: string,
  ) {
    super(`${invariant}: ${detail}`);
    this.name = 'Violation';
  }
}

function fail(invariant: string, detail: string): never {
  throw new Violation(invariant, detail);
}

/** Read access to a member's in-memory log (storage plus unstable tail). */
export interface LogView {
  firstIndex(): number;
  lastIndex(): number;
  term(index: number): number | undefined;
}

/**
 * Raft keeps its log private; the checker reads it through this narrow view so Leader
 * Completeness can be checked against what a leader actually holds, persisted or not.
 */
export function logView(raft: Raft): LogView {
  const log: unknown = (raft as unknown as { log?: unknown }).log;
  const v = log as Partial<LogView> | undefined;
  if (typeof v?.firstIndex !== 'function' || typeof v.lastIndex !== 'function' || typeof v.term !== 'function') {
    throw new Error('sim: cannot read the Raft log view (the private field `log` of Raft changed shape)');
  }
  return log as LogView;
}

export interface MemberStatus {
  readonly id: NodeId;
  readonly term: number;
  readonly commit: number;
  readonly applied: number;
  readonly role: string;
}

interface RecordedLeader {
  readonly id: NodeId;
  readonly term: number;
  /** terms[k] is the term of entry (base + k). */
  readonly base: number;
  readonly terms: number[];
}

interface ChainLink {
  readonly prevTerm: number;
  readonly kind: EntryKind;
  readonly data: Uint8Array;
}

export interface ReadRequirement {
  readonly index: number;
  readonly seqs: ReadonlyMap<number, number>;
}

const TERM_SPACE = 2 ** 21;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class Checker {
  // Election Safety and Leader Completeness
  private readonly leaderOfTerm = new Map<number, NodeId>();
  private readonly leaders: RecordedLeader[] = [];
  /** The highest index any leader committed. */
  knownCommitted = 0;
  /** commitTerm[i]: the term of the leader that committed index i; entryTerm[i]: its term. */
  private readonly commitTerm: number[] = [0];
  private readonly entryTerm: number[] = [0];

  // Log Matching
  private readonly chain = new Map<number, ChainLink>();

  // State Machine Safety
  appliedMax = 0;
  private readonly applied: Entry[] = [];
  private readonly digestAt: number[] = [0];

  // Votes
  private readonly votes = new Map<string, NodeId>();

  // Membership: the configuration in force from each index on.
  private readonly configs: { index: number; config: MembershipConfig }[] = [{ index: 0, config: EMPTY_CONFIG }];

  // Linearizable reads: everything clients have observed so far.
  private observedIndex = 0;
  private readonly observedSeq = new Map<number, number>();

  /** Per member: the highest in-memory commit of the current incarnation. */
  private readonly memberCommit = new Map<NodeId, number>();

  /** The founding members' logs start with these entries, committed before any leader. */
  bootstrap(entries: readonly Entry[]): void {
    this.chainOf('bootstrap', 0, 0, entries);
    for (const e of entries) {
      if (e.index <= this.knownCommitted) continue;
      this.commitTerm[e.index] = 0;
      this.entryTerm[e.index] = e.term;
      this.knownCommitted = e.index;
    }
  }

  leaderCount(): number {
    return this.leaders.length;
  }

  /** Called after every step that touched member `s.id`. */
  observe(s: MemberStatus, view: LogView): void {
    if (s.applied > s.commit) fail('applied ≤ committed', `${s.id} applied ${s.applied} > commit ${s.commit}`);
    const before = this.memberCommit.get(s.id) ?? 0;
    if (s.commit < before) fail('monotonic commit', `${s.id} commit went from ${before} to ${s.commit}`);
    this.memberCommit.set(s.id, s.commit);

    if (s.role === 'leader') {
      const holder = this.leaderOfTerm.get(s.term);
      if (holder === undefined) {
        this.leaderOfTerm.set(s.term, s.id);
        this.newLeader(s, view);
      } else if (holder !== s.id) {
        fail('Election Safety', `two leaders in term ${s.term}: ${holder} and ${s.id}`);
      }
    }
    if (s.commit > this.knownCommitted) {
      if (s.role !== 'leader') {
        fail('commit', `${s.id} (${s.role}, term ${s.term}) committed ${s.commit} beyond any leader's commit ${this.knownCommitted}`);
      }
      for (let i = this.knownCommitted + 1; i <= s.commit; i++) {
        const t = view.term(i);
        if (t === undefined) fail('commit', `leader ${s.id} committed ${i} which is not in its log`);
        this.commitTerm[i] = s.term;
        this.entryTerm[i] = t;
        // Leaders of later terms elected before this commit became known must hold it too.
        for (const l of this.leaders) {
          if (l.term > s.term) this.leaderHolds(l, i, t, s.term);
        }
      }
      this.knownCommitted = s.commit;
    }
  }

  private newLeader(s: MemberStatus, view: LogView): void {
    const base = Math.max(0, view.firstIndex() - 1);
    const last = view.lastIndex();
    const terms: number[] = [];
    for (let i = base; i <= last; i++) {
      const t = view.term(i);
      if (t === undefined) fail('Log', `leader ${s.id}'s log has no term at ${i} (first ${base + 1}, last ${last})`);
      terms.push(t);
    }
    const l: RecordedLeader = { id: s.id, term: s.term, base, terms };
    for (let i = 1; i <= this.knownCommitted; i++) {
      if (this.commitTerm[i]! < s.term) this.leaderHolds(l, i, this.entryTerm[i]!, this.commitTerm[i]!);
    }
    this.leaders.push(l);
  }

  private leaderHolds(l: RecordedLeader, index: number, term: number, committedIn: number): void {
    if (index < l.base) return; // compacted into the leader's snapshot (checked via state machine digests)
    const t = l.terms[index - l.base];
    if (t !== term) {
      fail(
        'Leader Completeness',
        `entry ${index}/${term} committed in term ${committedIn} is ${t === undefined ? 'missing' : `${index}/${t}`} in the log of ${l.id}, leader of term ${l.term}`,
      );
    }
  }

  /** A member restarted from its persisted state. */
  restarted(id: NodeId, commit: number, persistedCommit: number): void {
    if (commit < persistedCommit) fail('monotonic commit', `${id} restarted with commit ${commit} below its persisted ${persistedCommit}`);
    this.memberCommit.set(id, commit);
  }

  /**
   * Registers a contiguous run of entries following (prevIndex, prevTerm), as persisted by a
   * member or carried by an append message.
   */
  chainOf(where: string, prevIndex: number, prevTerm: number, entries: readonly Entry[]): void {
    let pi = prevIndex;
    let pt = prevTerm;
    for (const e of entries) {
      if (e.index !== pi + 1) fail('Log Matching', `${where}: entry ${e.index} follows ${pi}`);
      if (e.term < pt) fail('Log Matching', `${where}: entry ${e.index}/${e.term} follows a later term ${pt}`);
      const key = e.index * TERM_SPACE + e.term;
      const link = this.chain.get(key);
      if (link === undefined) {
        this.chain.set(key, { prevTerm: pt, kind: e.kind, data: e.data });
      } else if (link.prevTerm !== pt || link.kind !== e.kind || !sameBytes(link.data, e.data)) {
        fail('Log Matching', `${where}: two different entries at ${e.index}/${e.term} (previous term ${link.prevTerm} vs ${pt})`);
      }
      pi = e.index;
      pt = e.term;
    }
  }

  /** Member `id` applied `e`; its state machine digest is now `digest`. */
  applied1(id: NodeId, e: Entry, digest: number): void {
    if (e.index <= this.appliedMax) {
      const first = this.applied[e.index]!;
      if (first.term !== e.term || first.kind !== e.kind || !sameBytes(first.data, e.data)) {
        fail('State Machine Safety', `${id} applied ${e.index}/${e.term} but ${e.index}/${first.term} was applied before`);
      }
      if (this.digestAt[e.index] !== digest) fail('State Machine Safety', `${id}'s state at ${e.index} differs from the first applier's`);
      return;
    }
    if (e.index !== this.appliedMax + 1) fail('State Machine Safety', `${id} applied ${e.index} before anyone applied ${this.appliedMax + 1}`);
    if (e.index > this.knownCommitted) fail('State Machine Safety', `${id} applied ${e.index} beyond the known commit ${this.knownCommitted}`);
    if (this.entryTerm[e.index] !== e.term) {
      fail('State Machine Safety', `${id} applied ${e.index}/${e.term} but ${e.index}/${this.entryTerm[e.index]} was committed`);
    }
    this.applied[e.index] = e;
    this.digestAt[e.index] = digest;
    this.appliedMax = e.index;
    if (e.kind === Kinds.ConfChange) {
      const prev = this.configAt(e.index - 1);
      const next = nextConfig(prev, decodeConfChange(e.data));
      if (next !== prev) {
        const problem = transitionProblem(prev, next);
        if (problem !== null) fail('Membership', `at ${e.index}: ${describeConfig(prev)} → ${describeConfig(next)}: ${problem}`);
        this.configs.push({ index: e.index, config: next });
      }
    }
  }

  /** A member's state machine was restored from `snap`. */
  restored(id: NodeId, snap: Snapshot, sm: StateMachine): void {
    const { index, term, confState } = snap.metadata;
    if (index === 0) return;
    if (index > this.appliedMax) fail('State Machine Safety', `${id} restored a snapshot at ${index} beyond anything applied (${this.appliedMax})`);
    if (sm.index !== index) fail('Snapshot', `${id}: snapshot at ${index} holds a state at ${sm.index}`);
    if (this.applied[index]!.term !== term) fail('Snapshot', `${id}: snapshot at ${index}/${term} but ${index}/${this.applied[index]!.term} was applied`);
    if (this.digestAt[index] !== sm.digest) fail('State Machine Safety', `${id}: snapshot at ${index} holds a state that differs from the applied history`);
    const expected = confStateFromConfig(this.configAt(index));
    if (!sameConfState(confState, expected)) {
      fail('Membership', `${id}: snapshot at ${index} records configuration ${JSON.stringify(confState)}, expected ${JSON.stringify(expected)}`);
    }
  }

  configAt(index: number): MembershipConfig {
    for (let k = this.configs.length - 1; k >= 0; k--) if (this.configs[k]!.index <= index) return this.configs[k]!.config;
    return EMPTY_CONFIG;
  }

  latestConfig(): MembershipConfig {
    return this.configs[this.configs.length - 1]!.config;
  }

  /** Index of the newest configuration change applied anywhere. */
  latestConfigIndex(): number {
    return this.configs[this.configs.length - 1]!.index;
  }

  /** A quiescent member's configuration must be the one its applied index implies. */
  memberConfig(id: NodeId, applied: number, actual: ConfState): void {
    const expected = confStateFromConfig(this.configAt(applied));
    if (!sameConfState(actual, expected)) {
      fail('Membership', `${id} at applied ${applied} runs ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`);
    }
  }

  /** A granted (real) vote left `voter`. */
  voteGranted(voter: NodeId, term: number, candidate: NodeId): void {
    const key = `${voter}@${term}`;
    const prior = this.votes.get(key);
    if (prior === undefined) this.votes.set(key, candidate);
    else if (prior !== candidate) fail('Vote', `${voter} granted its term-${term} vote to both ${prior} and ${candidate}`);
  }

  /** The persisted hard state of `id` moves from `prev` to `next`. */
  hardState(id: NodeId, prev: HardState, next: HardState): void {
    if (next.term < prev.term) fail('Durable state', `${id} persisted term ${next.term} after ${prev.term}`);
    if (next.commit < prev.commit) fail('monotonic commit', `${id} persisted commit ${next.commit} after ${prev.commit}`);
    if (next.term === prev.term && prev.vote !== '' && next.vote !== prev.vote) {
      fail('Vote', `${id} persisted vote ${next.vote} after ${prev.vote} in term ${next.term}`);
    }
  }

  /** What a read requested now must reflect. */
  readRequirement(): ReadRequirement {
    return { index: this.observedIndex, seqs: new Map(this.observedSeq) };
  }

  readIndexAnswered(id: NodeId, ctx: string, req: ReadRequirement, index: number): void {
    if (index < req.index) {
      fail('Linearizable read', `${id} answered read ${ctx} at index ${index}, but index ${req.index} was observed before it was requested`);
    }
  }

  /** A read is served from `sm`; afterwards everyone must see at least this much. */
  readServed(id: NodeId, ctx: string, req: ReadRequirement, sm: StateMachine): void {
    for (const [client, seq] of req.seqs) {
      if (sm.seqOf(client) < seq) {
        fail('Linearizable read', `${id} served read ${ctx} at ${sm.index} missing write c${client}-${seq} acknowledged before the read`);
      }
    }
    this.observe1(sm);
  }

  writeAcknowledged(client: number, seq: number, sm: StateMachine): void {
    if (seq > (this.observedSeq.get(client) ?? 0)) this.observedSeq.set(client, seq);
    if (sm.index > this.observedIndex) this.observedIndex = sm.index;
  }

  private observe1(sm: StateMachine): void {
    if (sm.index > this.observedIndex) this.observedIndex = sm.index;
    for (const [client, seq] of sm.lastSeq) if (seq > (this.observedSeq.get(client) ?? 0)) this.observedSeq.set(client, seq);
  }
}
