/**
 * Member and cluster identities, derived as etcd derives them so that a restart (or a member
 * rebuilt from the same flags) keeps its identity:
 *   member ID  = first 8 bytes (big-endian) of SHA-1(sorted peer URLs joined, + cluster token)
 *   cluster ID = first 8 bytes of SHA-1(the member IDs, sorted, each 8 bytes big-endian)
 * IDs are 64-bit; they travel as lower-case hex strings inside Conclave and as uint64 on etcd's wire.
 */
import { createHash } from 'node:crypto';

export function memberId(peerUrls: readonly string[], clusterToken: string): string {
  const h = createHash('sha1').update([...peerUrls].sort().join('') + clusterToken).digest();
  return h.subarray(0, 8).toString('hex');
}

export function clusterId(memberIds: readonly string[]): string {
  const sorted = [...memberIds].map((id) => BigInt(`0x${id}`)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const buf = Buffer.alloc(8 * sorted.length);
  sorted.forEach((id, i) => buf.writeBigUInt64BE(id, 8 * i));
  return createHash('sha1').update(buf).digest().subarray(0, 8).toString('hex');
}

/** Hex id → the unsigned 64-bit decimal string etcd's JSON and protobuf Long conversions use. */
export function idToDecimal(id: string): string {
  let d = decimalIds.get(id);
  if (d === undefined) {
    d = BigInt(`0x${id}`).toString(10);
    // Every response header carries two ids; there are only a handful of distinct ones.
    if (decimalIds.size < 1024) decimalIds.set(id, d);
  }
  return d;
}

const decimalIds = new Map<string, string>();

/** A uint64 as protobufjs takes it for a 64-bit field: its two 32-bit halves (no decimal parse per message). */
export interface Uint64Halves {
  readonly low: number;
  readonly high: number;
  readonly unsigned: true;
}

/** Hex id → its two halves for protobuf encoding (cached: response headers carry two per message). */
export function idToUint64(id: string): Uint64Halves {
  let v = uint64Ids.get(id);
  if (v === undefined) {
    const n = BigInt(`0x${id}`);
    v = Object.freeze({ low: Number(n & 0xffffffffn) | 0, high: Number(n >> 32n) | 0, unsigned: true as const });
    if (uint64Ids.size < 1024) uint64Ids.set(id, v);
  }
  return v;
}

const uint64Ids = new Map<string, Uint64Halves>();
