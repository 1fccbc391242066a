/** The persisted lessor state: layout, canonical form, and refusal of damaged bytes. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { crc32 } from '../../src/util/crc32.ts';
import { decodeLessorState, encodeLessorState, type PersistedLease } from '../../src/lease/codec.ts';
import { LeaseStateCorruptError } from '../../src/lease/errors.ts';
import { Lessor } from '../../src/lease/lessor.ts';

const leasesArb: fc.Arbitrary<PersistedLease[]> = fc
  .uniqueArray(fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }).filter((id) => id !== 0n), { maxLength: 40 })
  .chain((ids) =>
    fc.tuple(
      ...ids
        .sort((a, b) => (a < b ? -1 : 1))
        .map((id) =>
          fc
            .integer({ min: 1, max: 9_000_000_000 })
            .chain((grantedTtl) => fc.integer({ min: 0, max: grantedTtl - 1 }).map((remainingTtl) => ({ id, grantedTtl, remainingTtl }))),
        ),
    ),
  );

function isCorrupt(e: unknown): boolean {
  return e instanceof LeaseStateCorruptError && e.code === 'LEASE_STATE_CORRUPT';
}

describe('lessor state codec', () => {
  it('has the documented layout', () => {
    const bytes = encodeLessorState([{ id: 1n, grantedTtl: 300, remainingTtl: 0 }]);
    // magic, version, count 1, id 1, 300 = 0xac 0x02, 0, crc
    assert.deepEqual([...bytes.subarray(0, bytes.length - 4)], [0x43, 0x4e, 0x4c, 0x53, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xac, 0x02, 0]);
    const crc = new DataView(bytes.buffer, bytes.byteOffset).getUint32(bytes.length - 4, false);
    assert.equal(crc, crc32(bytes.subarray(0, bytes.length - 4), 0));
    assert.equal(crc32(new TextEncoder().encode('123456789'), 0), 0xcbf43926); // the standard check value
  });

  it('round-trips any valid state', () => {
    fc.assert(
      fc.property(leasesArb, (leases) => {
        const bytes = encodeLessorState(leases);
        assert.deepStrictEqual(decodeLessorState(bytes), leases);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses any single damaged byte and any truncation', () => {
    fc.assert(
      fc.property(leasesArb, fc.nat(), fc.integer({ min: 1, max: 255 }), (leases, at, flip) => {
        const bytes = encodeLessorState(leases);
        const bad = bytes.slice();
        bad[at % bad.length]! ^= flip;
        assert.throws(() => decodeLessorState(bad), isCorrupt);
        assert.throws(() => decodeLessorState(bytes.subarray(0, at % bytes.length)), isCorrupt);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses well-checksummed bytes that break the rules', () => {
    const withCrc = (body: number[]): Uint8Array => {
      const b = Uint8Array.from(body);
      const out = new Uint8Array(b.length + 4);
      out.set(b);
      new DataView(out.buffer).setUint32(b.length, crc32(b, 0), false);
      return out;
    };
    const head = [0x43, 0x4e, 0x4c, 0x53, 1];
    const id = (n: number): number[] => [0, 0, 0, 0, 0, 0, 0, n];
    assert.deepEqual(decodeLessorState(withCrc([...head, 0])), []);
    assert.throws(() => decodeLessorState(withCrc([0x43, 0x4e, 0x4c, 0x54, 1, 0])), isCorrupt); // magic
    assert.throws(() => decodeLessorState(withCrc([...head.slice(0, 4), 2, 0])), isCorrupt); // version
    assert.throws(() => decodeLessorState(withCrc([...head, 2, ...id(2), 5, 0, ...id(1), 5, 0])), isCorrupt); // order
    assert.throws(() => decodeLessorState(withCrc([...head, 2, ...id(1), 5, 0, ...id(1), 5, 0])), isCorrupt); // repeat
    assert.throws(() => decodeLessorState(withCrc([...head, 1, ...id(0), 5, 0])), isCorrupt); // id 0
    assert.throws(() => decodeLessorState(withCrc([...head, 1, ...id(1), 0, 0])), isCorrupt); // ttl 0
    assert.throws(() => decodeLessorState(withCrc([...head, 1, ...id(1), 5, 5])), isCorrupt); // remaining ≥ ttl
    assert.throws(() => decodeLessorState(withCrc([...head, 1, ...id(1), 0x85, 0x00, 0])), isCorrupt); // non-minimal
    assert.throws(() => decodeLessorState(withCrc([...head, 1, ...id(1), 5, 0, 9])), isCorrupt); // trailing
    assert.throws(() => decodeLessorState(withCrc([...head, 0x7f, ...id(1), 5, 0])), isCorrupt); // count too big
  });

  it('restore of damaged bytes leaves the lessor as it was', () => {
    const l = new Lessor();
    l.grant(5n, 10, 0);
    const bytes = l.serialize();
    const bad = bytes.slice();
    bad[6]! ^= 1;
    assert.throws(() => l.restore(bad), isCorrupt);
    assert.deepEqual(l.leases().map((x) => x.id), [5n]);
  });
});
