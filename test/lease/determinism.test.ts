/**
 * Properties: members fed the same replicated calls end in the same state whatever their leader
 * role and clocks; that state survives serialize → restore; the leader's expiry agrees with a
 * brute-force model.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Lessor, type LeaseId } from '../../src/lease/lessor.ts';
import { LeaseError } from '../../src/lease/errors.ts';

type Replicated =
  | { readonly op: 'grant'; readonly id: LeaseId; readonly ttl: number }
  | { readonly op: 'revoke'; readonly id: LeaseId }
  | { readonly op: 'checkpoint'; readonly id: LeaseId; readonly remaining: number }
  | { readonly op: 'attach'; readonly id: LeaseId; readonly key: Uint8Array }
  | { readonly op: 'detach'; readonly id: LeaseId; readonly key: Uint8Array };

type Volatile =
  | { readonly op: 'tick'; readonly ms: number }
  | { readonly op: 'promote'; readonly extend: number }
  | { readonly op: 'demote' }
  | { readonly op: 'renew'; readonly id: LeaseId }
  | { readonly op: 'expired'; readonly max: number }
  | { readonly op: 'checkpointsDue'; readonly max: number };

type Step = { readonly kind: 'replicated'; readonly call: Replicated } | { readonly kind: 'volatile'; readonly call: Volatile };

const idArb = fc.bigInt({ min: -2n, max: 6n }); // includes 0, which must be refused everywhere
const keyArb = fc.uint8Array({ minLength: 0, maxLength: 3, max: 3 });
const replicatedArb: fc.Arbitrary<Replicated> = fc.oneof(
  fc.record({ op: fc.constant('grant' as const), id: idArb, ttl: fc.oneof(fc.integer({ min: -1, max: 30 }), fc.constant(9_000_000_001)) }),
  fc.record({ op: fc.constant('revoke' as const), id: idArb }),
  fc.record({ op: fc.constant('checkpoint' as const), id: idArb, remaining: fc.integer({ min: 0, max: 35 }) }),
  fc.record({ op: fc.constant('attach' as const), id: idArb, key: keyArb }),
  fc.record({ op: fc.constant('detach' as const), id: idArb, key: keyArb }),
);
const volatileArb: fc.Arbitrary<Volatile> = fc.oneof(
  fc.record({ op: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 15_000 }) }),
  fc.record({ op: fc.constant('promote' as const), extend: fc.integer({ min: 0, max: 2000 }) }),
  fc.record({ op: fc.constant('demote' as const) }),
  fc.record({ op: fc.constant('renew' as const), id: idArb }),
  fc.record({ op: fc.constant('expired' as const), max: fc.integer({ min: 0, max: 4 }) }),
  fc.record({ op: fc.constant('checkpointsDue' as const), max: fc.integer({ min: 0, max: 4 }) }),
);
const stepsArb = fc.array(
  fc.oneof(
    { weight: 3, arbitrary: replicatedArb.map((call): Step => ({ kind: 'replicated', call })) },
    { weight: 2, arbitrary: volatileArb.map((call): Step => ({ kind: 'volatile', call })) },
  ),
  { maxLength: 120 },
);

type Outcome = { ok: unknown } | { err: string };

function attempt(f: () => unknown): Outcome {
  try {
    return { ok: f() };
  } catch (e) {
    if (e instanceof LeaseError) return { err: e.code };
    throw e; // an assertion or a TypeError is a bug: fail the property
  }
}

function applyReplicated(l: Lessor, c: Replicated, now: number): Outcome {
  switch (c.op) {
    case 'grant':
      return attempt(() => l.grant(c.id, c.ttl, now));
    case 'revoke':
      return attempt(() => l.revoke(c.id));
    case 'checkpoint':
      return attempt(() => l.checkpoint(c.id, c.remaining));
    case 'attach':
      return attempt(() => l.attach(c.id, c.key));
    case 'detach':
      return attempt(() => l.detach(c.id, c.key));
  }
}

function applyVolatile(l: Lessor, c: Volatile, now: number): void {
  switch (c.op) {
    case 'tick':
      return;
    case 'promote':
      return l.promote(now, c.extend);
    case 'demote':
      return l.demote();
    case 'renew':
      attempt(() => l.renew(c.id, now));
      return;
    case 'expired':
      l.expired(now, c.max);
      return;
    case 'checkpointsDue':
      l.checkpointsDue(now, c.max);
      return;
  }
}

/** Replicated view including attachments, which serialize() leaves out. */
function fullState(l: Lessor): unknown {
  return l.leases().map((x) => ({ ...x, keys: l.timeToLive(x.id, 0).keys.map((k) => Buffer.from(k).toString('hex')) }));
}

/** A naive model of the replicated part. */
class Model {
  readonly leases = new Map<LeaseId, { ttl: number; cp: number; keys: Set<string> }>();
  readonly owner = new Map<string, LeaseId>();

  apply(c: Replicated): Outcome {
    const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
    switch (c.op) {
      case 'grant': {
        if (c.id === 0n) return { err: 'LEASE_INVALID_ARGUMENT' };
        if (c.ttl > 9_000_000_000) return { err: 'LEASE_TTL_TOO_LARGE' };
        if (this.leases.has(c.id)) return { err: 'LEASE_EXISTS' };
        const ttl = Math.max(2, c.ttl);
        this.leases.set(c.id, { ttl, cp: 0, keys: new Set() });
        return { ok: { id: c.id, grantedTtl: ttl, checkpointedTtl: 0, keyCount: 0 } };
      }
      case 'revoke': {
        const l = this.leases.get(c.id);
        if (!l) return { err: 'LEASE_NOT_FOUND' };
        this.leases.delete(c.id);
        const keys = [...l.keys].sort();
        for (const k of keys) this.owner.delete(k);
        return { ok: keys.map((k) => new Uint8Array(Buffer.from(k, 'hex'))) };
      }
      case 'checkpoint': {
        const l = this.leases.get(c.id);
        if (!l) return { ok: false };
        l.cp = c.remaining < l.ttl ? c.remaining : 0;
        return { ok: true };
      }
      case 'attach': {
        const l = this.leases.get(c.id);
        if (!l) return { err: 'LEASE_NOT_FOUND' };
        const k = hex(c.key);
        const prev = this.owner.get(k);
        if (prev !== undefined) this.leases.get(prev)!.keys.delete(k);
        l.keys.add(k);
        this.owner.set(k, c.id);
        return { ok: undefined };
      }
      case 'detach': {
        const l = this.leases.get(c.id);
        const k = hex(c.key);
        if (!l || !l.keys.delete(k)) return { ok: false };
        this.owner.delete(k);
        return { ok: true };
      }
    }
  }
}

describe('determinism', () => {
  it('a leader and a follower fed the same replicated calls agree on every result and on their state', () => {
    fc.assert(
      fc.property(stepsArb, fc.integer({ min: 0, max: 1e9 }), (steps, clockSkew) => {
        const leader = new Lessor({ checkpointIntervalMs: 10_000, expiredRetryMs: 2000 });
        const follower = new Lessor({ checkpointIntervalMs: 10_000, expiredRetryMs: 2000 });
        const model = new Model();
        leader.promote(0, 1000);
        let now = 0;
        for (const s of steps) {
          if (s.kind === 'replicated') {
            const a = applyReplicated(leader, s.call, now);
            // The follower's clock reads something else entirely: it must not matter.
            const b = applyReplicated(follower, s.call, now + clockSkew);
            assert.deepStrictEqual(a, b);
            assert.deepStrictEqual(a, model.apply(s.call));
          } else {
            if (s.call.op === 'tick') now += s.call.ms;
            applyVolatile(leader, s.call, now);
          }
          leader.checkInvariants();
        }
        follower.checkInvariants();
        assert.deepStrictEqual(Buffer.from(leader.serialize()), Buffer.from(follower.serialize()));
        assert.deepStrictEqual(fullState(leader), fullState(follower));
      }),
      { numRuns: 300 },
    );
  });

  it('serialize → restore reproduces the replicated state and the same bytes', () => {
    fc.assert(
      fc.property(fc.array(replicatedArb, { maxLength: 80 }), (calls) => {
        const a = new Lessor();
        for (const c of calls) applyReplicated(a, c, 0);
        const bytes = a.serialize();
        const b = new Lessor();
        b.grant(99n, 5, 0); // state from before the restore must vanish
        b.attach(99n, Uint8Array.of(1));
        b.restore(bytes);
        b.checkInvariants();
        assert.deepStrictEqual(Buffer.from(b.serialize()), Buffer.from(bytes));
        assert.deepStrictEqual(
          b.leases(),
          a.leases().map((x) => ({ ...x, keyCount: 0 })), // keys come back from the store, not from here
        );
        assert.equal(b.leaseOf(Uint8Array.of(1)), 0n);
      }),
      { numRuns: 300 },
    );
  });
});

describe('leader expiry against a brute-force model', () => {
  it('expired() reports exactly the leases whose deadline passed, each once, in deadline order', () => {
    const op = fc.oneof(
      fc.record({ op: fc.constant('grant' as const), ttl: fc.integer({ min: 1, max: 20 }) }),
      fc.record({ op: fc.constant('renew' as const), pick: fc.nat() }),
      fc.record({ op: fc.constant('revoke' as const), pick: fc.nat() }),
      fc.record({ op: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 5000 }) }),
      fc.record({ op: fc.constant('expired' as const), max: fc.integer({ min: 1, max: 5 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 150 }), (ops) => {
        // A retry interval longer than any run, so "each once" is checkable.
        const l = new Lessor({ expiredRetryMs: 1e12 });
        l.promote(0, 0);
        const deadlines = new Map<LeaseId, number>();
        const reported = new Set<LeaseId>();
        let next = 1n;
        let now = 0;
        const pick = (n: number): LeaseId | undefined => [...deadlines.keys()][n % Math.max(1, deadlines.size)];
        for (const o of ops) {
          switch (o.op) {
            case 'grant': {
              const id = next++;
              const ttl = Math.max(2, o.ttl);
              l.grant(id, ttl, now);
              deadlines.set(id, now + ttl * 1000);
              break;
            }
            case 'renew': {
              const id = pick(o.pick);
              if (id === undefined) break;
              const r = attempt(() => l.renew(id, now));
              if (deadlines.get(id)! <= now) {
                assert.deepStrictEqual(r, { err: 'LEASE_EXPIRED' });
              } else {
                assert.ok('ok' in r);
                deadlines.set(id, now + l.get(id)!.grantedTtl * 1000);
              }
              break;
            }
            case 'revoke': {
              const id = pick(o.pick);
              if (id === undefined) break;
              l.revoke(id);
              deadlines.delete(id);
              reported.delete(id);
              break;
            }
            case 'tick':
              now += o.ms;
              break;
            case 'expired': {
              const due = [...deadlines]
                .filter(([id, d]) => d <= now && !reported.has(id))
                .sort((x, y) => x[1] - y[1] || (x[0] < y[0] ? -1 : 1))
                .map(([id]) => id);
              const got = l.expired(now, o.max);
              assert.deepStrictEqual(got, due.slice(0, o.max));
              for (const id of got) reported.add(id);
              break;
            }
          }
          assert.equal(l.deadline(next - 1n), deadlines.get(next - 1n));
        }
        l.checkInvariants();
      }),
      { numRuns: 300 },
    );
  });
});
