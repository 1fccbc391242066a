/**
 * The WAL's on-disk format. This comment is the specification; the code below is its only
 * encoder and decoder.
 *
 * Why a log at all: a member may answer a vote, acknowledge an append or reply to a client only
 * once what it promised is on stable storage, and it must come back after a crash with exactly
 * that. Appending records to a file and syncing once per batch is the cheapest way to get there;
 * everything else (the Raft log in memory, the MVCC store) is rebuilt from it.
 *
 * Files. A WAL is a directory of segments named `%016x-%016x.wal`: sequence number, then the index
 * the next entry was expected to have when the segment began (informational; replay does not
 * trust it). Sequence numbers of the segments present are consecutive; old segments are deleted
 * from the front (`releaseTo`), never from the middle. A segment is first built under a temporary
 * name (`*.tmp`), preallocated with zeros, given its first record, synced, and only then renamed
 * and the directory synced: so every segment that has its name also has an intact first record,
 * and a `*.tmp` found at open is debris to delete. Preallocating with real zeros rather than a
 * sparse `ftruncate` means an append never allocates blocks or grows the file, and fdatasync then
 * has no metadata to commit: measured here, that is nearly twice the syncs per second.
 *
 * Records. Each is a 9-byte header and a payload; integers are little-endian:
 *
 *     type u8 | length u32 (payload bytes) | crc u32 | payload
 *
 * `crc` is CRC-32 (IEEE) over the header's type and length bytes and then the payload, seeded with
 * the previous record's crc: the checksums form one chain through the whole log, across segments.
 * A chain, not per-record checksums, because it also catches records that are individually intact
 * but out of place: a stale block, a segment from another run. Type 0 is never written, so the
 * zeros of preallocated space can never be read as a record.
 *
 *   1 metadata  the first record of every segment, and the only one a segment needs to be read
 *               on its own after older segments are released:
 *               version u8 | flags u8 | prevCrc u32 | seq u64 | memberId str | clusterId str
 *               [hardState payload if flags&1] [snapshot payload if flags&2]
 *               `prevCrc` is the chain value this record continues from (0 in the very first
 *               segment); it lets the first remaining segment be verified without its deleted
 *               predecessor, and the reader checks it equals the previous segment's last crc.
 *               The hard state and newest snapshot marker at the moment the segment began are
 *               copied in, because they may never be written again, and the segments holding
 *               their originals may be released.
 *   2 entry     term u64 | index u64 | kind u8 | data (the rest of the payload)
 *               One record per entry: a torn batch loses whole entries, never half of one.
 *   3 hardState term u64 | commit u64 | vote str
 *   4 snapshot  index u64 | term u64 | flags u8 | autoLeave u8 | voters list | votersOutgoing list
 *               | learners list | learnersNext list
 *               A marker that the state machine was snapshotted at (index, term) with this
 *               membership; the snapshot's data lives in a snapshot file (snapshotter.ts).
 *               Replay drops entries at or below `index`. If flags&1 ("restart") it drops every
 *               entry: the writer sets it when the snapshot does not match the log it had (a
 *               follower installing a leader's snapshot), deciding once, at write time, what
 *               the snapshot replaces, so replay from any retained segment reaches the same log.
 *   5 seal      crc u32: the chain value before this record. The last record of every segment
 *               but the newest; the file ends right after it. A segment without it is incomplete.
 *
 *   str  = byteLength u16 | UTF-8 bytes;  list = count u16 | str * count
 *   u64  = low u32 | high u32, at most 2^53 - 1 (indexes and terms are JS numbers)
 *
 * Batches. `save` writes a batch's records (snapshot marker, then entries, then hard state, the
 * order a Raft Ready persists them) with one write and one fdatasync. An entry whose index is at
 * or below the last one replaces the log from that index on: a follower's diverged suffix.
 *
 * Recovery. Records are verified in order. Damage can come from a write the disk never finished,
 * which can only hit the end of the log, or from the disk losing data it once held. The first
 * bad record in the newest segment is taken as a torn tail, cut off and its bytes zeroed, when
 * (a) zeros stand where its header should be (preallocated space, or a write never reached the
 * disk), or (b) nothing after it continues the chain from it, or (c) a whole 512-byte sector of
 * zeros lies between it and the record that does continue the chain (a multi-sector write the
 * disk completed only in part). Anything else, and any bad record in an older segment, is
 * corruption: open fails with WalCorruptError naming the file and offset. A bad first record is
 * always corruption: it was synced before the segment got its name.
 * Zeros are read as "never written" on purpose; a disk that zeroes a sector of old data in the
 * newest segment therefore loses that tail silently, the same trade etcd makes.
 */
import { assert } from '../util/assert.ts';
import type { ConfState, Entry, EntryKind, HardState, NodeId, SnapshotMetadata } from '../raft/types.ts';
import { crc32 } from '../util/crc32.ts';

export const FORMAT_VERSION = 1;
export const HEADER_BYTES = 9;
export const SECTOR_BYTES = 512;

export const RecordType = {
  Metadata: 1,
  Entry: 2,
  HardState: 3,
  Snapshot: 4,
  Seal: 5,
} as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

export function isRecordType(t: number): t is RecordType {
  return t >= RecordType.Metadata && t <= RecordType.Seal;
}

/** Who wrote the WAL. Written into every segment; `open` checks it. */
export interface WalMetadata {
  readonly memberId: string;
  readonly clusterId: string;
}

/** A snapshot marker as stored: the snapshot's metadata plus the writer's restart decision. */
export interface SnapshotRecord {
  readonly metadata: SnapshotMetadata;
  /** Drop every entry, not only those at or below the index (see the format comment). */
  readonly restart: boolean;
}

export interface MetadataRecord extends WalMetadata {
  readonly version: number;
  readonly prevCrc: number;
  readonly seq: number;
  readonly hardState: HardState | null;
  readonly snapshot: SnapshotMetadata | null;
}

export const ENTRY_FIXED_BYTES = 8 + 8 + 1;

// ---------------------------------------------------------------------------------------------
// Framing

/** Frames a payload already written at `off + HEADER_BYTES`; returns the record's crc. */
export function writeFrame(buf: Buffer, off: number, type: RecordType, payloadBytes: number, prevCrc: number): number {
  buf[off] = type;
  buf.writeUInt32LE(payloadBytes, off + 1);
  const c = crc32(buf.subarray(off + HEADER_BYTES, off + HEADER_BYTES + payloadBytes), crc32(buf.subarray(off, off + 5), prevCrc));
  buf.writeUInt32LE(c, off + 5);
  return c;
}

/** The crc a record at `off` with `payloadBytes` would have, continuing from `prevCrc`. */
export function recordCrc(buf: Uint8Array, off: number, payloadBytes: number, prevCrc: number): number {
  return crc32(buf.subarray(off + HEADER_BYTES, off + HEADER_BYTES + payloadBytes), crc32(buf.subarray(off, off + 5), prevCrc));
}

// ---------------------------------------------------------------------------------------------
// Payload writing

function u64(buf: Buffer, off: number, v: number): number {
  assert(Number.isSafeInteger(v) && v >= 0, `wal format: ${v} is not a u64 the format can hold`);
  buf.writeUInt32LE(v >>> 0, off);
  buf.writeUInt32LE(Math.floor(v / 0x1_0000_0000), off + 4);
  return off + 8;
}

function strBytes(s: string): number {
  return 2 + Buffer.byteLength(s, 'utf8');
}

function str(buf: Buffer, off: number, s: string): number {
  const n = buf.write(s, off + 2, 'utf8');
  assert(n <= 0xffff, `wal format: string of ${n} bytes exceeds the u16 length field`);
  buf.writeUInt16LE(n, off);
  return off + 2 + n;
}

function listBytes(items: readonly string[]): number {
  let n = 2;
  for (const s of items) n += strBytes(s);
  return n;
}

function list(buf: Buffer, off: number, items: readonly string[]): number {
  assert(items.length <= 0xffff, `wal format: list of ${items.length} ids exceeds the u16 count`);
  buf.writeUInt16LE(items.length, off);
  let o = off + 2;
  for (const s of items) o = str(buf, o, s);
  return o;
}

export function entryPayloadBytes(e: Entry): number {
  return ENTRY_FIXED_BYTES + e.data.byteLength;
}

export function writeEntryPayload(buf: Buffer, off: number, e: Entry): number {
  let o = u64(buf, off, e.term);
  o = u64(buf, o, e.index);
  buf[o++] = e.kind;
  buf.set(e.data, o);
  return o + e.data.byteLength;
}

export function hardStatePayloadBytes(hs: HardState): number {
  return 16 + strBytes(hs.vote);
}

export function writeHardStatePayload(buf: Buffer, off: number, hs: HardState): number {
  let o = u64(buf, off, hs.term);
  o = u64(buf, o, hs.commit);
  return str(buf, o, hs.vote);
}

function confStateBytes(cs: ConfState): number {
  return 1 + listBytes(cs.voters) + listBytes(cs.votersOutgoing) + listBytes(cs.learners) + listBytes(cs.learnersNext);
}

function writeConfState(buf: Buffer, off: number, cs: ConfState): number {
  buf[off] = cs.autoLeave ? 1 : 0;
  let o = list(buf, off + 1, cs.voters);
  o = list(buf, o, cs.votersOutgoing);
  o = list(buf, o, cs.learners);
  return list(buf, o, cs.learnersNext);
}

export function snapshotPayloadBytes(s: SnapshotMetadata): number {
  return 16 + 1 + confStateBytes(s.confState);
}

export function writeSnapshotPayload(buf: Buffer, off: number, s: SnapshotRecord): number {
  let o = u64(buf, off, s.metadata.index);
  o = u64(buf, o, s.metadata.term);
  buf[o++] = s.restart ? 1 : 0;
  return writeConfState(buf, o, s.metadata.confState);
}

export function metadataPayloadBytes(m: MetadataRecord): number {
  return (
    1 + 1 + 4 + 8 + strBytes(m.memberId) + strBytes(m.clusterId) +
    (m.hardState ? hardStatePayloadBytes(m.hardState) : 0) +
    (m.snapshot ? snapshotPayloadBytes(m.snapshot) : 0)
  );
}

export function writeMetadataPayload(buf: Buffer, off: number, m: MetadataRecord): number {
  buf[off] = m.version;
  buf[off + 1] = (m.hardState ? 1 : 0) | (m.snapshot ? 2 : 0);
  buf.writeUInt32LE(m.prevCrc >>> 0, off + 2);
  let o = u64(buf, off + 6, m.seq);
  o = str(buf, o, m.memberId);
  o = str(buf, o, m.clusterId);
  if (m.hardState) o = writeHardStatePayload(buf, o, m.hardState);
  // A copied marker never restarts the log: the original already did, before this segment.
  if (m.snapshot) o = writeSnapshotPayload(buf, o, { metadata: m.snapshot, restart: false });
  return o;
}

export const SEAL_PAYLOAD_BYTES = 4;

// ---------------------------------------------------------------------------------------------
// Payload reading

/** A payload that passed its crc but does not decode: written by a bug, never by a torn write. */
export class DecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DecodeError';
  }
}

export class PayloadReader {
  private pos = 0;
  constructor(private readonly buf: Buffer) {}

  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new DecodeError(`payload ends at ${this.buf.length}, needed ${n} more bytes at ${this.pos}`);
  }
  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  u64(): number {
    this.need(8);
    const lo = this.buf.readUInt32LE(this.pos);
    const hi = this.buf.readUInt32LE(this.pos + 4);
    this.pos += 8;
    if (hi > 0x1f_ffff) throw new DecodeError(`u64 above 2^53 - 1`);
    return hi * 0x1_0000_0000 + lo;
  }
  str(): string {
    const n = this.u16();
    this.need(n);
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }
  list(): NodeId[] {
    const n = this.u16();
    const out: NodeId[] = [];
    for (let i = 0; i < n; i++) out.push(this.str());
    return out;
  }
  /** A copy of the rest of the payload (callers keep it; the segment buffer is not retained). */
  rest(): Uint8Array {
    const out = new Uint8Array(this.buf.length - this.pos);
    out.set(this.buf.subarray(this.pos));
    this.pos = this.buf.length;
    return out;
  }
  end(): void {
    if (this.pos !== this.buf.length) throw new DecodeError(`${this.buf.length - this.pos} unexpected bytes after the payload`);
  }
}

export function readEntry(r: PayloadReader): Entry {
  const term = r.u64();
  const index = r.u64();
  const kind = r.u8();
  if (kind !== 0 && kind !== 1) throw new DecodeError(`unknown entry kind ${kind}`);
  return { term, index, kind: kind as EntryKind, data: r.rest() };
}

export function readHardState(r: PayloadReader): HardState {
  const term = r.u64();
  const commit = r.u64();
  const vote = r.str();
  return { term, vote, commit };
}

export function readSnapshot(r: PayloadReader): SnapshotRecord {
  const index = r.u64();
  const term = r.u64();
  const flags = r.u8();
  if ((flags & ~1) !== 0) throw new DecodeError(`unknown snapshot flags ${flags}`);
  const autoLeave = r.u8();
  if (autoLeave > 1) throw new DecodeError(`autoLeave byte ${autoLeave}`);
  const voters = r.list();
  const votersOutgoing = r.list();
  const learners = r.list();
  const learnersNext = r.list();
  return {
    metadata: { index, term, confState: { voters, votersOutgoing, learners, learnersNext, autoLeave: autoLeave === 1 } },
    restart: (flags & 1) === 1,
  };
}

/** Reads version first so a newer format is reported as such, not as garbage. */
export function readMetadata(r: PayloadReader): MetadataRecord {
  const version = r.u8();
  if (version !== FORMAT_VERSION) return { version, prevCrc: 0, seq: 0, memberId: '', clusterId: '', hardState: null, snapshot: null };
  const flags = r.u8();
  if ((flags & ~3) !== 0) throw new DecodeError(`unknown metadata flags ${flags}`);
  const prevCrc = r.u32();
  const seq = r.u64();
  const memberId = r.str();
  const clusterId = r.str();
  const hardState = flags & 1 ? readHardState(r) : null;
  const snapshot = flags & 2 ? readSnapshot(r).metadata : null;
  r.end();
  return { version, prevCrc, seq, memberId, clusterId, hardState, snapshot };
}

// ---------------------------------------------------------------------------------------------
// Segment names

const SEGMENT_NAME = /^([0-9a-f]{16})-([0-9a-f]{16})\.wal$/;

export function segmentName(seq: number, firstIndex: number): string {
  return `${seq.toString(16).padStart(16, '0')}-${firstIndex.toString(16).padStart(16, '0')}.wal`;
}

export function parseSegmentName(name: string): { seq: number; firstIndex: number } | null {
  const m = SEGMENT_NAME.exec(name);
  if (m === null) return null;
  const seq = parseInt(m[1]!, 16);
  const firstIndex = parseInt(m[2]!, 16);
  if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(firstIndex)) return null;
  return { seq, firstIndex };
}

/** The name a segment is built under before it is complete. */
export const PREPARING_SEGMENT_NAME = 'segment.wal.tmp';
