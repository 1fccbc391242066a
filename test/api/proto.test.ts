// Wire-format spec for Conclave's etcd v3 protos (src/api/etcd/proto).
//
// The tables below ARE the spec: every message and enum of the etcd 3.5 API
// (plus a few additive 3.6 fields), field name -> number and type. The test
// fails if the .proto files disagree with them in either direction.

import { test } from "node:test";
import assert from "node:assert/strict";
import protobuf from "protobufjs";
import type { Enum, Field, Message, Namespace, Root, Service, Type } from "protobufjs";
import { loadEtcdProtos, PROTO_FILES } from "../../src/api/etcd/proto/load.ts";

const root: Root = loadEtcdProtos();

// ---------------------------------------------------------------------------
// Spec tables
// ---------------------------------------------------------------------------

/** "<number> [repeated ]<type>"; message/enum types are fully qualified. */
type FieldSpec = Record<string, string>;

const HDR = "etcdserverpb.ResponseHeader";
const KV = "mvccpb.KeyValue";
const headerOnly: FieldSpec = { header: `1 ${HDR}` };

const MESSAGES: Record<string, FieldSpec> = {
  // mvccpb
  "mvccpb.KeyValue": {
    key: "1 bytes", create_revision: "2 int64", mod_revision: "3 int64",
    version: "4 int64", value: "5 bytes", lease: "6 int64",
  },
  "mvccpb.Event": {
    type: "1 mvccpb.Event.EventType", kv: `2 ${KV}`, prev_kv: `3 ${KV}`,
  },

  // authpb
  "authpb.UserAddOptions": { no_password: "1 bool" },
  "authpb.User": {
    name: "1 bytes", password: "2 bytes", roles: "3 repeated string",
    options: "4 authpb.UserAddOptions",
  },
  "authpb.Permission": {
    permType: "1 authpb.Permission.Type", key: "2 bytes", range_end: "3 bytes",
  },
  "authpb.Role": { name: "1 bytes", keyPermission: "2 repeated authpb.Permission" },

  // etcdserverpb: common + KV
  "etcdserverpb.ResponseHeader": {
    cluster_id: "1 uint64", member_id: "2 uint64", revision: "3 int64", raft_term: "4 uint64",
  },
  "etcdserverpb.RangeRequest": {
    key: "1 bytes", range_end: "2 bytes", limit: "3 int64", revision: "4 int64",
    sort_order: "5 etcdserverpb.RangeRequest.SortOrder",
    sort_target: "6 etcdserverpb.RangeRequest.SortTarget",
    serializable: "7 bool", keys_only: "8 bool", count_only: "9 bool",
    min_mod_revision: "10 int64", max_mod_revision: "11 int64",
    min_create_revision: "12 int64", max_create_revision: "13 int64",
  },
  "etcdserverpb.RangeResponse": {
    header: `1 ${HDR}`, kvs: `2 repeated ${KV}`, more: "3 bool", count: "4 int64",
  },
  "etcdserverpb.PutRequest": {
    key: "1 bytes", value: "2 bytes", lease: "3 int64", prev_kv: "4 bool",
    ignore_value: "5 bool", ignore_lease: "6 bool",
  },
  "etcdserverpb.PutResponse": { header: `1 ${HDR}`, prev_kv: `2 ${KV}` },
  "etcdserverpb.DeleteRangeRequest": { key: "1 bytes", range_end: "2 bytes", prev_kv: "3 bool" },
  "etcdserverpb.DeleteRangeResponse": {
    header: `1 ${HDR}`, deleted: "2 int64", prev_kvs: `3 repeated ${KV}`,
  },
  "etcdserverpb.RequestOp": {
    request_range: "1 etcdserverpb.RangeRequest", request_put: "2 etcdserverpb.PutRequest",
    request_delete_range: "3 etcdserverpb.DeleteRangeRequest", request_txn: "4 etcdserverpb.TxnRequest",
  },
  "etcdserverpb.ResponseOp": {
    response_range: "1 etcdserverpb.RangeResponse", response_put: "2 etcdserverpb.PutResponse",
    response_delete_range: "3 etcdserverpb.DeleteRangeResponse", response_txn: "4 etcdserverpb.TxnResponse",
  },
  "etcdserverpb.Compare": {
    result: "1 etcdserverpb.Compare.CompareResult", target: "2 etcdserverpb.Compare.CompareTarget",
    key: "3 bytes", version: "4 int64", create_revision: "5 int64", mod_revision: "6 int64",
    value: "7 bytes", lease: "8 int64", range_end: "64 bytes",
  },
  "etcdserverpb.TxnRequest": {
    compare: "1 repeated etcdserverpb.Compare", success: "2 repeated etcdserverpb.RequestOp",
    failure: "3 repeated etcdserverpb.RequestOp",
  },
  "etcdserverpb.TxnResponse": {
    header: `1 ${HDR}`, succeeded: "2 bool", responses: "3 repeated etcdserverpb.ResponseOp",
  },
  "etcdserverpb.CompactionRequest": { revision: "1 int64", physical: "2 bool" },
  "etcdserverpb.CompactionResponse": headerOnly,

  // Watch
  "etcdserverpb.WatchRequest": {
    create_request: "1 etcdserverpb.WatchCreateRequest",
    cancel_request: "2 etcdserverpb.WatchCancelRequest",
    progress_request: "3 etcdserverpb.WatchProgressRequest",
  },
  "etcdserverpb.WatchCreateRequest": {
    key: "1 bytes", range_end: "2 bytes", start_revision: "3 int64", progress_notify: "4 bool",
    filters: "5 repeated etcdserverpb.WatchCreateRequest.FilterType", prev_kv: "6 bool",
    watch_id: "7 int64", fragment: "8 bool",
  },
  "etcdserverpb.WatchCancelRequest": { watch_id: "1 int64" },
  "etcdserverpb.WatchProgressRequest": {},
  "etcdserverpb.WatchResponse": {
    header: `1 ${HDR}`, watch_id: "2 int64", created: "3 bool", canceled: "4 bool",
    compact_revision: "5 int64", cancel_reason: "6 string", fragment: "7 bool",
    events: "11 repeated mvccpb.Event",
  },

  // Lease
  "etcdserverpb.LeaseGrantRequest": { TTL: "1 int64", ID: "2 int64" },
  "etcdserverpb.LeaseGrantResponse": { header: `1 ${HDR}`, ID: "2 int64", TTL: "3 int64", error: "4 string" },
  "etcdserverpb.LeaseRevokeRequest": { ID: "1 int64" },
  "etcdserverpb.LeaseRevokeResponse": headerOnly,
  "etcdserverpb.LeaseCheckpoint": { ID: "1 int64", remaining_TTL: "2 int64" },
  "etcdserverpb.LeaseCheckpointRequest": { checkpoints: "1 repeated etcdserverpb.LeaseCheckpoint" },
  "etcdserverpb.LeaseCheckpointResponse": headerOnly,
  "etcdserverpb.LeaseKeepAliveRequest": { ID: "1 int64" },
  "etcdserverpb.LeaseKeepAliveResponse": { header: `1 ${HDR}`, ID: "2 int64", TTL: "3 int64" },
  "etcdserverpb.LeaseTimeToLiveRequest": { ID: "1 int64", keys: "2 bool" },
  "etcdserverpb.LeaseTimeToLiveResponse": {
    header: `1 ${HDR}`, ID: "2 int64", TTL: "3 int64", grantedTTL: "4 int64", keys: "5 repeated bytes",
  },
  "etcdserverpb.LeaseLeasesRequest": {},
  "etcdserverpb.LeaseStatus": { ID: "1 int64" },
  "etcdserverpb.LeaseLeasesResponse": { header: `1 ${HDR}`, leases: "2 repeated etcdserverpb.LeaseStatus" },

  // Cluster
  "etcdserverpb.Member": {
    ID: "1 uint64", name: "2 string", peerURLs: "3 repeated string",
    clientURLs: "4 repeated string", isLearner: "5 bool",
  },
  "etcdserverpb.MemberAddRequest": { peerURLs: "1 repeated string", isLearner: "2 bool" },
  "etcdserverpb.MemberAddResponse": {
    header: `1 ${HDR}`, member: "2 etcdserverpb.Member", members: "3 repeated etcdserverpb.Member",
  },
  "etcdserverpb.MemberRemoveRequest": { ID: "1 uint64" },
  "etcdserverpb.MemberRemoveResponse": { header: `1 ${HDR}`, members: "2 repeated etcdserverpb.Member" },
  "etcdserverpb.MemberUpdateRequest": { ID: "1 uint64", peerURLs: "2 repeated string" },
  "etcdserverpb.MemberUpdateResponse": { header: `1 ${HDR}`, members: "2 repeated etcdserverpb.Member" },
  "etcdserverpb.MemberListRequest": { linearizable: "1 bool" },
  "etcdserverpb.MemberListResponse": { header: `1 ${HDR}`, members: "2 repeated etcdserverpb.Member" },
  "etcdserverpb.MemberPromoteRequest": { ID: "1 uint64" },
  "etcdserverpb.MemberPromoteResponse": { header: `1 ${HDR}`, members: "2 repeated etcdserverpb.Member" },

  // Maintenance
  "etcdserverpb.AlarmRequest": {
    action: "1 etcdserverpb.AlarmRequest.AlarmAction", memberID: "2 uint64", alarm: "3 etcdserverpb.AlarmType",
  },
  "etcdserverpb.AlarmMember": { memberID: "1 uint64", alarm: "2 etcdserverpb.AlarmType" },
  "etcdserverpb.AlarmResponse": { header: `1 ${HDR}`, alarms: "2 repeated etcdserverpb.AlarmMember" },
  "etcdserverpb.StatusRequest": {},
  "etcdserverpb.StatusResponse": {
    header: `1 ${HDR}`, version: "2 string", dbSize: "3 int64", leader: "4 uint64",
    raftIndex: "5 uint64", raftTerm: "6 uint64", raftAppliedIndex: "7 uint64",
    errors: "8 repeated string", dbSizeInUse: "9 int64", isLearner: "10 bool",
    storageVersion: "11 string", dbSizeQuota: "12 int64", downgradeInfo: "13 etcdserverpb.DowngradeInfo",
  },
  "etcdserverpb.DowngradeInfo": { enabled: "1 bool", targetVersion: "2 string" },
  "etcdserverpb.DefragmentRequest": {},
  "etcdserverpb.DefragmentResponse": headerOnly,
  "etcdserverpb.HashRequest": {},
  "etcdserverpb.HashResponse": { header: `1 ${HDR}`, hash: "2 uint32" },
  "etcdserverpb.HashKVRequest": { revision: "1 int64" },
  "etcdserverpb.HashKVResponse": {
    header: `1 ${HDR}`, hash: "2 uint32", compact_revision: "3 int64", hash_revision: "4 int64",
  },
  "etcdserverpb.SnapshotRequest": {},
  "etcdserverpb.SnapshotResponse": {
    header: `1 ${HDR}`, remaining_bytes: "2 uint64", blob: "3 bytes", version: "4 string",
  },
  "etcdserverpb.MoveLeaderRequest": { targetID: "1 uint64" },
  "etcdserverpb.MoveLeaderResponse": headerOnly,
  "etcdserverpb.DowngradeRequest": {
    action: "1 etcdserverpb.DowngradeRequest.DowngradeAction", version: "2 string",
  },
  "etcdserverpb.DowngradeResponse": { header: `1 ${HDR}`, version: "2 string" },

  // Auth
  "etcdserverpb.AuthEnableRequest": {},
  "etcdserverpb.AuthEnableResponse": headerOnly,
  "etcdserverpb.AuthDisableRequest": {},
  "etcdserverpb.AuthDisableResponse": headerOnly,
  "etcdserverpb.AuthStatusRequest": {},
  "etcdserverpb.AuthStatusResponse": { header: `1 ${HDR}`, enabled: "2 bool", authRevision: "3 uint64" },
  "etcdserverpb.AuthenticateRequest": { name: "1 string", password: "2 string" },
  "etcdserverpb.AuthenticateResponse": { header: `1 ${HDR}`, token: "2 string" },
  "etcdserverpb.AuthUserAddRequest": {
    name: "1 string", password: "2 string", options: "3 authpb.UserAddOptions", hashedPassword: "4 string",
  },
  "etcdserverpb.AuthUserAddResponse": headerOnly,
  "etcdserverpb.AuthUserGetRequest": { name: "1 string" },
  "etcdserverpb.AuthUserGetResponse": { header: `1 ${HDR}`, roles: "2 repeated string" },
  "etcdserverpb.AuthUserListRequest": {},
  "etcdserverpb.AuthUserListResponse": { header: `1 ${HDR}`, users: "2 repeated string" },
  "etcdserverpb.AuthUserDeleteRequest": { name: "1 string" },
  "etcdserverpb.AuthUserDeleteResponse": headerOnly,
  "etcdserverpb.AuthUserChangePasswordRequest": { name: "1 string", password: "2 string", hashedPassword: "3 string" },
  "etcdserverpb.AuthUserChangePasswordResponse": headerOnly,
  "etcdserverpb.AuthUserGrantRoleRequest": { user: "1 string", role: "2 string" },
  "etcdserverpb.AuthUserGrantRoleResponse": headerOnly,
  "etcdserverpb.AuthUserRevokeRoleRequest": { name: "1 string", role: "2 string" },
  "etcdserverpb.AuthUserRevokeRoleResponse": headerOnly,
  "etcdserverpb.AuthRoleAddRequest": { name: "1 string" },
  "etcdserverpb.AuthRoleAddResponse": headerOnly,
  "etcdserverpb.AuthRoleGetRequest": { role: "1 string" },
  "etcdserverpb.AuthRoleGetResponse": { header: `1 ${HDR}`, perm: "2 repeated authpb.Permission" },
  "etcdserverpb.AuthRoleListRequest": {},
  "etcdserverpb.AuthRoleListResponse": { header: `1 ${HDR}`, roles: "2 repeated string" },
  "etcdserverpb.AuthRoleDeleteRequest": { role: "1 string" },
  "etcdserverpb.AuthRoleDeleteResponse": headerOnly,
  "etcdserverpb.AuthRoleGrantPermissionRequest": { name: "1 string", perm: "2 authpb.Permission" },
  "etcdserverpb.AuthRoleGrantPermissionResponse": headerOnly,
  "etcdserverpb.AuthRoleRevokePermissionRequest": { role: "1 string", key: "2 bytes", range_end: "3 bytes" },
  "etcdserverpb.AuthRoleRevokePermissionResponse": headerOnly,

  // v3lockpb
  "v3lockpb.LockRequest": { name: "1 bytes", lease: "2 int64" },
  "v3lockpb.LockResponse": { header: `1 ${HDR}`, key: "2 bytes" },
  "v3lockpb.UnlockRequest": { key: "1 bytes" },
  "v3lockpb.UnlockResponse": headerOnly,

  // v3electionpb
  "v3electionpb.LeaderKey": { name: "1 bytes", key: "2 bytes", rev: "3 int64", lease: "4 int64" },
  "v3electionpb.CampaignRequest": { name: "1 bytes", lease: "2 int64", value: "3 bytes" },
  "v3electionpb.CampaignResponse": { header: `1 ${HDR}`, leader: "2 v3electionpb.LeaderKey" },
  "v3electionpb.ProclaimRequest": { leader: "1 v3electionpb.LeaderKey", value: "2 bytes" },
  "v3electionpb.ProclaimResponse": headerOnly,
  "v3electionpb.LeaderRequest": { name: "1 bytes" },
  "v3electionpb.LeaderResponse": { header: `1 ${HDR}`, kv: `2 ${KV}` },
  "v3electionpb.ResignRequest": { leader: "1 v3electionpb.LeaderKey" },
  "v3electionpb.ResignResponse": headerOnly,
};

/** Oneof groups: message -> oneof name -> member fields. */
const ONEOFS: Record<string, Record<string, string[]>> = {
  "etcdserverpb.RequestOp": { request: ["request_range", "request_put", "request_delete_range", "request_txn"] },
  "etcdserverpb.ResponseOp": { response: ["response_range", "response_put", "response_delete_range", "response_txn"] },
  "etcdserverpb.Compare": { target_union: ["version", "create_revision", "mod_revision", "value", "lease"] },
  "etcdserverpb.WatchRequest": { request_union: ["create_request", "cancel_request", "progress_request"] },
};

const ENUMS: Record<string, Record<string, number>> = {
  "mvccpb.Event.EventType": { PUT: 0, DELETE: 1 },
  "authpb.Permission.Type": { READ: 0, WRITE: 1, READWRITE: 2 },
  "etcdserverpb.RangeRequest.SortOrder": { NONE: 0, ASCEND: 1, DESCEND: 2 },
  "etcdserverpb.RangeRequest.SortTarget": { KEY: 0, VERSION: 1, CREATE: 2, MOD: 3, VALUE: 4 },
  "etcdserverpb.Compare.CompareResult": { EQUAL: 0, GREATER: 1, LESS: 2, NOT_EQUAL: 3 },
  "etcdserverpb.Compare.CompareTarget": { VERSION: 0, CREATE: 1, MOD: 2, VALUE: 3, LEASE: 4 },
  "etcdserverpb.WatchCreateRequest.FilterType": { NOPUT: 0, NODELETE: 1 },
  "etcdserverpb.AlarmType": { NONE: 0, NOSPACE: 1, CORRUPT: 2 },
  "etcdserverpb.AlarmRequest.AlarmAction": { GET: 0, ACTIVATE: 1, DEACTIVATE: 2 },
  "etcdserverpb.DowngradeRequest.DowngradeAction": { VALIDATE: 0, ENABLE: 1, CANCEL: 2 },
};

/** method -> "Request -> Response", with "stream " marking a streamed side. */
const SERVICES: Record<string, Record<string, string>> = {
  "etcdserverpb.KV": {
    Range: "RangeRequest -> RangeResponse",
    Put: "PutRequest -> PutResponse",
    DeleteRange: "DeleteRangeRequest -> DeleteRangeResponse",
    Txn: "TxnRequest -> TxnResponse",
    Compact: "CompactionRequest -> CompactionResponse",
  },
  "etcdserverpb.Watch": {
    Watch: "stream WatchRequest -> stream WatchResponse",
  },
  "etcdserverpb.Lease": {
    LeaseGrant: "LeaseGrantRequest -> LeaseGrantResponse",
    LeaseRevoke: "LeaseRevokeRequest -> LeaseRevokeResponse",
    LeaseKeepAlive: "stream LeaseKeepAliveRequest -> stream LeaseKeepAliveResponse",
    LeaseTimeToLive: "LeaseTimeToLiveRequest -> LeaseTimeToLiveResponse",
    LeaseLeases: "LeaseLeasesRequest -> LeaseLeasesResponse",
  },
  "etcdserverpb.Cluster": {
    MemberAdd: "MemberAddRequest -> MemberAddResponse",
    MemberRemove: "MemberRemoveRequest -> MemberRemoveResponse",
    MemberUpdate: "MemberUpdateRequest -> MemberUpdateResponse",
    MemberList: "MemberListRequest -> MemberListResponse",
    MemberPromote: "MemberPromoteRequest -> MemberPromoteResponse",
  },
  "etcdserverpb.Maintenance": {
    Alarm: "AlarmRequest -> AlarmResponse",
    Status: "StatusRequest -> StatusResponse",
    Defragment: "DefragmentRequest -> DefragmentResponse",
    Hash: "HashRequest -> HashResponse",
    HashKV: "HashKVRequest -> HashKVResponse",
    Snapshot: "SnapshotRequest -> stream SnapshotResponse",
    MoveLeader: "MoveLeaderRequest -> MoveLeaderResponse",
    Downgrade: "DowngradeRequest -> DowngradeResponse",
  },
  "etcdserverpb.Auth": {
    AuthEnable: "AuthEnableRequest -> AuthEnableResponse",
    AuthDisable: "AuthDisableRequest -> AuthDisableResponse",
    AuthStatus: "AuthStatusRequest -> AuthStatusResponse",
    Authenticate: "AuthenticateRequest -> AuthenticateResponse",
    UserAdd: "AuthUserAddRequest -> AuthUserAddResponse",
    UserGet: "AuthUserGetRequest -> AuthUserGetResponse",
    UserList: "AuthUserListRequest -> AuthUserListResponse",
    UserDelete: "AuthUserDeleteRequest -> AuthUserDeleteResponse",
    UserChangePassword: "AuthUserChangePasswordRequest -> AuthUserChangePasswordResponse",
    UserGrantRole: "AuthUserGrantRoleRequest -> AuthUserGrantRoleResponse",
    UserRevokeRole: "AuthUserRevokeRoleRequest -> AuthUserRevokeRoleResponse",
    RoleAdd: "AuthRoleAddRequest -> AuthRoleAddResponse",
    RoleGet: "AuthRoleGetRequest -> AuthRoleGetResponse",
    RoleList: "AuthRoleListRequest -> AuthRoleListResponse",
    RoleDelete: "AuthRoleDeleteRequest -> AuthRoleDeleteResponse",
    RoleGrantPermission: "AuthRoleGrantPermissionRequest -> AuthRoleGrantPermissionResponse",
    RoleRevokePermission: "AuthRoleRevokePermissionRequest -> AuthRoleRevokePermissionResponse",
  },
  "v3lockpb.Lock": {
    Lock: "LockRequest -> LockResponse",
    Unlock: "UnlockRequest -> UnlockResponse",
  },
  "v3electionpb.Election": {
    Campaign: "CampaignRequest -> CampaignResponse",
    Proclaim: "ProclaimRequest -> ProclaimResponse",
    Leader: "LeaderRequest -> LeaderResponse",
    Observe: "LeaderRequest -> stream LeaderResponse",
    Resign: "ResignRequest -> ResignResponse",
  },
};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

function stripDot(name: string): string {
  return name.startsWith(".") ? name.slice(1) : name;
}

function describeField(f: Field): string {
  const t = f.resolvedType !== null ? stripDot(f.resolvedType.fullName) : f.type;
  return `${f.id} ${f.repeated ? "repeated " : ""}${t}`;
}

/** Walks a namespace and collects every nested Type / Enum / Service by full name. */
function collect(ns: Namespace, types: Map<string, Type>, enums: Map<string, Enum>, services: Map<string, Service>): void {
  for (const obj of ns.nestedArray) {
    const name = stripDot(obj.fullName);
    if (obj instanceof protobuf.Type) types.set(name, obj);
    else if (obj instanceof protobuf.Enum) enums.set(name, obj);
    else if (obj instanceof protobuf.Service) services.set(name, obj);
    if (obj instanceof protobuf.Namespace) collect(obj, types, enums, services);
  }
}

const allTypes = new Map<string, Type>();
const allEnums = new Map<string, Enum>();
const allServices = new Map<string, Service>();
collect(root, allTypes, allEnums, allServices);

function type(name: string): Type {
  return root.lookupType(name);
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex").replace(/(..)(?=.)/g, "$1 ");
}

function encode(name: string, obj: Record<string, unknown>): Uint8Array {
  const t = type(name);
  const msg = t.fromObject(obj);
  const err = t.verify(msg);
  assert.equal(err, null, `${name}: ${String(err)}`);
  return t.encode(msg).finish();
}

const toObjOpts: protobuf.IConversionOptions = { longs: String, enums: String, bytes: String, defaults: false };

function roundTrip(name: string, obj: Record<string, unknown>): { bytes: Uint8Array; back: Record<string, unknown> } {
  const t = type(name);
  const bytes = encode(name, obj);
  const decoded: Message = t.decode(bytes);
  return { bytes, back: t.toObject(decoded, toObjOpts) };
}

const b64 = (s: string): string => Buffer.from(s).toString("base64");

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

test("loader parses every proto file into the five etcd packages", () => {
  assert.equal(PROTO_FILES.length, 5);
  for (const pkg of ["mvccpb", "authpb", "etcdserverpb", "v3lockpb", "v3electionpb"]) {
    assert.ok(root.lookup(pkg) instanceof protobuf.Namespace, `package ${pkg}`);
  }
});

test("services: methods, request/response types and streaming flags", () => {
  assert.deepEqual([...allServices.keys()].sort(), Object.keys(SERVICES).sort());
  for (const [svcName, methods] of Object.entries(SERVICES)) {
    const svc = root.lookupService(svcName);
    const pkg = svcName.slice(0, svcName.lastIndexOf("."));
    assert.deepEqual(Object.keys(svc.methods).sort(), Object.keys(methods).sort(), `${svcName} method set`);
    for (const [mName, sig] of Object.entries(methods)) {
      const m = svc.methods[mName];
      assert.ok(m !== undefined, `${svcName}.${mName}`);
      m.resolve();
      const [reqSide, resSide] = sig.split(" -> ") as [string, string];
      const reqStream = reqSide.startsWith("stream ");
      const resStream = resSide.startsWith("stream ");
      const reqType = reqSide.replace("stream ", "");
      const resType = resSide.replace("stream ", "");
      assert.equal(stripDot(m.resolvedRequestType?.fullName ?? ""), `${pkg}.${reqType}`, `${svcName}.${mName} request`);
      assert.equal(stripDot(m.resolvedResponseType?.fullName ?? ""), `${pkg}.${resType}`, `${svcName}.${mName} response`);
      assert.equal(m.requestStream === true, reqStream, `${svcName}.${mName} requestStream`);
      assert.equal(m.responseStream === true, resStream, `${svcName}.${mName} responseStream`);
    }
  }
  // The four streaming rpcs, stated explicitly.
  const watch = root.lookupService("etcdserverpb.Watch").methods["Watch"];
  assert.ok(watch?.requestStream === true && watch.responseStream === true, "Watch is bidi");
  const ka = root.lookupService("etcdserverpb.Lease").methods["LeaseKeepAlive"];
  assert.ok(ka?.requestStream === true && ka.responseStream === true, "LeaseKeepAlive is bidi");
  const snap = root.lookupService("etcdserverpb.Maintenance").methods["Snapshot"];
  assert.ok(snap?.requestStream !== true && snap?.responseStream === true, "Snapshot is server-streaming");
  const obs = root.lookupService("v3electionpb.Election").methods["Observe"];
  assert.ok(obs?.requestStream !== true && obs?.responseStream === true, "Observe is server-streaming");
});

test("messages: every field's number, label and type match the spec table", () => {
  assert.deepEqual([...allTypes.keys()].sort(), Object.keys(MESSAGES).sort(), "message set");
  for (const [msgName, spec] of Object.entries(MESSAGES)) {
    const t = type(msgName);
    const actual: Record<string, string> = {};
    for (const f of t.fieldsArray) actual[f.name] = describeField(f);
    assert.deepEqual(actual, spec, msgName);
  }
});

test("messages: oneof groups", () => {
  for (const [msgName, groups] of Object.entries(ONEOFS)) {
    const t = type(msgName);
    const actual: Record<string, string[]> = {};
    for (const o of t.oneofsArray) actual[o.name] = o.oneof;
    assert.deepEqual(actual, groups, msgName);
  }
  for (const [name, t] of allTypes) {
    if (ONEOFS[name] === undefined) assert.equal(t.oneofsArray.length, 0, `${name} has no oneof`);
  }
});

test("enums: names and values", () => {
  assert.deepEqual([...allEnums.keys()].sort(), Object.keys(ENUMS).sort(), "enum set");
  for (const [enumName, values] of Object.entries(ENUMS)) {
    assert.deepEqual({ ...root.lookupEnum(enumName).values }, values, enumName);
  }
});

test("wire bytes: hand-computed encodings", () => {
  // PutRequest{key:"a", value:"b"}: tag1/LEN "a", tag2/LEN "b".
  assert.equal(hex(encode("etcdserverpb.PutRequest", { key: b64("a"), value: b64("b") })), "0a 01 61 12 01 62");
  // Same via Buffers (protobufjs accepts both for bytes fields).
  const put = type("etcdserverpb.PutRequest");
  assert.equal(hex(put.encode(put.create({ key: Buffer.from("a"), value: Buffer.from("b") })).finish()), "0a 01 61 12 01 62");
  // lease=4660 (varint b4 24) under tag 3, prev_kv=true under tag 4.
  assert.equal(
    hex(encode("etcdserverpb.PutRequest", { key: b64("k"), lease: 4660, prev_kv: true })),
    "0a 01 6b 18 b4 24 20 01",
  );
  // RangeRequest{key:"a", range_end:"b", limit:1, serializable:true, min_mod_revision:2}
  assert.equal(
    hex(encode("etcdserverpb.RangeRequest", {
      key: b64("a"), range_end: b64("b"), limit: 1, serializable: true, min_mod_revision: 2,
    })),
    "0a 01 61 12 01 62 18 01 38 01 50 02",
  );
  // Compare.range_end is field 64: tag (64<<3|2)=514 = varint 82 04.
  assert.equal(
    hex(encode("etcdserverpb.Compare", { target: "MOD", key: b64("a"), mod_revision: 5, range_end: b64("b") })),
    "10 02 1a 01 61 30 05 82 04 01 62",
  );
  // WatchRequest{create_request:{key:"a", filters:[NODELETE], prev_kv:true, watch_id:7, fragment:true}}
  // filters are packed (proto3): tag5/LEN, 1 byte, value 1.
  assert.equal(
    hex(encode("etcdserverpb.WatchRequest", {
      create_request: { key: b64("a"), filters: ["NODELETE"], prev_kv: true, watch_id: 7, fragment: true },
    })),
    "0a 0c 0a 01 61 2a 01 01 30 01 38 07 40 01",
  );
  // WatchRequest{progress_request:{}}: tag 3, empty body.
  assert.equal(hex(encode("etcdserverpb.WatchRequest", { progress_request: {} })), "1a 00");
  // WatchResponse.events is field 11: tag (11<<3|2) = 5a.
  assert.equal(
    hex(encode("etcdserverpb.WatchResponse", { watch_id: 1, events: [{ type: "DELETE" }] })),
    "10 01 5a 02 08 01",
  );
  // LeaseGrantRequest{TTL:5}; LeaseKeepAliveRequest{ID:-1} (int64: 10-byte varint).
  assert.equal(hex(encode("etcdserverpb.LeaseGrantRequest", { TTL: 5 })), "08 05");
  assert.equal(
    hex(encode("etcdserverpb.LeaseKeepAliveRequest", { ID: -1 })),
    "08 ff ff ff ff ff ff ff ff ff 01",
  );
  // authpb.UserAddOptions{no_password:true}; Permission{permType:READWRITE, key:"k"}
  assert.equal(hex(encode("authpb.UserAddOptions", { no_password: true })), "08 01");
  assert.equal(hex(encode("authpb.Permission", { permType: "READWRITE", key: b64("k") })), "08 02 12 01 6b");
  // TxnRequest{success:[{request_put:{key:"a"}}]}
  assert.equal(
    hex(encode("etcdserverpb.TxnRequest", { success: [{ request_put: { key: b64("a") } }] })),
    "12 05 12 03 0a 01 61",
  );
});

test("round trip: PutRequest", () => {
  const obj = {
    key: b64("/conclave/k"), value: b64("v\u0000\u00ff"), lease: "7587869301234567890",
    prev_kv: true, ignore_value: true, ignore_lease: true,
  };
  const { back } = roundTrip("etcdserverpb.PutRequest", obj);
  assert.deepEqual(back, obj);
});

test("round trip: RangeResponse with kvs", () => {
  const obj = {
    header: { cluster_id: "14841639068965178418", member_id: "10276657743932975437", revision: "42", raft_term: "3" },
    kvs: [
      { key: b64("a"), create_revision: "2", mod_revision: "40", version: "5", value: b64("1"), lease: "7587869301234567890" },
      { key: b64("b"), create_revision: "41", mod_revision: "41", version: "1" }, // empty value: omitted
      { key: b64("c"), create_revision: "9007199254740993", mod_revision: "9007199254740993", version: "1" },
    ],
    more: true,
    count: "3",
  };
  const { back } = roundTrip("etcdserverpb.RangeResponse", obj);
  assert.deepEqual(back, obj);
  // Large uint64/int64 survive exactly (no float rounding).
  const kvs = back["kvs"] as Array<Record<string, unknown>>;
  assert.equal(kvs[2]?.["create_revision"], "9007199254740993");
  assert.equal((back["header"] as Record<string, unknown>)["cluster_id"], "14841639068965178418");
});

test("round trip: WatchResponse with events", () => {
  const obj = {
    header: { revision: "100" },
    watch_id: "3",
    created: false,
    fragment: true,
    events: [
      {
        kv: { key: b64("foo"), create_revision: "90", mod_revision: "100", version: "4", value: b64("bar") },
        prev_kv: { key: b64("foo"), create_revision: "90", mod_revision: "95", version: "3", value: b64("baz") },
      },
      { type: "DELETE", kv: { key: b64("gone"), mod_revision: "100" } },
    ],
  };
  const clean = JSON.parse(JSON.stringify(obj)) as Record<string, unknown>;
  delete clean["created"]; // false is the proto3 default and is not emitted
  const { bytes, back } = roundTrip("etcdserverpb.WatchResponse", clean);
  assert.deepEqual(back, clean);
  // PUT (enum 0) is the default: the first event carries no type byte.
  const decoded = type("etcdserverpb.WatchResponse").toObject(
    type("etcdserverpb.WatchResponse").decode(bytes),
    { ...toObjOpts, defaults: true },
  );
  const events = decoded["events"] as Array<Record<string, unknown>>;
  assert.equal(events[0]?.["type"], "PUT");
  assert.equal(events[1]?.["type"], "DELETE");
  assert.equal(decoded["canceled"], false);
  assert.equal(decoded["cancel_reason"], "");
});

test("round trip: lock, election and cluster messages", () => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ["v3lockpb.LockResponse", { header: { revision: "8" }, key: b64("lk/694d7a5f8e3c2b10") }],
    ["v3electionpb.ProclaimRequest", {
      leader: { name: b64("e"), key: b64("e/1"), rev: "12", lease: "7587869301234567890" }, value: b64("v2"),
    }],
    ["etcdserverpb.MemberListResponse", {
      members: [{ ID: "18446744073709551615", name: "n1", peerURLs: ["http://127.0.0.1:2380"], clientURLs: ["http://127.0.0.1:2379"], isLearner: true }],
    }],
    ["etcdserverpb.StatusResponse", {
      version: "3.5.0", dbSize: "24576", leader: "1", raftIndex: "9", raftTerm: "2", raftAppliedIndex: "9",
      errors: ["NOSPACE"], dbSizeInUse: "20480", isLearner: true,
    }],
    ["etcdserverpb.AlarmRequest", { action: "DEACTIVATE", memberID: "5", alarm: "NOSPACE" }],
    ["etcdserverpb.AuthUserAddRequest", { name: "root", options: { no_password: true } }],
    ["etcdserverpb.LeaseCheckpointRequest", { checkpoints: [{ ID: "1", remaining_TTL: "30" }] }],
  ];
  for (const [name, obj] of cases) {
    assert.deepEqual(roundTrip(name, obj).back, obj, name);
  }
});
