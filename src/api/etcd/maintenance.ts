/**
 * etcd's Maintenance service: Status (etcdctl endpoint status), Alarm (list, and disarm after
 * freeing space), Hash and HashKV (compare members), Defragment, Snapshot (etcdctl snapshot
 * save: the snapshot file of snapshot-file.ts as a stream) and MoveLeader.
 */
import type { Service } from 'protobufjs';
import { serverStream, unary, type CallContext, type ServiceImpl } from '../grpc/index.ts';
import type { AlarmRecord } from '../../server/alarms.ts';
import type { Member } from '../../server/member.ts';
import { idToDecimal } from '../../server/ids.ts';
import type { AlarmType } from '../../server/request-codec.ts';
import { fileChunks } from '../../server/snapshot-file.ts';
import { header, hexId, num, type Int64 } from './convert.ts';
import { ETCD_ERRORS, toGrpcError, toRawAuthGrpcError } from './errors.ts';
import { grpcHandler } from './kv.ts';
import { callerOf } from './auth.ts';

/** The etcd version Conclave reports itself as (its API level); etcdctl checks it. */
export const ETCD_SERVER_VERSION = '3.4.23';
export const ETCD_CLUSTER_VERSION = '3.4.0';

/** etcdserverpb.AlarmType by number. */
const ALARM_TYPES: readonly AlarmType[] = ['NONE', 'NOSPACE', 'CORRUPT'];
const ALARM_GET = 0;
const ALARM_ACTIVATE = 1;

interface PbAlarmRequest {
  action: number;
  memberID: Int64;
  alarm: number;
}

interface PbHashKVRequest {
  revision: Int64;
}

interface PbMoveLeaderRequest {
  targetID: Int64;
}

export interface PbSnapshotResponse {
  remaining_bytes: number;
  blob: Uint8Array;
}

function alarmMember(a: AlarmRecord) {
  return { memberID: idToDecimal(a.memberId), alarm: ALARM_TYPES.indexOf(a.alarm) };
}

/** The alarm texts etcd puts in StatusResponse.errors. */
export function alarmErrors(member: Member): string[] {
  return member.alarms().map((a) => `memberID:${idToDecimal(a.memberId)} alarm:${a.alarm} `);
}

/** StatusResponse.errors: "no leader" first when there is none, then the raised alarms (as etcd). */
function statusErrors(member: Member, leader: string): string[] {
  const errors = leader === '' ? [ETCD_ERRORS.NO_LEADER.message] : [];
  return [...errors, ...alarmErrors(member)];
}

/**
 * The Snapshot stream: the member's store as a snapshot file, in SnapshotResponses counting
 * down the bytes that remain, then one with the file's SHA-256 digest (etcd 3.4 sets no header).
 */
export async function* snapshotResponses(member: Member): AsyncGenerator<PbSnapshotResponse> {
  const sized = await member.mvcc().sizedSnapshot();
  for await (const c of fileChunks(sized.body, sized.bytes)) yield { remaining_bytes: c.remainingBytes, blob: c.blob };
}

/** How long MoveLeader waits for the transfer: the client's deadline, within the member's request timeout. */
function transferTimeoutMs(member: Member, call: CallContext): number {
  const own = member.requestTimeoutMs;
  return call.deadline === undefined ? own : Math.max(0, Math.min(own, call.deadline - Date.now()));
}

/** etcd's MoveLeader; answers with no header, as etcd 3.4. */
async function moveLeader(member: Member, r: PbMoveLeaderRequest, call: CallContext): Promise<object> {
  try {
    await member.moveLeader(hexId(r.targetID), transferTimeoutMs(member, call));
    return {};
  } catch (e) {
    throw toGrpcError(e);
  }
}

/**
 * GET lists the raised alarms of the type asked for (NONE: all), as of now (etcd passes it
 * through the log); ACTIVATE and DEACTIVATE answer with the alarm they raised or cleared. etcd
 * checks no permission here, only that a token given is valid.
 */
async function alarm(member: Member, r: PbAlarmRequest, call: CallContext): Promise<readonly AlarmRecord[]> {
  const type = ALARM_TYPES[r.alarm] ?? 'NONE';
  const as = await callerOf(member, call);
  if (r.action === ALARM_GET) {
    await member.linearizableBarrier();
    return member.alarms().filter((a) => type === 'NONE' || a.alarm === type);
  }
  const action = r.action === ALARM_ACTIVATE ? 'activate' : 'deactivate';
  const res = await member.write({ op: 'alarm', action, memberId: hexId(r.memberID), alarm: type }, as);
  if (res?.op !== 'alarm') throw new Error('alarm applied as something else');
  return res.alarms;
}

export function maintenanceService(member: Member, service: Service): [Service, ServiceImpl] {
  return [
    service,
    {
      Status: grpcHandler(async () => {
        const s = member.status();
        const stats = member.mvcc().stats();
        return {
          header: header(member.header()),
          version: ETCD_SERVER_VERSION,
          dbSize: stats.dbBytes,
          dbSizeInUse: stats.dbBytesInUse,
          leader: s.leader === '' ? '0' : idToDecimal(s.leader),
          raftIndex: s.raftIndex,
          raftTerm: s.raftTerm,
          raftAppliedIndex: s.raftAppliedIndex,
          errors: statusErrors(member, s.leader),
          isLearner: s.isLearner,
        };
      }),
      // etcd 3.4 answers Alarm without a header.
      Alarm: grpcHandler(async (r: PbAlarmRequest, call) => ({ alarms: (await alarm(member, r, call)).map(alarmMember) }), toRawAuthGrpcError),
      // Hash and HashKV need the root role once auth is enabled.
      Hash: grpcHandler(async (_: object, call) => {
        member.auth.checkAdmin(await callerOf(member, call));
        const h = await member.mvcc().hash();
        return { header: header(member.header(), h.revision), hash: h.hash };
      }, toRawAuthGrpcError),
      HashKV: grpcHandler(async (r: PbHashKVRequest, call) => {
        member.auth.checkAdmin(await callerOf(member, call));
        const h = await member.mvcc().hashKV(num(r.revision));
        return { header: header(member.header(), h.revision), hash: h.hash, compact_revision: h.compactRevision };
      }, toRawAuthGrpcError),
      // etcd 3.4 answers Defragment and MoveLeader without a header.
      // Defragment and Snapshot need the root role once auth is enabled; MoveLeader does not (etcd 3.4).
      Defragment: grpcHandler(async (_: object, call) => {
        member.auth.checkAdmin(await callerOf(member, call));
        await member.defragment();
        return {};
      }, toRawAuthGrpcError),
      MoveLeader: unary((r: PbMoveLeaderRequest, call: CallContext) => moveLeader(member, r, call)),
      // Leaving the loop (a failed write once the client is gone) ends the stream, which
      // releases the store's read snapshot.
      Snapshot: serverStream(async (_r: object, call) => {
        try {
          member.auth.checkAdmin(await callerOf(member, call));
          for await (const res of snapshotResponses(member)) await call.write(res);
        } catch (e) {
          throw toRawAuthGrpcError(e);
        }
      }),
    },
  ];
}
