/**
 * Who may do what once auth is enabled: every API (KV, Watch, Lease, Lock, Election, Cluster, Maintenance, Auth)
 * called as no user, as a reader, as a writer, as root and with a bad token, over gRPC (token in
 * the `token` metadata), against etcd 3.4 and against Conclave. The expected matrix is written
 * below as etcd 3.4.23 answers it; each cell is the outcome ("ok", or the gRPC code and message).
 *
 * Where Conclave answers otherwise on purpose, the row says so (DIFFERS) with both answers:
 * holes etcd closed after 3.4.23 (nested txns unchecked; LeaseTimeToLive listing keys to anyone)
 * and AuthStatus, which etcd added in 3.5. A few calls are also compared over the JSON gateway
 * (the token in the Authorization header).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import type { Service } from 'protobufjs';
import { etcdService } from '../../src/api/etcd/proto/load.ts';
import { Client } from '../helpers/grpc-client.ts';
import { etcdAvailable, startCluster, type Flavour, type ProcessCluster } from '../helpers/processes.ts';

const SUITE_LIMITS = {
  startMs: 30_000,
  /** Both clusters, about 210 calls each. */
  suiteMs: 90_000,
  /** One call. */
  callMs: 10_000,
} as const;

const KV = etcdService('etcdserverpb.KV');
const Watch = etcdService('etcdserverpb.Watch');
const Lease = etcdService('etcdserverpb.Lease');
const Cluster = etcdService('etcdserverpb.Cluster');
const Maintenance = etcdService('etcdserverpb.Maintenance');
const Auth = etcdService('etcdserverpb.Auth');
const Lock = etcdService('v3lockpb.Lock');
const Election = etcdService('v3electionpb.Election');

const SUBJECTS = ['none', 'reader', 'writer', 'root', 'bad token'] as const;
type Subject = (typeof SUBJECTS)[number];

const OK = 'ok';
const CREATED = 'created';
const EMPTY = '3 etcdserver: user name is empty';
const DENIED = '7 etcdserver: permission denied';
const BAD_TOKEN = '16 etcdserver: invalid auth token';
const AUTH_FAILED = '3 etcdserver: authentication failed, invalid user ID or password';
// Hash, HashKV and Alarm pass the auth package's errors through unconverted (UNKNOWN).
const RAW_EMPTY = '2 auth: user name is empty';
const RAW_DENIED = '2 auth: permission denied';
const RAW_BAD_TOKEN = '2 auth: invalid auth token';
// Lock and Election send their steps' errors as UNKNOWN, with the same texts.
const R_EMPTY = '2 etcdserver: user name is empty';
const R_DENIED = '2 etcdserver: permission denied';
const R_BAD_TOKEN = '2 etcdserver: invalid auth token';
// A refused watch: created and canceled at once, the gRPC error's text as the reason.
const W_EMPTY = 'canceled: rpc error: code = InvalidArgument desc = etcdserver: user name is empty';
const W_DENIED = 'canceled: rpc error: code = PermissionDenied desc = etcdserver: permission denied';
const W_BAD_TOKEN = 'canceled: rpc error: code = Unauthenticated desc = etcdserver: invalid auth token';

type Row = readonly [string, string, string, string, string];

/** What one cell runs: a call made as the subject, with fixtures made by root beforehand. */
interface Ctx {
  readonly subject: Subject;
  /** Calls the method as the subject; resolves "ok" or "<code> <message>". */
  call(service: Service, method: string, request: object): Promise<string>;
  /** Calls as root and returns the response (fixtures). */
  root(service: Service, method: string, request: object): Promise<Record<string, unknown>>;
  watch(request: object): Promise<string>;
  /** A new name (the same sequence on both sides, so their answers compare). */
  unique(what: string): string;
}

interface Case {
  readonly name: string;
  readonly run: (c: Ctx) => Promise<string>;
  readonly etcd: Row;
  /** Conclave's row where it differs on purpose (see the file comment). */
  readonly conclave?: Row;
}

const b = (s: string) => Buffer.from(s);
const prefix = (p: string) => ({ key: b(p), range_end: b(p.slice(0, -1) + String.fromCharCode(p.charCodeAt(p.length - 1) + 1)) });

/** A lease with one key put on it by root. */
async function leaseWithKey(c: Ctx, key: string): Promise<string> {
  const lease = (await c.root(Lease, 'LeaseGrant', { TTL: 600 })).ID as string;
  await c.root(KV, 'Put', { key: b(key), value: b('v'), lease });
  return lease;
}

/** A lease granted by root, for a lock or a campaign. */
async function rootLease(c: Ctx): Promise<string> {
  return (await c.root(Lease, 'LeaseGrant', { TTL: 600 })).ID as string;
}

/** An election of a new name that root leads; its leader key. */
async function rootLeads(c: Ctx, name: string): Promise<Record<string, unknown>> {
  return (await c.root(Election, 'Campaign', { name: b(name), lease: await rootLease(c), value: b('root') })).leader as Record<string, unknown>;
}

const CASES: Case[] = [
  { name: 'KV.Range of a readable key', run: (c) => c.call(KV, 'Range', { key: b('k/1') }), etcd: [EMPTY, OK, OK, OK, BAD_TOKEN] },
  { name: 'KV.Range outside the roles', run: (c) => c.call(KV, 'Range', { key: b('x') }), etcd: [EMPTY, DENIED, DENIED, OK, BAD_TOKEN] },
  { name: 'KV.Range of a prefix', run: (c) => c.call(KV, 'Range', prefix('k/')), etcd: [EMPTY, OK, OK, OK, BAD_TOKEN] },
  { name: 'KV.Range of all keys', run: (c) => c.call(KV, 'Range', { key: b('\0'), range_end: b('\0') }), etcd: [EMPTY, DENIED, DENIED, OK, BAD_TOKEN] },
  { name: 'KV.Put', run: (c) => c.call(KV, 'Put', { key: b('k/p'), value: b('v') }), etcd: [EMPTY, DENIED, OK, OK, BAD_TOKEN] },
  { name: 'KV.Put outside the roles', run: (c) => c.call(KV, 'Put', { key: b('x'), value: b('v') }), etcd: [EMPTY, DENIED, DENIED, OK, BAD_TOKEN] },
  { name: 'KV.DeleteRange', run: (c) => c.call(KV, 'DeleteRange', { key: b('k/p') }), etcd: [EMPTY, DENIED, OK, OK, BAD_TOKEN] },
  {
    name: 'KV.Txn read-only',
    run: (c) => c.call(KV, 'Txn', { compare: [{ key: b('k/1'), target: 'VERSION', result: 'GREATER', version: 0 }], success: [{ request_range: { key: b('k/1') } }] }),
    etcd: [EMPTY, OK, OK, OK, BAD_TOKEN],
  },
  {
    name: 'KV.Txn with a put',
    run: (c) => c.call(KV, 'Txn', { compare: [{ key: b('k/1'), target: 'VERSION', result: 'GREATER', version: 0 }], success: [{ request_put: { key: b('k/t'), value: b('v') } }] }),
    etcd: [EMPTY, DENIED, OK, OK, BAD_TOKEN],
  },
  {
    name: 'KV.Txn comparing a key outside the roles',
    run: (c) => c.call(KV, 'Txn', { compare: [{ key: b('x'), target: 'VERSION', result: 'EQUAL', version: 0 }], success: [{ request_put: { key: b('k/t'), value: b('v') } }] }),
    etcd: [EMPTY, DENIED, DENIED, OK, BAD_TOKEN],
  },
  {
    name: 'KV.Txn with a put in its failure branch',
    run: (c) => c.call(KV, 'Txn', { success: [{ request_range: { key: b('k/1') } }], failure: [{ request_put: { key: b('k/f'), value: b('v') } }] }),
    etcd: [EMPTY, DENIED, OK, OK, BAD_TOKEN],
  },
  {
    name: 'KV.Txn with a put in a nested txn (DIFFERS: etcd 3.4.23 does not check nested txns)',
    run: (c) => c.call(KV, 'Txn', { success: [{ request_txn: { success: [{ request_put: { key: b('k/n'), value: b('v') } }] } }] }),
    etcd: [OK, OK, OK, OK, BAD_TOKEN],
    conclave: [EMPTY, DENIED, OK, OK, BAD_TOKEN],
  },
  {
    name: 'KV.Compact (etcd checks no permission)',
    run: async (c) => c.call(KV, 'Compact', { revision: ((await c.root(KV, 'Put', { key: b(c.unique('k/c')), value: b('v') })).header as { revision: string }).revision }),
    etcd: [OK, OK, OK, OK, BAD_TOKEN],
  },
  { name: 'Watch of a readable prefix', run: (c) => c.watch({ create_request: prefix('k/') }), etcd: [W_EMPTY, CREATED, CREATED, CREATED, W_BAD_TOKEN] },
  { name: 'Watch outside the roles', run: (c) => c.watch({ create_request: { key: b('x') } }), etcd: [W_EMPTY, W_DENIED, W_DENIED, CREATED, W_BAD_TOKEN] },
  { name: 'Lease.LeaseGrant', run: (c) => c.call(Lease, 'LeaseGrant', { TTL: 60 }), etcd: [OK, OK, OK, OK, BAD_TOKEN] },
  {
    name: 'Lease.LeaseRevoke of a lease without keys',
    run: async (c) => c.call(Lease, 'LeaseRevoke', { ID: (await c.root(Lease, 'LeaseGrant', { TTL: 60 })).ID }),
    etcd: [OK, OK, OK, OK, BAD_TOKEN],
  },
  {
    name: 'Lease.LeaseRevoke of a lease holding a key (needs write on it)',
    run: async (c) => c.call(Lease, 'LeaseRevoke', { ID: await leaseWithKey(c, c.unique('k/lease-')) }),
    etcd: [EMPTY, DENIED, OK, OK, BAD_TOKEN],
  },
  {
    name: 'Lease.LeaseTimeToLive with keys, a key outside the roles (DIFFERS: etcd 3.4.23 lists them to anyone; ≥ 3.4.26 checks)',
    run: async (c) => c.call(Lease, 'LeaseTimeToLive', { ID: await leaseWithKey(c, c.unique('x/lease-')), keys: true }),
    etcd: [OK, OK, OK, OK, OK],
    conclave: [EMPTY, DENIED, DENIED, OK, BAD_TOKEN],
  },
  {
    name: 'Lease.LeaseTimeToLive with keys, a readable key (DIFFERS: etcd 3.4.23 checks nothing)',
    run: async (c) => c.call(Lease, 'LeaseTimeToLive', { ID: await leaseWithKey(c, c.unique('k/lease-')), keys: true }),
    etcd: [OK, OK, OK, OK, OK],
    conclave: [EMPTY, OK, OK, OK, BAD_TOKEN],
  },
  {
    name: 'Lease.LeaseTimeToLive without keys',
    run: async (c) => c.call(Lease, 'LeaseTimeToLive', { ID: await leaseWithKey(c, c.unique('x/lease-')) }),
    etcd: [OK, OK, OK, OK, OK],
  },
  { name: 'Lease.LeaseLeases', run: (c) => c.call(Lease, 'LeaseLeases', {}), etcd: [OK, OK, OK, OK, OK] },
  // Lock and Election run their steps (a txn, reads, a watch, a delete) as the caller.
  { name: 'Lock.Lock of a name under the roles', run: async (c) => c.call(Lock, 'Lock', { name: b(c.unique('k/lock')), lease: await rootLease(c) }), etcd: [R_EMPTY, R_DENIED, OK, OK, R_BAD_TOKEN] },
  { name: 'Lock.Lock outside the roles', run: async (c) => c.call(Lock, 'Lock', { name: b(c.unique('x/lock')), lease: await rootLease(c) }), etcd: [R_EMPTY, R_DENIED, R_DENIED, OK, R_BAD_TOKEN] },
  {
    name: 'Lock.Unlock of a lock root holds',
    run: async (c) => c.call(Lock, 'Unlock', { key: (await c.root(Lock, 'Lock', { name: b(c.unique('k/lock')), lease: await rootLease(c) })).key }),
    etcd: [R_EMPTY, R_DENIED, OK, OK, R_BAD_TOKEN],
  },
  { name: 'Election.Campaign under the roles', run: async (c) => c.call(Election, 'Campaign', { name: b(c.unique('k/elect')), lease: await rootLease(c), value: b('v') }), etcd: [R_EMPTY, R_DENIED, OK, OK, R_BAD_TOKEN] },
  {
    name: 'Election.Leader of an election root leads',
    run: async (c) => {
      const name = c.unique('k/elect');
      await rootLeads(c, name);
      return c.call(Election, 'Leader', { name: b(name) });
    },
    etcd: [R_EMPTY, OK, OK, OK, R_BAD_TOKEN],
  },
  { name: 'Election.Proclaim as root\'s leader key', run: async (c) => c.call(Election, 'Proclaim', { leader: await rootLeads(c, c.unique('k/elect')), value: b('p') }), etcd: [R_EMPTY, R_DENIED, OK, OK, R_BAD_TOKEN] },
  { name: 'Election.Resign of root\'s leader key', run: async (c) => c.call(Election, 'Resign', { leader: await rootLeads(c, c.unique('k/elect')) }), etcd: [R_EMPTY, R_DENIED, OK, OK, R_BAD_TOKEN] },
  { name: 'Cluster.MemberList', run: (c) => c.call(Cluster, 'MemberList', {}), etcd: [OK, OK, OK, OK, OK] },
  { name: 'Maintenance.Status', run: (c) => c.call(Maintenance, 'Status', {}), etcd: [OK, OK, OK, OK, OK] },
  { name: 'Maintenance.Alarm (list)', run: (c) => c.call(Maintenance, 'Alarm', {}), etcd: [OK, OK, OK, OK, RAW_BAD_TOKEN] },
  { name: 'Maintenance.Hash', run: (c) => c.call(Maintenance, 'Hash', {}), etcd: [RAW_EMPTY, RAW_DENIED, RAW_DENIED, OK, RAW_BAD_TOKEN] },
  { name: 'Maintenance.HashKV', run: (c) => c.call(Maintenance, 'HashKV', {}), etcd: [RAW_EMPTY, RAW_DENIED, RAW_DENIED, OK, RAW_BAD_TOKEN] },
  { name: 'Auth.UserList', run: (c) => c.call(Auth, 'UserList', {}), etcd: [EMPTY, DENIED, DENIED, OK, BAD_TOKEN] },
  {
    name: 'Auth.UserGet of oneself',
    run: (c) => c.call(Auth, 'UserGet', { name: c.subject === 'none' ? '' : c.subject === 'bad token' ? 'reader' : c.subject }),
    // No user asking for the user "": itself, so not refused; there is no such user.
    etcd: ['9 etcdserver: user name not found', OK, OK, OK, BAD_TOKEN],
  },
  { name: 'Auth.UserGet of root', run: (c) => c.call(Auth, 'UserGet', { name: 'root' }), etcd: [EMPTY, DENIED, DENIED, OK, BAD_TOKEN] },
  { name: 'Auth.RoleGet of the reader role', run: (c) => c.call(Auth, 'RoleGet', { role: 'reader' }), etcd: [EMPTY, OK, DENIED, OK, BAD_TOKEN] },
  { name: 'Auth.RoleList', run: (c) => c.call(Auth, 'RoleList', {}), etcd: [EMPTY, DENIED, DENIED, OK, BAD_TOKEN] },
  { name: 'Auth.RoleAdd', run: (c) => c.call(Auth, 'RoleAdd', { name: c.unique('role') }), etcd: [EMPTY, DENIED, DENIED, OK, BAD_TOKEN] },
  {
    name: 'Auth.RoleGrantPermission',
    run: (c) => c.call(Auth, 'RoleGrantPermission', { name: 'reader', perm: { permType: 'READ', key: b('k/'), range_end: b('k0') } }),
    etcd: [EMPTY, DENIED, DENIED, OK, BAD_TOKEN],
  },
  { name: 'Auth.UserAdd with an empty name', run: (c) => c.call(Auth, 'UserAdd', { name: '', password: 'x' }), etcd: [EMPTY, DENIED, DENIED, EMPTY, BAD_TOKEN] },
  { name: 'Auth.UserChangePassword of an unknown user', run: (c) => c.call(Auth, 'UserChangePassword', { name: 'ghost', password: 'x' }), etcd: [EMPTY, DENIED, DENIED, '9 etcdserver: user name not found', BAD_TOKEN] },
  { name: 'Auth.AuthEnable (again)', run: (c) => c.call(Auth, 'AuthEnable', {}), etcd: [EMPTY, DENIED, DENIED, OK, BAD_TOKEN] },
  // The password is checked before the caller's own token is looked at.
  { name: 'Auth.Authenticate with a wrong password', run: (c) => c.call(Auth, 'Authenticate', { name: 'reader', password: 'wrong' }), etcd: [AUTH_FAILED, AUTH_FAILED, AUTH_FAILED, AUTH_FAILED, AUTH_FAILED] },
  { name: 'Auth.Authenticate with the right password', run: (c) => c.call(Auth, 'Authenticate', { name: 'reader', password: 'readerpw' }), etcd: [OK, OK, OK, OK, BAD_TOKEN] },
  {
    name: 'Auth.AuthStatus (DIFFERS: etcd 3.5 added it, root only)',
    run: (c) => c.call(Auth, 'AuthStatus', {}),
    etcd: Array(5).fill('12 unknown method AuthStatus for service etcdserverpb.Auth') as unknown as Row,
    conclave: [EMPTY, DENIED, DENIED, OK, BAD_TOKEN],
  },
];

interface Side {
  readonly flavour: Flavour;
  readonly cluster: ProcessCluster;
  readonly client: Client;
  readonly tokens: Readonly<Record<Subject, string | null>>;
  serial: number;
}

function metadata(token: string | null): grpc.Metadata {
  const md = new grpc.Metadata();
  if (token !== null) md.set('token', token);
  return md;
}

function outcome(e: unknown): string {
  const err = e as grpc.ServiceError;
  if (typeof err.code !== 'number') throw e;
  return `${err.code} ${err.details}`;
}

/** Root, the reader (read k/…) and the writer (read and write k/…), auth enabled; a key k/1. */
async function setUp(flavour: Flavour): Promise<Side> {
  const cluster = await startCluster(flavour, 1);
  started.push(cluster);
  const client = new Client(new URL(cluster.members[0]!.clientUrl).host);
  const call = (s: Service, m: string, r: object, token: string | null = null) => client.unary(s, m, r, { metadata: metadata(token), deadlineMs: SUITE_LIMITS.callMs });
  await call(Auth, 'UserAdd', { name: 'root', password: 'rootpw' });
  await call(Auth, 'UserGrantRole', { user: 'root', role: 'root' });
  for (const [user, type] of [['reader', 'READ'], ['writer', 'READWRITE']] as const) {
    await call(Auth, 'RoleAdd', { name: user });
    await call(Auth, 'RoleGrantPermission', { name: user, perm: { permType: type, ...prefix('k/') } });
    await call(Auth, 'UserAdd', { name: user, password: `${user}pw` });
    await call(Auth, 'UserGrantRole', { user, role: user });
  }
  await call(Auth, 'AuthEnable', {});
  const token = async (name: string) => (await call(Auth, 'Authenticate', { name, password: `${name}pw` })).token as string;
  const tokens = { none: null, reader: await token('reader'), writer: await token('writer'), root: await token('root'), 'bad token': 'garbage' };
  await call(KV, 'Put', { key: b('k/1'), value: b('v') }, tokens.root);
  return { flavour, cluster, client, tokens, serial: 0 };
}

function ctx(side: Side, subject: Subject): Ctx {
  const token = side.tokens[subject];
  return {
    subject,
    unique: (what) => `${what}${++side.serial}`,
    call: (s, m, r) =>
      side.client.unary(s, m, r, { metadata: metadata(token), deadlineMs: SUITE_LIMITS.callMs }).then(
        () => OK,
        (e: unknown) => outcome(e),
      ),
    root: (s, m, r) => side.client.unary(s, m, r, { metadata: metadata(side.tokens.root), deadlineMs: SUITE_LIMITS.callMs }),
    watch: (request) =>
      new Promise((resolve, reject) => {
        const stream = side.client.bidi(Watch, 'Watch', metadata(token));
        const timer = setTimeout(() => reject(new Error('no answer to a watch create')), SUITE_LIMITS.callMs);
        stream.once('data', (r: Record<string, unknown>) => {
          clearTimeout(timer);
          stream.cancel();
          resolve(r.canceled === true ? `canceled: ${String(r.cancel_reason)}` : r.created === true ? CREATED : JSON.stringify(r));
        });
        stream.on('error', () => {}); // the cancel above ends the call with CANCELLED
        stream.write(request);
      }),
  };
}

const started: ProcessCluster[] = [];

const suite = { skip: etcdAvailable() ? false : 'etcd 3.4 is not installed', timeout: SUITE_LIMITS.suiteMs };

describe('auth permission matrix: every API × no user, reader, writer, root, bad token; etcd 3.4 and Conclave', suite, () => {
  let sides: Side[] = [];

  before(async () => {
    const settled = await Promise.allSettled([setUp('etcd'), setUp('conclave')]);
    for (const s of settled) if (s.status === 'rejected') throw s.reason;
    sides = settled.map((s) => (s as PromiseFulfilledResult<Side>).value);
  }, { timeout: SUITE_LIMITS.startMs });

  after(async () => {
    for (const s of sides) s.client.close();
    await Promise.all(started.map((c) => c.destroy()));
  });

  test('gRPC: each cell as expected on each side', async () => {
    const mismatches: string[] = [];
    for (const side of sides) {
      for (const c of CASES) {
        const expected = side.flavour === 'conclave' ? (c.conclave ?? c.etcd) : c.etcd;
        const got: string[] = [];
        for (const subject of SUBJECTS) got.push(await c.run(ctx(side, subject)));
        SUBJECTS.forEach((subject, i) => {
          if (got[i] !== expected[i]) mismatches.push(`${side.flavour}: ${c.name} as ${subject}: got "${got[i]}", expected "${expected[i]}"`);
        });
      }
    }
    assert.deepEqual(mismatches, []);
  });

  test('AuthStatus on Conclave reports the state and the auth revision', async () => {
    const side = sides.find((s) => s.flavour === 'conclave')!;
    const status = await ctx(side, 'root').root(Auth, 'AuthStatus', {});
    assert.equal(status.enabled, true);
    // 1 at start, then 9 changes before enabling (users, roles, grants), more from the matrix's RoleAdd/grants.
    assert.ok(Number(status.authRevision) >= 10, JSON.stringify(status));
  });

  test('JSON gateway: the Authorization header, /v3/auth/* routes, statuses and error bodies as etcd', async () => {
    const http = async (side: Side, path: string, body: object, token: string | null) => {
      const headers: Record<string, string> = token === null ? {} : { authorization: token };
      const res = await fetch(`${side.cluster.members[0]!.clientUrl}${path}`, { method: 'POST', headers, body: JSON.stringify(body), signal: AbortSignal.timeout(SUITE_LIMITS.callMs) });
      const json = (await res.json()) as Record<string, unknown>;
      // Only what does not differ between clusters: status, error, and the answer's own fields.
      const { header: _h, token: tok, ...rest } = json;
      return { status: res.status, ...rest, ...(tok === undefined ? {} : { token: typeof tok }) };
    };
    const k = (s: string) => Buffer.from(s).toString('base64');
    const calls: Array<[string, object, Subject]> = [
      ['/v3/kv/range', { key: k('k/1') }, 'reader'],
      ['/v3/kv/range', { key: k('x') }, 'reader'],
      ['/v3/kv/range', { key: k('k/1') }, 'none'],
      ['/v3/kv/range', { key: k('k/1') }, 'bad token'],
      ['/v3/kv/put', { key: k('k/g'), value: k('v') }, 'writer'],
      ['/v3/kv/put', { key: k('k/g'), value: k('v') }, 'reader'],
      ['/v3/auth/authenticate', { name: 'writer', password: 'writerpw' }, 'none'],
      ['/v3/auth/authenticate', { name: 'writer', password: 'nope' }, 'none'],
      ['/v3/auth/user/list', {}, 'root'],
      ['/v3/auth/user/list', {}, 'writer'],
      ['/v3/auth/user/get', { name: 'writer' }, 'writer'],
      ['/v3/auth/role/get', { role: 'writer' }, 'writer'],
      ['/v3/auth/role/list', {}, 'root'],
      ['/v3/auth/user/add', { name: 'gw', password: 'gwpw' }, 'root'],
      ['/v3/auth/user/changepw', { name: 'gw', password: 'gwpw2' }, 'root'],
      ['/v3/auth/role/add', { name: 'gwrole' }, 'root'],
      ['/v3/auth/role/grant', { name: 'gwrole', perm: { permType: 'WRITE', key: k('g/'), range_end: k('g0') } }, 'root'],
      ['/v3/auth/user/grant', { user: 'gw', role: 'gwrole' }, 'root'],
      ['/v3/auth/user/revoke', { name: 'gw', role: 'gwrole' }, 'root'],
      ['/v3/auth/user/revoke', { name: 'gw', role: 'gwrole' }, 'root'],
      ['/v3/auth/role/revoke', { role: 'gwrole', key: k('g/'), range_end: k('g0') }, 'root'],
      ['/v3/auth/role/delete', { role: 'gwrole' }, 'root'],
      ['/v3/auth/user/delete', { name: 'gw' }, 'root'],
      ['/v3/auth/user/delete', { name: 'gw' }, 'root'],
      ['/v3/auth/enable', {}, 'writer'],
      ['/v3/auth/disable', {}, 'reader'],
    ];
    const [etcd, conclave] = [sides.find((s) => s.flavour === 'etcd')!, sides.find((s) => s.flavour === 'conclave')!];
    for (const [path, body, subject] of calls) {
      const [e, c] = await Promise.all([http(etcd, path, body, etcd.tokens[subject]), http(conclave, path, body, conclave.tokens[subject])]);
      assert.deepEqual(c, e, `POST ${path} ${JSON.stringify(body)} as ${subject}`);
    }
  });
});
