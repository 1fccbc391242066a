/**
 * etcdctl's JSON output: the protobuf messages as Go's encoding/json writes them — snake_case
 * field names, bytes in base64, 64-bit integers as plain numbers (exact: they are bigints here),
 * and every field at its zero value left out (the Go structs' omitempty).
 */
import type { KeyValue, ResponseHeader } from '../client/index.ts';

export type Json = null | boolean | number | bigint | string | Buffer | readonly Json[] | { readonly [k: string]: Json | undefined };

function isZero(v: Json | undefined): boolean {
  return v === undefined || v === null || v === false || v === 0 || v === 0n || v === '' || (Buffer.isBuffer(v) && v.length === 0) || (Array.isArray(v) && v.length === 0);
}

/** One JSON text: bigints as their digits, Buffers in base64, zero-valued object fields omitted. */
export function toJson(v: Json): string {
  if (typeof v === 'bigint') return v.toString();
  if (Buffer.isBuffer(v)) return JSON.stringify(v.toString('base64'));
  if (Array.isArray(v)) return `[${v.map(toJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const fields = Object.entries(v as { [k: string]: Json | undefined }).filter(([, x]) => !isZero(x));
    return `{${fields.map(([k, x]) => `${JSON.stringify(k)}:${toJson(x!)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/** A member or cluster id printed in hex back to its uint64. */
export function idNumber(hex: string): bigint {
  return BigInt(`0x${hex}`);
}

export function headerJson(h: ResponseHeader): Json {
  return { cluster_id: idNumber(h.clusterId), member_id: idNumber(h.memberId), revision: h.revision, raft_term: h.raftTerm };
}

export function kvJson(kv: KeyValue): Json {
  return { key: kv.key, create_revision: kv.createRevision, mod_revision: kv.modRevision, version: kv.version, value: kv.value, lease: kv.lease };
}

/** A lease id as etcdctl prints it: 16 hex digits (%016x). */
export function leaseHex(id: bigint): string {
  return BigInt.asUintN(64, id).toString(16).padStart(16, '0');
}

export function print(text: string): void {
  process.stdout.write(text);
}
