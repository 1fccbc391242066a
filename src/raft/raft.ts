/**
 * The Raft consensus state machine (Ongaro's thesis, with the extensions etcd's raft library
 * made standard): PreVote, CheckQuorum, ReadIndex, leadership transfer, learners, joint
 * consensus and snapshots.
 *
 * Pure: no timers, I/O, clock or randomness of its own. Time is `tick()`, randomness comes
 * from `config.random`, and every effect leaves through `ready()` (see Ready in types.ts for
 * what must be persisted before which messages may leave).
 */
import { assert } from '../util/assert.ts';
import {
  applyConfChange,
  configFromConfState,
  confStateFromConfig,
  decodeConfChange,
  encodeConfChange,
  isJoint,
  isLeaveJoint,
  type MembershipConfig,
} from './confchange.ts';
import { RaftLog } from './log.ts';
import type { Progress } from './progress.ts';
import { ReadOnlyQueue } from './readonly.ts';
import type { LogStorage } from './storage.ts';
import { ProgressTracker } from './tracker.ts';
import {
  ACCEPTED,
  EntryKind,
  NONE,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type MsgApp,
  type MsgAppResp,
  type MsgHeartbeat,
  type MsgHeartbeatResp,
  type MsgSnap,
  type MsgVote,
  type NodeId,
  type Outcome,
  type ReadState,
  type Ready,
  type Role,
  type SoftState,
} from './types.ts';

/** Deliberately broken behaviours, for proving that the simulator catches them. Never set in production. */
export type RaftMutation = 'commitPreviousTerm' | 'voteIgnoresLog';

export interface RaftConfig {
  readonly id: NodeId;
  readonly storage: LogStorage;
  /** Ticks without hearing from a leader before a follower campaigns (randomized in [n, 2n)). */
  readonly electionTick: number;
  /** Ticks between a leader's heartbeats; must be less than electionTick. */
  readonly heartbeatTick: number;
  /** A seeded source of randomness in [0, 1), for election timeouts. */
  readonly random: () => number;
  /** The last index the application applied before a restart. */
  readonly applied?: number;
  readonly checkQuorum?: boolean;
  readonly preVote?: boolean;
  /**
   * 'safe': ReadIndex confirms leadership with a heartbeat round.
   * 'leaseBased': the leader answers from its lease (CheckQuorum must be on). This relies on
   * clocks drifting less than an election timeout apart; 'safe' relies on nothing.
   */
  readonly readOnly?: 'safe' | 'leaseBased';
  readonly maxSizePerMsg?: number;
  readonly maxInflightMsgs?: number;
  readonly maxInflightBytes?: number;
  readonly maxUncommittedEntriesSize?: number;
  readonly maxCommittedSizePerReady?: number;
  readonly disableProposalForwarding?: boolean;
  readonly mutations?: ReadonlySet<RaftMutation>;
}

/** Defaults for every bound, in one place. */
export const RAFT_DEFAULTS = {
  checkQuorum: true,
  preVote: true,
  readOnly: 'safe',
  /** Bytes of entries in one append message (a single larger entry still goes alone). */
  maxSizePerMsg: 1024 * 1024,
  /** Appends in flight to one follower. */
  maxInflightMsgs: 256,
  /** Bytes of appends in flight to one follower. */
  maxInflightBytes: 32 * 1024 * 1024,
  /** Bytes of proposed but uncommitted entries the leader accepts before dropping proposals. */
  maxUncommittedEntriesSize: 1024 * 1024 * 1024,
  /** Bytes of committed entries handed out in one Ready. */
  maxCommittedSizePerReady: 64 * 1024 * 1024,
  disableProposalForwarding: false,
} as const;

export interface ProgressStatus {
  readonly match: number;
  readonly next: number;
  readonly state: Progress['state'];
  readonly isLearner: boolean;
  readonly recentActive: boolean;
}

export interface RaftStatus {
  readonly id: NodeId;
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  readonly lead: NodeId;
  readonly role: Role;
  readonly confState: ConfState;
  readonly leadTransferee: NodeId;
  /** Followers' progress, when this member is the leader. */
  readonly progress: ReadonlyMap<NodeId, ProgressStatus>;
}

const EMPTY = new Uint8Array(0);

/** Messages that promise durable state, so they may only leave after the Ready is persisted. */
function needsPersistedState(m: Message): boolean {
  return m.type === 'appResp' || ((m.type === 'vote' || m.type === 'voteResp') && !m.preVote);
}

export class Raft {
  readonly id: NodeId;
  private term = 0;
  private vote: NodeId = NONE;
  private lead: NodeId = NONE;
  private role: Role = 'follower';
  private readonly log: RaftLog;
  private readonly trk: ProgressTracker;
  private readonly readOnly = new ReadOnlyQueue();

  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  private leadTransferee: NodeId = NONE;
  /** Index of the newest configuration change in the log; no new one until it is applied. */
  private pendingConfIndex = 0;
  private uncommittedSize = 0;
  /**
   * Index of the last snapshot from the leader whose configuration replaced ours. A Ready handed
   * out before it may still carry older conf changes: they are part of that configuration already.
   */
  private configRestoredAt = 0;
  /** ReadIndex requests received before this leader committed an entry of its own term. */
  private pendingReadIndex: { from: NodeId; context: Uint8Array }[] = [];

  private msgs: Message[] = [];
  private msgsAfterPersist: Message[] = [];
  private readStates: ReadState[] = [];
  private prevSoft: SoftState;
  private prevHard: HardState;
  private readyOutstanding = false;

  private readonly electionTick: number;
  private readonly heartbeatTick: number;
  private readonly random: () => number;
  private readonly checkQuorum: boolean;
  private readonly preVote: boolean;
  private readonly readOnlyMode: 'safe' | 'leaseBased';
  private readonly maxSizePerMsg: number;
  private readonly maxUncommittedSize: number;
  private readonly maxCommittedSizePerReady: number;
  private readonly disableForwarding: boolean;
  private readonly mutations: ReadonlySet<RaftMutation>;

  constructor(config: RaftConfig) {
    assert(config.id !== NONE, 'raft: a member needs a non-empty id');
    assert(config.heartbeatTick > 0, 'raft: heartbeatTick must be positive');
    assert(config.electionTick > config.heartbeatTick, 'raft: electionTick must exceed heartbeatTick');
    this.id = config.id;
    this.electionTick = config.electionTick;
    this.heartbeatTick = config.heartbeatTick;
    this.random = config.random;
    this.checkQuorum = config.checkQuorum ?? RAFT_DEFAULTS.checkQuorum;
    this.preVote = config.preVote ?? RAFT_DEFAULTS.preVote;
    this.readOnlyMode = config.readOnly ?? RAFT_DEFAULTS.readOnly;
    assert(this.readOnlyMode === 'safe' || this.checkQuorum, 'raft: lease-based reads need checkQuorum');
    this.maxSizePerMsg = config.maxSizePerMsg ?? RAFT_DEFAULTS.maxSizePerMsg;
    this.maxUncommittedSize = config.maxUncommittedEntriesSize ?? RAFT_DEFAULTS.maxUncommittedEntriesSize;
    this.maxCommittedSizePerReady = config.maxCommittedSizePerReady ?? RAFT_DEFAULTS.maxCommittedSizePerReady;
    this.disableForwarding = config.disableProposalForwarding ?? RAFT_DEFAULTS.disableProposalForwarding;
    this.mutations = config.mutations ?? new Set();

    const { hardState, confState } = config.storage.initialState();
    this.log = new RaftLog(config.storage, config.applied ?? 0);
    this.trk = new ProgressTracker(
      configFromConfState(confState),
      config.maxInflightMsgs ?? RAFT_DEFAULTS.maxInflightMsgs,
      config.maxInflightBytes ?? RAFT_DEFAULTS.maxInflightBytes,
    );
    this.trk.setConfig(this.trk.config, this.log.lastIndex() + 1);
    this.term = hardState.term;
    this.vote = hardState.vote;
    this.becomeFollower(this.term, NONE);
    this.prevSoft = { lead: this.lead, role: this.role };
    this.prevHard = this.hardState();
  }

  // ---- inputs ---------------------------------------------------------------------------

  tick(): void {
    if (this.role === 'leader') this.tickHeartbeat();
    else this.tickElection();
  }

  /** Starts an election now (if this member may vote). */
  campaign(): void {
    this.hup(false);
  }

  propose(data: readonly Uint8Array[]): Outcome {
    assert(data.length > 0, 'raft: empty proposal');
    const entries: Entry[] = data.map((d) => ({ term: 0, index: 0, kind: EntryKind.Normal, data: d }));
    return this.proposeEntries(entries);
  }

  proposeConfChange(cc: ConfChange): Outcome {
    return this.proposeEntries([{ term: 0, index: 0, kind: EntryKind.ConfChange, data: encodeConfChange(cc) }]);
  }

  readIndex(context: Uint8Array): Outcome {
    assert(context.byteLength > 0, 'raft: ReadIndex needs a non-empty context');
    switch (this.role) {
      case 'leader':
        this.leaderReadIndex(this.id, context);
        return ACCEPTED;
      case 'follower':
        if (this.lead === NONE) return { ok: false, reason: 'noLeader' };
        this.send({ type: 'readIndex', from: this.id, to: this.lead, term: 0, context });
        return ACCEPTED;
      default:
        return { ok: false, reason: 'noLeader' };
    }
  }

  transferLeadership(to: NodeId): void {
    if (this.role === 'leader') this.leaderTransfer(to);
    else if (this.lead !== NONE) this.send({ type: 'transferLeader', from: this.id, to: this.lead, term: 0, target: to });
  }

  reportUnreachable(id: NodeId): void {
    const pr = this.trk.progress.get(id);
    if (this.role !== 'leader' || pr === undefined) return;
    // Unreachable during optimistic replication: fall back to probing once it is back.
    if (pr.state === 'replicate') pr.becomeProbe();
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    const pr = this.trk.progress.get(id);
    if (this.role !== 'leader' || pr === undefined || pr.state !== 'snapshot') return;
    if (!ok) pr.pendingSnapshot = 0;
    pr.becomeProbe();
    // Wait for the follower's heartbeat reply before probing.
    pr.probeSent = true;
  }

  step(m: Message): void {
    if (m.term > this.term) {
      if (m.type === 'vote') {
        const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTick;
        // A member that heard from a leader recently ignores disruptive elections.
        if (inLease && !m.transfer) return;
      }
      if (m.type === 'vote' && m.preVote) {
        // Answered below without changing term.
      } else if (m.type === 'voteResp' && m.preVote && !m.reject) {
        // Our pre-campaign's term is one above ours; we bump it when the real campaign starts.
      } else if (m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap') {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term && m.term !== 0) {
      if ((this.checkQuorum || this.preVote) && (m.type === 'app' || m.type === 'heartbeat')) {
        // A stale leader (partitioned, or its higher-term peers never got through because of
        // PreVote): tell it the current term so it steps down.
        this.send(this.appResp(m.from, this.term, this.log.lastIndex(), false));
      } else if (m.type === 'vote' && m.preVote) {
        this.send({ type: 'voteResp', from: this.id, to: m.from, term: this.term, preVote: true, reject: true });
      }
      return;
    }

    if (m.type === 'vote') {
      this.handleVote(m);
      return;
    }
    switch (this.role) {
      case 'leader':
        this.stepLeader(m);
        break;
      case 'candidate':
      case 'preCandidate':
        this.stepCandidate(m);
        break;
      case 'follower':
        this.stepFollower(m);
        break;
    }
  }

  // ---- output ---------------------------------------------------------------------------

  hasReady(): boolean {
    return (
      this.softState().lead !== this.prevSoft.lead ||
      this.softState().role !== this.prevSoft.role ||
      !sameHardState(this.hardState(), this.prevHard) ||
      this.log.unstableEntries().length > 0 ||
      this.log.hasPendingSnapshot() ||
      this.log.hasNextCommittedEntries() ||
      this.msgs.length > 0 ||
      this.msgsAfterPersist.length > 0 ||
      this.readStates.length > 0
    );
  }

  ready(): Ready {
    assert(!this.readyOutstanding, 'raft: ready() called again before advance()');
    this.readyOutstanding = true;
    const soft = this.softState();
    const hard = this.hardState();
    const entries = [...this.log.unstableEntries()];
    const snapshot = this.log.unstableSnapshot();
    const committedEntries = this.log.nextCommittedEntries(this.maxCommittedSizePerReady);
    const last = committedEntries[committedEntries.length - 1];
    if (last !== undefined) this.log.markApplying(last.index);
    const softChanged = soft.lead !== this.prevSoft.lead || soft.role !== this.prevSoft.role;
    const hardChanged = !sameHardState(hard, this.prevHard);
    const rd: Ready = {
      softState: softChanged ? soft : null,
      hardState: hardChanged ? hard : null,
      entries,
      snapshot,
      committedEntries,
      messages: this.msgs,
      messagesAfterPersist: this.msgsAfterPersist,
      readStates: this.readStates,
      mustSync: hardChanged || entries.length > 0 || snapshot !== null,
    };
    if (softChanged) this.prevSoft = soft;
    this.msgs = [];
    this.msgsAfterPersist = [];
    this.readStates = [];
    return rd;
  }

  /**
   * Takes the messages and read states produced since the last ready() that promise nothing
   * about durable state (everything but `messagesAfterPersist`), so the application can pass
   * them on while a Ready is still being persisted instead of with the next one: appends of
   * entries proposed meanwhile, heartbeats, ReadIndex rounds. Allowed between ready() and
   * advance(); what it returns is not in the next Ready.
   */
  takeUnpersistedOutput(): { readonly messages: readonly Message[]; readonly readStates: readonly ReadState[] } {
    const out = { messages: this.msgs, readStates: this.readStates };
    this.msgs = [];
    this.readStates = [];
    return out;
  }

  /** The application persisted, sent and applied everything in `rd`. */
  advance(rd: Ready): void {
    assert(this.readyOutstanding, 'raft: advance() without a ready()');
    this.readyOutstanding = false;
    if (rd.hardState !== null) this.prevHard = rd.hardState;
    if (rd.snapshot !== null) {
      this.log.stableSnapshotTo(rd.snapshot.metadata.index);
      this.log.appliedTo(rd.snapshot.metadata.index);
    }
    const lastEntry = rd.entries[rd.entries.length - 1];
    if (lastEntry !== undefined) this.log.stableTo(lastEntry.index, lastEntry.term);
    for (const e of rd.committedEntries) {
      if (e.kind === EntryKind.ConfChange && e.index > this.configRestoredAt) this.applyConfChangeEntry(e);
      if (this.role === 'leader') this.uncommittedSize = Math.max(0, this.uncommittedSize - e.data.byteLength);
    }
    const lastCommitted = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastCommitted !== undefined) this.log.appliedTo(lastCommitted.index);

    if (this.role === 'leader') {
      const self = this.trk.progress.get(this.id);
      if (self !== undefined && self.maybeUpdate(this.log.persisted) && this.maybeCommit()) this.broadcastAppend();
      this.maybeAutoLeaveJoint();
    }
  }

  status(): RaftStatus {
    const progress = new Map<NodeId, ProgressStatus>();
    if (this.role === 'leader') {
      for (const [id, pr] of this.trk.progress) {
        progress.set(id, { match: pr.match, next: pr.next, state: pr.state, isLearner: pr.isLearner, recentActive: pr.recentActive });
      }
    }
    return {
      id: this.id,
      term: this.term,
      vote: this.vote,
      commit: this.log.committed,
      applied: this.log.applied,
      lastIndex: this.log.lastIndex(),
      lead: this.lead,
      role: this.role,
      confState: confStateFromConfig(this.trk.config),
      leadTransferee: this.leadTransferee,
      progress,
    };
  }

  // ---- roles ----------------------------------------------------------------------------

  private becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.role = 'follower';
    this.lead = lead;
  }

  private becomePreCandidate(): void {
    assert(this.role !== 'leader', 'raft: leader cannot become pre-candidate');
    // A pre-campaign changes neither term nor vote, so a failed one disturbs nobody.
    this.role = 'preCandidate';
    this.lead = NONE;
    this.trk.resetVotes();
  }

  private becomeCandidate(): void {
    assert(this.role !== 'leader', 'raft: leader cannot become candidate');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  private becomeLeader(): void {
    assert(this.role === 'candidate', 'raft: only a candidate becomes leader');
    this.reset(this.term);
    this.role = 'leader';
    this.lead = this.id;
    const self = this.trk.progress.get(this.id)!;
    self.maybeUpdate(this.log.persisted);
    self.becomeReplicate();
    // Conservatively assume the log's tail may hold an unapplied configuration change.
    this.pendingConfIndex = this.log.lastIndex();
    // The empty entry of the new term lets earlier-term entries commit (§5.4.2).
    this.appendEntries([{ term: 0, index: 0, kind: EntryKind.Normal, data: EMPTY }]);
  }

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.electionTick + Math.floor(this.random() * this.electionTick);
    this.leadTransferee = NONE;
    this.trk.resetVotes();
    this.trk.resetProgress(this.log.lastIndex() + 1, this.id, this.log.persisted);
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.readOnly.clear();
    this.pendingReadIndex = [];
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(false);
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTick) {
      this.electionElapsed = 0;
      if (this.checkQuorum) {
        if (!this.trk.quorumActive(this.id)) {
          this.becomeFollower(this.term, NONE);
          return;
        }
        for (const [id, pr] of this.trk.progress) if (id !== this.id) pr.recentActive = false;
      }
      // A transfer that did not finish within an election timeout is abandoned.
      this.leadTransferee = NONE;
    }
    if (this.heartbeatElapsed >= this.heartbeatTick) {
      this.heartbeatElapsed = 0;
      this.broadcastHeartbeat(this.readOnly.lastContext() ?? EMPTY);
    }
  }

  /** Whether this member may campaign: a voter not waiting for a snapshot. */
  private promotable(): boolean {
    return this.trk.isVoter(this.id) && !this.log.hasPendingSnapshot();
  }

  private hup(transfer: boolean): void {
    if (this.role === 'leader' || !this.promotable()) return;
    // A committed but unapplied configuration change could make this member's view of the
    // voters wrong; wait until it is applied.
    if (this.hasUnappliedConfChange()) return;
    if (this.preVote && !transfer) this.runCampaign(true, false);
    else this.runCampaign(false, transfer);
  }

  private hasUnappliedConfChange(): boolean {
    if (this.log.applied >= this.log.committed) return false;
    const entries = this.log.slice(this.log.applied + 1, this.log.committed + 1, Infinity);
    return entries === undefined || entries.some((e) => e.kind === EntryKind.ConfChange);
  }

  private runCampaign(preVote: boolean, transfer: boolean): void {
    let term: number;
    if (preVote) {
      this.becomePreCandidate();
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      term = this.term;
    }
    this.trk.recordVote(this.id, true);
    if (this.trk.voteResult() === 'won') {
      // A single voter wins at once.
      if (preVote) this.runCampaign(false, transfer);
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const id of [...this.trk.voters()].sort()) {
      if (id === this.id) continue;
      this.send({ type: 'vote', from: this.id, to: id, term, preVote, lastIndex, lastTerm, transfer });
    }
  }

  private handleVote(m: MsgVote): void {
    const canVote =
      this.vote === m.from ||
      (this.vote === NONE && this.lead === NONE) ||
      // A pre-vote for a future term may be granted while we still follow someone.
      (m.preVote && m.term > this.term);
    const logOk = this.mutations.has('voteIgnoresLog') || this.log.isUpToDate(m.lastIndex, m.lastTerm);
    if (canVote && logOk) {
      // Answer with the term asked about: a pre-vote grant must not look stale to the asker.
      this.send({ type: 'voteResp', from: this.id, to: m.from, term: m.term, preVote: m.preVote, reject: false });
      if (!m.preVote) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ type: 'voteResp', from: this.id, to: m.from, term: this.term, preVote: m.preVote, reject: true });
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case 'prop':
        return; // no leader to forward to: dropped
      case 'app':
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case 'snap':
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case 'voteResp': {
        if (m.preVote !== (this.role === 'preCandidate')) return;
        this.trk.recordVote(m.from, !m.reject);
        const result = this.trk.voteResult();
        if (result === 'won') {
          if (this.role === 'preCandidate') this.runCampaign(false, false);
          else {
            this.becomeLeader();
            this.broadcastAppend();
          }
        } else if (result === 'lost') {
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
      default:
        return;
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'prop':
        if (this.lead !== NONE && !this.disableForwarding) this.send({ ...m, to: this.lead });
        return;
      case 'app':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case 'snap':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case 'transferLeader':
        if (this.lead !== NONE) this.send({ ...m, to: this.lead });
        return;
      case 'timeoutNow':
        // Our leader asked us to take over: a real election, skipping PreVote and leases.
        this.hup(true);
        return;
      case 'readIndex':
        if (this.lead !== NONE) this.send({ ...m, to: this.lead });
        return;
      case 'readIndexResp':
        this.readStates.push({ index: m.index, context: m.context });
        return;
      default:
        return;
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case 'prop':
        this.proposeEntries(m.entries.map((e) => ({ term: 0, index: 0, kind: e.kind, data: e.data })));
        return;
      case 'readIndex':
        this.leaderReadIndex(m.from, m.context);
        return;
      case 'transferLeader':
        this.leaderTransfer(m.target);
        return;
      default:
        break;
    }
    const pr = this.trk.progress.get(m.from);
    if (pr === undefined) return;
    switch (m.type) {
      case 'appResp':
        pr.recentActive = true;
        this.handleAppendResponse(m, pr);
        return;
      case 'heartbeatResp':
        pr.recentActive = true;
        this.handleHeartbeatResponse(m, pr);
        return;
      default:
        return;
    }
  }

  // ---- proposals ------------------------------------------------------------------------

  private proposeEntries(entries: Entry[]): Outcome {
    switch (this.role) {
      case 'leader':
        break;
      case 'follower':
        if (this.lead === NONE) return { ok: false, reason: 'noLeader' };
        if (this.disableForwarding) return { ok: false, reason: 'dropped' };
        this.send({ type: 'prop', from: this.id, to: this.lead, term: 0, entries });
        return ACCEPTED;
      default:
        return { ok: false, reason: 'noLeader' };
    }
    if (!this.trk.progress.has(this.id) || this.leadTransferee !== NONE) return { ok: false, reason: 'dropped' };
    const accepted: Entry[] = [];
    for (const e of entries) {
      if (e.kind === EntryKind.ConfChange) {
        const refusal = this.checkConfChange(decodeConfChange(e.data));
        if (refusal !== null) {
          // Keep the rest of a forwarded batch; a lone conf change is refused outright.
          if (entries.length === 1) return { ok: false, reason: 'confChangeRefused' };
          continue;
        }
        this.pendingConfIndex = this.log.lastIndex() + accepted.length + 1;
      }
      accepted.push(e);
    }
    const size = accepted.reduce((n, e) => n + e.data.byteLength, 0);
    if (size > this.maxUncommittedSize) return { ok: false, reason: 'tooLarge' };
    if (this.uncommittedSize > 0 && this.uncommittedSize + size > this.maxUncommittedSize) return { ok: false, reason: 'dropped' };
    this.appendEntries(accepted);
    this.broadcastAppend();
    return ACCEPTED;
  }

  /** Why a configuration change cannot be proposed now, or null when it can. */
  private checkConfChange(cc: ConfChange): string | null {
    if (this.pendingConfIndex > this.log.applied) return 'a configuration change is still pending';
    const joint = isJoint(this.trk.config);
    if (joint && !isLeaveJoint(cc)) return 'must leave the joint configuration first';
    if (!joint && isLeaveJoint(cc)) return 'not in a joint configuration';
    const result = applyConfChange(this.trk.config, cc);
    return result.ok ? null : result.error;
  }

  private appendEntries(entries: readonly Entry[]): void {
    let index = this.log.lastIndex();
    const stamped = entries.map((e) => ({ term: this.term, index: ++index, kind: e.kind, data: e.data }));
    for (const e of stamped) this.uncommittedSize += e.data.byteLength;
    this.log.append(stamped);
    // The leader counts itself for commit only once these are persisted (see advance).
  }

  private maybeCommit(): boolean {
    const committed = this.log.maybeCommit(this.trk.committed(), this.term, this.mutations.has('commitPreviousTerm'));
    if (committed) this.releasePendingReadIndex();
    return committed;
  }

  // ---- replication ----------------------------------------------------------------------

  private broadcastAppend(): void {
    for (const id of this.trk.progress.keys()) if (id !== this.id) this.sendAppend(id, true);
  }

  private broadcastHeartbeat(context: Uint8Array): void {
    for (const [id, pr] of this.trk.progress) {
      if (id === this.id) continue;
      // Never tell a follower to commit beyond what it is known to hold.
      const commit = Math.min(pr.match, this.log.committed);
      this.send({ type: 'heartbeat', from: this.id, to: id, term: this.term, commit, context });
    }
  }

  /** Sends the next append (or a snapshot) to `to`; returns whether anything was sent. */
  private sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.trk.progress.get(to)!;
    if (pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    const entries = prevTerm === undefined ? undefined : this.log.slice(pr.next, this.log.lastIndex() + 1, this.maxSizePerMsg);
    if (prevTerm === undefined || entries === undefined) return this.sendSnapshot(to, pr);
    if (entries.length === 0 && !sendIfEmpty) return false;
    let bytes = 0;
    for (const e of entries) bytes += e.data.byteLength;
    this.send({ type: 'app', from: this.id, to, term: this.term, logIndex: prevIndex, logTerm: prevTerm, entries, commit: this.log.committed });
    pr.sentEntries(entries.length, bytes);
    return true;
  }

  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    // Only to a follower known to be alive: a snapshot is expensive.
    if (!pr.recentActive) return false;
    const snapshot = this.log.snapshot();
    assert(snapshot.metadata.index > 0, `raft: need a snapshot for ${to} but have none`);
    pr.becomeSnapshot(snapshot.metadata.index);
    this.send({ type: 'snap', from: this.id, to, term: this.term, snapshot });
    return true;
  }

  private handleAppendResponse(m: MsgAppResp, pr: Progress): void {
    if (m.reject) {
      let hint = m.hintIndex;
      if (m.hintTerm > 0) hint = this.log.findConflictByTerm(m.hintIndex, m.hintTerm).index;
      if (pr.maybeDecrTo(m.index, hint)) {
        if (pr.state === 'replicate') pr.becomeProbe();
        this.sendAppend(m.from, true);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) return;
    if (pr.state === 'probe') pr.becomeReplicate();
    else if (pr.state === 'snapshot' && pr.match + 1 >= this.log.firstIndex()) {
      // The snapshot (or entries past it) arrived: resume normal replication.
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === 'replicate') pr.inflights.freeLE(m.index);

    if (this.maybeCommit()) this.broadcastAppend();
    else if (wasPaused) this.sendAppend(m.from, true);
    while (this.sendAppend(m.from, false)) {
      // Fill the in-flight window.
    }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
  }

  private handleHeartbeatResponse(m: MsgHeartbeatResp, pr: Progress): void {
    pr.probeSent = false;
    // An append lost on the way would keep a full window full forever: free one slot, so the
    // next append goes out and the follower's rejection of it resets the window.
    if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
    if (pr.match < this.log.lastIndex()) this.sendAppend(m.from, true);
    if (this.readOnlyMode !== 'safe' || m.context.byteLength === 0) return;
    const acks = this.readOnly.recvAck(m.from, m.context);
    if (acks === undefined || !this.trk.quorumOf(acks)) return;
    for (const read of this.readOnly.releaseThrough(m.context)) this.answerRead(read.from, read.index, read.context);
  }

  private handleAppend(m: MsgApp): void {
    if (m.logIndex < this.log.committed) {
      this.send(this.appResp(m.from, this.term, this.log.committed, false));
      return;
    }
    const last = this.log.maybeAppend(m.logIndex, m.logTerm, m.commit, m.entries);
    if (last !== undefined) {
      this.send(this.appResp(m.from, this.term, last, false));
      return;
    }
    const hint = this.log.findConflictByTerm(Math.min(m.logIndex, this.log.lastIndex()), m.logTerm);
    this.send({ type: 'appResp', from: this.id, to: m.from, term: this.term, index: m.logIndex, reject: true, hintIndex: hint.index, hintTerm: hint.term });
  }

  private handleHeartbeat(m: MsgHeartbeat): void {
    this.log.commitTo(m.commit);
    this.send({ type: 'heartbeatResp', from: this.id, to: m.from, term: this.term, context: m.context });
  }

  private handleSnapshot(m: MsgSnap): void {
    const index = this.restore(m) ? this.log.lastIndex() : this.log.committed;
    this.send(this.appResp(m.from, this.term, index, false));
  }

  /** Installs a leader's snapshot; false when it is stale or our log already matches it. */
  private restore(m: MsgSnap): boolean {
    const snap = m.snapshot;
    const { index, term, confState } = snap.metadata;
    if (index <= this.log.committed) return false;
    // A snapshot whose configuration lacks us is still taken (etcd's raft refuses it): the leader
    // tracks us, so we were added after it, and the entries that follow it bring us in. Refusing
    // it left a member added after the leader's last snapshot unable ever to catch up.
    if (this.log.matchTerm(index, term)) {
      // We already hold the log up to the snapshot: just learn that it is committed.
      this.log.commitTo(index);
      return false;
    }
    this.log.restore(snap);
    this.trk.setConfig(configFromConfState(confState), this.log.lastIndex() + 1);
    this.configRestoredAt = index;
    return true;
  }

  private appResp(to: NodeId, term: number, index: number, reject: boolean): MsgAppResp {
    return { type: 'appResp', from: this.id, to, term, index, reject, hintIndex: 0, hintTerm: 0 };
  }

  // ---- reads ----------------------------------------------------------------------------

  private leaderReadIndex(from: NodeId, context: Uint8Array): void {
    if (this.trk.isSingleton()) {
      this.answerRead(from, this.log.committed, context);
      return;
    }
    // Until this leader has committed an entry of its own term it does not know the true
    // commit index (§6.4): hold the read.
    if (this.log.term(this.log.committed) !== this.term) {
      this.pendingReadIndex.push({ from, context });
      return;
    }
    if (this.readOnlyMode === 'leaseBased') {
      this.answerRead(from, this.log.committed, context);
      return;
    }
    this.readOnly.add(this.log.committed, from, context, this.id);
    this.broadcastHeartbeat(context);
  }

  private releasePendingReadIndex(): void {
    if (this.pendingReadIndex.length === 0 || this.log.term(this.log.committed) !== this.term) return;
    const held = this.pendingReadIndex;
    this.pendingReadIndex = [];
    for (const r of held) this.leaderReadIndex(r.from, r.context);
  }

  private answerRead(to: NodeId, index: number, context: Uint8Array): void {
    if (to === this.id) this.readStates.push({ index, context });
    else this.send({ type: 'readIndexResp', from: this.id, to, term: this.term, index, context });
  }

  // ---- leadership transfer --------------------------------------------------------------

  private leaderTransfer(target: NodeId): void {
    const pr = this.trk.progress.get(target);
    if (pr === undefined || pr.isLearner || target === this.id) return;
    if (this.leadTransferee === target) return;
    this.leadTransferee = target;
    // The transfer must finish within an election timeout (see tickHeartbeat).
    this.electionElapsed = 0;
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(target);
    else this.sendAppend(target, true);
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send({ type: 'timeoutNow', from: this.id, to, term: this.term });
  }

  // ---- membership -----------------------------------------------------------------------

  private applyConfChangeEntry(e: Entry): void {
    const result = applyConfChange(this.trk.config, decodeConfChange(e.data));
    // The leader checked the change when proposing it; if it is invalid now (two leaders'
    // changes raced), every member skips it alike, so the members still agree.
    if (!result.ok) return;
    this.switchToConfig(result.config);
  }

  private switchToConfig(config: MembershipConfig): void {
    this.trk.setConfig(config, this.log.lastIndex() + 1);
    if (this.role !== 'leader') return;
    if (!this.trk.isVoter(this.id)) {
      // Removed (or demoted): step down so the remaining voters elect a leader among them.
      this.becomeFollower(this.term, NONE);
      return;
    }
    if (this.leadTransferee !== NONE && !this.trk.progress.has(this.leadTransferee)) this.leadTransferee = NONE;
    // The quorum changed: the commit index may move, and new members need the log.
    if (this.maybeCommit()) this.broadcastAppend();
    else for (const id of this.trk.progress.keys()) if (id !== this.id) this.sendAppend(id, false);
  }

  /** Leaves an auto-leave joint configuration once entering it has been applied. */
  private maybeAutoLeaveJoint(): void {
    const config = this.trk.config;
    if (!isJoint(config) || !config.autoLeave || this.pendingConfIndex > this.log.applied) return;
    const leave: ConfChange = { transition: 'auto', changes: [], context: EMPTY };
    this.proposeEntries([{ term: 0, index: 0, kind: EntryKind.ConfChange, data: encodeConfChange(leave) }]);
  }

  // ---- helpers --------------------------------------------------------------------------

  private send(m: Message): void {
    if (needsPersistedState(m)) this.msgsAfterPersist.push(m);
    else this.msgs.push(m);
  }

  private softState(): SoftState {
    return { lead: this.lead, role: this.role };
  }

  private hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}
