/**
 * The replicated state machine every simulated member runs: for each client, the highest
 * operation sequence number applied (client writes are "c<client>-<seq>"; a retried write
 * applies once), plus a digest of every entry applied so far, so two members at the same index
 * can be compared in O(1) and a snapshot can be checked against the history that produced it.
 */
import type { Entry } from '../../src/raft/types.ts';
import { EntryKind } from '../../src/raft/types.ts';

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

export interface ClientOp {
  readonly client: number;
  readonly seq: number;
}

export function encodeOp(op: ClientOp): Uint8Array {
  return utf8.encode(`c${op.client}-${op.seq}`);
}

/** The client op carried by a normal entry, or null for no-ops and foreign data. */
export function decodeOp(data: Uint8Array): ClientOp | null {
  if (data.byteLength < 4 || data[0] !== 0x63 /* c */) return null;
  const text = fromUtf8.decode(data);
  const dash = text.indexOf('-');
  if (dash < 0) return null;
  const client = Number(text.slice(1, dash));
  const seq = Number(text.slice(dash + 1));
  return Number.isInteger(client) && Number.isInteger(seq) ? { client, seq } : null;
}

/** Folds one applied entry into a running digest (FNV-1a over index, term, kind and data). */
export function foldDigest(digest: number, e: Entry): number {
  let h = digest ^ 0x811c9dc5;
  h = Math.imul(h ^ (e.index & 0xffff), 0x01000193);
  h = Math.imul(h ^ (e.index >>> 16), 0x01000193);
  h = Math.imul(h ^ e.term, 0x01000193);
  h = Math.imul(h ^ e.kind, 0x01000193);
  for (let i = 0; i < e.data.byteLength; i++) h = Math.imul(h ^ e.data[i]!, 0x01000193);
  return h >>> 0;
}

export class StateMachine {
  index = 0;
  digest = 0;
  /** client → highest op seq applied. */
  readonly lastSeq = new Map<number, number>();

  apply(e: Entry): void {
    this.index = e.index;
    this.digest = foldDigest(this.digest, e);
    if (e.kind !== EntryKind.Normal) return;
    const op = decodeOp(e.data);
    if (op === null) return;
    if (op.seq > (this.lastSeq.get(op.client) ?? 0)) this.lastSeq.set(op.client, op.seq);
  }

  seqOf(client: number): number {
    return this.lastSeq.get(client) ?? 0;
  }

  encode(): Uint8Array {
    const seqs = [...this.lastSeq.entries()].sort((a, b) => a[0] - b[0]);
    return utf8.encode(JSON.stringify({ index: this.index, digest: this.digest, seqs }));
  }

  static decode(data: Uint8Array): StateMachine {
    const sm = new StateMachine();
    if (data.byteLength === 0) return sm; // the empty state (index 0)
    const parsed: unknown = JSON.parse(fromUtf8.decode(data));
    if (typeof parsed !== 'object' || parsed === null) throw new Error('sim: bad state machine snapshot');
    const o = parsed as { index?: unknown; digest?: unknown; seqs?: unknown };
    if (typeof o.index !== 'number' || typeof o.digest !== 'number' || !Array.isArray(o.seqs)) {
      throw new Error('sim: bad state machine snapshot');
    }
    sm.index = o.index;
    sm.digest = o.digest;
    for (const pair of o.seqs as unknown[]) {
      if (!Array.isArray(pair) || typeof pair[0] !== 'number' || typeof pair[1] !== 'number') {
        throw new Error('sim: bad state machine snapshot entry');
      }
      sm.lastSeq.set(pair[0], pair[1]);
    }
    return sm;
  }
}
