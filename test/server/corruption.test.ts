import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkHashKV, checkInitialHashKV, type CorruptionCheckHost } from '../../src/server/corruption.ts';
import type { HashKVResult } from '../../src/mvcc/index.ts';
import type { PeerHashKV } from '../../src/server/peer-requests.ts';
import { decodePeerHashKV, decodePeerRequest, encodePeerHashKV, encodePeerRequest } from '../../src/server/peer-requests.ts';

const h = (hash: number, revision = 10, compactRevision = -1): HashKVResult => ({ hash, revision, compactRevision, hashRevision: revision });

interface Fake {
  host: CorruptionCheckHost;
  raised: string[];
  asked: Array<{ peer: string; revision: number }>;
}

/** A leader 'aa' whose own hashes come from `own` (one per call) and whose peers answer from `peers`. */
function fake(own: HashKVResult[], peers: Record<string, PeerHashKV | Error>, leader = true): Fake {
  const f: Fake = {
    raised: [],
    asked: [],
    host: {
      memberId: 'aa',
      isLeader: () => leader,
      hashKV: async () => {
        const next = own.shift();
        assert.ok(next !== undefined, 'more own hashes than expected');
        return next;
      },
      peers: () => Object.keys(peers),
      peerHashKV: async (peer, revision) => {
        f.asked.push({ peer, revision });
        const a = peers[peer]!;
        if (a instanceof Error) throw a;
        return a;
      },
      linearizableBarrier: async () => {},
      raiseCorrupt: async (id) => {
        f.raised.push(id);
      },
      log: { info() {}, warn() {} },
    },
  };
  return f;
}

const peer = (memberId: string, r: HashKVResult): PeerHashKV => ({ memberId, ...r });

test('periodic check: agreeing members raise nothing; peers are asked at the leader revision; unanswered peers are skipped', async () => {
  const f = fake([h(7), h(7)], { bb: peer('bb', h(7)), cc: new Error('future revision') });
  assert.deepEqual(await checkHashKV(f.host), []);
  assert.deepEqual(f.raised, []);
  assert.deepEqual(f.asked, [
    { peer: 'bb', revision: 10 },
    { peer: 'cc', revision: 10 },
  ]);
  const follower = fake([], { bb: peer('bb', h(1)) }, false);
  assert.deepEqual(await checkHashKV(follower.host), [], 'only the leader checks');
  assert.deepEqual(follower.asked, []);
});

test('periodic check: a different hash at the same compaction, a peer ahead in revision or compaction, or the leader changing under itself raise CORRUPT (once per check)', async () => {
  const differs = fake([h(7), h(7)], { bb: peer('bb', h(7)), cc: peer('cc', h(8)) });
  assert.deepEqual(await checkHashKV(differs.host), ['cc']);
  assert.deepEqual(differs.raised, ['cc']);

  // At another compaction revision, hashes are not comparable.
  const otherCompaction = fake([h(7, 10, 3), h(7, 10, 3)], { bb: peer('bb', h(8, 10, 2)) });
  assert.deepEqual(await checkHashKV(otherCompaction.host), []);

  const ahead = fake([h(7), h(7)], { bb: peer('bb', { ...h(9), revision: 12 }) });
  assert.deepEqual(await checkHashKV(ahead.host), ['bb']);
  const compactedAhead = fake([h(7, 10, 3), h(7, 10, 3)], { bb: peer('bb', h(7, 10, 5)) });
  assert.deepEqual(await checkHashKV(compactedAhead.host), ['bb']);

  const self = fake([h(7), h(9)], { bb: peer('bb', h(7)) });
  assert.deepEqual(await checkHashKV(self.host), ['aa']);

  const two = fake([h(7), h(7)], { bb: peer('bb', h(1)), cc: peer('cc', h(2)) });
  assert.deepEqual(await checkHashKV(two.host), ['bb'], 'the first mismatch only');
  assert.deepEqual(two.raised, ['bb']);
});

test('initial check: differing members at the same compaction are named; others and unanswered ones are not', async () => {
  const f = fake([h(7, 10, 3)], { bb: peer('bb', h(7, 10, 3)), cc: peer('cc', h(8, 10, 3)), dd: peer('dd', h(9, 10, 4)), ee: new Error('down') });
  assert.deepEqual(await checkInitialHashKV(f.host), ['cc']);
  assert.deepEqual(f.raised, [], 'the initial check raises no alarm');
});

test('peer requests and HashKV answers survive encoding, a compaction revision of -1 included', () => {
  assert.deepEqual(decodePeerRequest(encodePeerRequest({ op: 'hashKV', revision: 123 })), { op: 'hashKV', revision: 123 });
  for (const a of [peer('8e9e05c52164694d', h(4294967295, 2 ** 40, -1)), peer('1', h(0, 1, 0))]) assert.deepEqual(decodePeerHashKV(encodePeerHashKV(a)), a);
  assert.throws(() => decodePeerRequest(Uint8Array.of(9, 1)), /unknown peer request kind 9/);
});
