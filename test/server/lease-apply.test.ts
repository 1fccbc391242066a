/**
 * The apply path of lease entries on a real store: grant/revoke/checkpoint change the lessor and
 * the 'leases' meta records in the entry's write; a revoke deletes its keys in one revision;
 * attachments follow puts and deletes; a reopened store rebuilds the same lessor; replays skip.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lessor } from '../../src/lease/index.ts';
import { MvccStore } from '../../src/mvcc/index.ts';
import { EntryKind, type Entry } from '../../src/raft/types.ts';
import { ApplyMachine, type ApplyOutcome } from '../../src/server/apply.ts';
import { bindLessor, readLeases } from '../../src/server/leases.ts';
import { decodeEnvelope, encodeEnvelope, type InternalRequest } from '../../src/server/request-codec.ts';
import { storeAuth } from '../helpers/server-auth.ts';

const ME = '00000000000000aa';
const enc = (s: string) => new Uint8Array(Buffer.from(s));
const str = (b: Uint8Array) => Buffer.from(b).toString();

interface Harness {
  store: MvccStore;
  lessor: Lessor;
  machine: ApplyMachine;
  outcomes: Map<number, ApplyOutcome>;
  emptyTerms: number[];
  apply(index: number, request: InternalRequest): ApplyOutcome | undefined;
}

async function open(dir: string): Promise<Harness> {
  const lessor = new Lessor();
  const store = await MvccStore.open(dir, { leaseExists: (id) => lessor.has(id) });
  bindLessor(lessor, store);
  const outcomes = new Map<number, ApplyOutcome>();
  const emptyTerms: number[] = [];
  const machine = new ApplyMachine(
    () => store,
    ME,
    {
      onResult: (id, o) => outcomes.set(id, o),
      onConfChange: () => {},
      onMembersChanged: () => {},
      installSnapshot: () => Promise.resolve(),
      onEmptyEntry: (e) => emptyTerms.push(e.term),
    },
    { lessor: () => lessor, now: () => 0 },
    storeAuth(() => store, lessor),
  );
  return {
    store,
    lessor,
    machine,
    outcomes,
    emptyTerms,
    apply(index, request) {
      const entry: Entry = { term: 1, index, kind: EntryKind.Normal, data: encodeEnvelope({ proposer: ME, requestId: index, as: null, request }) };
      machine.apply([entry]);
      return outcomes.get(index);
    },
  };
}

test('lease requests round-trip through the entry codec', () => {
  const requests: InternalRequest[] = [
    { op: 'leaseGrant', id: -5n, ttl: 9_000_000_000 },
    { op: 'leaseRevoke', id: (1n << 62n) + 3n },
    { op: 'leaseCheckpoint', checkpoints: [{ id: 1n, remainingTtl: 0 }, { id: 2n, remainingTtl: 77 }] },
  ];
  for (const request of requests) assert.deepEqual(decodeEnvelope(encodeEnvelope({ proposer: ME, requestId: 9, as: null, request })).request, request);
});

test('grant, attach by put, checkpoint, revoke in one revision; a reopened store rebuilds the lessor', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lease-apply-'));
  try {
    let h = await open(dir);
    assert.deepEqual(h.apply(1, { op: 'leaseGrant', id: 7n, ttl: 600 }), { ok: true, response: { op: 'leaseGrant', id: 7n, ttl: 600 } });
    const exists = h.apply(2, { op: 'leaseGrant', id: 7n, ttl: 10 });
    assert.ok(exists !== undefined && !exists.ok && exists.error.code === 'LEASE_EXISTS');
    assert.equal(h.apply(3, { op: 'put', request: { key: enc('a'), value: enc('1'), lease: 7n } })?.ok, true);
    assert.equal(h.apply(4, { op: 'put', request: { key: enc('b'), value: enc('2'), lease: 7n } })?.ok, true);
    assert.equal(h.apply(5, { op: 'put', request: { key: enc('c'), value: enc('3'), lease: 7n } })?.ok, true);
    // Moving c off the lease and deleting b detach them.
    assert.equal(h.apply(6, { op: 'put', request: { key: enc('c'), value: enc('3') } })?.ok, true);
    assert.equal(h.apply(7, { op: 'deleteRange', request: { key: enc('b') } })?.ok, true);
    assert.equal(h.apply(8, { op: 'put', request: { key: enc('d'), value: enc('4'), lease: 7n } })?.ok, true);
    const missing = h.apply(9, { op: 'put', request: { key: enc('e'), value: enc('5'), lease: 8n } });
    assert.ok(missing !== undefined && !missing.ok && missing.error.code === 'LEASE_NOT_FOUND');
    h.apply(10, { op: 'leaseCheckpoint', checkpoints: [{ id: 7n, remainingTtl: 300 }, { id: 99n, remainingTtl: 1 }] });
    assert.deepEqual(readLeases(h.store.meta), [{ id: 7n, grantedTtl: 600, remainingTtl: 300 }]);
    assert.deepEqual(h.lessor.timeToLive(7n, 0).keys.map(str), ['a', 'd']);
    const serialized = h.lessor.serialize();
    await h.store.close();

    h = await open(dir);
    assert.deepEqual(h.lessor.serialize(), serialized);
    assert.deepEqual(h.lessor.timeToLive(7n, 0).keys.map(str), ['a', 'd']);
    // A replayed grant is skipped (no outcome), not refused.
    assert.equal(h.apply(1, { op: 'leaseGrant', id: 7n, ttl: 600 }), undefined);
    const before = h.store.revision;
    const revoked = h.apply(11, { op: 'leaseRevoke', id: 7n });
    assert.deepEqual(revoked, { ok: true, response: { op: 'leaseRevoke', revision: before + 1 } });
    assert.equal(h.store.revision, before + 1, 'both keys deleted in one revision');
    assert.deepEqual(h.store.range({ key: enc('\0'), rangeEnd: enc('\0') }).kvs.map((kv) => str(kv.key)), ['c']);
    assert.deepEqual(readLeases(h.store.meta), []);
    assert.equal(h.lessor.size, 0);
    const again = h.apply(12, { op: 'leaseRevoke', id: 7n });
    assert.ok(again !== undefined && !again.ok && again.error.code === 'LEASE_NOT_FOUND');
    assert.equal(h.store.consistentIndex(), 12);
    h.machine.apply([{ term: 3, index: 13, kind: EntryKind.Normal, data: new Uint8Array(0) }]);
    assert.deepEqual(h.emptyTerms, [3]);
    h.lessor.checkInvariants();
    await h.store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
