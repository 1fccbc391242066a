/**
 * The client's error mapping and retry judgement, without a server: etcd's texts map to their
 * classes whatever the status, unknown texts fall back by status code, and the retry rule
 * re-sends a mutation only when it surely was not applied.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ETCD_ERRORS } from '../../src/api/etcd/errors.ts';
import { Status } from '../../src/api/grpc/status.ts';
import {
  AuthFailedError,
  CompactedError,
  ConnectionError,
  DeadlineExceededError,
  errorFromStatus,
  EtcdError,
  InvalidAuthTokenError,
  KeyNotFoundError,
  LeaderChangedError,
  LeaseNotFoundError,
  NoLeaderError,
  NoSpaceError,
  NotLeaderError,
  PermissionDeniedError,
  RequestTooLargeError,
  ServerTimeoutError,
  TooManyRequestsError,
  UnavailableError,
} from '../../src/client/errors.ts';
import { CLIENT_LIMITS } from '../../src/client/options.ts';
import { backoffMs, judge } from '../../src/client/rpc.ts';
import { compare, op, TxnBuilder } from '../../src/client/txn.ts';
import { keyRange, prefixEnd } from '../../src/client/kv.ts';

test("every text of the server's table maps to a class of its own, keeping code and text", () => {
  const expected: [keyof typeof ETCD_ERRORS, new (...a: never[]) => EtcdError][] = [
    ['KEY_NOT_FOUND', KeyNotFoundError],
    ['COMPACTED', CompactedError],
    ['NO_SPACE', NoSpaceError],
    ['LEASE_NOT_FOUND', LeaseNotFoundError],
    ['NO_LEADER', NoLeaderError],
    ['NOT_LEADER', NotLeaderError],
    ['LEADER_CHANGED', LeaderChangedError],
    ['TIMEOUT', ServerTimeoutError],
    ['TIMEOUT_LEADER_FAIL', ServerTimeoutError],
    ['TOO_MANY_REQUESTS', TooManyRequestsError],
    ['REQUEST_TOO_LARGE', RequestTooLargeError],
  ];
  for (const [code, cls] of expected) {
    const { status, message } = ETCD_ERRORS[code];
    const e = errorFromStatus(status, message);
    assert.ok(e instanceof cls, `${code} → ${e.name}`);
    assert.equal(e.code, status);
    assert.equal(e.message, message);
    assert.equal(e.name, cls.name);
  }
  // Every server condition is recognised by its text (none falls through to the generic class).
  for (const [code, { status, message }] of Object.entries(ETCD_ERRORS)) {
    assert.notEqual(errorFromStatus(status, message).constructor, EtcdError, `${code}: ${message}`);
  }
});

test('auth texts, and fallbacks by status code for texts the client does not know', () => {
  assert.ok(errorFromStatus(Status.INVALID_ARGUMENT, 'etcdserver: authentication failed, invalid user ID or password') instanceof AuthFailedError);
  assert.ok(errorFromStatus(Status.UNAUTHENTICATED, 'etcdserver: invalid auth token') instanceof InvalidAuthTokenError);
  assert.ok(errorFromStatus(Status.PERMISSION_DENIED, 'etcdserver: permission denied') instanceof PermissionDeniedError);
  assert.ok(errorFromStatus(Status.UNAVAILABLE, 'transport is closing') instanceof UnavailableError);
  assert.ok(errorFromStatus(Status.DEADLINE_EXCEEDED, 'context deadline exceeded') instanceof DeadlineExceededError);
  const other = errorFromStatus(Status.INTERNAL, 'something else');
  assert.equal(other.constructor, EtcdError);
  assert.equal(other.code, Status.INTERNAL);
});

test('retry rule: reads retry transient failures; writes only when surely not applied, else indeterminate', () => {
  const notSent = new ConnectionError('refused', 'http://x', false);
  const maybeSent = new ConnectionError('reset', 'http://x', true);
  const timeout = errorFromStatus(Status.UNAVAILABLE, ETCD_ERRORS.TIMEOUT.message);
  const noLeader = errorFromStatus(Status.UNAVAILABLE, ETCD_ERRORS.NO_LEADER.message);
  const stopped = errorFromStatus(Status.UNAVAILABLE, ETCD_ERRORS.STOPPED.message);
  const deadline = new DeadlineExceededError('context deadline exceeded', Status.DEADLINE_EXCEEDED);
  const keyNotFound = errorFromStatus(Status.INVALID_ARGUMENT, ETCD_ERRORS.KEY_NOT_FOUND.message);
  const cases: [EtcdError, 'idempotent' | 'mutation', boolean, string, boolean][] = [
    [notSent, 'mutation', false, 'retry', true],
    [maybeSent, 'mutation', false, 'indeterminate', true],
    [maybeSent, 'idempotent', false, 'retry', true],
    [noLeader, 'mutation', false, 'retry', true],
    [timeout, 'mutation', false, 'indeterminate', false],
    [timeout, 'idempotent', false, 'retry', false],
    [stopped, 'mutation', false, 'indeterminate', true],
    [deadline, 'mutation', true, 'indeterminate', false],
    [deadline, 'idempotent', true, 'fail', false],
    [keyNotFound, 'mutation', false, 'fail', false],
    [keyNotFound, 'idempotent', false, 'fail', false],
  ];
  for (const [error, safety, passed, verdict, endpointFault] of cases) {
    assert.deepEqual(judge(error, safety, passed), { verdict, endpointFault }, `${error.name} ${safety}`);
  }
});

test('back-off doubles from the base up to the cap, jittered within [d/2, d)', () => {
  for (let attempt = 0; attempt < 40; attempt++) {
    const d = Math.min(CLIENT_LIMITS.backoffMaxMs, CLIENT_LIMITS.backoffBaseMs * 2 ** attempt);
    const b = backoffMs(attempt, { ...CLIENT_LIMITS });
    assert.ok(b >= d / 2 && b < d, `attempt ${attempt}: ${b} in [${d / 2}, ${d})`);
  }
});

test('key ranges follow etcd: prefix end, all keys, from key, and no range_end for one key', () => {
  assert.deepEqual(prefixEnd(Buffer.from('a/')), Buffer.from('a0'));
  assert.deepEqual(prefixEnd(Buffer.from([0x61, 0xff])), Buffer.from('b'));
  assert.deepEqual(prefixEnd(Buffer.from([0xff, 0xff])), Buffer.from([0]));
  assert.deepEqual(keyRange('', { prefix: true }), { key: Buffer.from([0]), range_end: Buffer.from([0]) });
  assert.deepEqual(keyRange('k', { fromKey: true }), { key: Buffer.from('k'), range_end: Buffer.from([0]) });
  assert.deepEqual(keyRange('k'), { key: Buffer.from('k') });
  assert.deepEqual(keyRange('k', { rangeEnd: '' }), { key: Buffer.from('k') });
  assert.throws(() => keyRange('k', { prefix: true, fromKey: true }), TypeError);
});

test('txn builder: clauses once each, read-only txns are not writes, nested writes are', async () => {
  const sent: { writes: boolean }[] = [];
  const builder = (): TxnBuilder =>
    new TxnBuilder(async (_request, writes) => {
      sent.push({ writes });
      return { header: { clusterId: '', memberId: '', revision: 0, raftTerm: 0 }, succeeded: true, responses: [] };
    });
  await builder().if(compare.version('k', '=', 0)).then(op.get('k')).else(op.get('j')).commit();
  await builder().then(op.txn([], [op.get('a')], [op.delete('b')])).commit();
  assert.deepEqual(sent, [{ writes: false }, { writes: true }]);
  assert.throws(() => builder().if().if(), /given twice/);
  assert.throws(() => compare.value('k', '~' as '=', 'v'), /unknown comparison/);
});
