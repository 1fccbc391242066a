/**
 * LinearizableReads: batching into ReadIndex rounds, and a leader change failing the round in
 * flight at once with LEADER_CHANGED (its request went to a leader that may never answer).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LinearizableReads } from '../../src/server/linearizable-reads.ts';
import { ServerError } from '../../src/server/errors.ts';

function reads(): { reads: LinearizableReads; contexts: Uint8Array[]; applied: { index: number } } {
  const contexts: Uint8Array[] = [];
  const applied = { index: 0 };
  const r = new LinearizableReads(
    {
      readIndex: (context) => {
        contexts.push(Buffer.from(context));
        return { ok: true };
      },
      applied: () => applied.index,
    },
    '00000000000000aa',
    60_000,
  );
  return { reads: r, contexts, applied };
}

test('reads arriving during a round share the next one; each resolves once applied reaches its index', async () => {
  const { reads: r, contexts, applied } = reads();
  const first = r.wait();
  const second = r.wait();
  const third = r.wait();
  assert.equal(contexts.length, 1, 'one round in flight');
  applied.index = 5;
  r.onReadStates([{ index: 5, context: contexts[0]! }]);
  await first;
  assert.equal(contexts.length, 2, 'the queued reads start the next round');
  r.onReadStates([{ index: 7, context: contexts[1]! }]);
  let done = false;
  void Promise.all([second, third]).then(() => (done = true));
  await new Promise((res) => setImmediate(res));
  assert.equal(done, false, 'not before index 7 is applied');
  r.onApplied(7);
  await Promise.all([second, third]);
});

test('a leader change fails the round in flight with LEADER_CHANGED and starts one for the queued reads', async () => {
  const { reads: r, contexts, applied } = reads();
  const inFlight = r.wait();
  const queued = r.wait();
  r.onLeaderChanged();
  await assert.rejects(inFlight, (e: unknown) => e instanceof ServerError && e.code === 'LEADER_CHANGED');
  assert.equal(contexts.length, 2, 'a new round for the queued read');
  applied.index = 3;
  r.onReadStates([{ index: 3, context: contexts[0]! }]);
  r.onReadStates([{ index: 3, context: contexts[1]! }]);
  await queued;
  // No round in flight: nothing to fail.
  r.onLeaderChanged();
  assert.equal(contexts.length, 2);
});
