/**
 * The vocabulary of the consensus core: log entries, hard state, snapshots, configuration,
 * messages and the Ready batch. Everything here is plain data, so it can be persisted by the
 * WAL and framed by the transport without knowing anything about Raft's rules.
 */

/** A member's identity. The server uses etcd's 64-bit member id in lower-case hex; tests use short names. */
export type NodeId = string;

/** "Nobody": no vote cast, no leader known. */
export const NONE: NodeId = '';

export const EntryKind = {
  /** Application data (an empty normal entry is the no-op a new leader appends). */
  Normal: 0,
  /** An encoded {@link ConfChange} (see `encodeConfChange` in ./confchange.ts). */
  ConfChange: 1,
} as const;
export type EntryKind = (typeof EntryKind)[keyof typeof EntryKind];

export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly kind: EntryKind;
  readonly data: Uint8Array;
}

/** What must be durable before a member may answer anyone: its term, its vote and how far it knows the log is committed. */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
}

/**
 * Cluster membership. Outside a joint configuration `votersOutgoing` is empty. During a joint
 * configuration a decision needs a majority of `voters` AND a majority of `votersOutgoing`.
 * `learnersNext` are members that will become learners when the joint configuration is left
 * (a voter being demoted keeps voting in the outgoing half until then).
 */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly votersOutgoing: readonly NodeId[];
  readonly learners: readonly NodeId[];
  readonly learnersNext: readonly NodeId[];
  /** Leave the joint configuration automatically once it is committed. */
  readonly autoLeave: boolean;
}

export interface SnapshotMetadata {
  readonly index: number;
  readonly term: number;
  readonly confState: ConfState;
}

/** The state machine at `metadata.index`. `data` is opaque to Raft. */
export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  readonly data: Uint8Array;
}

export type ConfChangeType = 'addVoter' | 'addLearner' | 'removeNode';

export interface ConfChangeSingle {
  readonly type: ConfChangeType;
  readonly nodeId: NodeId;
}

/**
 * A membership change. One single change (add or remove one voter) is applied directly, as
 * etcd does; several changes, or `transition: 'explicit' | 'joint'`, go through a joint
 * configuration. `changes: []` leaves a joint configuration.
 * - 'auto': simple when possible, otherwise joint with automatic leave.
 * - 'joint': always joint, leave automatically.
 * - 'explicit': always joint, the application proposes the leave itself.
 */
export interface ConfChange {
  readonly transition: 'auto' | 'joint' | 'explicit';
  readonly changes: readonly ConfChangeSingle[];
  /** Opaque to Raft (the server puts the new member's peer URLs here). */
  readonly context: Uint8Array;
}

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

export interface SoftState {
  readonly lead: NodeId;
  readonly role: Role;
}

/** A linearizable read point: once `index` is applied, a read for `context` may be served locally. */
export interface ReadState {
  readonly index: number;
  readonly context: Uint8Array;
}

interface MessageBase {
  readonly from: NodeId;
  readonly to: NodeId;
  /** 0 for messages that carry no term (local proposals, forwarded proposals and read requests). */
  readonly term: number;
}

/** Leader → follower: append `entries` after (logIndex, logTerm); advance commit to `commit`. */
export interface MsgApp extends MessageBase {
  readonly type: 'app';
  readonly logTerm: number;
  readonly logIndex: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
}

/**
 * Follower → leader. On success `index` is the last index now matching the leader's log.
 * On rejection `index` is the rejected logIndex, and (hintIndex, hintTerm) is the largest index
 * ≤ hintIndex in the follower's log whose term is ≤ the rejected logTerm: the leader jumps there.
 */
export interface MsgAppResp extends MessageBase {
  readonly type: 'appResp';
  readonly index: number;
  readonly reject: boolean;
  readonly hintIndex: number;
  readonly hintTerm: number;
}

/** Candidate → voter. `preVote` asks "would you vote for me at `term`?" without anyone changing term. */
export interface MsgVote extends MessageBase {
  readonly type: 'vote';
  readonly preVote: boolean;
  readonly lastIndex: number;
  readonly lastTerm: number;
  /** Set when the election follows a leadership transfer: voters then ignore their leader lease. */
  readonly transfer: boolean;
}

export interface MsgVoteResp extends MessageBase {
  readonly type: 'voteResp';
  readonly preVote: boolean;
  readonly reject: boolean;
}

/** Leader → follower. `context` non-empty when the heartbeat confirms leadership for ReadIndex. */
export interface MsgHeartbeat extends MessageBase {
  readonly type: 'heartbeat';
  readonly commit: number;
  readonly context: Uint8Array;
}

export interface MsgHeartbeatResp extends MessageBase {
  readonly type: 'heartbeatResp';
  readonly context: Uint8Array;
}

/** Leader → follower that is too far behind: install this snapshot. */
export interface MsgSnap extends MessageBase {
  readonly type: 'snap';
  readonly snapshot: Snapshot;
}

/** Follower → leader: a forwarded proposal. `entries` carry no term or index yet. */
export interface MsgProp extends MessageBase {
  readonly type: 'prop';
  readonly entries: readonly Entry[];
}

/** Follower → leader: a forwarded ReadIndex request. */
export interface MsgReadIndex extends MessageBase {
  readonly type: 'readIndex';
  readonly context: Uint8Array;
}

export interface MsgReadIndexResp extends MessageBase {
  readonly type: 'readIndexResp';
  readonly index: number;
  readonly context: Uint8Array;
}

/** Leader → transferee: start an election now, even though you have a leader. */
export interface MsgTimeoutNow extends MessageBase {
  readonly type: 'timeoutNow';
}

/** Follower → leader: a forwarded request to transfer leadership to `from`'s chosen target. */
export interface MsgTransferLeader extends MessageBase {
  readonly type: 'transferLeader';
  readonly target: NodeId;
}

export type Message =
  | MsgApp
  | MsgAppResp
  | MsgVote
  | MsgVoteResp
  | MsgHeartbeat
  | MsgHeartbeatResp
  | MsgSnap
  | MsgProp
  | MsgReadIndex
  | MsgReadIndexResp
  | MsgTimeoutNow
  | MsgTransferLeader;

export type MessageType = Message['type'];

/**
 * One batch of work for the application. Handle it in this order:
 *  1. Send `messages` (they may leave before or while persisting: the leader's appends carry
 *     their own entries, and the leader counts itself for commit only after `advance`).
 *  2. Persist `snapshot` (if any), then `entries` (replacing any stored entries from
 *     `entries[0].index` on), then `hardState` (if any); sync once.
 *  3. Only then send `messagesAfterPersist`: votes, vote responses and append acknowledgements,
 *     which promise that the state above is durable.
 *  4. Apply `snapshot` (if any), then `committedEntries`, in order, to the state machine.
 *     Answer `readStates` once the applied index reaches their `index`.
 *  5. Call `advance(ready)`.
 * Between ready() and advance(), Raft.takeUnpersistedOutput() may take the messages and read
 * states produced meanwhile that need no durable state, to send them without waiting for step 2.
 * Configuration changes in `committedEntries` take effect inside Raft at `advance`.
 */
export interface Ready {
  readonly softState: SoftState | null;
  readonly hardState: HardState | null;
  readonly entries: readonly Entry[];
  readonly snapshot: Snapshot | null;
  readonly committedEntries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly messagesAfterPersist: readonly Message[];
  readonly readStates: readonly ReadState[];
  /** True when hard state, entries or a snapshot must reach stable storage before step 3. */
  readonly mustSync: boolean;
}

/** Why Raft would not take a proposal, read or transfer. The server maps these to etcd's errors. */
export type RefusalReason =
  /** No leader is known (election in progress or partitioned): etcd's "no leader". */
  | 'noLeader'
  /** Leadership transfer in progress, forwarding disabled, or uncommitted log too large. */
  | 'dropped'
  /** A configuration change is already pending, or the change is invalid for the current config. */
  | 'confChangeRefused'
  /** The entry or batch is larger than the configured limit. */
  | 'tooLarge';

export type Outcome = { readonly ok: true } | { readonly ok: false; readonly reason: RefusalReason };

export const ACCEPTED: Outcome = { ok: true };
