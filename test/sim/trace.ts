/**
 * A compact record of what happened in a run: deliveries, drops, crashes, restarts,
 * partitions, proposals, reads, leader changes. Off by default (formatting costs time); a
 * failing seed is replayed with tracing on, which reproduces the identical run.
 */
import type { Entry, Message } from '../../src/raft/types.ts';
import { EntryKind } from '../../src/raft/types.ts';
import { decodeConfChange } from '../../src/raft/confchange.ts';

const text = new TextDecoder();

export class Trace {
  readonly lines: string[] = [];

  constructor(
    readonly on: boolean,
    /** Keep only the newest lines (0 = keep all). */
    private readonly keep = 0,
  ) {}

  add(time: number, line: string): void {
    if (!this.on) return;
    this.lines.push(`${String(time).padStart(6)} ${line}`);
    if (this.keep > 0 && this.lines.length > this.keep * 2) this.lines.splice(0, this.lines.length - this.keep);
  }

}

export function describeEntry(e: Entry): string {
  if (e.kind === EntryKind.ConfChange) {
    const cc = decodeConfChange(e.data);
    const ch = cc.changes.map((c) => `${c.type === 'addVoter' ? '+v' : c.type === 'addLearner' ? '+l' : '-'}${c.nodeId}`).join(',');
    return `${e.index}/${e.term}:cc[${cc.transition}${ch === '' ? ' leave' : ` ${ch}`}]`;
  }
  return `${e.index}/${e.term}:${e.data.byteLength === 0 ? '∅' : text.decode(e.data)}`;
}

function describeEntries(es: readonly Entry[]): string {
  if (es.length === 0) return '[]';
  if (es.length <= 3) return `[${es.map(describeEntry).join(' ')}]`;
  return `[${describeEntry(es[0]!)} …${es.length - 2}… ${describeEntry(es[es.length - 1]!)}]`;
}

export function describeMessage(m: Message): string {
  const head = `${m.from}→${m.to} ${m.type} t${m.term}`;
  switch (m.type) {
    case 'app':
      return `${head} prev=${m.logIndex}/${m.logTerm} c=${m.commit} ${describeEntries(m.entries)}`;
    case 'appResp':
      return `${head} i=${m.index}${m.reject ? ` REJECT hint=${m.hintIndex}/${m.hintTerm}` : ''}`;
    case 'vote':
      return `${head}${m.preVote ? ' pre' : ''} last=${m.lastIndex}/${m.lastTerm}${m.transfer ? ' transfer' : ''}`;
    case 'voteResp':
      return `${head}${m.preVote ? ' pre' : ''}${m.reject ? ' REJECT' : ' GRANT'}`;
    case 'heartbeat':
      return `${head} c=${m.commit}${m.context.byteLength > 0 ? ` ctx=${text.decode(m.context)}` : ''}`;
    case 'heartbeatResp':
      return `${head}${m.context.byteLength > 0 ? ` ctx=${text.decode(m.context)}` : ''}`;
    case 'snap':
      return `${head} snap=${m.snapshot.metadata.index}/${m.snapshot.metadata.term} voters=${m.snapshot.metadata.confState.voters.join(',')}`;
    case 'prop':
      return `${head} ${describeEntries(m.entries)}`;
    case 'readIndex':
      return `${head} ctx=${text.decode(m.context)}`;
    case 'readIndexResp':
      return `${head} i=${m.index} ctx=${text.decode(m.context)}`;
    case 'timeoutNow':
      return head;
    case 'transferLeader':
      return `${head} target=${m.target}`;
  }
}
