/**
 * The lessor: TTL leases that keys die with. Pure and deterministic — no timers, no I/O, no clock
 * of its own: every method that needs the time takes `now`, a monotonic millisecond count from
 * the caller (performance.now() in the server, a number in tests).
 *
 * Its state has two parts, kept apart on purpose.
 *
 * Replicated (every member applies the same calls in the same log order and ends in the same
 * state, bit for bit — see serialize()): grant, revoke, checkpoint, attach, detach. None of them
 * reads the clock in a way that changes replicated state; grant takes `now` only so that a leader
 * can start the new lease's countdown.
 *
 * Volatile, leader-only: each lease's deadline. Time-based state is decided by the leader and goes
 * through the log: followers never expire anything; the leader notices that a deadline passed
 * (expired()), and the server proposes a revoke which every member then applies. Keep-alives
 * (renew) touch only the leader's deadlines and never the log — they are far too frequent — except
 * to clear a stale checkpoint (see renew()). So that a leader change does not restart every TTL,
 * the leader periodically records long leases' remaining TTL through the log (checkpointsDue()),
 * and a new leader starts each deadline from that remaining TTL (promote()).
 *
 * Time granularity is whole seconds for TTLs (etcd's, and Consul's) and milliseconds for
 * deadlines. A ZooKeeper front end negotiates session timeouts in whole seconds and maps session
 * heartbeats to renew(); ephemeral nodes are attached keys. Nothing below knows about etcd.
 *
 * Keys are Uint8Array (the MVCC store's key type). Inside, a key is held as its lowercase hex
 * string: a Map needs a value-equal key, and hex order equals byte order, so sorting hex sorts keys
 * exactly as the store does. Keys given to attach() are not retained (their hex is), so the caller
 * may reuse its buffers.
 *
 * How a member drives it (the lessor itself does none of this):
 *  - apply LeaseGrant / LeaseRevoke / LeaseCheckpoint entries with grant / revoke / checkpoint; on
 *    revoke, delete the returned keys in the same revision and write transaction;
 *  - the store calls attach / detach as puts and deletes change keys' leases;
 *  - on applying the first (empty) entry of its own term as leader: promote(now, electionTimeoutMs);
 *    on losing leadership: demote();
 *  - while leader, every leaseExpiryCheckIntervalMs: propose a revoke for each id of
 *    expired(now, revokeBatchMax(limits)), and propose checkpointsDue(now, checkpointCallMax(limits))
 *    in batches of limits.checkpointBatchMax;
 *  - keep-alives call renew(); when it answers clearCheckpoint, propose checkpoint(id, 0);
 *  - persist serialize() with the store's snapshot; on startup restore() it, then attach every key
 *    the store holds with a lease, before applying further entries.
 */
import { IndexedMinHeap, NOT_IN_HEAP } from './heap.ts';
import { decodeLessorState, encodeLessorState, type PersistedLease } from './codec.ts';
import {
  LeaseExistsError,
  LeaseExpiredError,
  LeaseInvalidArgumentError,
  LeaseLimitError,
  LeaseNotFoundError,
  LeaseTtlTooLargeError,
  NotPrimaryError,
  assert,
} from './errors.ts';
import { resolveLessorLimits, type LessorLimits } from './limits.ts';

/** A lease id: a non-zero signed 64-bit integer. 0 means "no lease" everywhere in the store. */
export type LeaseId = bigint;

/** Replicated facts about one lease. */
export interface LeaseInfo {
  readonly id: LeaseId;
  /** TTL in seconds as granted, after the minimum-TTL raise. */
  readonly grantedTtl: number;
  /** Last checkpointed remaining TTL in seconds; 0 = none, the full grantedTtl applies. */
  readonly checkpointedTtl: number;
  readonly keyCount: number;
}

export interface TimeToLive {
  readonly id: LeaseId;
  readonly grantedTtl: number;
  /**
   * Seconds left. On the primary: whole seconds until the deadline, truncated (etcd's
   * int64(Remaining().Seconds())), or -1 once the deadline has passed and the revoke is pending —
   * -1 is what clients already read as "expired". Elsewhere: the replicated estimate (checkpointed
   * remaining TTL, else the granted TTL); the server should ask the leader instead, as etcd does.
   */
  readonly remainingTtl: number;
  /** Attached keys in byte order (empty when keys were not asked for). */
  readonly keys: Uint8Array[];
  /** True when remainingTtl comes from this member's deadline (it is the promoted leader). */
  readonly primary: boolean;
}

export interface RenewResult {
  /** The lease's granted TTL in seconds: what a keep-alive answers. */
  readonly ttl: number;
  /**
   * True when the replicated state holds a checkpointed remaining TTL for this lease, now stale:
   * the server must propose checkpoint(id, 0) through the log, or a leader change would cut the
   * renewed lease short to that old remaining TTL. Only set when there is something to clear, so a
   * lease kept alive costs at most one extra log entry per checkpoint interval (etcd's trade-off).
   */
  readonly clearCheckpoint: boolean;
}

/** A remaining TTL the leader wants recorded through the log. */
export interface LeaseCheckpoint {
  readonly id: LeaseId;
  readonly remainingTtl: number;
}

const int64Min = -(1n << 63n);
const int64Max = (1n << 63n) - 1n;

/** One lease. Replicated fields first; the rest is the leader's bookkeeping. */
class LeaseRecord {
  /** Checkpointed remaining TTL in seconds, 0 = none. Always < grantedTtl (canonical form). */
  checkpointedTtl = 0;
  /** Attached keys, as hex. */
  readonly keys = new Set<string>();

  /** Leader only: when the lease expires (ms, caller's clock). Infinity when not primary. */
  deadlineMs = Infinity;
  /** Leader only: when expired() next looks at this lease: the deadline, or a retry after reporting it. */
  expiryCheckMs = Infinity;
  expiryHeapIndex = NOT_IN_HEAP;
  /** Leader only: when checkpointsDue() next considers this lease. */
  checkpointAtMs = Infinity;
  checkpointHeapIndex = NOT_IN_HEAP;

  constructor(
    readonly id: LeaseId,
    readonly grantedTtl: number,
  ) {}

  /** What a new leader's countdown starts from: the checkpoint if there is one, else the full TTL. */
  startingTtl(): number {
    return this.checkpointedTtl > 0 ? this.checkpointedTtl : this.grantedTtl;
  }
}

function byExpiry(a: LeaseRecord, b: LeaseRecord): boolean {
  return a.expiryCheckMs < b.expiryCheckMs || (a.expiryCheckMs === b.expiryCheckMs && a.id < b.id);
}

function byCheckpoint(a: LeaseRecord, b: LeaseRecord): boolean {
  return a.checkpointAtMs < b.checkpointAtMs || (a.checkpointAtMs === b.checkpointAtMs && a.id < b.id);
}

export class Lessor {
  readonly limits: LessorLimits;

  private readonly byId = new Map<LeaseId, LeaseRecord>();
  /** Which lease each attached key belongs to: a key has at most one lease, as in the store. */
  private readonly keyLease = new Map<string, LeaseRecord>();
  private primary = false;

  private readonly expiryHeap = new IndexedMinHeap<LeaseRecord>(byExpiry, {
    get: (r) => r.expiryHeapIndex,
    set: (r, i) => {
      r.expiryHeapIndex = i;
    },
  });
  private readonly checkpointHeap = new IndexedMinHeap<LeaseRecord>(byCheckpoint, {
    get: (r) => r.checkpointHeapIndex,
    set: (r, i) => {
      r.checkpointHeapIndex = i;
    },
  });

  constructor(limits: Partial<LessorLimits> = {}) {
    this.limits = resolveLessorLimits(limits);
  }

  // ─── Replicated state: same calls, same order, same results on every member ───────────────

  /**
   * The TTL a grant of `ttlSeconds` ends up with, or the error it meets: above the maximum is
   * refused, below the minimum is raised to it (etcd raises rather than rejects, so a client asking
   * for 1 s gets 2 s at default timing). The server may call this before proposing, so that the
   * logged TTL does not depend on each member's own configuration.
   */
  effectiveTtl(ttlSeconds: number): number {
    if (!Number.isSafeInteger(ttlSeconds)) throw new LeaseInvalidArgumentError(`TTL ${ttlSeconds} is not an integer number of seconds`);
    if (ttlSeconds > this.limits.ttlSecondsMax) throw new LeaseTtlTooLargeError(ttlSeconds, this.limits.ttlSecondsMax);
    return Math.max(ttlSeconds, this.limits.ttlSecondsMin);
  }

  /**
   * Creates a lease. `id` is chosen by the server (random, unused) before proposing; 0 is refused
   * here because 0 means "no lease" to the store. `now` is used only when this member is the
   * primary: the countdown starts at apply time with the full TTL (no extension: the leader was
   * there to see the grant).
   */
  grant(id: LeaseId, ttlSeconds: number, now: number): LeaseInfo {
    checkId(id);
    const ttl = this.effectiveTtl(ttlSeconds);
    if (this.byId.has(id)) throw new LeaseExistsError(id);
    if (this.byId.size >= this.limits.leasesMax) throw new LeaseLimitError(this.limits.leasesMax);
    const rec = new LeaseRecord(id, ttl);
    this.byId.set(id, rec);
    if (this.primary) {
      checkTime(now);
      this.setDeadline(rec, now + ttl * 1000);
      this.scheduleCheckpoint(rec, now);
    }
    return info(rec);
  }

  /**
   * Deletes a lease and hands back the keys that were attached to it, in byte order. The caller
   * deletes those keys in the same revision (the same write transaction as this revoke, so a crash
   * cannot keep one without the other). Byte order matters: deletes get sub-revisions in the order
   * given, and members that rebuilt their attachments from the store after a restart hold them in
   * a different insertion order than members that did not — sorting makes every member's
   * revision, and so its store hash, the same.
   */
  revoke(id: LeaseId): Uint8Array[] {
    const rec = this.byId.get(id);
    if (rec === undefined) throw new LeaseNotFoundError(id);
    this.byId.delete(id);
    this.expiryHeap.remove(rec);
    this.checkpointHeap.remove(rec);
    const keys = [...rec.keys].sort();
    for (const k of keys) this.keyLease.delete(k);
    rec.keys.clear();
    return keys.map(fromHex);
  }

  /**
   * Records a lease's remaining TTL, as proposed by a leader's checkpointsDue() (or 0, to clear, after
   * a renew). A checkpoint for a lease that no longer exists is ignored, not an error: a checkpoint
   * proposed before a revoke may well commit after it (etcd ignores it too). A remaining TTL at or
   * above the granted TTL is stored as "none", which means the same thing, so that the state has
   * one representation. Returns whether the lease existed.
   *
   * The leader's own deadline is not touched: the leader's clock is more precise than the
   * checkpoint, which only matters to the next leader.
   */
  checkpoint(id: LeaseId, remainingTtlSeconds: number): boolean {
    if (!Number.isSafeInteger(remainingTtlSeconds) || remainingTtlSeconds < 0) {
      throw new LeaseInvalidArgumentError(`remaining TTL ${remainingTtlSeconds} is not a non-negative integer`);
    }
    const rec = this.byId.get(id);
    if (rec === undefined) return false;
    rec.checkpointedTtl = remainingTtlSeconds < rec.grantedTtl ? remainingTtlSeconds : 0;
    return true;
  }

  /**
   * Attaches a key to a lease: the store calls this when a put sets a key's lease, and for every
   * leased key when it rebuilds attachments after a restart or snapshot. A key belongs to at most
   * one lease; attaching it elsewhere moves it, so a put that changes a key's lease may either
   * detach first or not. Throws LEASE_NOT_FOUND if the lease does not exist (the store checks
   * that before the put, so here it would be a lost race the caller must surface).
   */
  attach(id: LeaseId, key: Uint8Array): void {
    const rec = this.byId.get(id);
    if (rec === undefined) throw new LeaseNotFoundError(id);
    const k = toHex(key);
    const prev = this.keyLease.get(k);
    if (prev === rec) return;
    if (prev !== undefined) prev.keys.delete(k);
    rec.keys.add(k);
    this.keyLease.set(k, rec);
  }

  /**
   * Detaches a key: the store calls this when a put clears or changes a key's lease and when the
   * key is deleted. Returns whether the key was attached to that lease. Never throws for a missing
   * lease: deleting the keys of a revoked lease happens after revoke() removed it.
   */
  detach(id: LeaseId, key: Uint8Array): boolean {
    const rec = this.byId.get(id);
    if (rec === undefined) return false;
    const k = toHex(key);
    if (!rec.keys.delete(k)) return false;
    this.keyLease.delete(k);
    return true;
  }

  has(id: LeaseId): boolean {
    return this.byId.has(id);
  }

  get(id: LeaseId): LeaseInfo | undefined {
    const rec = this.byId.get(id);
    return rec === undefined ? undefined : info(rec);
  }

  /** The lease a key is attached to, or 0n. */
  leaseOf(key: Uint8Array): LeaseId {
    return this.keyLease.get(toHex(key))?.id ?? 0n;
  }

  /** Every lease, in ascending id order (so the answer is the same on every member). */
  leases(): LeaseInfo[] {
    return [...this.byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map(info);
  }

  get size(): number {
    return this.byId.size;
  }

  /** What a LeaseTimeToLive request answers; see TimeToLive for what remainingTtl means where. */
  timeToLive(id: LeaseId, now: number, includeKeys = true): TimeToLive {
    const rec = this.byId.get(id);
    if (rec === undefined) throw new LeaseNotFoundError(id);
    let remainingTtl: number;
    if (this.primary) {
      checkTime(now);
      remainingTtl = rec.deadlineMs > now ? Math.floor((rec.deadlineMs - now) / 1000) : -1;
    } else {
      remainingTtl = rec.startingTtl();
    }
    const keys = includeKeys ? [...rec.keys].sort().map(fromHex) : [];
    return { id, grantedTtl: rec.grantedTtl, remainingTtl, keys, primary: this.primary };
  }

  // ─── Volatile, leader only ─────────────────────────────────────────────────────────────────

  get isPrimary(): boolean {
    return this.primary;
  }

  /**
   * This member became leader and has applied every entry of earlier terms (etcd promotes when it
   * applies the new term's empty entry). Every deadline becomes now + remaining TTL (the checkpoint,
   * else the full TTL) + `extendMs`. The extension (etcd: the election timeout) covers the time
   * during which no leader could receive keep-alives: without it, a lease whose client did nothing
   * wrong could expire merely because an election happened.
   *
   * If so many leases would expire together that revoking them would exceed the revoke rate,
   * deadlines are spread out: no more than ¾ of the per-second revoke rate within any one second
   * (the other quarter stays free for leases that expire on their own schedule). Only ever later,
   * never earlier. etcd does the same for the same reason; the spreading rule here is our own:
   * in deadline order, the i-th lease expires no earlier than one second after the (i − target)-th.
   */
  promote(now: number, extendMs: number): void {
    checkTime(now);
    if (!Number.isSafeInteger(extendMs) || extendMs < 0) throw new LeaseInvalidArgumentError(`extension ${extendMs} is not a non-negative integer of ms`);
    this.primary = true;
    const recs = [...this.byId.values()];
    for (const r of recs) {
      r.deadlineMs = now + r.startingTtl() * 1000 + extendMs;
      r.expiryCheckMs = r.deadlineMs;
    }
    const target = Math.max(1, Math.floor((3 * this.limits.revokeRatePerSecond) / 4));
    if (recs.length > target) {
      recs.sort((a, b) => (byExpiry(a, b) ? -1 : byExpiry(b, a) ? 1 : 0));
      for (let i = target; i < recs.length; i++) {
        const r = recs[i]!;
        const floor = recs[i - target]!.deadlineMs + 1000;
        if (r.deadlineMs < floor) {
          r.deadlineMs = floor;
          r.expiryCheckMs = floor;
        }
      }
    }
    this.expiryHeap.rebuild(recs);
    const due: LeaseRecord[] = [];
    for (const r of recs) {
      if (this.wantsCheckpoints(r)) {
        r.checkpointAtMs = now + this.limits.checkpointIntervalMs;
        due.push(r);
      } else {
        r.checkpointAtMs = Infinity;
      }
    }
    this.checkpointHeap.rebuild(due);
  }

  /** This member is no longer leader: forget every deadline. Followers never expire leases. */
  demote(): void {
    this.primary = false;
    this.expiryHeap.clear();
    this.checkpointHeap.clear();
    for (const r of this.byId.values()) {
      r.deadlineMs = Infinity;
      r.expiryCheckMs = Infinity;
      r.checkpointAtMs = Infinity;
    }
  }

  /**
   * A keep-alive (an etcd LeaseKeepAlive, a ZooKeeper session heartbeat): the deadline becomes
   * now + granted TTL. Only the leader can do this (NOT_PRIMARY elsewhere: the server forwards to
   * the leader). A lease whose deadline already passed is not revived (LEASE_EXPIRED): its revoke
   * may be in flight, and reviving it here would not stop that.
   */
  renew(id: LeaseId, now: number): RenewResult {
    if (!this.primary) throw new NotPrimaryError();
    checkTime(now);
    const rec = this.byId.get(id);
    if (rec === undefined) throw new LeaseNotFoundError(id);
    if (rec.deadlineMs <= now) throw new LeaseExpiredError(id);
    this.setDeadline(rec, now + rec.grantedTtl * 1000);
    return { ttl: rec.grantedTtl, clearCheckpoint: rec.checkpointedTtl > 0 };
  }

  /** Leader only: the lease's deadline on the caller's clock, or undefined (not primary, no lease). */
  deadline(id: LeaseId): number | undefined {
    if (!this.primary) return undefined;
    return this.byId.get(id)?.deadlineMs;
  }

  /**
   * Leases whose deadline has passed, at most `max` of them, earliest first, for the server to
   * revoke through the log (size `max` with revokeBatchMax() to honour the revoke rate). Empty on a
   * follower. A lease reported here is not reported again for limits.expiredRetryMs, then again
   * if it still exists — the revoke proposal may have been lost.
   * Cost: O(k log n) for k leases returned, nothing for leases not yet due.
   */
  expired(now: number, max: number): LeaseId[] {
    checkTime(now);
    checkMax(max);
    const out: LeaseId[] = [];
    if (!this.primary) return out;
    while (out.length < max) {
      const top = this.expiryHeap.peek();
      if (top === undefined || top.expiryCheckMs > now) break;
      assert(top.deadlineMs <= now, `lease ${top.id} is due for an expiry check before its deadline`);
      out.push(top.id);
      top.expiryCheckMs = now + this.limits.expiredRetryMs;
      this.expiryHeap.update(top);
    }
    return out;
  }

  /**
   * Remaining TTLs worth recording through the log, at most `max` (size with checkpointCallMax()
   * and batch by limits.checkpointBatchMax per proposal). Only leases with a TTL longer than the
   * checkpoint interval take part; each is looked at once per interval and reported only when its
   * remaining TTL (rounded up to whole seconds, as etcd does) says something the log does not
   * already say: less than the full TTL, and different from the last checkpoint. Empty on a
   * follower.
   *
   * Unlike etcd, the next look is scheduled here rather than when the checkpoint is applied, so a
   * lost proposal or a skipped look (just renewed) does not end the lease's checkpoints.
   */
  checkpointsDue(now: number, max: number): LeaseCheckpoint[] {
    checkTime(now);
    checkMax(max);
    const out: LeaseCheckpoint[] = [];
    if (!this.primary) return out;
    while (out.length < max) {
      const top = this.checkpointHeap.peek();
      if (top === undefined || top.checkpointAtMs > now) break;
      top.checkpointAtMs = now + this.limits.checkpointIntervalMs;
      this.checkpointHeap.update(top);
      if (top.deadlineMs <= now) continue; // expired: its revoke, not a checkpoint, is next
      const remaining = Math.ceil((top.deadlineMs - now) / 1000);
      if (remaining >= top.grantedTtl || remaining === top.checkpointedTtl) continue;
      out.push({ id: top.id, remainingTtl: remaining });
    }
    return out;
  }

  // ─── Persistence ───────────────────────────────────────────────────────────────────────────

  /** The replicated state (ids, granted TTLs, checkpoints) in the format described in codec.ts. */
  serialize(): Uint8Array {
    const recs: PersistedLease[] = this.leases().map((l) => ({ id: l.id, grantedTtl: l.grantedTtl, remainingTtl: l.checkpointedTtl }));
    return encodeLessorState(recs);
  }

  /**
   * Replaces the whole state with a serialized one (startup, or a snapshot from the leader).
   * Attachments start empty: the caller then attaches every leased key found in the store.
   * TTLs are taken as stored — not raised to this member's minimum — because restoring must not
   * change replicated state outside the log. Only a follower restores: a leader never installs
   * someone else's snapshot, and its deadlines would be lost.
   */
  restore(bytes: Uint8Array): void {
    assert(!this.primary, 'restore() on a primary lessor');
    const leases = decodeLessorState(bytes);
    this.byId.clear();
    this.keyLease.clear();
    this.expiryHeap.clear();
    this.checkpointHeap.clear();
    for (const l of leases) {
      const rec = new LeaseRecord(l.id, l.grantedTtl);
      rec.checkpointedTtl = l.remainingTtl;
      this.byId.set(l.id, rec);
    }
  }

  /** Cross-checks the internal indexes; for tests and debug builds. */
  checkInvariants(): void {
    this.expiryHeap.check();
    this.checkpointHeap.check();
    let keys = 0;
    for (const r of this.byId.values()) {
      assert(r.checkpointedTtl >= 0 && r.checkpointedTtl < r.grantedTtl, `lease ${r.id} checkpoint out of range`);
      for (const k of r.keys) assert(this.keyLease.get(k) === r, `key ${k} of lease ${r.id} not indexed to it`);
      keys += r.keys.size;
      assert(this.expiryHeap.has(r) === this.primary, `lease ${r.id} expiry heap membership`);
      assert(this.checkpointHeap.has(r) === (this.primary && this.wantsCheckpoints(r)), `lease ${r.id} checkpoint heap membership`);
    }
    assert(keys === this.keyLease.size, 'key index holds keys of no lease');
    assert(this.expiryHeap.size === (this.primary ? this.byId.size : 0), 'expiry heap holds removed leases');
  }

  // ─── Internals ─────────────────────────────────────────────────────────────────────────────

  private setDeadline(rec: LeaseRecord, deadlineMs: number): void {
    rec.deadlineMs = deadlineMs;
    rec.expiryCheckMs = deadlineMs;
    this.expiryHeap.update(rec);
  }

  /** Short leases are not checkpointed: losing their progress costs at most one TTL. */
  private wantsCheckpoints(rec: LeaseRecord): boolean {
    return rec.grantedTtl * 1000 > this.limits.checkpointIntervalMs;
  }

  private scheduleCheckpoint(rec: LeaseRecord, now: number): void {
    if (!this.wantsCheckpoints(rec)) return;
    rec.checkpointAtMs = now + this.limits.checkpointIntervalMs;
    this.checkpointHeap.update(rec);
  }
}

function info(rec: LeaseRecord): LeaseInfo {
  return { id: rec.id, grantedTtl: rec.grantedTtl, checkpointedTtl: rec.checkpointedTtl, keyCount: rec.keys.size };
}

function checkId(id: LeaseId): void {
  if (typeof id !== 'bigint' || id === 0n || id < int64Min || id > int64Max) {
    throw new LeaseInvalidArgumentError(`lease id ${String(id)} is not a non-zero int64`);
  }
}

/** `now` must be a finite number; a NaN would silently make every comparison false. */
function checkTime(now: number): void {
  if (!Number.isFinite(now)) throw new LeaseInvalidArgumentError(`time ${now} is not a finite number of ms`);
}

function checkMax(max: number): void {
  if (!Number.isSafeInteger(max) || max < 0) throw new LeaseInvalidArgumentError(`batch size ${max} is not a non-negative integer`);
}

function toHex(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('hex');
}

function fromHex(hex: string): Uint8Array {
  const b = Buffer.from(hex, 'hex');
  // A plain Uint8Array, not a Buffer view of Node's shared pool: callers may keep it indefinitely.
  return new Uint8Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}
