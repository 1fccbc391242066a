/**
 * Membership transitions, as pure functions from one configuration to the next.
 *
 * Safety rule: two configurations in force at the same time must never allow two disjoint
 * quorums. A "simple" change may therefore alter at most one voter; anything larger goes
 * through a joint configuration (old and new voters must both agree) that is left later.
 *
 * Wire format of an encoded ConfChange (the data of a ConfChange entry), all big-endian:
 *   u8 transition (0 auto, 1 joint, 2 explicit) · u16 change count ·
 *   per change: u8 type (0 addVoter, 1 addLearner, 2 removeNode) · u16 id length · id (UTF-8) ·
 *   u32 context length · context
 */
import { assert } from '../util/assert.ts';
import type { ConfChange, ConfChangeSingle, ConfChangeType, ConfState, NodeId } from './types.ts';

export interface MembershipConfig {
  readonly incoming: ReadonlySet<NodeId>;
  /** Non-empty only while joint. */
  readonly outgoing: ReadonlySet<NodeId>;
  readonly learners: ReadonlySet<NodeId>;
  /** Voters of the outgoing half that become learners when the joint configuration is left. */
  readonly learnersNext: ReadonlySet<NodeId>;
  readonly autoLeave: boolean;
}

export type ChangeResult = { readonly ok: true; readonly config: MembershipConfig } | { readonly ok: false; readonly error: string };

export function isJoint(c: MembershipConfig): boolean {
  return c.outgoing.size > 0;
}

export function isLeaveJoint(cc: ConfChange): boolean {
  return cc.changes.length === 0;
}

/** Whether applying `cc` enters a joint configuration rather than changing directly. */
export function entersJoint(cc: ConfChange): boolean {
  return cc.changes.length > 0 && (cc.transition !== 'auto' || cc.changes.length > 1);
}

export function configFromConfState(cs: ConfState): MembershipConfig {
  const config: MembershipConfig = {
    incoming: new Set(cs.voters),
    outgoing: new Set(cs.votersOutgoing),
    learners: new Set(cs.learners),
    learnersNext: new Set(cs.learnersNext),
    autoLeave: cs.autoLeave,
  };
  const problem = validate(config);
  assert(problem === null, `raft: invalid configuration in ConfState: ${problem}`);
  return config;
}

export function confStateFromConfig(c: MembershipConfig): ConfState {
  const sorted = (s: ReadonlySet<NodeId>): NodeId[] => [...s].sort();
  return {
    voters: sorted(c.incoming),
    votersOutgoing: sorted(c.outgoing),
    learners: sorted(c.learners),
    learnersNext: sorted(c.learnersNext),
    autoLeave: c.autoLeave,
  };
}

export function allMembers(c: MembershipConfig): Set<NodeId> {
  return new Set([...c.incoming, ...c.outgoing, ...c.learners, ...c.learnersNext]);
}

/** Applies a membership change, or explains why it is not allowed from `current`. */
export function applyConfChange(current: MembershipConfig, cc: ConfChange): ChangeResult {
  if (isLeaveJoint(cc)) return leaveJoint(current);
  if (isJoint(current)) return { ok: false, error: 'config is already joint' };
  if (entersJoint(cc)) {
    if (current.incoming.size === 0) return { ok: false, error: "can't make a zero-voter config joint" };
    const next = mutable(current);
    next.outgoing = new Set(current.incoming);
    next.autoLeave = cc.transition !== 'explicit';
    return finish(applyChanges(next, cc.changes));
  }
  const next = applyChanges(mutable(current), cc.changes);
  let changedVoters = 0;
  for (const id of next.incoming) if (!current.incoming.has(id)) changedVoters++;
  for (const id of current.incoming) if (!next.incoming.has(id)) changedVoters++;
  if (changedVoters > 1) return { ok: false, error: 'more than one voter changed without entering joint config' };
  return finish(next);
}

function leaveJoint(current: MembershipConfig): ChangeResult {
  if (!isJoint(current)) return { ok: false, error: "can't leave a non-joint config" };
  const next = mutable(current);
  for (const id of current.learnersNext) next.learners.add(id);
  next.learnersNext = new Set();
  next.outgoing = new Set();
  next.autoLeave = false;
  return finish(next);
}

interface MutableConfig {
  incoming: Set<NodeId>;
  outgoing: Set<NodeId>;
  learners: Set<NodeId>;
  learnersNext: Set<NodeId>;
  autoLeave: boolean;
}

function mutable(c: MembershipConfig): MutableConfig {
  return {
    incoming: new Set(c.incoming),
    outgoing: new Set(c.outgoing),
    learners: new Set(c.learners),
    learnersNext: new Set(c.learnersNext),
    autoLeave: c.autoLeave,
  };
}

function applyChanges(c: MutableConfig, changes: readonly ConfChangeSingle[]): MutableConfig {
  for (const { type, nodeId } of changes) {
    assert(nodeId !== '', 'raft: conf change with an empty node id');
    switch (type) {
      case 'addVoter':
        c.learners.delete(nodeId);
        c.learnersNext.delete(nodeId);
        c.incoming.add(nodeId);
        break;
      case 'addLearner':
        c.incoming.delete(nodeId);
        // A voter of the outgoing half keeps voting there until the joint config is left.
        if (c.outgoing.has(nodeId)) c.learnersNext.add(nodeId);
        else c.learners.add(nodeId);
        break;
      case 'removeNode':
        c.incoming.delete(nodeId);
        c.learners.delete(nodeId);
        c.learnersNext.delete(nodeId);
        break;
    }
  }
  return c;
}

function finish(c: MutableConfig): ChangeResult {
  if (c.incoming.size === 0) return { ok: false, error: 'removed all voters' };
  const problem = validate(c);
  return problem === null ? { ok: true, config: c } : { ok: false, error: problem };
}

function validate(c: MembershipConfig): string | null {
  for (const id of c.learners) {
    if (c.incoming.has(id) || c.outgoing.has(id)) return `${id} is both a learner and a voter`;
  }
  for (const id of c.learnersNext) {
    if (!c.outgoing.has(id)) return `${id} is in learnersNext but not an outgoing voter`;
    if (c.learners.has(id)) return `${id} is in both learners and learnersNext`;
  }
  if (!isJoint(c) && (c.learnersNext.size > 0 || c.autoLeave)) return 'joint-only state outside a joint config';
  return null;
}

const TRANSITIONS = ['auto', 'joint', 'explicit'] as const;
const CHANGE_TYPES: readonly ConfChangeType[] = ['addVoter', 'addLearner', 'removeNode'];
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

export function encodeConfChange(cc: ConfChange): Uint8Array {
  const ids = cc.changes.map((c) => utf8.encode(c.nodeId));
  const size = 1 + 2 + ids.reduce((n, id) => n + 3 + id.byteLength, 0) + 4 + cc.context.byteLength;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let at = 0;
  view.setUint8(at, TRANSITIONS.indexOf(cc.transition));
  view.setUint16(at + 1, cc.changes.length);
  at += 3;
  cc.changes.forEach((c, i) => {
    const id = ids[i]!;
    view.setUint8(at, CHANGE_TYPES.indexOf(c.type));
    view.setUint16(at + 1, id.byteLength);
    out.set(id, at + 3);
    at += 3 + id.byteLength;
  });
  view.setUint32(at, cc.context.byteLength);
  out.set(cc.context, at + 4);
  return out;
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const transition = TRANSITIONS[view.getUint8(0)];
  assert(transition !== undefined, 'raft: bad conf change transition');
  const count = view.getUint16(1);
  let at = 3;
  const changes: ConfChangeSingle[] = [];
  for (let i = 0; i < count; i++) {
    const type = CHANGE_TYPES[view.getUint8(at)];
    assert(type !== undefined, 'raft: bad conf change type');
    const len = view.getUint16(at + 1);
    changes.push({ type, nodeId: fromUtf8.decode(data.subarray(at + 3, at + 3 + len)) });
    at += 3 + len;
  }
  const contextLength = view.getUint32(at);
  const context = data.slice(at + 4, at + 4 + contextLength);
  assert(at + 4 + contextLength === data.byteLength, 'raft: trailing bytes in conf change');
  return { transition, changes, context };
}
