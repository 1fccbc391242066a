/**
 * Raft core throughput: three in-process members, an in-memory network delivered
 * synchronously, MemoryStorage as the disk. The leader is fed batches of 256-byte proposals;
 * we count entries applied on the leader per second and how many entries each Ready carried.
 *
 *   npm run bench -- raft [--seconds S] [--batch B] [--size N]
 */
import { Raft } from '../src/raft/raft.ts';
import { MemoryStorage, bootstrapStorage } from '../src/raft/storage.ts';
import { EntryKind, type Message, type NodeId } from '../src/raft/types.ts';

interface BenchMember {
  readonly raft: Raft;
  readonly storage: MemoryStorage;
  applied: number;
  lastSnapshot: number;
}

interface ReadyStats {
  readies: number;
  persisted: number;
  committed: number;
}

/** Take a snapshot and drop the log every this many applied entries (bounds memory). */
const COMPACT_EVERY = 65_536;

function option(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(args[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`bench raft: bad value for ${name}: ${args[i + 1]}`);
  return v;
}

export async function benchRaft(args: string[]): Promise<void> {
  const seconds = option(args, '--seconds', 3);
  const batch = option(args, '--batch', 512);
  const size = option(args, '--size', 256);
  const ids: NodeId[] = ['a', 'b', 'c'];
  let seed = 1;
  const members = new Map<NodeId, BenchMember>();
  for (const id of ids) {
    const storage = new MemoryStorage();
    bootstrapStorage(storage, ids);
    let x = seed++;
    const random = (): number => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      return x / 4294967296;
    };
    members.set(id, { raft: new Raft({ id, storage, electionTick: 10, heartbeatTick: 1, random }), storage, applied: 0, lastSnapshot: 0 });
  }
  const leader = members.get('a')!;
  const queue: Message[] = [];
  const leaderStats: ReadyStats = { readies: 0, persisted: 0, committed: 0 };
  let appliedOnLeader = 0;

  /** Handles every Ready (persist, send, apply, advance), then delivers the messages. */
  const drive = (): boolean => {
    let busy = false;
    for (const m of members.values()) {
      while (m.raft.hasReady()) {
        busy = true;
        const rd = m.raft.ready();
        queue.push(...rd.messages);
        if (rd.snapshot !== null) m.storage.applySnapshot(rd.snapshot);
        m.storage.append(rd.entries);
        if (rd.hardState !== null) m.storage.setHardState(rd.hardState);
        queue.push(...rd.messagesAfterPersist);
        if (rd.snapshot !== null) m.applied = rd.snapshot.metadata.index;
        for (const e of rd.committedEntries) {
          m.applied = e.index;
          if (m === leader && e.kind === EntryKind.Normal && e.data.byteLength > 0) appliedOnLeader++;
        }
        if (m === leader) {
          leaderStats.readies++;
          leaderStats.persisted += rd.entries.length;
          leaderStats.committed += rd.committedEntries.length;
        }
        m.raft.advance(rd);
        if (m.applied - m.lastSnapshot >= COMPACT_EVERY) {
          m.storage.createSnapshot(m.applied, m.raft.status().confState, new Uint8Array(0));
          m.storage.compact(m.applied);
          m.lastSnapshot = m.applied;
        }
      }
    }
    const msgs = queue.splice(0);
    for (const msg of msgs) {
      busy = true;
      members.get(msg.to)!.raft.step(msg);
    }
    return busy;
  };

  while (drive()) {
    // apply the bootstrap membership
  }
  leader.raft.campaign();
  while (drive()) {
    // elect
  }
  if (leader.raft.status().role !== 'leader') throw new Error('bench raft: a did not become leader');

  const payloads: Uint8Array[] = [];
  for (let i = 0; i < 64; i++) payloads.push(new Uint8Array(size).fill(i));
  const proposal: Uint8Array[] = [];
  for (let i = 0; i < batch; i++) proposal.push(payloads[i % payloads.length]!);

  // Warm up, then measure.
  const run = (ms: number): { entries: number; ms: number; stats: ReadyStats } => {
    const startApplied = appliedOnLeader;
    const startStats = { ...leaderStats };
    const start = performance.now();
    let proposed = 0;
    let rounds = 0;
    while (performance.now() - start < ms) {
      // Keep a bounded number of batches in flight, as the server's proposal queue does.
      if (proposed - (appliedOnLeader - startApplied) < 8 * batch) {
        const out = leader.raft.propose(proposal);
        if (!out.ok) throw new Error(`bench raft: proposal refused: ${out.reason}`);
        proposed += batch;
      }
      drive();
      if (++rounds % 64 === 0) for (const m of members.values()) m.raft.tick();
    }
    while (drive()) {
      // drain
    }
    const elapsed = performance.now() - start;
    return {
      entries: appliedOnLeader - startApplied,
      ms: elapsed,
      stats: {
        readies: leaderStats.readies - startStats.readies,
        persisted: leaderStats.persisted - startStats.persisted,
        committed: leaderStats.committed - startStats.committed,
      },
    };
  };
  run(500);
  const r = run(seconds * 1000);
  const perSecond = Math.round((r.entries / r.ms) * 1000);
  console.log(`raft: 3 members in-process, ${size}-byte entries, batches of ${batch}`);
  console.log(`raft: ${perSecond.toLocaleString('en-US')} entries/s committed and applied on the leader (${r.entries} in ${(r.ms / 1000).toFixed(2)} s)`);
  console.log(
    `raft: leader Ready batches: ${r.stats.readies}, avg ${(r.stats.persisted / Math.max(1, r.stats.readies)).toFixed(1)} entries to persist and ${(r.stats.committed / Math.max(1, r.stats.readies)).toFixed(1)} committed entries per Ready`,
  );
  console.log(`raft: ${(((perSecond * size) / 1024 / 1024) | 0).toLocaleString('en-US')} MiB/s of payload`);
}

export default benchRaft;
