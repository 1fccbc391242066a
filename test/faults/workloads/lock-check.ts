/**
 * Lock guarantees checked against the store's history, pure. The lock is etcd's recipe
 * (locks.ts): each contender creates a key under the lock prefix, attached to its lease; the
 * owner is the live key with the lowest create revision, which is also the owner's fencing
 * token. A fenced write is a Txn that puts the protected resource only if the writer's lock key
 * still has its create revision.
 *
 *   mutual exclusion: a client that concluded it owns the lock, at the revision of the response
 *     that told it so, was the owner then: its key was live and no live key was older;
 *   unique tokens: no two acquisitions share a token;
 *   fencing: the resource's writes, in revision order, carry tokens that never decrease, so each
 *     holder's writes come after every earlier holder's (tokens strictly increase across holders).
 */
import type { WatchedEvent } from './watch-check.ts';

export interface Acquisition {
  readonly client: number;
  readonly token: number;
  /** The revision of the response from which the client concluded it holds the lock. */
  readonly revision: number;
  readonly at: number;
}

export interface LockAnomaly {
  readonly kind: string;
  readonly details: string;
}

/** The lock prefix's live keys (name → create revision) after each revision of `history`. */
function ownerAt(history: readonly WatchedEvent[], lockPrefix: string): (revision: number) => { key: string; created: number } | undefined {
  // Snapshots after each revision, as a sorted list of (revision, owner).
  const owners: { revision: number; owner: { key: string; created: number } | undefined }[] = [];
  const live = new Map<string, number>();
  for (const e of history) {
    if (!e.key.startsWith(lockPrefix)) continue;
    // Lock keys are created once (a fresh lease each) and then deleted: a PUT is the creation.
    if (e.type === 'PUT' && !live.has(e.key)) live.set(e.key, e.revision);
    if (e.type === 'DELETE') live.delete(e.key);
    let owner: { key: string; created: number } | undefined;
    for (const [key, created] of live) if (owner === undefined || created < owner.created) owner = { key, created };
    if (owners.at(-1)?.revision === e.revision) owners[owners.length - 1] = { revision: e.revision, owner };
    else owners.push({ revision: e.revision, owner });
  }
  return (revision) => {
    let lo = 0;
    let hi = owners.length - 1;
    let found: (typeof owners)[number] | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (owners[mid]!.revision <= revision) {
        found = owners[mid];
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found?.owner;
  };
}

export function checkLock(acquisitions: readonly Acquisition[], history: readonly WatchedEvent[], lockPrefix: string, resourceKey: string): LockAnomaly[] {
  const anomalies: LockAnomaly[] = [];
  const owner = ownerAt(history, lockPrefix);
  for (const a of acquisitions) {
    const o = owner(a.revision);
    if (o?.created !== a.token) {
      anomalies.push({
        kind: 'mutual exclusion violated',
        details: `client ${a.client} concluded at revision ${a.revision} (${(a.at / 1000).toFixed(3)} s) that it holds the lock with token ${a.token}, but the owner then was ${o === undefined ? 'nobody' : `${o.key} (token ${o.created})`}`,
      });
      break;
    }
  }
  const byToken = new Map<number, Acquisition>();
  for (const a of acquisitions) {
    const other = byToken.get(a.token);
    if (other !== undefined) {
      anomalies.push({ kind: 'token granted twice', details: `token ${a.token} acquired by client ${other.client} at revision ${other.revision} and by client ${a.client} at revision ${a.revision}` });
      break;
    }
    byToken.set(a.token, a);
  }
  let highest: { token: number; revision: number } | undefined;
  for (const e of history) {
    if (e.key !== resourceKey || e.type !== 'PUT') continue;
    const token = Number(e.value.split(':')[0]);
    if (highest !== undefined && token < highest.token) {
      anomalies.push({ kind: 'fencing token went backwards', details: `${resourceKey} written with token ${token} at revision ${e.revision}, after token ${highest.token} wrote it at revision ${highest.revision}` });
      break;
    }
    highest = { token, revision: e.revision };
  }
  return anomalies;
}
