/**
 * Leader election: etcd's Election algorithm (compatible with `etcdctl elect` and etcd's
 * clients on the same prefix).
 *
 * A candidate puts `<prefix>/<lease id in hex>` = its value, attached to its session lease; the
 * candidate with the lowest create revision leads. campaign() returns once every earlier
 * candidate's key is gone. The leader's key create revision identifies its term: proclaim and
 * resign act only while the key still has that create revision, so a deposed leader cannot
 * speak for a later term.
 */
import { CompactedError, ElectionNoLeaderError, ElectionNotLeaderError, IndeterminateError, SessionExpiredError } from '../errors.ts';
import type { Bytes, KeyValue, ResponseHeader } from '../kv.ts';
import { compare, getAt, op, type Compare } from '../txn.ts';
import { anySignal, checkSignal, waitDeletes, waitEvent } from './wait.ts';
import { Contender } from './contender.ts';

export class Election extends Contender {
  /** The create revision of this candidate's key: its term, once it leads. */
  get revision(): number {
    return this.myRev;
  }

  /** Campaigns with `value` and resolves once this candidate is the leader. */
  async campaign(value: Bytes, options: { signal?: AbortSignal } = {}): Promise<void> {
    const signal = anySignal(options.signal, this.session.lostSignal);
    const key = this.ownKey();
    for (;;) {
      checkSignal(signal);
      try {
        // Idempotent per lease: an earlier try that was applied makes this one read the key.
        const r = await this.client
          .txn()
          .if(compare.createRevision(key, '=', 0))
          .then(op.put(key, value, { lease: this.session.id }))
          .else(op.get(key))
          .commit();
        this.myKey = key;
        this.myRev = r.header.revision;
        if (!r.succeeded) {
          const kv = getAt(r, 0).kvs[0]!;
          this.myRev = kv.createRevision;
          if (!kv.value.equals(Buffer.from(value))) await this.proclaim(value);
        }
        break;
      } catch (e) {
        if (!(e instanceof IndeterminateError)) throw e;
      }
    }
    try {
      this.hdr = await waitDeletes(this.client, this.pfx, this.myRev - 1, signal);
    } catch (e) {
      await this.resign().catch(() => {});
      throw this.session.isLost ? new SessionExpiredError(`election ${this.pfx}: session lease lost`, undefined, { cause: e }) : e;
    }
  }

  /** Changes the leader's value without an election; fails if this candidate no longer leads. */
  async proclaim(value: Bytes): Promise<void> {
    if (this.myKey === undefined) throw new ElectionNotLeaderError('election: not leader');
    const r = await this.client.txn().if(this.isLeader()).then(op.put(this.myKey, value, { lease: this.session.id })).commit();
    if (!r.succeeded) {
      this.myKey = undefined;
      throw new ElectionNotLeaderError('election: not leader');
    }
  }

  /** Gives up leadership (or the candidacy); a no-op if this candidate is not campaigning. */
  async resign(): Promise<ResponseHeader | undefined> {
    if (this.myKey === undefined) return undefined;
    const r = await this.client.txn().if(this.isLeader()).then(op.delete(this.myKey)).commit();
    this.myKey = undefined;
    this.myRev = 0;
    return r.header;
  }

  /** A txn comparison that holds only while this candidate's term lasts. */
  isLeader(): Compare {
    if (this.myKey === undefined) throw new ElectionNotLeaderError('election: not leader');
    return compare.createRevision(this.myKey, '=', this.myRev);
  }

  /** The current leader's key-value. */
  async leader(): Promise<KeyValue> {
    const r = await this.client.get(this.pfx, { prefix: true, sort: { target: 'CREATE', order: 'ASCEND' }, limit: 1 });
    const kv = r.kvs[0];
    if (kv === undefined) throw new ElectionNoLeaderError('election: no leader');
    return kv;
  }

  /**
   * The leaders as they come and go: the current one first (once there is one), then each
   * value it proclaims and each successor with its values, in order and without gaps: after a
   * leader's key is deleted, the successor is read at the revision of that deletion. (If that
   * revision is compacted meanwhile, observation goes on from the current leader.) Ends with
   * the signal's reason when it aborts.
   */
  async *observe(options: { signal?: AbortSignal } = {}): AsyncGenerator<KeyValue> {
    const signal = options.signal;
    let at = 0;
    for (;;) {
      checkSignal(signal);
      let leader: KeyValue | undefined;
      let revision: number;
      try {
        const r = await this.client.get(this.pfx, { prefix: true, sort: { target: 'CREATE', order: 'ASCEND' }, limit: 1, revision: at, signal });
        leader = r.kvs[0];
        revision = at === 0 ? r.header.revision : at;
      } catch (e) {
        if (!(e instanceof CompactedError)) throw e;
        at = 0;
        continue;
      }
      if (leader === undefined) {
        // No leader at that point: the first key put under the prefix after it is the next one.
        const e = await waitEvent(this.client, this.pfx, revision + 1, 'put', signal, { prefix: true });
        leader = e.kv;
        revision = e.kv.modRevision;
      }
      yield leader;
      // Follow the leader's key until it is deleted, reporting changes of its value.
      const watcher = this.client.watch(leader.key, { startRevision: revision + 1 });
      const onAbort = (): void => watcher.close();
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        for await (const e of watcher) {
          if (e.type === 'delete') {
            at = e.kv.modRevision;
            break;
          }
          if (!e.kv.value.equals(leader.value)) {
            leader = e.kv;
            yield leader;
          }
        }
      } finally {
        signal?.removeEventListener('abort', onAbort);
        watcher.close();
      }
    }
  }
}
