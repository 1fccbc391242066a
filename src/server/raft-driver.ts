/**
 * Drives a Raft state machine in a real process: the tick timer, and the Ready loop
 *   send messages → persist (one sync per batch) → send after-persist messages → apply → advance.
 *
 * While a batch is being synced, the event loop keeps stepping messages and accepting
 * proposals into Raft; they come out together in the next Ready, so one fsync covers every
 * request that arrived during the previous one (group commit without a timer).
 *
 * Applying can be paused (pauseApply) while the state machine must stand still, e.g. for a
 * store defragmentation: Readies are still persisted and their messages sent, so the member
 * keeps its place in the cluster (heartbeats, votes, acknowledgements), while committed entries
 * and snapshots to install wait in order and the applied index (hence linearizable reads)
 * waits with them, as etcd's raft loop runs on while its apply loop is blocked.
 */
import { assert } from '../util/assert.ts';
import { Raft, type RaftConfig, type RaftStatus } from '../raft/raft.ts';
import { MemoryStorage } from '../raft/storage.ts';
import type { ConfChange, Entry, HardState, Message, NodeId, Outcome, Ready, ReadState, Snapshot, SoftState } from '../raft/types.ts';

/** Where a member's Raft state becomes durable (the WAL and snapshot files). */
export interface DurableLog {
  /** Persists one Ready's snapshot, entries and hard state with a single sync; resolves after it. */
  save(hardState: HardState | null, entries: readonly Entry[], snapshot: Snapshot | null): Promise<void>;
  /** Records a snapshot the member took of its own state, so the log before it can be released. */
  saveSnapshot(snapshot: Snapshot): Promise<void>;
}

/** Committed work for the state machine: entries to apply or a snapshot to install. */
type ApplyWork = { readonly entries: readonly Entry[] } | { readonly snapshot: Snapshot };

/** The replicated state machine, as the driver sees it. */
export interface StateMachine {
  /** Replaces the whole state with the snapshot received from the leader. */
  installSnapshot(snapshot: Snapshot): Promise<void>;
  /** Applies committed entries in order (exactly once, by index). */
  apply(entries: readonly Entry[]): void;
  /** Makes everything applied so far durable (before the log that produced it is released). */
  sync(): Promise<void>;
}

export interface Outbox {
  send(messages: readonly Message[]): void;
  /** Writes whatever send() queued now rather than later (optional: an outbox may send at once). */
  flush?(): void;
}

export interface RaftDriverOptions {
  readonly raft: Omit<RaftConfig, 'storage'>;
  readonly storage: MemoryStorage;
  readonly durable: DurableLog;
  readonly stateMachine: StateMachine;
  readonly outbox: Outbox;
  readonly tickMs: number;
  /** Take a snapshot (and release the log) every this many applied entries. */
  readonly snapshotCount: number;
  /** Entries kept behind a snapshot, so slightly lagging followers need no snapshot. */
  readonly snapshotCatchUpEntries: number;
  readonly onSoftState?: (s: SoftState) => void;
  readonly onReadStates?: (r: readonly ReadState[]) => void;
  readonly onApplied?: (index: number) => void;
  readonly onFatal: (e: unknown) => void;
}

interface Batch {
  data: Uint8Array[];
  done: ((o: Outcome) => void)[];
  /** Per proposal: the term in which only a leader may propose it (see proposeBatched). */
  leaderOfTerm: (number | undefined)[];
}

function emptyBatch(): Batch {
  return { data: [], done: [], leaderOfTerm: [] };
}

export class RaftDriver {
  readonly raft: Raft;
  private readonly storage: MemoryStorage;
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private scheduled = false;
  private stopped = false;
  private appliedIndex: number;
  private snapshotIndex: number;
  /** The term of the last persisted hard state (as etcd's raftNode keeps it for response headers). */
  private persistedTerm: number;
  /** Term and vote of the last hard state written with a sync. */
  private synced: { term: number; vote: NodeId };
  /**
   * A hard state that only moved the commit index, not yet written: it goes out with the next
   * synced save (or before a snapshot marker, or at stop). As in etcd (raft.MustSync), a commit
   * index needs no fsync of its own: it is re-learned from the leader after a restart, and
   * everything it covers is already durable on a quorum.
   */
  private unsyncedHardState: HardState | null = null;
  private idle: (() => void)[] = [];
  /** Proposals queued by proposeBatched, handed to Raft together at the next turn of the loop. */
  private batch: Batch = emptyBatch();
  /** While set, committed work is held (see pauseApply). */
  private applyPaused = false;
  /** Committed work held while applying was paused, in log order. */
  private held: ApplyWork[] = [];
  /** The snapshot install in progress, which pauseApply waits out. */
  private installing: Promise<void> | null = null;

  constructor(private readonly opts: RaftDriverOptions) {
    this.storage = opts.storage;
    this.raft = new Raft({ ...opts.raft, storage: opts.storage });
    this.appliedIndex = this.raft.status().applied;
    this.persistedTerm = this.raft.status().term;
    const hs = opts.storage.initialState().hardState;
    this.synced = { term: hs.term, vote: hs.vote };
    this.snapshotIndex = opts.storage.snapshot().metadata.index;
  }

  start(): void {
    this.timer = setInterval(() => {
      this.raft.tick();
      this.kick();
    }, this.opts.tickMs);
    this.kick();
  }

  /** Stops ticking and waits for the batch in progress to finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    if (this.running) await new Promise<void>((resolve) => this.idle.push(resolve));
    this.flushProposals();
    // Best effort: a commit index is not needed for safety, and a failed WAL already stopped us.
    await this.saveUnsyncedHardState().catch(() => undefined);
  }

  /** Writes (with a sync) a commit-only hard state held back by handleReady. */
  private async saveUnsyncedHardState(): Promise<void> {
    const hs = this.unsyncedHardState;
    if (hs === null) return;
    await this.opts.durable.save(hs, [], null);
    if (this.unsyncedHardState === hs) this.unsyncedHardState = null;
  }

  step(m: Message): void {
    if (this.stopped) return;
    this.raft.step(m);
    this.kick();
  }

  propose(data: readonly Uint8Array[]): Outcome {
    const outcome = this.raft.propose(data);
    this.kick();
    return outcome;
  }

  /**
   * Queues one proposal; every proposal queued before the Ready loop next runs (this turn of the
   * event loop, or while a batch is being persisted) goes to Raft in one propose call, so it
   * becomes one append per follower instead of one per request. `done` gets Raft's answer.
   *
   * With `leaderOfTerm`, the proposal goes to Raft only if this member still leads in that term
   * when the batch does, and is dropped otherwise: for what only the leader may decide, such as
   * expiring a lease by its own clock. A follower's Raft would forward it to the new leader,
   * which would commit the deposed leader's decision.
   */
  proposeBatched(data: Uint8Array, done: (o: Outcome) => void, leaderOfTerm?: number): void {
    if (this.stopped) {
      done({ ok: false, reason: 'dropped' });
      return;
    }
    this.batch.data.push(data);
    this.batch.done.push(done);
    this.batch.leaderOfTerm.push(leaderOfTerm);
    this.kick();
  }

  private flushProposals(): void {
    if (this.batch.data.length === 0) return;
    const { data, done, leaderOfTerm } = this.batch;
    this.batch = emptyBatch();
    const dropped = { ok: false, reason: 'dropped' } as const;
    if (this.stopped) {
      for (const d of done) d(dropped);
      return;
    }
    // Checked in the same step that hands the batch to Raft: nothing can depose us in between.
    const status = leaderOfTerm.some((t) => t !== undefined) ? this.raft.status() : undefined;
    const allowed = (i: number): boolean => leaderOfTerm[i] === undefined || (status?.role === 'leader' && status.term === leaderOfTerm[i]);
    const kept = data.filter((_, i) => allowed(i));
    const outcome = kept.length === 0 ? dropped : this.raft.propose(kept);
    done.forEach((d, i) => d(allowed(i) ? outcome : dropped));
  }

  proposeConfChange(cc: ConfChange): Outcome {
    const outcome = this.raft.proposeConfChange(cc);
    this.kick();
    return outcome;
  }

  readIndex(context: Uint8Array): Outcome {
    const outcome = this.raft.readIndex(context);
    this.kick();
    return outcome;
  }

  transferLeadership(to: NodeId): void {
    this.raft.transferLeadership(to);
    this.kick();
  }

  /**
   * Holds committed entries and snapshots back from the state machine until resumeApply();
   * resolves once nothing is being applied. Everything else goes on (see the module comment).
   */
  async pauseApply(): Promise<void> {
    assert(!this.applyPaused, 'raft driver: applying paused twice');
    this.applyPaused = true;
    while (this.installing !== null) await this.installing;
  }

  /** Applies what was held, in order, and goes on applying. */
  resumeApply(): void {
    assert(this.applyPaused, 'raft driver: applying resumed without a pause');
    this.applyPaused = false;
    this.kick();
  }

  reportUnreachable(id: NodeId): void {
    this.raft.reportUnreachable(id);
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    this.raft.reportSnapshot(id, ok);
    this.kick();
  }

  status(): RaftStatus {
    return this.raft.status();
  }

  applied(): number {
    return this.appliedIndex;
  }

  /** Current term as of the last Ready, without building a whole status(). */
  term(): number {
    return this.persistedTerm;
  }

  /**
   * Schedules the Ready loop (once per event-loop turn, however many inputs arrived). While the
   * loop is busy (waiting for a sync, mostly), what arrived meanwhile moves on at once instead
   * of after it: see passOnWhileBusy.
   */
  kick(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.running) this.passOnWhileBusy();
      else void this.loop();
    });
  }

  /**
   * Hands queued proposals to Raft and sends what needs no durable state (the leader's appends
   * of them, heartbeats, ReadIndex rounds and their answers) and passes on confirmed read
   * indexes, while the loop waits for a sync. Followers then persist new entries while the
   * leader does, and reads need not wait for an unrelated fsync. Entries, hard state,
   * acknowledgements and votes still wait for the next Ready and its sync.
   */
  private passOnWhileBusy(): void {
    if (this.stopped) return;
    this.flushProposals();
    const { messages, readStates } = this.raft.takeUnpersistedOutput();
    if (messages.length > 0) {
      this.opts.outbox.send(messages);
      this.opts.outbox.flush?.();
    }
    if (readStates.length > 0) this.opts.onReadStates?.(readStates);
  }

  private async loop(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (;;) {
        if (!this.stopped) this.flushProposals();
        if (!this.stopped && !this.applyPaused && this.held.length > 0) await this.applyHeld();
        if (this.stopped || !this.raft.hasReady()) break;
        await this.handleReady();
      }
      // Out of work: what the last Readies queued leaves now, in one write per peer.
      this.opts.outbox.flush?.();
    } catch (e) {
      this.stopped = true;
      if (this.timer !== null) clearInterval(this.timer);
      this.opts.onFatal(e);
    } finally {
      this.running = false;
      for (const resolve of this.idle.splice(0)) resolve();
    }
  }

  private async handleReady(): Promise<void> {
    const rd = this.raft.ready();
    if (rd.softState !== null) this.opts.onSoftState?.(rd.softState);
    // A read index is a commit index the quorum confirmed: nothing in this Ready's persistence
    // bears on it, so its reads need not wait for the sync (etcd's raftNode hands them on first).
    if (rd.readStates.length > 0) this.opts.onReadStates?.(rd.readStates);
    // The leader's appends carry their own entries: they may leave while we persist.
    this.opts.outbox.send(rd.messages);
    // Committed entries are durable on a quorum already: as etcd's raftNode does, apply them
    // while this Ready's new entries are persisted rather than after (their requests need not
    // wait for an unrelated fsync). After a crash the store may then be ahead of this member's
    // WAL; the entries come again from the leader and the store skips them (its consistent
    // index). A snapshot must be installed first, so a Ready with one applies after it.
    const early = rd.snapshot === null;
    if (early) this.applyCommitted(rd);
    const hs = rd.hardState;
    const needSync = rd.entries.length > 0 || rd.snapshot !== null || (hs !== null && (hs.term !== this.synced.term || hs.vote !== this.synced.vote));
    if (needSync) {
      // The appends (and anything queued by earlier Readies) leave before we wait for the disk.
      this.opts.outbox.flush?.();
      const latest = hs ?? this.unsyncedHardState;
      this.unsyncedHardState = null;
      await this.opts.durable.save(latest, rd.entries, rd.snapshot);
      if (latest !== null) this.synced = { term: latest.term, vote: latest.vote };
    } else if (hs !== null) {
      this.unsyncedHardState = hs;
    }
    if (rd.snapshot !== null) this.storage.applySnapshot(rd.snapshot);
    this.storage.append(rd.entries);
    if (rd.hardState !== null) {
      this.storage.setHardState(rd.hardState);
      this.persistedTerm = rd.hardState.term;
    }
    // Votes and acknowledgements promise durable state: only now may they leave.
    this.opts.outbox.send(rd.messagesAfterPersist);

    if (rd.snapshot !== null) {
      if (this.holding()) this.held.push({ snapshot: rd.snapshot });
      else await this.install(rd.snapshot);
    }
    if (!early) this.applyCommitted(rd);
    this.raft.advance(rd);
    if (this.snapshotDue()) await this.takeSnapshot();
  }

  /** Whether committed work must wait: applying is paused, or earlier work still waits. */
  private holding(): boolean {
    return this.applyPaused || this.held.length > 0;
  }

  private async install(snapshot: Snapshot): Promise<void> {
    const installing = this.opts.stateMachine.installSnapshot(snapshot);
    this.installing = installing;
    try {
      await installing;
    } finally {
      this.installing = null;
    }
    this.appliedIndex = snapshot.metadata.index;
    this.snapshotIndex = snapshot.metadata.index;
    this.opts.onApplied?.(this.appliedIndex);
  }

  private applyEntries(entries: readonly Entry[]): void {
    const first = entries[0]!.index;
    assert(first <= this.appliedIndex + 1, `raft driver: committed entry ${first} leaves a gap after applied ${this.appliedIndex}`);
    this.opts.stateMachine.apply(entries);
    this.appliedIndex = Math.max(this.appliedIndex, entries[entries.length - 1]!.index);
    // At once, not after this Ready's sync: reads waiting for this index need not wait for it.
    this.opts.onApplied?.(this.appliedIndex);
  }

  /** Applies the work held while applying was paused, in order, unless it is paused again. */
  private async applyHeld(): Promise<void> {
    while (!this.applyPaused && this.held.length > 0) {
      const work = this.held.shift()!;
      if ('snapshot' in work) await this.install(work.snapshot);
      else this.applyEntries(work.entries);
    }
    if (this.snapshotDue()) await this.takeSnapshot();
  }

  /**
   * Whether enough entries were applied since the last snapshot to take another. Not while work
   * is held: the snapshot records Raft's configuration, which must be that of the applied index.
   */
  private snapshotDue(): boolean {
    return this.held.length === 0 && this.appliedIndex - this.snapshotIndex >= this.opts.snapshotCount;
  }

  /** Applies a Ready's committed entries, or holds them behind earlier held work (see pauseApply). */
  private applyCommitted(rd: Ready): void {
    if (rd.committedEntries.length === 0) return;
    if (this.holding()) this.held.push({ entries: rd.committedEntries });
    else this.applyEntries(rd.committedEntries);
  }

  /** Snapshots the applied state and releases the log before it (keeping some for followers). */
  private async takeSnapshot(): Promise<void> {
    const index = this.appliedIndex;
    // The state machine may lag the WAL on disk; it must not once the WAL is released.
    await this.opts.stateMachine.sync();
    // The commit index on disk must cover the snapshot (a restart commits at least that far).
    await this.saveUnsyncedHardState();
    const snapshot = this.storage.createSnapshot(index, this.raft.status().confState, new Uint8Array(0));
    await this.opts.durable.saveSnapshot(snapshot);
    this.snapshotIndex = index;
    const compactTo = index - this.opts.snapshotCatchUpEntries;
    if (compactTo > this.storage.firstIndex()) this.storage.compact(compactTo);
  }
}
