/**
 * The leader's bookkeeping: the membership in force, a Progress per member, and the votes of
 * the current election. Commit and election decisions are made here with quorum.ts.
 */
import { allMembers, type MembershipConfig } from './confchange.ts';
import { Progress } from './progress.ts';
import { jointCommitted, jointVote, type VoteResult } from './quorum.ts';
import type { NodeId } from './types.ts';

export class ProgressTracker {
  readonly progress = new Map<NodeId, Progress>();
  private readonly votes = new Map<NodeId, boolean>();

  constructor(
    public config: MembershipConfig,
    private readonly maxInflight: number,
    private readonly maxInflightBytes: number,
  ) {}

  /** Installs a new configuration; members new to it start probing at `nextIndex`. */
  setConfig(config: MembershipConfig, nextIndex: number): void {
    this.config = config;
    const members = allMembers(config);
    for (const id of [...this.progress.keys()]) if (!members.has(id)) this.progress.delete(id);
    for (const id of members) {
      const isLearner = config.learners.has(id) || config.learnersNext.has(id);
      const pr = this.progress.get(id);
      if (pr === undefined) {
        const fresh = this.newProgress(nextIndex, isLearner);
        // A new member counts as active so CheckQuorum does not depose the leader right away.
        fresh.recentActive = true;
        this.progress.set(id, fresh);
      } else {
        pr.isLearner = isLearner;
      }
    }
  }

  /** Forgets what is known of every follower (a new term): all start probing at `nextIndex`. */
  resetProgress(nextIndex: number, self: NodeId, selfMatch: number): void {
    for (const [id, pr] of this.progress) {
      const fresh = this.newProgress(nextIndex, pr.isLearner);
      if (id === self) fresh.match = selfMatch;
      this.progress.set(id, fresh);
    }
  }

  private newProgress(nextIndex: number, isLearner: boolean): Progress {
    return new Progress(nextIndex, isLearner, this.maxInflight, this.maxInflightBytes);
  }

  isVoter(id: NodeId): boolean {
    return this.config.incoming.has(id) || this.config.outgoing.has(id);
  }

  voters(): Set<NodeId> {
    return new Set([...this.config.incoming, ...this.config.outgoing]);
  }

  isSingleton(): boolean {
    return this.config.incoming.size === 1 && this.config.outgoing.size === 0;
  }

  /** The highest index a quorum has durably stored. */
  committed(): number {
    return jointCommitted(this.config.incoming, this.config.outgoing, (id) => this.progress.get(id)?.match ?? 0);
  }

  resetVotes(): void {
    this.votes.clear();
  }

  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  voteResult(): VoteResult {
    return jointVote(this.config.incoming, this.config.outgoing, this.votes);
  }

  /** Whether a quorum of voters was heard from recently (the leader itself always counts). */
  quorumActive(self: NodeId): boolean {
    const active = new Map<NodeId, boolean>();
    for (const [id, pr] of this.progress) {
      if (!pr.isLearner) active.set(id, id === self || pr.recentActive);
    }
    return jointVote(this.config.incoming, this.config.outgoing, active) === 'won';
  }

  /** Acks as votes, for ReadIndex confirmation. */
  quorumOf(acks: ReadonlySet<NodeId>): boolean {
    const votes = new Map<NodeId, boolean>();
    for (const id of acks) votes.set(id, true);
    return jointVote(this.config.incoming, this.config.outgoing, votes) === 'won';
  }
}
