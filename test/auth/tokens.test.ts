/**
 * Credentials: scrypt hashes (checked off the event loop), simple tokens (sliding TTL, bounded,
 * voided per user), JWTs (RS/PS/ES, expiry, tampering, wrong method), and --auth-token parsing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { AuthOptionsError, hashPassword, JwtTokens, parseGoDuration, parseTokenOptions, SimpleTokens, verifyPassword, AUTH_LIMITS } from '../../src/auth/index.ts';

test('passwords: a hash verifies its password only; each hash has its own salt; junk never verifies', async () => {
  const h1 = await hashPassword('s3cret');
  const h2 = await hashPassword('s3cret');
  assert.notDeepEqual(h1, h2);
  assert.equal(await verifyPassword('s3cret', h1), true);
  assert.equal(await verifyPassword('s3cret', h2), true);
  assert.equal(await verifyPassword('S3cret', h1), false);
  assert.equal(await verifyPassword('', h1), false);
  assert.equal(await verifyPassword('s3cret', new Uint8Array(0)), false);
  assert.equal(await verifyPassword('s3cret', h1.subarray(0, h1.byteLength - 3)), false);
  const tooCostly = Uint8Array.from(h1);
  tooCostly[1] = 40;
  assert.equal(await verifyPassword('s3cret', tooCostly), false, 'a stored cost above the cap is refused, not run');
  assert.equal(h1[1], AUTH_LIMITS.scryptCostLog2, 'the parameters are stored with the hash');
});

test('password checks run off the event loop', async () => {
  const h = await hashPassword('pw');
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  const started = performance.now();
  await Promise.all(Array.from({ length: 6 }, () => verifyPassword('pw', h)));
  const elapsed = performance.now() - started;
  delay.disable();
  // Six checks take tens of ms each; the loop stays responsive throughout (generous for a loaded machine).
  assert.ok(delay.max / 1e6 < Math.max(100, elapsed / 2), `event loop blocked ${delay.max / 1e6} ms during ${elapsed} ms of hashing`);
});

test('simple tokens: index parsing, sliding TTL, per-user voiding, LRU bound', () => {
  assert.equal(SimpleTokens.indexOf('abcdefghijklmnop.42'), 42);
  for (const bad of ['abc', '.42', 'abc.', 'abc.4x', 'abc.-1', `a.${'9'.repeat(20)}`]) assert.equal(SimpleTokens.indexOf(bad), null, bad);
  const prefix = SimpleTokens.prefix();
  assert.match(prefix, /^[a-zA-Z]{16}$/);
  const t = new SimpleTokens(1000, 3);
  t.add('a.1', 'alice', 0);
  t.add('b.2', 'bob', 0);
  assert.equal(t.use('a.1', 900), 'alice');
  assert.equal(t.use('a.1', 1800), 'alice', 'each use extends the life');
  assert.equal(t.use('b.2', 1800), null, 'unused for its TTL: expired');
  t.add('c.3', 'alice', 1800);
  t.add('d.4', 'carol', 1800);
  t.add('e.5', 'dave', 1800);
  assert.equal(t.size, 3);
  assert.equal(t.use('a.1', 1801), null, 'the least recently used token made room');
  t.invalidateUser('alice');
  assert.equal(t.use('c.3', 1802), null);
  assert.equal(t.use('d.4', 1802), 'carol');
  t.clear();
  assert.equal(t.use('d.4', 1802), null);
});

test('JWT: RS256, PS384 and ES256 tokens verify with the public key; expired, tampered and foreign ones do not', () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  for (const [method, pair] of [['RS256', rsa], ['PS384', rsa], ['ES256', ec]] as const) {
    const jwt = new JwtTokens({ signMethod: method, publicKey: pair.publicKey, privateKey: pair.privateKey, ttlMs: 60_000 });
    const now = 1_700_000_000_000;
    const token = jwt.sign('alice', 7, now);
    const [header, claims] = token.split('.').slice(0, 2).map((p) => JSON.parse(Buffer.from(p, 'base64url').toString()));
    assert.deepEqual(header, { alg: method, typ: 'JWT' });
    assert.deepEqual(claims, { exp: Math.floor((now + 60_000) / 1000), revision: 7, username: 'alice' });
    assert.deepEqual(jwt.verify(token, now + 1000), { user: 'alice', revision: 7 }, method);
    assert.equal(jwt.verify(token, now + 61_000), null, `${method}: expired`);
    const forged = Buffer.from(JSON.stringify({ exp: claims.exp, revision: 7, username: 'root' })).toString('base64url');
    const parts = token.split('.');
    assert.equal(jwt.verify(`${parts[0]}.${forged}.${parts[2]}`, now), null, `${method}: tampered claims`);
    const verifyOnly = new JwtTokens({ signMethod: method, publicKey: pair.publicKey, ttlMs: 60_000 });
    assert.deepEqual(verifyOnly.verify(token, now), { user: 'alice', revision: 7 });
    assert.throws(() => verifyOnly.sign('alice', 1, now), AuthOptionsError);
  }
  const rs = new JwtTokens({ signMethod: 'RS256', publicKey: rsa.publicKey, privateKey: rsa.privateKey, ttlMs: 1000 });
  const rs512 = new JwtTokens({ signMethod: 'RS512', publicKey: rsa.publicKey, ttlMs: 1000 });
  assert.equal(rs512.verify(rs.sign('a', 1, 0), 0), null, 'a token of another method is refused');
  assert.equal(rs.verify('not.a.token', 0), null);
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
  assert.throws(() => new JwtTokens({ signMethod: 'RS256', publicKey: other.publicKey, privateKey: rsa.privateKey, ttlMs: 1 }), /don't match/);
  assert.throws(() => new JwtTokens({ signMethod: 'ES256', publicKey: rsa.publicKey, ttlMs: 1 }), /must be EC/);
  assert.throws(() => new JwtTokens({ signMethod: 'ES384', publicKey: ec.publicKey, ttlMs: 1 }), /curve/);
});

test('--auth-token and Go durations', () => {
  assert.deepEqual(parseTokenOptions('simple'), { kind: 'simple' });
  assert.deepEqual(parseTokenOptions('jwt,pub-key=/p.pem,priv-key=/k.pem,sign-method=RS256'), {
    kind: 'jwt',
    signMethod: 'RS256',
    publicKeyFile: '/p.pem',
    privateKeyFile: '/k.pem',
    ttlMs: AUTH_LIMITS.jwtTtlMsDefault,
  });
  assert.deepEqual(parseTokenOptions('jwt,pub-key=/p.pem,sign-method=ES256,ttl=1h30m'), { kind: 'jwt', signMethod: 'ES256', publicKeyFile: '/p.pem', ttlMs: 5_400_000 });
  for (const bad of ['', 'oauth', 'simple,ttl=5', 'jwt,pub-key=/p', 'jwt,sign-method=RS256', 'jwt,pub-key=/p,sign-method=HS1', 'jwt,pub-key=/p,sign-method=RS256,ttl=5', 'jwt,pub-key=/p,pub-key=/q,sign-method=RS256', 'jwt,foo']) {
    assert.throws(() => parseTokenOptions(bad), AuthOptionsError, bad);
  }
  assert.equal(parseGoDuration('300s'), 300_000);
  assert.equal(parseGoDuration('1.5h'), 5_400_000);
  assert.equal(parseGoDuration('250ms'), 250);
  assert.throws(() => parseGoDuration('5'), AuthOptionsError);
  assert.throws(() => parseGoDuration(''), AuthOptionsError);
});
