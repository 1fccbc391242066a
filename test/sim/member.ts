/**
 * One simulated member: a Raft instance over a "disk" (a MemoryStorage holding exactly what
 * was persisted), a volatile state machine, and the Ready pipeline spread over simulation
 * steps: send messages → (persist delay) persist → send after-persist messages →
 * (apply delay) apply → advance. A crash discards the Raft instance, any Ready not yet
 * persisted and the state machine; a restart rebuilds them from the disk alone.
 */
import { Raft, type RaftConfig, type RaftMutation } from '../../src/raft/raft.ts';
import { MemoryStorage } from '../../src/raft/storage.ts';
import type { HardState, Message, NodeId, Ready, ReadState } from '../../src/raft/types.ts';
import { EntryKind, NONE } from '../../src/raft/types.ts';
import { logView, type ReadRequirement } from './checker.ts';
import type { SimHost } from './host.ts';
import type { Prng } from './prng.ts';
import { StateMachine } from './state-machine.ts';
import { describeEntry } from './trace.ts';

export interface MemberParams {
  /** Sim time units per Raft tick (clock skew: members differ). */
  readonly tickPeriod: number;
  readonly persistDelayMax: number;
  readonly applyDelayMax: number;
  /** Take a snapshot every this many applied entries (0: never). */
  readonly snapshotEvery: number;
  /** Entries kept behind a snapshot when compacting. */
  readonly compactKeep: number;
  readonly raft: Omit<RaftConfig, 'id' | 'storage' | 'random' | 'applied'>;
}

interface PendingRead {
  readonly ctx: string;
  readonly client: number;
  readonly req: ReadRequirement;
  /** Set once the ReadState arrived: serve when applied reaches it. */
  index: number;
}

const text = new TextDecoder();
const utf8 = new TextEncoder();

export class SimMember {
  readonly storage = new MemoryStorage();
  raft: Raft | null = null;
  sm = new StateMachine();
  incarnation = 0;
  /** Removed from the cluster and shut down for good. */
  retired = false;
  private stage: Ready | null = null;
  /** Reads accepted by this incarnation, by context. */
  readonly reads = new Map<string, PendingRead>();
  /** Something was applied since the last quiescent configuration check. */
  private appliedSinceCheck = true;
  private lastSnapshotAt = 0;
  /** The commit index last seen while leader (Infinity when not leading). */
  private leaderCommit = Infinity;

  constructor(
    readonly id: NodeId,
    private readonly host: SimHost,
    private readonly params: MemberParams,
    private readonly prng: Prng,
    private readonly mutations: ReadonlySet<RaftMutation>,
  ) {}

  get alive(): boolean {
    return this.raft !== null;
  }

  get tickPeriod(): number {
    return this.params.tickPeriod;
  }

  /** Starts (or restarts) Raft from what the disk holds. */
  start(): void {
    const snap = this.storage.snapshot();
    this.sm = StateMachine.decode(snap.data);
    this.host.checker.restored(this.id, snap, this.sm);
    this.incarnation++;
    this.raft = new Raft({
      ...this.params.raft,
      id: this.id,
      storage: this.storage,
      random: this.prng.fork(`raft#${this.incarnation}`).asFunction(),
      applied: snap.metadata.index,
      mutations: this.mutations,
    });
    this.stage = null;
    this.appliedSinceCheck = true;
    this.leaderCommit = Infinity;
    this.lastSnapshotAt = snap.metadata.index;
    const st = this.raft.status();
    this.host.checker.restarted(this.id, st.commit, this.storage.hardState().commit);
    this.scheduleTick();
    this.pump();
  }

  crash(): void {
    this.raft = null;
    this.stage = null;
    this.reads.clear();
    this.incarnation++;
  }

  private scheduleTick(): void {
    const inc = this.incarnation;
    this.host.queue.after(this.params.tickPeriod, () => {
      if (this.incarnation !== inc || this.raft === null) return;
      this.raft.tick();
      this.pump();
      this.scheduleTick();
    });
  }

  /** Runs `fn` against Raft (if up), then handles whatever it produced. */
  input<T>(fn: (raft: Raft) => T): T | undefined {
    if (this.raft === null) return undefined;
    const out = fn(this.raft);
    this.pump();
    return out;
  }

  deliver(m: Message): void {
    this.input((r) => r.step(m));
  }

  /** Observes, then takes and starts handling Ready batches until one must wait. */
  pump(): void {
    const raft = this.raft;
    if (raft === null) return;
    for (;;) {
      this.observe(raft);
      if (this.raft !== raft) return; // crashed at a crash point
      if (this.stage !== null) {
        this.passOnWhileBusy(raft);
        break;
      }
      if (!raft.hasReady()) break;
      const rd = raft.ready();
      this.stage = rd;
      if (rd.softState !== null) {
        this.host.trace.add(this.host.queue.now, `${this.id} is ${rd.softState.role}${rd.softState.lead !== NONE ? ` (lead ${rd.softState.lead})` : ''} t${raft.status().term}`);
      }
      for (const m of rd.messages) this.send(m);
      if (rd.mustSync && this.params.persistDelayMax > 0) {
        const inc = this.incarnation;
        this.host.queue.after(this.prng.int(0, this.params.persistDelayMax), () => {
          if (this.incarnation !== inc) return;
          this.persist(rd);
          this.pump();
        });
        return;
      }
      this.persist(rd);
      if (this.raft !== raft || this.stage !== null) return; // crashed, or the apply was scheduled
    }
    if (this.appliedSinceCheck && this.stage === null) {
      this.appliedSinceCheck = false;
      this.host.checker.memberConfig(this.id, this.sm.index, raft.status().confState);
    }
  }

  private send(m: Message): void {
    // Log Matching covers what leaders send, not only what members persist.
    if (m.type === 'app') this.host.checker.chainOf(`${m.from}→${m.to} append`, m.logIndex, m.logTerm, m.entries);
    this.host.net.send(m);
  }

  private observe(raft: Raft): void {
    const st = raft.status();
    this.host.checker.observe({ id: this.id, term: st.term, commit: st.commit, applied: Math.max(st.applied, this.sm.index), role: st.role }, logView(raft));
    if (st.role === 'leader' && st.commit > this.leaderCommit) this.host.crashPoint(this, 'commit');
    this.leaderCommit = st.role === 'leader' ? st.commit : Infinity;
  }

  private persist(rd: Ready): void {
    const s = this.storage;
    if (rd.snapshot !== null) s.applySnapshot(rd.snapshot);
    if (rd.entries.length > 0) {
      const first = rd.entries[0]!.index;
      this.host.checker.chainOf(`${this.id}'s disk`, first - 1, s.term(first - 1), rd.entries);
      s.append(rd.entries);
    }
    if (rd.hardState !== null) {
      const prev = s.hardState();
      const hs: HardState = this.host.forgetVote ? { ...rd.hardState, vote: NONE } : rd.hardState;
      this.host.checker.hardState(this.id, prev, hs);
      s.setHardState(hs);
    }
    let granted = false;
    for (const m of rd.messagesAfterPersist) {
      if (m.type === 'voteResp' && !m.preVote && !m.reject) {
        this.host.checker.voteGranted(m.from, m.term, m.to);
        granted = true;
      }
      this.send(m);
    }
    if (granted) this.host.crashPoint(this, 'vote');
    else if (rd.entries.length > 0) this.host.crashPoint(this, 'append');
    if (this.raft === null) return;
    if (this.params.applyDelayMax > 0 && (rd.committedEntries.length > 0 || rd.snapshot !== null)) {
      const inc = this.incarnation;
      this.host.queue.after(this.prng.int(0, this.params.applyDelayMax), () => {
        if (this.incarnation !== inc) return;
        this.apply(rd);
        this.pump();
      });
      return;
    }
    this.apply(rd);
  }

  private apply(rd: Ready): void {
    const raft = this.raft!;
    const now = this.host.queue.now;
    if (rd.snapshot !== null) {
      const sm = StateMachine.decode(rd.snapshot.data);
      this.host.checker.restored(this.id, rd.snapshot, sm);
      this.sm = sm;
      this.lastSnapshotAt = rd.snapshot.metadata.index;
      this.appliedSinceCheck = true;
      this.host.trace.add(now, `${this.id} installs snapshot ${rd.snapshot.metadata.index}/${rd.snapshot.metadata.term}`);
    }
    for (const e of rd.committedEntries) {
      if (e.index !== this.sm.index + 1) {
        this.host.fail('State Machine Safety', `${this.id} applies ${e.index} after ${this.sm.index}`);
      }
      this.sm.apply(e);
      this.host.checker.applied1(this.id, e, this.sm.digest);
      if (e.kind === EntryKind.ConfChange) {
        this.appliedSinceCheck = true;
        this.host.trace.add(now, `${this.id} applies ${describeEntry(e)}`);
      }
    }
    this.learnReadIndexes(rd.readStates);
    raft.advance(rd);
    this.stage = null;
    this.serveReads();
    this.host.applied(this);
    this.maybeSnapshot(raft);
  }

  /**
   * As the server's Raft driver does while a Ready is being persisted or applied: what needs no
   * durable state leaves at once (appends of new proposals, heartbeats, ReadIndex rounds), and
   * confirmed read indexes are learned.
   */
  private passOnWhileBusy(raft: Raft): void {
    const { messages, readStates } = raft.takeUnpersistedOutput();
    for (const m of messages) this.send(m);
    this.learnReadIndexes(readStates);
    this.serveReads();
  }

  private learnReadIndexes(readStates: readonly ReadState[]): void {
    for (const rs of readStates) {
      const ctx = text.decode(rs.context);
      const read = this.reads.get(ctx);
      if (read === undefined || read.index >= 0) continue; // abandoned, or a duplicate answer
      this.host.checker.readIndexAnswered(this.id, ctx, read.req, rs.index);
      read.index = rs.index;
      this.host.trace.add(this.host.queue.now, `${this.id} read ${ctx} gets index ${rs.index}`);
    }
  }

  private serveReads(): void {
    for (const [ctx, read] of this.reads) {
      if (read.index < 0 || this.sm.index < read.index) continue;
      this.reads.delete(ctx);
      this.host.checker.readServed(this.id, ctx, read.req, this.sm);
      this.host.trace.add(this.host.queue.now, `${this.id} serves read ${ctx} at ${this.sm.index}`);
      this.host.readDone(read.client, ctx);
    }
  }

  /** Accepts a client read; the result is reported through host.readDone. */
  read(client: number, ctx: string): boolean {
    if (this.raft === null) return false;
    // Registered first: a leader with a lease (or alone) answers within this very call.
    this.reads.set(ctx, { ctx, client, req: this.host.checker.readRequirement(), index: -1 });
    const out = this.input((r) => r.readIndex(utf8.encode(ctx)));
    if (out === undefined || !out.ok) {
      this.reads.delete(ctx);
      return false;
    }
    return true;
  }

  private maybeSnapshot(raft: Raft): void {
    const every = this.params.snapshotEvery;
    if (every <= 0 || this.sm.index - this.lastSnapshotAt < every) return;
    const index = this.sm.index;
    this.storage.createSnapshot(index, raft.status().confState, this.sm.encode());
    this.lastSnapshotAt = index;
    const compactTo = index - this.params.compactKeep;
    if (compactTo > this.storage.firstIndex()) this.storage.compact(compactTo);
    this.host.trace.add(this.host.queue.now, `${this.id} snapshots at ${index}, log from ${this.storage.firstIndex()}`);
  }
}
