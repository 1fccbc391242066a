/**
 * The consistency checks of etcd's corruption checker, comparing members' HashKV (the key
 * space's hash at a revision, src/mvcc/hash.ts) over the peer transport:
 *
 * - periodic (--experimental-corrupt-check-time): on the leader, hash at the current revision,
 *   ask every other member for its hash at that revision, read linearizably, hash again, then
 *   raise the CORRUPT alarm through the log for
 *     · itself, if its own hash changed while its revision and compaction did not;
 *     · a member that is ahead of it (revision or compaction revision), which a follower of a
 *       correct log never is;
 *     · a member at the same compaction revision whose hash differs.
 *   A member that cannot answer (down, behind the revision, compacted past it) is skipped.
 * - initial (--experimental-initial-corrupt-check): before a member serves clients, its hash at
 *   its revision against the others'; a difference at the same compaction revision stops it.
 */
import type { HashKVResult } from '../mvcc/index.ts';
import type { PeerHashKV } from './peer-requests.ts';

export interface CorruptionCheckHost {
  readonly memberId: string;
  /** Whether this member leads now. */
  isLeader(): boolean;
  /** This member's HashKV at a revision (0 = current). */
  hashKV(revision: number): Promise<HashKVResult>;
  /** The other members to ask. */
  peers(): readonly string[];
  /** A peer's HashKV at a revision; rejects if it cannot answer. */
  peerHashKV(peer: string, revision: number): Promise<PeerHashKV>;
  /** Waits until this member has applied everything committed before the call. */
  linearizableBarrier(): Promise<void>;
  /** Raises CORRUPT for a member through the log. */
  raiseCorrupt(memberId: string): Promise<void>;
  readonly log: { info(msg: string): void; warn(msg: string): void };
}

/** What a peer answered, or why it did not. */
type PeerAnswer = { readonly peer: string; readonly hash: PeerHashKV } | { readonly peer: string; readonly error: string };

async function askPeers(host: CorruptionCheckHost, revision: number): Promise<PeerAnswer[]> {
  return Promise.all(
    host.peers().map((peer) =>
      host.peerHashKV(peer, revision).then(
        (hash): PeerAnswer => ({ peer, hash }),
        (e: unknown): PeerAnswer => ({ peer, error: e instanceof Error ? e.message : String(e) }),
      ),
    ),
  );
}

const describe = (h: HashKVResult): string => `hash ${h.hash} at revision ${h.hashRevision} (compacted at ${h.compactRevision}, current ${h.revision})`;

/**
 * One periodic check (leader only). Returns the member it raised CORRUPT for, if any: at most
 * one per check (the first mismatch found), as etcd.
 */
export async function checkHashKV(host: CorruptionCheckHost): Promise<string[]> {
  if (!host.isLeader()) return [];
  const first = await host.hashKV(0);
  const answers = await askPeers(host, first.revision);
  await host.linearizableBarrier();
  const second = await host.hashKV(0);
  const corrupt: string[] = [];
  const mismatch = (memberId: string, why: string): void => {
    host.log.warn(`consistency check: member ${memberId} ${why}`);
    if (corrupt.length === 0) corrupt.push(memberId);
  };
  if (second.hash !== first.hash && second.revision === first.revision && second.compactRevision === first.compactRevision) {
    mismatch(host.memberId, `(the leader) hashed its own data differently at the same revision: ${describe(first)}, then ${describe(second)}`);
  }
  for (const a of answers) {
    if ('error' in a) {
      host.log.info(`consistency check: member ${a.peer} gave no hash at revision ${first.revision}: ${a.error}`);
      continue;
    }
    const p = a.hash;
    if (p.revision > second.revision) mismatch(p.memberId, `is at revision ${p.revision}, ahead of the leader's ${second.revision}`);
    if (p.compactRevision > second.compactRevision) mismatch(p.memberId, `compacted at ${p.compactRevision}, ahead of the leader's ${second.compactRevision}`);
    if (p.compactRevision === first.compactRevision && p.hash !== first.hash) mismatch(p.memberId, `has ${describe(p)}; the leader has ${describe(first)}`);
  }
  for (const id of corrupt) await host.raiseCorrupt(id);
  return corrupt;
}

/** The check before serving: the members whose data differs from this member's, at the same compaction. */
export async function checkInitialHashKV(host: CorruptionCheckHost): Promise<string[]> {
  const mine = await host.hashKV(0);
  const differing: string[] = [];
  for (const a of await askPeers(host, mine.revision)) {
    if ('error' in a) {
      host.log.warn(`initial consistency check: member ${a.peer} gave no hash at revision ${mine.revision}: ${a.error}`);
      continue;
    }
    if (a.hash.hash === mine.hash) continue;
    if (a.hash.compactRevision === mine.compactRevision) {
      host.log.warn(`initial consistency check: member ${a.peer} has ${describe(a.hash)}; this member has ${describe(mine)}`);
      differing.push(a.peer);
    } else {
      host.log.warn(`initial consistency check: member ${a.peer} is compacted at ${a.hash.compactRevision}, this member at ${mine.compactRevision}: hashes not comparable`);
    }
  }
  return differing;
}

/** Runs checkHashKV every intervalMs while started; one check at a time. */
export class CorruptionChecker {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;

  constructor(
    private readonly host: CorruptionCheckHost,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    if (this.timer !== null) return;
    this.host.log.info(`consistency check every ${this.intervalMs} ms while leader`);
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
  }

  /** No more checks; one in progress fails as the member stops under it (and is logged). */
  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private tick(): void {
    if (this.running !== null || !this.host.isLeader()) return;
    this.running = checkHashKV(this.host)
      .catch((e: unknown) => this.host.log.warn(`consistency check failed: ${e instanceof Error ? e.message : String(e)}`))
      .finally(() => {
        this.running = null;
      });
  }
}
