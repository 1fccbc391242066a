/**
 * Tokens across a 3-member Conclave cluster, and the same answers from etcd 3.4 where it has the
 * feature: simple tokens issued through one member are valid on every member, die after
 * --auth-token-ttl of disuse (and live on while used), and die at once when their user is
 * deleted or changes password; JWTs (--auth-token jwt,…) verify on any member, expire, and
 * requests made with one issued before an auth change fail as "revision of auth store is old".
 * A refused request changes nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { etcdService } from '../../src/api/etcd/proto/load.ts';
import { Client } from '../helpers/grpc-client.ts';
import { etcdAvailable, startCluster, type Flavour, type ProcessCluster } from '../helpers/processes.ts';

const LIMITS = {
  startMs: 30_000,
  suiteMs: 60_000,
  callMs: 10_000,
  /** --auth-token-ttl and the JWT ttl of these clusters. */
  tokenTtlSeconds: 2,
} as const;

const KV = etcdService('etcdserverpb.KV');
const Auth = etcdService('etcdserverpb.Auth');
const Lease = etcdService('etcdserverpb.Lease');
const b = (s: string) => Buffer.from(s);

const started: ProcessCluster[] = [];
const clients: Client[] = [];
const keyDir = mkdtempSync(join(tmpdir(), 'conclave-jwt-'));

after(async () => {
  for (const c of clients) c.close();
  await Promise.all(started.map((c) => c.destroy()));
  rmSync(keyDir, { recursive: true, force: true });
});

/** A cluster with root and user u (read and write k/…), auth enabled; one client per member. */
async function authCluster(flavour: Flavour, size: number, flags: Record<string, string>) {
  const cluster = await startCluster(flavour, size, { flags });
  started.push(cluster);
  const members = cluster.members.map((m) => new Client(new URL(m.clientUrl).host));
  clients.push(...members);
  const call = async (member: number, method: string, request: object, token?: string): Promise<Record<string, unknown>> => {
    const md = new grpc.Metadata();
    if (token !== undefined) md.set('token', token);
    const service = method === 'Range' || method === 'Put' ? KV : method.startsWith('Lease') ? Lease : Auth;
    return members[member]!.unary(service, method, request, { metadata: md, deadlineMs: LIMITS.callMs });
  };
  /** "ok" or "<code> <message>". */
  const attempt = (member: number, method: string, request: object, token?: string): Promise<string> =>
    call(member, method, request, token).then(
      () => 'ok',
      (e: grpc.ServiceError) => `${e.code} ${e.details}`,
    );
  await call(0, 'UserAdd', { name: 'root', password: 'rootpw' });
  await call(0, 'UserGrantRole', { user: 'root', role: 'root' });
  await call(0, 'RoleAdd', { name: 'rw' });
  await call(0, 'RoleGrantPermission', { name: 'rw', perm: { permType: 'READWRITE', key: b('k/'), range_end: b('k0') } });
  await call(0, 'UserAdd', { name: 'u', password: 'upw' });
  await call(0, 'UserGrantRole', { user: 'u', role: 'rw' });
  await call(0, 'AuthEnable', {});
  const token = async (member: number, name = 'u', password = 'upw') => (await call(member, 'Authenticate', { name, password })).token as string;
  /** A fresh root token (tokens of these clusters expire within seconds, or go old). */
  const root = () => token(0, 'root', 'rootpw');
  const keys = async (): Promise<string[]> => ((await call(0, 'Range', { key: b('\0'), range_end: b('\0') }, await root())).kvs as Array<{ key: Buffer }> | undefined ?? []).map((kv) => kv.key.toString());
  return { cluster, call, attempt, token, root, keys };
}

const INVALID = '16 etcdserver: invalid auth token';
const FAILED = '3 etcdserver: authentication failed, invalid user ID or password';

describe('simple tokens (--auth-token-ttl)', { timeout: LIMITS.suiteMs }, () => {
  let conclave: Awaited<ReturnType<typeof authCluster>>;
  let etcd: Awaited<ReturnType<typeof authCluster>> | undefined;

  before(async () => {
    const flags = { 'auth-token-ttl': String(LIMITS.tokenTtlSeconds) };
    [conclave, etcd] = await Promise.all([authCluster('conclave', 3, flags), etcdAvailable() ? authCluster('etcd', 1, flags) : Promise.resolve(undefined)]);
  }, { timeout: LIMITS.startMs });

  test('a token from one member works on every member', async () => {
    const t = await conclave.token(0);
    assert.match(t, /^[a-zA-Z]{16}\.\d+$/);
    for (const m of [0, 1, 2]) assert.equal(await conclave.attempt(m, 'Put', { key: b(`k/from-${m}`), value: b('v') }, t), 'ok');
    // TimeToLive with keys: followers pass it to the leader with the caller's token, which checks it again.
    const lease = (await conclave.call(0, 'LeaseGrant', { TTL: 60 }, t)).ID as string;
    await conclave.call(0, 'Put', { key: b('k/leased'), value: b('v'), lease }, t);
    for (const m of [0, 1, 2]) {
      const ttl = await conclave.call(m, 'LeaseTimeToLive', { ID: lease, keys: true }, t);
      assert.deepEqual((ttl.keys as Buffer[]).map(String), ['k/leased'], `member ${m}`);
      assert.equal(await conclave.attempt(m, 'LeaseTimeToLive', { ID: lease, keys: true }), '3 etcdserver: user name is empty');
    }
  });

  test('an unused token expires; a used one lives on; an expired one changes nothing', async () => {
    for (const side of [conclave, etcd]) {
      if (side === undefined) continue;
      const idle = await side.token(0);
      const busy = await side.token(0);
      for (let i = 0; i < 3; i++) {
        await sleep((LIMITS.tokenTtlSeconds * 1000) / 2);
        assert.equal(await side.attempt(0, 'Range', { key: b('k/x') }, busy), 'ok', `${side.cluster.flavour}: a token in use stays valid`);
      }
      assert.equal(await side.attempt(0, 'Put', { key: b('k/expired'), value: b('v') }, idle), INVALID, side.cluster.flavour);
      assert.equal(await side.attempt(0, 'Range', { key: b('k/x') }, idle), INVALID, side.cluster.flavour);
      assert.ok(!(await side.keys()).includes('k/expired'));
    }
  });

  test('bad passwords are refused and change nothing; deleting a user or changing its password voids its tokens everywhere', async () => {
    for (const side of [conclave, etcd]) {
      if (side === undefined) continue;
      assert.equal(await side.attempt(0, 'Authenticate', { name: 'u', password: 'nope' }), FAILED);
      assert.equal(await side.attempt(0, 'Authenticate', { name: 'ghost', password: 'nope' }), FAILED);
      const before = await side.keys();
      const t = await side.token(0);
      assert.equal(await side.attempt(0, 'UserChangePassword', { name: 'u', password: 'upw2' }, await side.root()), 'ok');
      for (const m of side.cluster.members.keys()) assert.equal(await side.attempt(m, 'Put', { key: b('k/after-passwd'), value: b('v') }, t), INVALID, `${side.cluster.flavour} member ${m}`);
      assert.equal(await side.attempt(0, 'Authenticate', { name: 'u', password: 'upw' }), FAILED);
      const t2 = await side.token(0, 'u', 'upw2');
      assert.equal(await side.attempt(0, 'UserDelete', { name: 'u' }, await side.root()), 'ok');
      for (const m of side.cluster.members.keys()) assert.equal(await side.attempt(m, 'Range', { key: b('k/x') }, t2), INVALID);
      assert.deepEqual(await side.keys(), before, 'nothing was written with refused credentials');
    }
    // Every Conclave member holds the same auth state, at the same auth revision.
    const statuses = await Promise.all([0, 1, 2].map(async (m) => conclave.call(m, 'AuthStatus', {}, await conclave.root())));
    const seen = statuses.map((st) => `${String(st.enabled)} ${String(st.authRevision)}`);
    assert.deepEqual(seen, [seen[0], seen[0], seen[0]]);
    assert.match(seen[0]!, /^true \d+$/);
  });
});

describe('JWT tokens (--auth-token jwt,…)', { timeout: LIMITS.suiteMs }, () => {
  let conclave: Awaited<ReturnType<typeof authCluster>>;
  let etcd: Awaited<ReturnType<typeof authCluster>> | undefined;

  before(async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(join(keyDir, 'priv.pem'), privateKey.export({ type: 'pkcs1', format: 'pem' }));
    writeFileSync(join(keyDir, 'pub.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
    const flags = { 'auth-token': `jwt,pub-key=${join(keyDir, 'pub.pem')},priv-key=${join(keyDir, 'priv.pem')},sign-method=RS256,ttl=${LIMITS.tokenTtlSeconds}s` };
    [conclave, etcd] = await Promise.all([authCluster('conclave', 3, flags), etcdAvailable() ? authCluster('etcd', 1, flags) : Promise.resolve(undefined)]);
  }, { timeout: LIMITS.startMs });

  test('a JWT names the user and the auth revision, and verifies on every member', async () => {
    const t = await conclave.token(0);
    const claims = JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    assert.equal(claims.username, 'u');
    assert.equal(typeof claims.revision, 'number');
    assert.equal(typeof claims.exp, 'number');
    for (const m of [0, 1, 2]) assert.equal(await conclave.attempt(m, 'Put', { key: b(`k/jwt-${m}`), value: b('v') }, t), 'ok');
    const forged = `${t.split('.')[0]}.${Buffer.from(JSON.stringify({ ...claims, username: 'root' })).toString('base64url')}.${t.split('.')[2]}`;
    assert.equal(await conclave.attempt(1, 'Range', { key: b('x') }, forged), INVALID);
  });

  test('after an auth change, a request with an older JWT is refused as old and changes nothing; a new JWT works', async () => {
    const t = await conclave.token(0);
    assert.equal(await conclave.attempt(0, 'RoleAdd', { name: 'another' }, await conclave.root()), 'ok');
    // etcd 3.4.23 says "rpc error: code = Unknown desc = auth: revision in header is old"; Conclave gives etcd ≥ 3.5's error.
    assert.equal(await conclave.attempt(2, 'Put', { key: b('k/old'), value: b('v') }, t), '3 etcdserver: revision of auth store is old');
    assert.equal(await conclave.attempt(2, 'Range', { key: b('k/old') }, t), '3 etcdserver: revision of auth store is old');
    assert.ok(!(await conclave.keys()).includes('k/old'));
    assert.equal(await conclave.attempt(2, 'Put', { key: b('k/new'), value: b('v') }, await conclave.token(1)), 'ok');
  });

  test('an expired JWT is an invalid token', async () => {
    for (const side of [conclave, etcd]) {
      if (side === undefined) continue;
      const t = await side.token(0);
      assert.equal(await side.attempt(0, 'Range', { key: b('k/x') }, t), 'ok');
      // JWT expiry has a resolution of one second.
      await sleep(LIMITS.tokenTtlSeconds * 1000 + 1100);
      assert.equal(await side.attempt(0, 'Range', { key: b('k/x') }, t), INVALID, side.cluster.flavour);
    }
  });
});
