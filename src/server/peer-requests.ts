/**
 * What one member asks another over the peer transport (Transport.request), as etcd's peer
 * HTTP handlers serve it. One kind so far, the consistency checker's:
 *
 *   request        u8 kind (1 = HashKV) · uint revision (0 = the member's current one)
 *   HashKV answer  member id (string) · uint revision (current) · int64 compact revision
 *                  (-1 before the first compaction) · uint hash · uint hash revision
 *
 * A failure (compacted or future revision, member stopping) travels as the transport's error text.
 */
import type { HashKVResult } from '../mvcc/index.ts';
import { CodecError, Reader, Writer } from '../util/binary.ts';

const HASH_KV = 1;

export interface PeerHashKVRequest {
  readonly op: 'hashKV';
  readonly revision: number;
}

export type PeerRequest = PeerHashKVRequest;

/** A member's HashKV as another member receives it. */
export interface PeerHashKV extends HashKVResult {
  readonly memberId: string;
}

export function encodePeerRequest(r: PeerRequest): Uint8Array {
  const w = new Writer(16);
  w.u8(HASH_KV);
  w.uint(r.revision);
  return w.finish();
}

export function decodePeerRequest(body: Uint8Array): PeerRequest {
  const r = new Reader(body);
  const kind = r.u8();
  if (kind !== HASH_KV) throw new CodecError(`unknown peer request kind ${kind}`);
  const revision = r.uint();
  r.done();
  return { op: 'hashKV', revision };
}

export function encodePeerHashKV(h: PeerHashKV): Uint8Array {
  const w = new Writer(64);
  w.string(h.memberId);
  w.uint(h.revision);
  w.int64(BigInt(h.compactRevision));
  w.uint(h.hash);
  w.uint(h.hashRevision);
  return w.finish();
}

export function decodePeerHashKV(body: Uint8Array): PeerHashKV {
  const r = new Reader(body);
  const memberId = r.string();
  const revision = r.uint();
  const compactRevision = Number(r.int64());
  const hash = r.uint();
  const hashRevision = r.uint();
  r.done();
  return { memberId, revision, compactRevision, hash, hashRevision };
}
