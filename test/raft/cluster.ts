/**
 * A tiny synchronous test cluster for scenario tests: members share no clock, messages are
 * delivered in FIFO order until the network is quiet, and any link can be cut.
 */
import { Raft, type RaftConfig } from '../../src/raft/raft.ts';
import { MemoryStorage, bootstrapStorage } from '../../src/raft/storage.ts';
import type { ConfState, Entry, Message, NodeId, ReadState } from '../../src/raft/types.ts';
import { EntryKind } from '../../src/raft/types.ts';

export function confState(voters: NodeId[], learners: NodeId[] = []): ConfState {
  return { voters, votersOutgoing: [], learners, learnersNext: [], autoLeave: false };
}

/** A deterministic PRNG (mulberry32) so election timeouts are reproducible. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Member {
  raft: Raft;
  storage: MemoryStorage;
  applied: Entry[];
  readStates: ReadState[];
}

export class TestCluster {
  readonly members = new Map<NodeId, Member>();
  private readonly queue: Message[] = [];
  private readonly cut = new Set<string>();
  /** Every message delivered, for assertions on traffic. */
  readonly delivered: Message[] = [];
  /** Messages for which this returns true are lost. */
  drop: (m: Message) => boolean = () => false;

  /** A new cluster of `ids`, bootstrapped as the server does it (membership at the log's head). */
  constructor(
    ids: NodeId[],
    private readonly overrides: Partial<RaftConfig> = {},
  ) {
    ids.forEach((id, i) => {
      const storage = new MemoryStorage();
      bootstrapStorage(storage, ids);
      this.start(id, storage, i + 1, 0);
    });
    this.settle();
  }

  /**
   * Adds a member. With `conf`, it starts with that membership as a snapshot at index 0 and
   * `log` lists the terms of the entries 1, 2, … it already holds (for the paper's figures);
   * with `conf` null it starts empty, as a member joining an existing cluster does.
   */
  add(id: NodeId, conf: ConfState | null, seed = 100, log: number[] = [], term = 0): Member {
    const storage = new MemoryStorage();
    if (conf !== null) {
      storage.applySnapshot({ metadata: { index: 0, term: 0, confState: conf }, data: new Uint8Array(0) });
    }
    storage.append(log.map((t, i) => ({ term: t, index: i + 1, kind: EntryKind.Normal, data: bytes(`${id}${i + 1}`) })));
    storage.setHardState({ term: Math.max(term, ...log, 0), vote: '', commit: 0 });
    return this.start(id, storage, seed);
  }

  /** (Re)starts a member from what its storage holds. */
  start(id: NodeId, storage: MemoryStorage, seed = 100, applied = storage.snapshot().metadata.index): Member {
    const raft = new Raft({ id, storage, electionTick: 10, heartbeatTick: 1, random: seeded(seed), applied, ...this.overrides });
    const member: Member = { raft, storage, applied: [], readStates: [] };
    this.members.set(id, member);
    return member;
  }

  get(id: NodeId): Member {
    const m = this.members.get(id);
    if (m === undefined) throw new Error(`no member ${id}`);
    return m;
  }

  isolate(id: NodeId): void {
    for (const other of this.members.keys()) if (other !== id) this.cutLink(id, other);
  }

  cutLink(a: NodeId, b: NodeId): void {
    this.cut.add(`${a}>${b}`);
    this.cut.add(`${b}>${a}`);
  }

  heal(): void {
    this.cut.clear();
  }

  /** Handles every member's Ready (persist, send, apply) until nothing is left to do. */
  settle(maxRounds = 10_000): void {
    for (let round = 0; round < maxRounds; round++) {
      let busy = false;
      for (const [, m] of this.members) {
        while (m.raft.hasReady()) {
          busy = true;
          const rd = m.raft.ready();
          if (rd.snapshot) m.storage.applySnapshot(rd.snapshot);
          m.storage.append(rd.entries);
          if (rd.hardState) m.storage.setHardState(rd.hardState);
          this.queue.push(...rd.messages, ...rd.messagesAfterPersist);
          for (const e of rd.committedEntries) m.applied.push(e);
          m.readStates.push(...rd.readStates);
          m.raft.advance(rd);
        }
      }
      const batch = this.queue.splice(0);
      for (const msg of batch) {
        if (this.cut.has(`${msg.from}>${msg.to}`) || this.drop(msg)) continue;
        const target = this.members.get(msg.to);
        if (target === undefined) continue;
        busy = true;
        this.delivered.push(msg);
        target.raft.step(msg);
        if (msg.type === 'snap') this.members.get(msg.from)?.raft.reportSnapshot(msg.to, true);
      }
      if (!busy) return;
    }
    throw new Error('cluster did not settle');
  }

  tick(id: NodeId, times = 1): void {
    for (let i = 0; i < times; i++) this.get(id).raft.tick();
    this.settle();
  }

  tickAll(times = 1): void {
    for (let i = 0; i < times; i++) {
      for (const m of this.members.values()) m.raft.tick();
      this.settle();
    }
  }

  elect(id: NodeId): void {
    this.get(id).raft.campaign();
    this.settle();
  }

  leader(): NodeId | undefined {
    const leaders = [...this.members.values()].filter((m) => m.raft.status().role === 'leader');
    return leaders.length === 0 ? undefined : leaders.sort((a, b) => b.raft.status().term - a.raft.status().term)[0]!.raft.id;
  }

  /** The data of applied normal, non-empty entries, as strings. */
  appliedData(id: NodeId): string[] {
    return this.get(id)
      .applied.filter((e) => e.kind === EntryKind.Normal && e.data.byteLength > 0)
      .map((e) => new TextDecoder().decode(e.data));
  }
}

export function bytes(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}
