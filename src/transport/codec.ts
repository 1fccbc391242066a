/**
 * Binary encoding of Raft messages between members.
 *
 * A message is: u8 type · from · to · term, then the type's own fields, where numbers are
 * unsigned LEB128 varints (terms and indexes stay below 2^53), strings and byte fields are a
 * varint length then the bytes (strings UTF-8), booleans one byte, lists a varint count then
 * the items. An entry is term · index · u8 kind · data. A snapshot is index · term ·
 * confState (five id lists and a boolean) · data. The encoding is ours and only ever spoken
 * between Conclave members of the same version.
 */
import type { ConfState, Entry, EntryKind, Message, NodeId, Snapshot } from '../raft/types.ts';
import { CodecError, Reader, Writer } from '../util/binary.ts';

export { CodecError, Reader, Writer };

const TYPES = [
  'app',
  'appResp',
  'vote',
  'voteResp',
  'heartbeat',
  'heartbeatResp',
  'snap',
  'prop',
  'readIndex',
  'readIndexResp',
  'timeoutNow',
  'transferLeader',
] as const satisfies readonly Message['type'][];

function writeEntries(w: Writer, entries: readonly Entry[]): void {
  w.uint(entries.length);
  for (const e of entries) {
    w.uint(e.term);
    w.uint(e.index);
    w.u8(e.kind);
    w.bytes(e.data);
  }
}

function readEntries(r: Reader): Entry[] {
  const n = r.uint();
  const out: Entry[] = [];
  for (let i = 0; i < n; i++) {
    const term = r.uint();
    const index = r.uint();
    const kind = r.u8();
    if (kind !== 0 && kind !== 1) throw new CodecError(`unknown entry kind ${kind}`);
    out.push({ term, index, kind: kind as EntryKind, data: r.bytes() });
  }
  return out;
}

export function writeConfState(w: Writer, cs: ConfState): void {
  w.strings(cs.voters);
  w.strings(cs.votersOutgoing);
  w.strings(cs.learners);
  w.strings(cs.learnersNext);
  w.bool(cs.autoLeave);
}

export function readConfState(r: Reader): ConfState {
  return { voters: r.strings(), votersOutgoing: r.strings(), learners: r.strings(), learnersNext: r.strings(), autoLeave: r.bool() };
}

function writeSnapshot(w: Writer, s: Snapshot): void {
  w.uint(s.metadata.index);
  w.uint(s.metadata.term);
  writeConfState(w, s.metadata.confState);
  w.bytes(s.data);
}

function readSnapshot(r: Reader): Snapshot {
  const index = r.uint();
  const term = r.uint();
  const confState = readConfState(r);
  return { metadata: { index, term, confState }, data: r.bytes() };
}

export function encodeMessage(m: Message): Uint8Array {
  const w = new Writer(64 + (m.type === 'app' || m.type === 'prop' ? m.entries.reduce((n, e) => n + e.data.byteLength + 16, 0) : 0));
  writeMessage(w, m);
  return w.finish();
}

/** Appends the encoding of `m` to `w` (encodeMessage without a writer of its own). */
export function writeMessage(w: Writer, m: Message): void {
  w.u8(TYPES.indexOf(m.type));
  w.string(m.from);
  w.string(m.to);
  w.uint(m.term);
  switch (m.type) {
    case 'app':
      w.uint(m.logTerm);
      w.uint(m.logIndex);
      w.uint(m.commit);
      writeEntries(w, m.entries);
      break;
    case 'appResp':
      w.uint(m.index);
      w.bool(m.reject);
      w.uint(m.hintIndex);
      w.uint(m.hintTerm);
      break;
    case 'vote':
      w.bool(m.preVote);
      w.uint(m.lastIndex);
      w.uint(m.lastTerm);
      w.bool(m.transfer);
      break;
    case 'voteResp':
      w.bool(m.preVote);
      w.bool(m.reject);
      break;
    case 'heartbeat':
      w.uint(m.commit);
      w.bytes(m.context);
      break;
    case 'heartbeatResp':
    case 'readIndex':
      w.bytes(m.context);
      break;
    case 'snap':
      writeSnapshot(w, m.snapshot);
      break;
    case 'prop':
      writeEntries(w, m.entries);
      break;
    case 'readIndexResp':
      w.uint(m.index);
      w.bytes(m.context);
      break;
    case 'timeoutNow':
      break;
    case 'transferLeader':
      w.string(m.target);
      break;
  }
}

/**
 * Decodes one message. Its byte fields (entry data, contexts) are views into one copy of `buf`
 * made here, not one copy each: `buf` itself may be a view into a socket read.
 */
export function decodeMessage(buf: Uint8Array): Message {
  const r = new Reader(new Uint8Array(buf), true);
  const type = TYPES[r.u8()];
  if (type === undefined) throw new CodecError('unknown message type');
  const from: NodeId = r.string();
  const to: NodeId = r.string();
  const term = r.uint();
  const base = { from, to, term };
  let m: Message;
  switch (type) {
    case 'app': {
      const logTerm = r.uint();
      const logIndex = r.uint();
      const commit = r.uint();
      m = { type, ...base, logTerm, logIndex, commit, entries: readEntries(r) };
      break;
    }
    case 'appResp':
      m = { type, ...base, index: r.uint(), reject: r.bool(), hintIndex: r.uint(), hintTerm: r.uint() };
      break;
    case 'vote':
      m = { type, ...base, preVote: r.bool(), lastIndex: r.uint(), lastTerm: r.uint(), transfer: r.bool() };
      break;
    case 'voteResp':
      m = { type, ...base, preVote: r.bool(), reject: r.bool() };
      break;
    case 'heartbeat':
      m = { type, ...base, commit: r.uint(), context: r.bytes() };
      break;
    case 'heartbeatResp':
    case 'readIndex':
      m = { type, ...base, context: r.bytes() };
      break;
    case 'snap':
      m = { type, ...base, snapshot: readSnapshot(r) };
      break;
    case 'prop':
      m = { type, ...base, entries: readEntries(r) };
      break;
    case 'readIndexResp':
      m = { type, ...base, index: r.uint(), context: r.bytes() };
      break;
    case 'timeoutNow':
      m = { type, ...base };
      break;
    case 'transferLeader':
      m = { type, ...base, target: r.string() };
      break;
  }
  r.done();
  return m;
}
