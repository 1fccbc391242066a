/**
 * The operator: membership changes during the faulty phase, one at a time. Adds learners
 * (new members start with an empty disk and catch up from the log or a snapshot), promotes
 * them, removes voters (the leader too), demotes voters, and makes several changes at once
 * through joint consensus ('auto', 'joint' or 'explicit', leaving explicitly when needed).
 */
import type { ConfChange, ConfChangeSingle, NodeId } from '../../src/raft/types.ts';
import type { SimHost } from './host.ts';
import type { SimMember } from './member.ts';
import { describeConfig, members } from './membership.ts';
import type { Prng } from './prng.ts';

export interface AdminHooks {
  /** Creates and starts a new member with an empty disk. */
  addMember(id: NodeId): SimMember;
  leader(): SimMember | undefined;
  live(): SimMember[];
}

const EMPTY = new Uint8Array(0);
const MAX_MEMBERS = 7;
const MAX_VOTERS = 6;
const MIN_VOTERS = 3;

export class Admin {
  private pending: { proposedAt: number; baseIndex: number } | null = null;
  private nextId: number;
  /** Once false, only leaves an explicit joint configuration. */
  changing = true;
  changesProposed = 0;

  constructor(
    private readonly host: SimHost,
    private readonly prng: Prng,
    private readonly hooks: AdminHooks,
    firstNewId: number,
    private readonly timeout: number,
  ) {
    this.nextId = firstNewId;
  }

  act(): void {
    const now = this.host.queue.now;
    const checker = this.host.checker;
    if (this.pending !== null) {
      if (checker.latestConfigIndex() > this.pending.baseIndex || now - this.pending.proposedAt > this.timeout) this.pending = null;
      else return;
    }
    const c = checker.latestConfig();
    const voters = [...c.incoming].sort();
    const learners = [...c.learners].sort();
    let cc: ConfChange | null = null;
    if (c.outgoing.size > 0) {
      if (!c.autoLeave) cc = { transition: 'auto', changes: [], context: EMPTY };
    } else if (this.changing) {
      cc = this.choose(voters, learners, members(c).size);
    }
    if (cc === null) return;
    const via = this.hooks.leader() ?? (this.hooks.live().length > 0 ? this.prng.pick(this.hooks.live()) : undefined);
    if (via === undefined) return;
    const out = via.input((r) => r.proposeConfChange(cc));
    this.changesProposed++;
    // A member joining starts (empty) once its addition is accepted; if refused, its id is reused.
    for (const ch of cc.changes) {
      if (out?.ok === true && ch.type !== 'removeNode' && ch.nodeId === `n${this.nextId}` && this.host.member(ch.nodeId) === undefined) {
        this.hooks.addMember(ch.nodeId);
        this.nextId++;
      }
    }
    if (this.host.trace.on) {
      const what = cc.changes.length === 0 ? 'leave joint' : cc.changes.map((x) => `${x.type} ${x.nodeId}`).join(', ');
      this.host.trace.add(now, `admin proposes [${cc.transition}] ${what} at ${via.id} in ${describeConfig(c)}: ${out === undefined ? 'down' : out.ok ? 'ok' : out.reason}`);
    }
    if (out !== undefined && out.ok) this.pending = { proposedAt: now, baseIndex: checker.latestConfigIndex() };
  }

  /** The id the next new member gets (started only once its addition is accepted). */
  private newMember(): NodeId {
    return `n${this.nextId}`;
  }

  private choose(voters: NodeId[], learners: NodeId[], size: number): ConfChange | null {
    const options: (() => ConfChange | null)[] = [];
    const simple = (changes: ConfChangeSingle[]): ConfChange => ({ transition: 'auto', changes, context: EMPTY });
    const joint = (changes: ConfChangeSingle[]): ConfChange => ({ transition: this.prng.pick(['auto', 'joint', 'explicit'] as const), changes, context: EMPTY });
    const leader = this.hooks.leader()?.id;
    const pickVoter = (): NodeId => (leader !== undefined && voters.includes(leader) && this.prng.chance(0.3) ? leader : this.prng.pick(voters));
    if (size < MAX_MEMBERS) {
      options.push(() => simple([{ type: 'addLearner', nodeId: this.newMember() }]));
      if (voters.length < MAX_VOTERS) options.push(() => simple([{ type: 'addVoter', nodeId: this.newMember() }]));
    }
    if (learners.length > 0) {
      if (voters.length < MAX_VOTERS) options.push(() => simple([{ type: 'addVoter', nodeId: this.prng.pick(learners) }]));
      options.push(() => simple([{ type: 'removeNode', nodeId: this.prng.pick(learners) }]));
      // Replace a voter by a learner, in one joint step.
      if (voters.length >= MIN_VOTERS) {
        options.push(() => joint([{ type: 'addVoter', nodeId: this.prng.pick(learners) }, { type: 'removeNode', nodeId: pickVoter() }]));
      }
    }
    if (learners.length >= 2 && voters.length + 2 <= MAX_VOTERS) {
      options.push(() => joint(learners.slice(0, 2).map((nodeId) => ({ type: 'addVoter' as const, nodeId }))));
    }
    if (voters.length > MIN_VOTERS) {
      options.push(() => simple([{ type: 'removeNode', nodeId: pickVoter() }]));
      // Demote a voter to learner (it keeps voting in the outgoing half until the leave).
      options.push(() => joint([{ type: 'addLearner', nodeId: pickVoter() }]));
    }
    if (voters.length > MIN_VOTERS + 1) {
      const [a, b] = this.prng.shuffle(voters);
      options.push(() => joint([{ type: 'removeNode', nodeId: a! }, { type: 'removeNode', nodeId: b! }]));
    }
    if (options.length === 0) return null;
    return this.prng.pick(options)();
  }
}
