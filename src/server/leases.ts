/**
 * Lease state as the state machine keeps it. Each lease's replicated facts (id, granted TTL,
 * checkpointed TTL) are a record in the store's 'leases' meta namespace, written in the same
 * transaction as the entry that changed them; key attachments are not stored separately, since
 * every leased key carries its lease in the store. So after a restart or a snapshot install the
 * lessor is rebuilt from the meta records plus one scan of the keys, before any entry applies.
 */
import { encodeLessorState, type PersistedLease } from '../lease/codec.ts';
import type { LeaseInfo, Lessor } from '../lease/index.ts';
import type { MetaReader, MetaWriter, MvccEvent, MvccStore } from '../mvcc/index.ts';

export const LEASES_NAMESPACE = 'leases';

/** Id as 8 bytes big-endian (two's complement); the record order does not matter to restore. */
function idKey(id: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigInt64(0, id);
  return b;
}

export function writeLease(meta: MetaWriter, l: Pick<LeaseInfo, 'id' | 'grantedTtl' | 'checkpointedTtl'>): void {
  const v = new Uint8Array(16);
  const d = new DataView(v.buffer);
  d.setBigUint64(0, BigInt(l.grantedTtl));
  d.setBigUint64(8, BigInt(l.checkpointedTtl));
  meta.put(LEASES_NAMESPACE, idKey(l.id), v);
}

export function deleteLease(meta: MetaWriter, id: bigint): void {
  meta.delete(LEASES_NAMESPACE, idKey(id));
}

export function readLeases(meta: MetaReader): PersistedLease[] {
  const out = meta.entries(LEASES_NAMESPACE).map((e): PersistedLease => {
    if (e.key.byteLength !== 8 || e.value.byteLength !== 16) throw new Error('malformed lease record in the store');
    const k = new DataView(e.key.buffer, e.key.byteOffset, 8);
    const v = new DataView(e.value.buffer, e.value.byteOffset, 16);
    return { id: k.getBigInt64(0), grantedTtl: Number(v.getBigUint64(0)), remainingTtl: Number(v.getBigUint64(8)) };
  });
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** The whole key space, as a range request means it (key "\0", range_end "\0"). */
const ALL = Uint8Array.of(0);

/** Replaces the lessor's state with the store's: lease records, then every leased key attached. */
export function loadLessor(lessor: Lessor, store: MvccStore): void {
  lessor.restore(encodeLessorState(readLeases(store.meta)));
  for (const kv of store.range({ key: ALL, rangeEnd: ALL }).kvs) {
    if (kv.lease !== 0n && lessor.has(kv.lease)) lessor.attach(kv.lease, kv.key);
  }
}

/**
 * Follows keys' leases through committed changes, so every member attaches and detaches the same
 * keys in log order: a put naming a lease attaches (moving the key off its previous lease), a
 * delete or a put clearing the lease detaches.
 */
export function trackAttachments(lessor: Lessor, events: readonly MvccEvent[]): void {
  for (const e of events) {
    const prev = e.prevKv?.lease ?? 0n;
    const next = e.type === 'PUT' ? e.kv.lease : 0n;
    if (prev !== 0n && prev !== next) lessor.detach(prev, e.kv.key);
    // The store refuses puts naming a missing lease, so the lease exists here.
    if (next !== 0n && lessor.has(next)) lessor.attach(next, e.kv.key);
  }
}

/** Puts the lessor in step with a just-opened store and keeps it there as entries apply. */
export function bindLessor(lessor: Lessor, store: MvccStore): () => void {
  loadLessor(lessor, store);
  return store.onCommit((_rev, events) => trackAttachments(lessor, events));
}
