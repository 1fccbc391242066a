/** The replicated operations: grant, revoke, checkpoint, attach, detach, and what they refuse. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Lessor } from '../../src/lease/lessor.ts';
import {
  LeaseExistsError,
  LeaseInvalidArgumentError,
  LeaseLimitError,
  LeaseNotFoundError,
  LeaseTtlTooLargeError,
} from '../../src/lease/errors.ts';
import { defaultLessorLimits, leaseTtlSecondsMaxAbsolute, minLeaseTtlSeconds, resolveLessorLimits, revokeBatchMax } from '../../src/lease/limits.ts';

const enc = new TextEncoder();
const k = (s: string): Uint8Array => enc.encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);

describe('minimum and maximum TTL', () => {
  it('computes etcd\'s minimum from Raft timing, in ticks with integer division', () => {
    assert.equal(minLeaseTtlSeconds(100, 1000), 2); // 10 ticks → 15 ticks → 1.5 s → 2 s
    assert.equal(defaultLessorLimits.ttlSecondsMin, 2);
    assert.equal(minLeaseTtlSeconds(100, 5000), 8); // 50 ticks → 75 → 7.5 s → 8 s
    assert.equal(minLeaseTtlSeconds(300, 1000), 2); // 3 ticks → ⌊4.5⌋ = 4 ticks → 1.2 s → 2 s
    assert.equal(minLeaseTtlSeconds(10, 100), 1); // 150 ms → 1 s
    assert.equal(minLeaseTtlSeconds(1000, 999), 1); // 0 ticks: still at least 1 s
  });

  it('raises a short TTL to the minimum instead of refusing it', () => {
    const l = new Lessor();
    assert.equal(l.grant(1n, 1, 0).grantedTtl, 2);
    assert.equal(l.grant(2n, 0, 0).grantedTtl, 2);
    assert.equal(l.grant(3n, -5, 0).grantedTtl, 2);
    assert.equal(l.grant(4n, 3, 0).grantedTtl, 3);
  });

  it('refuses a TTL above 9,000,000,000 s with etcd\'s text', () => {
    const l = new Lessor();
    assert.equal(l.grant(1n, leaseTtlSecondsMaxAbsolute, 0).grantedTtl, leaseTtlSecondsMaxAbsolute);
    assert.throws(() => l.grant(2n, leaseTtlSecondsMaxAbsolute + 1, 0), (e: unknown) => {
      assert.ok(e instanceof LeaseTtlTooLargeError);
      assert.equal(e.code, 'LEASE_TTL_TOO_LARGE');
      assert.equal(e.message, 'too large lease TTL');
      return true;
    });
    assert.equal(l.has(2n), false);
  });

  it('refuses fractional TTLs and bad ids', () => {
    const l = new Lessor();
    assert.throws(() => l.grant(1n, 1.5, 0), LeaseInvalidArgumentError);
    assert.throws(() => l.grant(0n, 10, 0), LeaseInvalidArgumentError);
    assert.throws(() => l.grant(1n << 63n, 10, 0), LeaseInvalidArgumentError);
    assert.equal(l.grant(-(1n << 63n), 10, 0).id, -(1n << 63n)); // any non-zero int64 is an id
  });

  it('checks limits against each other', () => {
    assert.throws(() => resolveLessorLimits({ ttlSecondsMin: 10, ttlSecondsMax: 5 }), RangeError);
    assert.throws(() => resolveLessorLimits({ ttlSecondsMax: leaseTtlSecondsMaxAbsolute + 1 }), RangeError);
    assert.throws(() => resolveLessorLimits({ checkpointIntervalMs: 0 }), RangeError);
    assert.throws(() => resolveLessorLimits({ checkpointBatchMax: 2000, checkpointRatePerSecond: 1000 }), RangeError);
    assert.equal(revokeBatchMax(defaultLessorLimits, 500), 500); // etcd: rate / 2 per 500 ms pass
  });
});

describe('grant and revoke', () => {
  it('refuses a duplicate id and leaves the first lease alone', () => {
    const l = new Lessor();
    l.grant(7n, 10, 0);
    assert.throws(() => l.grant(7n, 20, 0), (e: unknown) => e instanceof LeaseExistsError && e.code === 'LEASE_EXISTS' && e.message === 'lease already exists');
    assert.equal(l.get(7n)?.grantedTtl, 10);
  });

  it('revoke returns the attached keys in byte order and forgets the lease', () => {
    const l = new Lessor();
    l.grant(1n, 10, 0);
    for (const key of ['b', 'a', 'c/2', 'c/10', '\u00ff']) l.attach(1n, k(key));
    l.attach(1n, Uint8Array.of(0x00));
    const keys = l.revoke(1n);
    const want = [Uint8Array.of(0x00), k('a'), k('b'), k('c/10'), k('c/2'), k('\u00ff')];
    assert.deepEqual(keys, want);
    assert.equal(l.has(1n), false);
    assert.equal(l.leaseOf(k('a')), 0n);
    assert.throws(() => l.revoke(1n), (e: unknown) => e instanceof LeaseNotFoundError && e.code === 'LEASE_NOT_FOUND' && e.message === 'lease not found');
    l.checkInvariants();
  });

  it('a revoked id can be granted again, without its old keys', () => {
    const l = new Lessor();
    l.grant(1n, 10, 0);
    l.attach(1n, k('x'));
    l.revoke(1n);
    l.grant(1n, 10, 0);
    assert.equal(l.get(1n)?.keyCount, 0);
    assert.deepEqual(l.revoke(1n), []);
  });

  it('enforces the lease count limit at apply time', () => {
    const l = new Lessor({ leasesMax: 2 });
    l.grant(1n, 10, 0);
    l.grant(2n, 10, 0);
    assert.throws(() => l.grant(3n, 10, 0), (e: unknown) => e instanceof LeaseLimitError && e.code === 'LEASE_LIMIT');
    l.revoke(1n);
    l.grant(3n, 10, 0);
  });

  it('lists leases in id order, the same on every member', () => {
    const l = new Lessor();
    for (const id of [5n, -3n, 100n, 2n]) l.grant(id, 10, 0);
    assert.deepEqual(l.leases().map((x) => x.id), [-3n, 2n, 5n, 100n]);
    assert.equal(l.size, 4);
  });
});

describe('attach and detach', () => {
  it('tracks which lease each key belongs to', () => {
    const l = new Lessor();
    l.grant(1n, 10, 0);
    l.grant(2n, 10, 0);
    l.attach(1n, k('a'));
    l.attach(1n, k('b'));
    assert.equal(l.leaseOf(k('a')), 1n);
    assert.equal(l.get(1n)?.keyCount, 2);
    // A put that changes the key's lease: attaching elsewhere moves it.
    l.attach(2n, k('a'));
    assert.equal(l.leaseOf(k('a')), 2n);
    assert.equal(l.get(1n)?.keyCount, 1);
    assert.deepEqual(l.revoke(1n).map(str), ['b']);
    assert.deepEqual(l.revoke(2n).map(str), ['a']);
    l.checkInvariants();
  });

  it('attach to a missing lease throws; detach from one is a no-op', () => {
    const l = new Lessor();
    assert.throws(() => l.attach(9n, k('a')), LeaseNotFoundError);
    assert.equal(l.detach(9n, k('a')), false);
    l.grant(1n, 10, 0);
    l.attach(1n, k('a'));
    assert.equal(l.detach(1n, k('zz')), false);
    assert.equal(l.detach(1n, k('a')), true);
    assert.equal(l.detach(1n, k('a')), false);
    assert.equal(l.leaseOf(k('a')), 0n);
  });

  it('does not keep the caller\'s buffer', () => {
    const l = new Lessor();
    l.grant(1n, 10, 0);
    const buf = k('abc');
    l.attach(1n, buf);
    buf[0] = 0x7a;
    assert.deepEqual(l.timeToLive(1n, 0).keys.map(str), ['abc']);
    assert.equal(l.leaseOf(k('abc')), 1n);
  });

  it('attaching twice is idempotent', () => {
    const l = new Lessor();
    l.grant(1n, 10, 0);
    l.attach(1n, k('a'));
    l.attach(1n, k('a'));
    assert.equal(l.get(1n)?.keyCount, 1);
    l.checkInvariants();
  });
});

describe('checkpoint and timeToLive on a follower', () => {
  it('timeToLive reports granted TTL, replicated estimate and keys', () => {
    const l = new Lessor();
    l.grant(1n, 60, 0);
    l.attach(1n, k('q'));
    assert.deepEqual(l.timeToLive(1n, 123), { id: 1n, grantedTtl: 60, remainingTtl: 60, keys: [k('q')], primary: false });
    l.checkpoint(1n, 20);
    assert.equal(l.timeToLive(1n, 0).remainingTtl, 20);
    assert.deepEqual(l.timeToLive(1n, 0, false).keys, []);
    assert.throws(() => l.timeToLive(2n, 0), LeaseNotFoundError);
  });

  it('checkpoint of a missing lease is ignored; ≥ granted TTL is stored as none', () => {
    const l = new Lessor();
    assert.equal(l.checkpoint(5n, 10), false);
    l.grant(1n, 60, 0);
    assert.equal(l.checkpoint(1n, 30), true);
    assert.equal(l.get(1n)?.checkpointedTtl, 30);
    l.checkpoint(1n, 60);
    assert.equal(l.get(1n)?.checkpointedTtl, 0);
    l.checkpoint(1n, 25);
    l.checkpoint(1n, 0); // cleared after a renew
    assert.equal(l.get(1n)?.checkpointedTtl, 0);
    assert.throws(() => l.checkpoint(1n, -1), LeaseInvalidArgumentError);
    assert.throws(() => l.checkpoint(1n, 2.5), LeaseInvalidArgumentError);
  });
});
