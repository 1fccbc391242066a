/**
 * A distributed lock: etcd's Mutex algorithm, so it interoperates with `etcdctl lock` and etcd's
 * own clients on the same prefix.
 *
 * Each contender puts `<prefix>/<lease id in hex>` (attached to its session lease) if absent.
 * The contender whose key has the lowest create revision holds the lock; the others each wait
 * for the deletion of the key created just before their own, then check again. That create
 * revision is the fencing token: strictly increasing across holders, so a resource guarded by
 * the lock can refuse a stale holder (`isOwner()` gives the txn comparison for exactly that).
 * Unlock deletes the key; a holder whose session lease expires loses the lock with it.
 */
import { IndeterminateError, SessionExpiredError } from '../errors.ts';
import type { ResponseHeader } from '../kv.ts';
import { compare, getAt, op, type Compare } from '../txn.ts';
import { anySignal, checkSignal, waitDeletes } from './wait.ts';
import { Contender } from './contender.ts';

export class Mutex extends Contender {
  /** The fencing token: the lock key's create revision (0 when not locked). */
  get token(): number {
    return this.myRev;
  }

  /**
   * Waits until this contender holds the lock and returns the fencing token. On abort or error
   * the contender's key is removed again.
   */
  async lock(options: { signal?: AbortSignal } = {}): Promise<number> {
    const signal = anySignal(options.signal, this.session.lostSignal);
    const owner = await this.enqueue(signal);
    if (owner) return this.myRev;
    try {
      this.hdr = await waitDeletes(this.client, this.pfx, this.myRev - 1, signal);
      await this.checkSession();
    } catch (e) {
      await this.unlock().catch(() => {});
      throw this.session.isLost ? new SessionExpiredError(`lock ${this.pfx}: session lease lost`, undefined, { cause: e }) : e;
    }
    return this.myRev;
  }

  /** Takes the lock if it is free, without waiting; undefined if another holds it. */
  async tryLock(): Promise<number | undefined> {
    if (await this.enqueue(this.session.lostSignal)) return this.myRev;
    await this.unlock();
    return undefined;
  }

  /** Releases the lock (or gives up waiting for it); returns the header of the release. */
  async unlock(): Promise<ResponseHeader | undefined> {
    if (this.myKey === undefined) return undefined;
    const r = await this.client.delete(this.myKey);
    this.myKey = undefined;
    this.myRev = 0;
    return r.header;
  }

  /** A txn comparison that holds only while this contender owns the lock. */
  isOwner(): Compare {
    if (this.myKey === undefined) throw new TypeError('not locked');
    return compare.createRevision(this.myKey, '=', this.myRev);
  }

  /** Puts this contender's key if absent; true if it holds the lock at once. */
  private async enqueue(signal: AbortSignal): Promise<boolean> {
    const key = this.ownKey();
    const firstCreated = op.get(this.pfx, { prefix: true, sort: { target: 'CREATE', order: 'ASCEND' }, limit: 1 });
    for (;;) {
      checkSignal(signal);
      try {
        // Idempotent per lease: if an earlier try was applied, this one reads the key instead.
        const r = await this.client
          .txn()
          .if(compare.createRevision(key, '=', 0))
          .then(op.put(key, '', { lease: this.session.id }), firstCreated)
          .else(op.get(key), firstCreated)
          .commit();
        this.myKey = key;
        this.myRev = r.succeeded ? r.header.revision : getAt(r, 0).kvs[0]!.createRevision;
        this.hdr = r.header;
        const first = getAt(r, 1).kvs[0];
        return first === undefined || first.createRevision === this.myRev;
      } catch (e) {
        if (!(e instanceof IndeterminateError)) throw e;
      }
    }
  }

  /** The key may be gone with the session while we waited. */
  private async checkSession(): Promise<void> {
    const r = await this.client.get(this.myKey!);
    if (r.kvs.length === 0) throw new SessionExpiredError(`lock ${this.pfx}: the lock key is gone (session expired)`);
  }
}
