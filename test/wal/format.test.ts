import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { ConfState, Entry, HardState } from '../../src/raft/types.ts';
import {
  FORMAT_VERSION,
  HEADER_BYTES,
  PayloadReader,
  RecordType,
  entryPayloadBytes,
  hardStatePayloadBytes,
  metadataPayloadBytes,
  parseSegmentName,
  readEntry,
  readHardState,
  readMetadata,
  readSnapshot,
  recordCrc,
  segmentName,
  snapshotPayloadBytes,
  writeEntryPayload,
  writeFrame,
  writeHardStatePayload,
  writeMetadataPayload,
  writeSnapshotPayload,
  type MetadataRecord,
} from '../../src/wal/format.ts';

const u53 = fc.maxSafeNat();
const id = fc.string({ maxLength: 20, unit: 'grapheme' });
const confState: fc.Arbitrary<ConfState> = fc.record({
  voters: fc.array(id, { maxLength: 5 }),
  votersOutgoing: fc.array(id, { maxLength: 5 }),
  learners: fc.array(id, { maxLength: 5 }),
  learnersNext: fc.array(id, { maxLength: 5 }),
  autoLeave: fc.boolean(),
}).map((c) => ({ ...c }));
const hardState: fc.Arbitrary<HardState> = fc.record({ term: u53, vote: id, commit: u53 }).map((h) => ({ ...h }));

function roundTrip<T>(bytes: number, write: (b: Buffer, off: number) => number, read: (r: PayloadReader) => T): T {
  const buf = Buffer.alloc(bytes + 3);
  assert.equal(write(buf, 3), bytes + 3, 'payload size matches the size function');
  return read(new PayloadReader(buf.subarray(3)));
}

test('format: entry, hard state, snapshot and metadata payloads round-trip', () => {
  fc.assert(
    fc.property(u53, u53, fc.constantFrom(0 as const, 1 as const), fc.uint8Array({ maxLength: 64 }), (term, index, kind, data) => {
      const e: Entry = { term, index, kind, data };
      const back = roundTrip(entryPayloadBytes(e), (b, o) => writeEntryPayload(b, o, e), readEntry);
      assert.deepEqual({ ...back, data: Array.from(back.data) }, { ...e, data: Array.from(data) });
    }),
  );
  fc.assert(
    fc.property(hardState, (hs) => {
      assert.deepEqual(roundTrip(hardStatePayloadBytes(hs), (b, o) => writeHardStatePayload(b, o, hs), readHardState), hs);
    }),
  );
  fc.assert(
    fc.property(u53, u53, confState, fc.boolean(), (index, term, cs, restart) => {
      const rec = { metadata: { index, term, confState: cs }, restart };
      assert.deepEqual(roundTrip(snapshotPayloadBytes(rec.metadata), (b, o) => writeSnapshotPayload(b, o, rec), readSnapshot), rec);
    }),
  );
  fc.assert(
    fc.property(fc.nat({ max: 0xffffffff }), u53, id, id, fc.option(hardState), fc.option(fc.record({ index: u53, term: u53, confState }).map((m) => ({ ...m }))), (prevCrc, seq, memberId, clusterId, hs, snap) => {
      const m: MetadataRecord = { version: FORMAT_VERSION, prevCrc, seq, memberId, clusterId, hardState: hs, snapshot: snap };
      assert.deepEqual(roundTrip(metadataPayloadBytes(m), (b, o) => writeMetadataPayload(b, o, m), readMetadata), m);
    }),
  );
});

test('format: the frame crc covers type, length and payload, chained from the previous crc', () => {
  const buf = Buffer.alloc(HEADER_BYTES + 4);
  buf.writeUInt32LE(0xdeadbeef, HEADER_BYTES);
  const c = writeFrame(buf, 0, RecordType.Seal, 4, 7);
  assert.equal(buf.readUInt32LE(5), c);
  assert.equal(recordCrc(buf, 0, 4, 7), c);
  assert.notEqual(recordCrc(buf, 0, 4, 8), c, 'a different seed breaks the chain');
  buf[0] = RecordType.Entry;
  assert.notEqual(recordCrc(buf, 0, 4, 7), c, 'the type byte is covered');
});

test('format: u64 fields refuse values above 2^53 - 1 when read', () => {
  const buf = Buffer.alloc(8);
  buf.writeUInt32LE(0x0020_0000, 4);
  assert.throws(() => new PayloadReader(buf).u64(), /2\^53/);
});

test('format: segment names encode sequence and first index, sortable as text', () => {
  assert.equal(segmentName(0, 1), '0000000000000000-0000000000000001.wal');
  assert.equal(segmentName(26, 0xabc), '000000000000001a-0000000000000abc.wal');
  assert.deepEqual(parseSegmentName(segmentName(26, 0xabc)), { seq: 26, firstIndex: 0xabc });
  assert.equal(parseSegmentName('0000000000000000-0000000000000001.wal.tmp'), null);
  assert.equal(parseSegmentName('snap.wal'), null);
});
