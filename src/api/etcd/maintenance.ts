/**
 * etcd's Maintenance service, the part a running cluster needs: Status (etcdctl endpoint
 * status), Alarm (list, and disarm after freeing space), Hash and HashKV (compare members).
 */
import type { Service } from 'protobufjs';
import type { ServiceImpl } from '../grpc/index.ts';
import type { AlarmRecord } from '../../server/alarms.ts';
import type { Member } from '../../server/member.ts';
import { idToDecimal } from '../../server/ids.ts';
import type { AlarmType } from '../../server/request-codec.ts';
import { header, hexId, num, type Int64 } from './convert.ts';
import { grpcHandler } from './kv.ts';
import { callerOf } from './auth.ts';
import { toRawAuthGrpcError } from './errors.ts';
import type { CallContext } from '../grpc/index.ts';

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

function alarmMember(a: AlarmRecord) {
  return { memberID: idToDecimal(a.memberId), alarm: ALARM_TYPES.indexOf(a.alarm) };
}

/** The alarm texts etcd puts in StatusResponse.errors. */
export function alarmErrors(member: Member): string[] {
  return member.alarms().map((a) => `memberID:${idToDecimal(a.memberId)} alarm:${a.alarm} `);
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
          dbSizeInUse: stats.dbBytes,
          leader: s.leader === '' ? '0' : idToDecimal(s.leader),
          raftIndex: s.raftIndex,
          raftTerm: s.raftTerm,
          raftAppliedIndex: s.raftAppliedIndex,
          errors: alarmErrors(member),
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
    },
  ];
}
