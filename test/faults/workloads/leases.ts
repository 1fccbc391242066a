/**
 * Lease workload: each worker, over and over, grants a short lease, attaches a key to it, keeps
 * it alive for a few rounds (a keep-alive and a linearizable read of the key per round), then
 * either revokes it or stops renewing and reads the key until it is gone. Everything is timed
 * on the harness clock and checked by lease-check.ts: no lease expires before TTL after a
 * renewal (across leader changes, checkpoints and clock jumps), no key outlives its lease by
 * more than TTL + election timeout (+ what faults and leader changes legitimately add), and no
 * key survives an acknowledged revoke. After the heal every remaining key is read once more.
 */
import type { Etcd3 } from 'etcd3';
import { FORWARD_LIMITS } from '../../../src/api/etcd/forward.ts';
import { MEMBER_LIMITS } from '../../../src/server/member.ts';
import type { Prng } from '../../sim/prng.ts';
import { definitelyNotApplied, errorText } from '../client.ts';
import { ELECTION_TIMEOUT_MS } from '../cluster.ts';
import { checkLease, expiryBound, type KeyRead, type LeaseCheckContext, type Renewal } from './lease-check.ts';
import { clientFor, Counts, runWorkers, sleep, type Anomaly, type Workload, type WorkloadContext, type WorkloadReport } from './workload.ts';

export const LEASE_LIMITS = {
  workers: 3,
  ttlSeconds: 3,
  /**
   * Keep-alive rounds (TTL/3 apart) before a lease is let go, drawn from 0 to this: long enough
   * for some leases to be kept alive across a fault and the elections it causes.
   */
  roundsMax: 20,
  /** How long a keep-alive waits for its answer. */
  keepAliveTimeoutMs: 1_000,
  /** Between reads of a key while waiting for it to go. */
  pollMs: 300,
  /** Expiry check interval (500 ms), the revoke's commit and the read, on a loaded machine. */
  slackMs: 2_000,
  thinkMs: [50, 300] as const,
} as const;

/**
 * How long after it was sent a keep-alive the client gave up on may still renew: a follower
 * forwards it for up to its forward timeout, and the leader then confirms its leadership for up
 * to its request timeout before renewing.
 */
const UNANSWERED_RENEWAL_MS = FORWARD_LIMITS.forwardTimeoutMs + MEMBER_LIMITS.requestTimeoutBaseMs + 2 * ELECTION_TIMEOUT_MS;

interface MutableLease {
  id: string;
  key: string;
  ttlMs: number;
  renewals: Renewal[];
  keyWrittenAt: number | null;
  reads: KeyRead[];
  revoked: { call: number; ret: number } | null;
  revokeSentAt: number | null;
}

/** One keep-alive on its own stream: the TTL answered, or null on a timeout or error. */
async function keepAliveOnce(client: Etcd3, id: string): Promise<number | null> {
  const stream = await client.leaseClient.leaseKeepAlive();
  return new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => finish(null), LEASE_LIMITS.keepAliveTimeoutMs);
    function finish(ttl: number | null): void {
      clearTimeout(timer);
      stream.cancel();
      resolve(ttl);
    }
    stream.on('data', (res) => finish(Number(res.TTL)));
    stream.on('error', () => finish(null));
    stream.on('end', () => finish(null));
    stream.write({ ID: id });
  });
}

export class LeaseWorkload implements Workload {
  readonly name = 'lease';
  private readonly counts = new Counts();
  private readonly leases: MutableLease[] = [];

  constructor(private readonly ctx: WorkloadContext) {}

  private client(w: number): Etcd3 {
    return clientFor(this.ctx, this.name, w);
  }

  /** A linearizable read of the lease's key, recorded; undefined when it failed. */
  private async read(w: number, l: MutableLease): Promise<boolean | undefined> {
    const call = this.ctx.clock();
    try {
      const res = await this.client(w).kv.range({ key: Buffer.from(l.key) });
      const present = res.kvs.length > 0;
      l.reads.push({ call, ret: this.ctx.clock(), present });
      return present;
    } catch {
      return undefined;
    }
  }

  async run(stopping: () => boolean): Promise<void> {
    await runWorkers(LEASE_LIMITS.workers, stopping, LEASE_LIMITS.thinkMs, this.ctx.rng.fork('lease'), (w, rng) => this.cycle(w, rng, stopping));
  }

  private async cycle(w: number, rng: Prng, stopping: () => boolean): Promise<void> {
    const clock = this.ctx.clock;
    const sent = clock();
    this.counts.ops++;
    let id: string;
    let ttlMs: number;
    try {
      const g = await this.client(w).leaseClient.leaseGrant({ TTL: LEASE_LIMITS.ttlSeconds });
      id = g.ID;
      ttlMs = Number(g.TTL) * 1000;
      this.counts.ok++;
    } catch (e) {
      this.counts.error(e);
      // An unknown lease (if it was granted) holds no key and expires unseen.
      this.counts[definitelyNotApplied(e) ? 'failed' : 'indeterminate']++;
      return;
    }
    const l: MutableLease = { id, key: `le/${id}`, ttlMs, renewals: [{ sent, answered: clock(), ttl: ttlMs / 1000 }], keyWrittenAt: null, reads: [], revoked: null, revokeSentAt: null };
    this.leases.push(l);
    this.counts.ops++;
    try {
      await this.client(w).kv.put({ key: Buffer.from(l.key), value: Buffer.from('x'), lease: id });
      l.keyWrittenAt = clock();
      this.counts.ok++;
    } catch (e) {
      this.counts.error(e);
      this.counts[definitelyNotApplied(e) ? 'failed' : 'indeterminate']++;
    }
    // As a real client does: a keep-alive every TTL/3 whether or not the last one was answered
    // (each on its own stream), and between them a read of the key.
    const rounds = rng.int(0, LEASE_LIMITS.roundsMax);
    const inFlight: Promise<void>[] = [];
    let gone = false;
    for (let i = 0; i < rounds && !stopping() && !gone; i++) {
      const s = clock();
      this.counts.ops++;
      inFlight.push(
        keepAliveOnce(this.client(w), id)
          .catch(() => null)
          .then((ttl) => {
            l.renewals.push({ sent: s, answered: ttl === null ? null : clock(), ttl });
            this.counts[ttl === null ? 'indeterminate' : 'ok']++;
            if (ttl === 0) gone = true;
          }),
      );
      inFlight.push(this.read(w, l).then(() => undefined));
      await sleep(ttlMs / 3);
    }
    await Promise.all(inFlight);
    if (gone) return;
    if (rng.chance(0.4)) {
      l.revokeSentAt = clock();
      this.counts.ops++;
      try {
        await this.client(w).leaseClient.leaseRevoke({ ID: id });
        l.revoked = { call: l.revokeSentAt, ret: clock() };
        this.counts.ok++;
        await this.read(w, l);
        return;
      } catch (e) {
        this.counts.error(e);
        this.counts[/requested lease not found/.test(errorText(e)) ? 'ok' : 'indeterminate']++;
      }
    }
    // Let it expire: read until the key is gone (or the run ends; check() reads it again).
    while (!stopping()) {
      await sleep(LEASE_LIMITS.pollMs);
      if ((await this.read(w, l)) === false) return;
      const last = l.renewals.at(-1)!;
      if (clock() > expiryBound(ttlMs, last.answered ?? last.sent + UNANSWERED_RENEWAL_MS, this.checkContext()) + LEASE_LIMITS.slackMs) return;
    }
  }

  private checkContext(): LeaseCheckContext {
    const faults = this.ctx.faults();
    return {
      electionTimeoutMs: ELECTION_TIMEOUT_MS,
      slackMs: LEASE_LIMITS.slackMs,
      unansweredRenewalMs: UNANSWERED_RENEWAL_MS,
      leaderChanges: this.ctx.cluster.leaders.map((o) => o.at),
      faultIntervals: faults.filter((f) => f.kind !== 'clock').map((f): [number, number] => [f.start, f.end]),
      clockJumps: faults.filter((f) => f.jump !== undefined).map((f) => ({ at: f.start, ms: f.jump!.ms })),
    };
  }

  async check(): Promise<WorkloadReport> {
    // Every lease not revoked must be gone once its bound has passed: wait for the latest bound.
    const ctx = this.checkContext();
    const pending = this.leases.filter((l) => l.revoked === null);
    const bounds = pending.map((l) => expiryBound(l.ttlMs, Math.max(...l.renewals.map((r) => r.answered ?? r.sent + ctx.unansweredRenewalMs)), ctx));
    const latest = Math.max(0, ...bounds);
    if (latest > this.ctx.clock()) await sleep(latest - this.ctx.clock() + 100);
    for (const l of this.leases) {
      for (let attempt = 0; attempt < 20; attempt++) {
        if ((await this.read(attempt, l)) !== undefined) break;
        await sleep(250);
      }
    }
    const anomalies: Anomaly[] = [];
    for (const l of this.leases) anomalies.push(...checkLease(l, this.checkContext()));
    const expired = this.leases.filter((l) => l.revoked === null && l.reads.some((r) => !r.present)).length;
    const renewals = this.leases.reduce((n, l) => n + l.renewals.length - 1, 0);
    return this.counts.report(this.name, anomalies, [`${this.leases.length} leases, ${renewals} keep-alives, ${expired} seen expire, ${this.leases.filter((l) => l.revoked !== null).length} revoked`]);
  }
}
