/**
 * Reads one segment's bytes back into verified records, and decides what a bad record means
 * (torn tail or corruption) by the rules in format.ts.
 */
import { WalCorruptError } from './errors.ts';
import { HEADER_BYTES, RecordType, SECTOR_BYTES, SEAL_PAYLOAD_BYTES, isRecordType, recordCrc } from './format.ts';

export interface RawRecord {
  readonly type: RecordType;
  readonly offset: number;
  readonly payload: Buffer;
  readonly crc: number;
}

export interface SegmentScan {
  /** Offset just past the last verified record. */
  readonly end: number;
  /** The chain value after the last verified record. */
  readonly crc: number;
  /** The segment ends with a seal record. */
  readonly sealed: boolean;
  /** Set when the newest segment ended in a torn record: where it starts and why it was judged torn. */
  readonly torn: { readonly offset: number; readonly reason: string } | null;
}

export interface ScanOptions {
  /** Only the newest segment may end in a torn record; in any other segment damage is corruption. */
  readonly isLast: boolean;
  /**
   * The chain value the first record must continue from (the previous segment's last crc), or
   * null for the oldest segment present, whose predecessor may be released: its metadata's own
   * prevCrc is used, so the segment still verifies on its own.
   */
  readonly seed: number | null;
}

/** Offset of prevCrc in a metadata payload (after version and flags). Fixed across versions. */
const METADATA_PREV_CRC_AT = 2;

function allZero(buf: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (buf[i] !== 0) return false;
  return true;
}

/**
 * Verifies every record of `buf` in order, calling `onRecord` for each. Throws WalCorruptError
 * for damage that a torn write cannot explain; returns where the valid records end.
 */
export function scanSegment(buf: Buffer, file: string, options: ScanOptions, onRecord: (r: RawRecord) => void): SegmentScan {
  const corrupt = (offset: number, reason: string): WalCorruptError => new WalCorruptError(file, offset, reason);

  // The first record was synced before the file got its name: it must be intact.
  if (buf.length < HEADER_BYTES) throw corrupt(0, `file of ${buf.length} bytes has no metadata record`);
  const firstType = buf[0]!;
  const firstLen = buf.readUInt32LE(1);
  if (firstType !== RecordType.Metadata) throw corrupt(0, `first record has type ${firstType}, expected metadata`);
  if (firstLen > buf.length - HEADER_BYTES || firstLen < METADATA_PREV_CRC_AT + 4) {
    throw corrupt(0, `metadata record length ${firstLen} does not fit the file (${buf.length} bytes)`);
  }
  let prev = options.seed ?? buf.readUInt32LE(HEADER_BYTES + METADATA_PREV_CRC_AT);

  let off = 0;
  while (off < buf.length) {
    const left = buf.length - off;
    const type = buf[off]!;
    const len = left >= HEADER_BYTES ? buf.readUInt32LE(off + 1) : 0;
    const stored = left >= HEADER_BYTES ? buf.readUInt32LE(off + 5) : 0;
    let defect: string | null = null;
    if (left < HEADER_BYTES) defect = `incomplete header (${left} bytes before end of file)`;
    else if (type === 0 && len === 0 && stored === 0) defect = 'zeros where a record header should be';
    else if (!isRecordType(type)) defect = `unknown record type ${type}`;
    else if (len > left - HEADER_BYTES) defect = `record length ${len} runs past end of file (${left - HEADER_BYTES} bytes left)`;
    else if (recordCrc(buf, off, len, prev) !== stored) defect = 'crc mismatch';
    else if ((type === RecordType.Metadata) !== (off === 0)) defect = `record type ${type} out of place`;

    if (defect !== null) {
      if (off === 0) throw corrupt(0, `metadata record: ${defect}`);
      if (defect.endsWith('out of place')) throw corrupt(off, defect);
      if (!options.isLast) throw corrupt(off, `${defect} in a segment that is not the newest (sealed segments are complete)`);
      const verdict = judgeDefect(buf, off, prev, defect);
      if (verdict.torn) return { end: off, crc: prev, sealed: false, torn: { offset: off, reason: verdict.reason } };
      throw corrupt(off, verdict.reason);
    }

    const payload = buf.subarray(off + HEADER_BYTES, off + HEADER_BYTES + len);
    if (type === RecordType.Seal) {
      if (len !== SEAL_PAYLOAD_BYTES || payload.readUInt32LE(0) !== prev) throw corrupt(off, 'seal record does not carry the chain value before it');
      const end = off + HEADER_BYTES + len;
      // A crash between sealing and shrinking the file can leave preallocated zeros behind.
      if (!allZero(buf, end, buf.length)) throw corrupt(end, 'data after the seal record');
      return { end, crc: stored, sealed: true, torn: null };
    }
    onRecord({ type: type as RecordType, offset: off, payload, crc: stored });
    prev = stored;
    off += HEADER_BYTES + len;
  }
  if (!options.isLast) throw corrupt(off, 'segment ends without a seal record, but a newer segment exists');
  return { end: off, crc: prev, sealed: false, torn: null };
}

/** Rules (a)–(c) of the format comment, for a bad record at `at` in the newest segment. */
function judgeDefect(buf: Buffer, at: number, prev: number, defect: string): { torn: boolean; reason: string } {
  const left = buf.length - at;
  if (left < HEADER_BYTES || allZero(buf, at, at + HEADER_BYTES)) return { torn: true, reason: defect };
  const len = buf.readUInt32LE(at + 1);
  const stored = buf.readUInt32LE(at + 5);
  // If only the stored crc was damaged, the next record continues from the computed one.
  const computed = len <= left - HEADER_BYTES ? recordCrc(buf, at, len, prev) : stored;
  const next = continuationAfter(buf, at, stored, computed);
  if (next === null) return { torn: true, reason: `${defect}, and no record after it continues the chain` };
  // Only zeros between the bad record and its surviving successor count: a damaged length field
  // must not let the record "reach" into the preallocated zeros at the end of the file.
  if (spansZeroSector(buf, at, next)) {
    return { torn: true, reason: `${defect} in a record spanning a zeroed sector (a partly completed write)` };
  }
  return { torn: false, reason: `${defect}; the record at offset ${next} still continues the chain, so this is not a torn write` };
}

/** The offset of a later record that verifies as the successor of a record with crc `a` or `b`. */
function continuationAfter(buf: Buffer, at: number, a: number, b: number): number | null {
  const last = buf.length - HEADER_BYTES;
  for (let j = at + 1; j <= last; j++) {
    const t = buf[j]!;
    if (t === 0 || t > RecordType.Seal) continue;
    const len = buf.readUInt32LE(j + 1);
    if (len > last - j) continue;
    const stored = buf.readUInt32LE(j + 5);
    if (recordCrc(buf, j, len, a) === stored || (b !== a && recordCrc(buf, j, len, b) === stored)) return j;
  }
  return null;
}

function spansZeroSector(buf: Buffer, from: number, to: number): boolean {
  for (let s = Math.ceil(from / SECTOR_BYTES) * SECTOR_BYTES; s + SECTOR_BYTES <= to; s += SECTOR_BYTES) {
    if (allZero(buf, s, s + SECTOR_BYTES)) return true;
  }
  return false;
}

/** Offset just past the last non-zero byte at or after `from` (== from when all zero). */
export function lastNonZeroEnd(buf: Buffer, from: number): number {
  for (let i = buf.length - 1; i >= from; i--) if (buf[i] !== 0) return i + 1;
  return from;
}
