/**
 * Performance sanity, not a benchmark: with 100,000 leases, the leader's per-tick calls must cost
 * in proportion to what is due, not to how many leases exist. Timings are printed, not asserted
 * (CI machines vary); what is asserted is the work done, through the structure's behaviour.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { Lessor } from '../../src/lease/lessor.ts';
import { revokeBatchMax } from '../../src/lease/limits.ts';

const N = 100_000;

describe('performance sanity with 100,000 leases', () => {
  it('grants, promotes, renews and drains expiries through the heap', (t) => {
    const l = new Lessor({ checkpointIntervalMs: 60_000 });
    let t0 = performance.now();
    for (let i = 1; i <= N; i++) l.grant(BigInt(i), 10 + (i % 600), 0);
    const grantMs = performance.now() - t0;

    t0 = performance.now();
    l.promote(0, 1000);
    const promoteMs = performance.now() - t0;

    // A tick with nothing due costs nothing, however many leases there are: time 10,000 of them.
    t0 = performance.now();
    for (let i = 0; i < 10_000; i++) assert.equal(l.expired(5000, 500).length, 0);
    const idleTickUs = ((performance.now() - t0) / 10_000) * 1000;

    t0 = performance.now();
    for (let i = 1; i <= N; i += 2) l.renew(BigInt(i), 5000);
    const renewMs = performance.now() - t0;

    // Drain everything at the revoke rate, revoking as the server would once proposals commit.
    const batch = revokeBatchMax(l.limits);
    let now = 0;
    let revoked = 0;
    let calls = 0;
    t0 = performance.now();
    while (l.size > 0) {
      now += 500;
      const due = l.expired(now, batch);
      calls++;
      assert.ok(due.length <= batch);
      for (const id of due) l.revoke(id);
      revoked += due.length;
      l.checkpointsDue(now, 500);
    }
    const drainMs = performance.now() - t0;
    assert.equal(revoked, N);
    l.checkInvariants();

    t.diagnostic(
      `grant ${grantMs.toFixed(0)} ms, promote ${promoteMs.toFixed(0)} ms, idle expired() ${idleTickUs.toFixed(2)} µs, ` +
        `renew ×${N / 2} ${renewMs.toFixed(0)} ms, drain in ${calls} calls ${drainMs.toFixed(0)} ms`,
    );
  });

  it('serializes and restores 100,000 leases compactly', (t) => {
    const l = new Lessor();
    for (let i = 1; i <= N; i++) l.grant(BigInt(i) * 0x1234567n, 60 + (i % 1000), 0);
    let t0 = performance.now();
    const bytes = l.serialize();
    const encMs = performance.now() - t0;
    const r = new Lessor();
    t0 = performance.now();
    r.restore(bytes);
    const decMs = performance.now() - t0;
    assert.equal(r.size, N);
    assert.ok(bytes.length <= N * 12 + 16, `${bytes.length} bytes`);
    t.diagnostic(`${bytes.length} bytes (${(bytes.length / N).toFixed(1)} per lease), encode ${encMs.toFixed(0)} ms, decode ${decMs.toFixed(0)} ms`);
  });
});
