/**
 * The leader's side: deadlines, keep-alives, expiry, checkpoints and leader change, driven by a
 * fake clock (plain numbers of milliseconds).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Lessor } from '../../src/lease/lessor.ts';
import { LeaseExpiredError, LeaseNotFoundError, NotPrimaryError } from '../../src/lease/errors.ts';

const S = 1000;
const EXTEND = 1000; // the election timeout at default settings

describe('expiry on the leader', () => {
  it('a lease not renewed expires at grant + TTL', () => {
    const l = new Lessor();
    l.promote(0, EXTEND);
    l.grant(1n, 10, 5 * S);
    assert.equal(l.deadline(1n), 15 * S);
    assert.deepEqual(l.expired(15 * S - 1, 100), []);
    assert.deepEqual(l.expired(15 * S, 100), [1n]);
  });

  it('leases present at promote expire at promote + TTL + extension', () => {
    const l = new Lessor();
    l.grant(1n, 10, 0);
    l.promote(100 * S, EXTEND);
    assert.deepEqual(l.expired(110 * S + EXTEND - 1, 100), []);
    assert.deepEqual(l.expired(110 * S + EXTEND, 100), [1n]);
  });

  it('a renewed lease does not expire; once it stops being renewed it does', () => {
    const l = new Lessor();
    l.promote(0, EXTEND);
    l.grant(1n, 10, 0);
    l.grant(2n, 10, 0);
    let now = 0;
    for (; now < 60 * S; now += 3 * S) {
      assert.deepEqual(l.renew(1n, now), { ttl: 10, clearCheckpoint: false });
      const ex = l.expired(now, 100);
      if (now >= 10 * S) assert.ok(!ex.includes(1n), `renewed lease reported expired at ${now}`);
    }
    assert.deepEqual(l.expired(now, 100), [2n]); // never revoked here, so reported again each retry interval
    now -= 3 * S; // last renewal
    assert.deepEqual(l.expired(now + 10 * S - 1, 100).includes(1n), false);
    assert.deepEqual(l.expired(now + 10 * S, 100).includes(1n), true);
  });

  it('expired() returns at most max per call, earliest first', () => {
    const l = new Lessor();
    l.promote(0, 0);
    for (let i = 1; i <= 25; i++) l.grant(BigInt(i), 2 + (i % 5), 0);
    const seen: bigint[] = [];
    const now = 100 * S;
    for (;;) {
      const batch = l.expired(now, 10);
      assert.ok(batch.length <= 10);
      if (batch.length === 0) break;
      seen.push(...batch);
    }
    assert.equal(seen.length, 25);
    assert.equal(new Set(seen).size, 25);
    const ttl = (id: bigint): number => 2 + (Number(id) % 5);
    for (let i = 1; i < seen.length; i++) {
      const a = seen[i - 1]!;
      const b = seen[i]!;
      assert.ok(ttl(a) < ttl(b) || (ttl(a) === ttl(b) && a < b), 'earliest deadline first, ties by id');
    }
    assert.deepEqual(l.expired(now, 0), []);
  });

  it('reports an expired lease again after the retry interval if it was not revoked', () => {
    const l = new Lessor({ expiredRetryMs: 3 * S });
    l.promote(0, 0);
    l.grant(1n, 5, 0);
    assert.deepEqual(l.expired(5 * S, 10), [1n]);
    assert.deepEqual(l.expired(6 * S, 10), []); // the revoke is in flight
    assert.deepEqual(l.expired(8 * S, 10), [1n]); // …or it was lost: propose again
    l.revoke(1n); // it committed
    assert.deepEqual(l.expired(20 * S, 10), []);
    l.checkInvariants();
  });

  it('renew of an expired lease does not revive it', () => {
    const l = new Lessor();
    l.promote(0, 0);
    l.grant(1n, 5, 0);
    assert.throws(() => l.renew(1n, 5 * S), (e: unknown) => e instanceof LeaseExpiredError && e.code === 'LEASE_EXPIRED');
    assert.equal(l.deadline(1n), 5 * S);
    assert.throws(() => l.renew(2n, 0), LeaseNotFoundError);
  });

  it('timeToLive on the leader counts down from the deadline and says -1 once it passed', () => {
    const l = new Lessor();
    l.promote(0, 0);
    l.grant(1n, 10, 0);
    assert.equal(l.timeToLive(1n, 0).remainingTtl, 10);
    assert.equal(l.timeToLive(1n, 2500).remainingTtl, 7); // truncated, as etcd
    assert.equal(l.timeToLive(1n, 9999).remainingTtl, 0);
    assert.equal(l.timeToLive(1n, 10 * S).remainingTtl, -1);
    assert.equal(l.timeToLive(1n, 10 * S).primary, true);
  });
});

describe('followers', () => {
  it('never report expiry, refuse renew, and have no deadlines', () => {
    const l = new Lessor();
    l.grant(1n, 2, 0);
    assert.deepEqual(l.expired(1e12, 100), []);
    assert.deepEqual(l.checkpointsDue(1e12, 100), []);
    assert.throws(() => l.renew(1n, 0), (e: unknown) => e instanceof NotPrimaryError && e.code === 'NOT_PRIMARY' && e.message === 'not a primary lessor');
    assert.equal(l.deadline(1n), undefined);
  });

  it('demote forgets deadlines; a later promote starts afresh', () => {
    const l = new Lessor();
    l.promote(0, 0);
    l.grant(1n, 10, 0);
    l.demote();
    assert.equal(l.isPrimary, false);
    assert.deepEqual(l.expired(100 * S, 10), []);
    l.checkInvariants();
    l.promote(200 * S, EXTEND);
    assert.equal(l.deadline(1n), 210 * S + EXTEND);
    l.checkInvariants();
  });
});

/** Two members applying the same log; the leader proposes what its lessor asks for. */
function applyBoth(members: Lessor[], f: (l: Lessor) => void): void {
  for (const m of members) f(m);
}

describe('leader change', () => {
  it('the new leader honours the last checkpointed remaining TTL, not the full TTL', () => {
    const limits = { checkpointIntervalMs: 30 * S };
    const a = new Lessor(limits);
    const b = new Lessor(limits);
    a.promote(0, EXTEND); // a is leader from the start
    applyBoth([a, b], (m) => m.grant(1n, 60, 0));
    // a's checkpoint pass at 40 s: 60 s TTL granted at 0, no keep-alive, 20 s left.
    assert.deepEqual(a.checkpointsDue(30 * S - 1, 100), []);
    const cps = a.checkpointsDue(40 * S, 100);
    assert.deepEqual(cps, [{ id: 1n, remainingTtl: 20 }]);
    applyBoth([a, b], (m) => {
      for (const c of cps) m.checkpoint(c.id, c.remainingTtl);
    });
    // a fails; b is elected and promoted at 45 s (b's clock may differ; it only uses its own).
    b.promote(45 * S, EXTEND);
    assert.equal(b.deadline(1n), 45 * S + 20 * S + EXTEND);
    assert.deepEqual(b.expired(65 * S + EXTEND - 1, 10), []);
    assert.deepEqual(b.expired(65 * S + EXTEND, 10), [1n]); // ~20 s after promote, not 60 s
  });

  it('without a checkpoint the new leader starts from the full TTL (+ extension)', () => {
    const a = new Lessor();
    const b = new Lessor();
    a.promote(0, EXTEND);
    applyBoth([a, b], (m) => m.grant(1n, 60, 0));
    b.promote(45 * S, EXTEND);
    assert.equal(b.deadline(1n), 105 * S + EXTEND);
  });

  it('a renew after a checkpoint asks for it to be cleared, so the next leader gives the full TTL', () => {
    const limits = { checkpointIntervalMs: 30 * S };
    const a = new Lessor(limits);
    const b = new Lessor(limits);
    a.promote(0, EXTEND);
    applyBoth([a, b], (m) => m.grant(1n, 60, 0));
    const cps = a.checkpointsDue(40 * S, 100);
    applyBoth([a, b], (m) => m.checkpoint(cps[0]!.id, cps[0]!.remainingTtl));
    const r = a.renew(1n, 41 * S);
    assert.deepEqual(r, { ttl: 60, clearCheckpoint: true });
    applyBoth([a, b], (m) => m.checkpoint(1n, 0)); // what the server proposes
    assert.equal(a.renew(1n, 42 * S).clearCheckpoint, false); // nothing left to clear
    assert.equal(a.deadline(1n), 102 * S); // the leader's own deadline was never cut
    b.promote(50 * S, EXTEND);
    assert.equal(b.deadline(1n), 110 * S + EXTEND);
  });

  it('checkpoints only leases longer than the interval, and only when they carry news', () => {
    const l = new Lessor({ checkpointIntervalMs: 10 * S });
    l.promote(0, 0);
    l.grant(1n, 10, 0); // not longer than the interval: never checkpointed
    l.grant(2n, 100, 0);
    assert.deepEqual(l.checkpointsDue(10 * S, 100), [{ id: 2n, remainingTtl: 90 }]);
    l.checkpoint(2n, 90);
    assert.equal(l.renew(2n, 19_500).clearCheckpoint, true);
    l.checkpoint(2n, 0); // the clear the server proposes
    // At 20 s: ⌈(119.5 − 20)⌉ = 100 = the full TTL: nothing to say.
    assert.deepEqual(l.checkpointsDue(20 * S, 100), []);
    // Looked at again one interval later even though nothing was proposed (etcd would stop here).
    assert.deepEqual(l.checkpointsDue(30 * S, 100), [{ id: 2n, remainingTtl: 90 }]);
    l.checkpoint(2n, 90);
    l.renew(2n, 30 * S);
    l.checkpoint(2n, 0);
    assert.deepEqual(l.checkpointsDue(40 * S, 100), [{ id: 2n, remainingTtl: 90 }]);
    l.checkpoint(2n, 90);
    // Same remaining TTL as already recorded: nothing to propose.
    l.renew(2n, 40 * S);
    assert.deepEqual(l.checkpointsDue(50 * S, 100), []);
    l.checkInvariants();
  });

  it('checkpointsDue respects max and skips expired leases', () => {
    const l = new Lessor({ checkpointIntervalMs: 10 * S });
    l.promote(0, 0);
    for (let i = 1; i <= 5; i++) l.grant(BigInt(i), 20 + i, 0);
    assert.equal(l.checkpointsDue(10 * S, 2).length, 2);
    assert.equal(l.checkpointsDue(10 * S, 100).length, 3);
    assert.deepEqual(l.checkpointsDue(30 * S, 100), []); // every lease is past its deadline
  });

  it('spreads a pile-up of deadlines at promote so revokes stay under the rate', () => {
    const rate = 100;
    const target = (3 * rate) / 4;
    const l = new Lessor({ revokeRatePerSecond: rate });
    const n = 1000;
    for (let i = 1; i <= n; i++) l.grant(BigInt(i), 10, 0);
    l.grant(BigInt(n + 1), 3600, 0); // far away: untouched
    l.promote(0, EXTEND);
    const deadlines = l.leases().map((x) => l.deadline(x.id)!).sort((p, q) => p - q);
    assert.equal(deadlines[0], 10 * S + EXTEND);
    assert.ok(deadlines.every((d) => d >= 10 * S + EXTEND), 'never earlier than without spreading');
    assert.equal(deadlines[n], 3600 * S + EXTEND);
    for (let i = target; i < deadlines.length; i++) {
      assert.ok(deadlines[i]! - deadlines[i - target]! >= 1000, `more than ${target} deadlines within one second at ${i}`);
    }
    // n leases at target per second take about n / target seconds.
    const last = deadlines[n - 1]!;
    assert.ok(last >= 10 * S + EXTEND + (n / target - 1) * 1000 && last <= 10 * S + EXTEND + (n / target) * 1000, `last at ${last}`);
    l.checkInvariants();
  });
});
