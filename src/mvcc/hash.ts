/**
 * Consistency hashes. Both read a pinned LMDB snapshot in slices of `hashSliceEntries`,
 * yielding to the event loop between slices so applies continue meanwhile.
 *
 * hashKV(rev) follows etcd's HashByRev (server/storage/mvcc/kvstore.go, hash.go): CRC over the
 * kv records with main ≤ rev, where a record with main ≤ compactRevision counts only if it is the
 * latest put of its key at rev (the index's keep(rev); tombstones never count). Two members that
 * applied the same requests, compactions included, agree whatever their physical compaction has
 * freed so far. Deliberate differences: the CRC is CRC-32 (IEEE) over this store's own encoding,
 * so values are not comparable with etcd's; and etcd hashes every compacted-range record when
 * keep(rev) is empty (`len(keep) > 0` guard), which would make the hash depend on how far
 * physical compaction got — here the rule applies always.
 *
 * hash() covers every kv and meta record except the consistent index (etcd also ignores it);
 * unlike hashKV it depends on physical compaction progress, as etcd's Hash does.
 */
import { crc32 } from 'node:zlib';
import { metaKeys, readU64, revKey, revKeyBytes, revKeyString } from './codec.ts';
import { CompactedError, FutureRevisionError, StoreClosedError } from './errors.ts';
import type { RangeEntry, ReadSnapshot } from './backend.ts';
import type { SnapshotRegistry, StoreState } from './state.ts';
import type { HashKVResult, HashResult } from './types.ts';

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Iterates a database in slices, yielding between them. */
async function forEachSliced(
  s: StoreState,
  range: (o: { start?: Buffer; exclusiveStart?: boolean; end?: Buffer; limit: number; snapshot: ReadSnapshot }) => Iterable<RangeEntry>,
  snap: ReadSnapshot,
  end: Buffer | undefined,
  visit: (e: RangeEntry) => void,
): Promise<void> {
  const limit = s.limits.hashSliceEntries;
  let start: Buffer | undefined;
  for (;;) {
    if (s.closed) throw new StoreClosedError();
    const o: { start?: Buffer; exclusiveStart?: boolean; end?: Buffer; limit: number; snapshot: ReadSnapshot } = { limit, snapshot: snap };
    if (end !== undefined) o.end = end;
    if (start !== undefined) {
      o.start = start;
      o.exclusiveStart = true;
    }
    let n = 0;
    let last: Buffer | undefined;
    for (const e of range(o)) {
      n++;
      last = e.key;
      visit(e);
    }
    if (n < limit) return;
    start = Buffer.from(last!);
    await nextTurn();
  }
}

export async function hashKV(s: StoreState, reg: SnapshotRegistry, revision: number): Promise<HashKVResult> {
  if (s.closed) throw new StoreClosedError();
  const compactRev = s.compactRev;
  const currentRev = s.currentRev;
  if (revision > 0 && revision < compactRev) throw new CompactedError();
  if (revision > 0 && revision > currentRev) throw new FutureRevisionError();
  const rev = revision > 0 ? revision : currentRev;
  const keep = s.index.keep(rev, revKeyString);
  const { backend, snap, release } = reg.pin(s);
  try {
    let crc = crc32('kv');
    await forEachSliced(s, (o) => backend.kvRange(o), snap, revKey(rev + 1, 0, false), ({ key, value }) => {
      if (readU64(key, 0) <= compactRev && !keep.has(key.toString('latin1', 0, revKeyBytes))) return;
      crc = crc32(key, crc);
      crc = crc32(value, crc);
    });
    return { hash: crc >>> 0, compactRevision: compactRev, hashRevision: rev, revision: currentRev };
  } finally {
    release();
  }
}

export async function hashAll(s: StoreState, reg: SnapshotRegistry): Promise<HashResult> {
  if (s.closed) throw new StoreClosedError();
  const currentRev = s.currentRev;
  const ignored = Buffer.from(metaKeys.consistentIndex, 'utf8');
  const { backend, snap, release } = reg.pin(s);
  try {
    let crc = crc32('kv');
    await forEachSliced(s, (o) => backend.kvRange(o), snap, undefined, ({ key, value }) => {
      crc = crc32(key, crc);
      crc = crc32(value, crc);
    });
    crc = crc32('meta', crc);
    await forEachSliced(s, (o) => backend.metaRange(o), snap, undefined, ({ key, value }) => {
      if (key.equals(ignored)) return;
      crc = crc32(key, crc);
      crc = crc32(value, crc);
    });
    return { hash: crc >>> 0, revision: currentRev };
  } finally {
    release();
  }
}
