/**
 * Raised alarms, as the state machine records them: (member, type) pairs in the MVCC store's
 * meta space, so every member agrees on them and they survive restarts and snapshots. While
 * NOSPACE is raised anywhere, the cluster refuses requests that would grow the store (etcd's
 * "capped" applier) until an operator frees space and disarms it. CORRUPT (raised by the
 * leader's consistency check, corruption.ts) refuses every write and lease grant or revoke
 * (etcd's "corrupt" applier) until disarmed; see ApplyMachine.
 */
import type { MetaReader, MetaWriter, MvccRequest, RequestOp } from '../mvcc/index.ts';
import type { AlarmType } from './request-codec.ts';

export const ALARMS_NAMESPACE = 'alarms';

export interface AlarmRecord {
  readonly memberId: string;
  readonly alarm: Exclude<AlarmType, 'NONE'>;
}

/** What an applied alarm request answers: the alarms it raised or cleared (etcd's AlarmResponse). */
export interface AlarmResponse {
  readonly op: 'alarm';
  readonly alarms: readonly AlarmRecord[];
}

const TYPES: ReadonlyArray<AlarmRecord['alarm']> = ['NOSPACE', 'CORRUPT'];

function key(a: AlarmRecord): Uint8Array {
  return Buffer.concat([Buffer.from(a.memberId.padStart(16, '0'), 'hex'), Buffer.of(TYPES.indexOf(a.alarm))]);
}

export function readAlarms(meta: MetaReader): AlarmRecord[] {
  return meta.entries(ALARMS_NAMESPACE).map((e) => {
    const k = Buffer.from(e.key);
    const alarm = TYPES[k[8]!];
    if (alarm === undefined) throw new Error(`unknown alarm type ${k[8]} in the store`);
    return { memberId: k.subarray(0, 8).toString('hex'), alarm };
  });
}

export function raiseAlarm(meta: MetaWriter, a: AlarmRecord): void {
  meta.put(ALARMS_NAMESPACE, key(a), new Uint8Array(0));
}

export function clearAlarm(meta: MetaWriter, a: AlarmRecord): void {
  meta.delete(ALARMS_NAMESPACE, key(a));
}

/** Bytes of keys and values the operation may write; null when it writes nothing new. */
function opGrowth(op: RequestOp): number | null {
  if (op.op === 'put') return op.request.key.byteLength + op.request.value.byteLength;
  if (op.op !== 'txn') return null;
  let total: number | null = null;
  for (const sub of [...op.request.success, ...op.request.failure]) {
    const g = opGrowth(sub);
    if (g !== null) total = (total ?? 0) + g;
  }
  return total;
}

/**
 * What the request may add to the store, for the quota check; null when it cannot grow it
 * (reads, deletes, compaction), which is what stays allowed while NOSPACE is raised.
 */
export function storeGrowth(request: MvccRequest): number | null {
  return request.op === 'compact' ? null : opGrowth(request);
}
