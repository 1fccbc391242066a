/**
 * The leader's reconfiguration checks (etcd's strict reconfiguration check), case by case:
 * enough started members for the new quorum, every voter connected, valid and unused URLs,
 * one learner at most, promotion only of a learner that caught up.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkAdd, checkPromote, checkRemove, checkUpdate, validPeerUrls, type LeaderView } from '../../src/server/reconfig.ts';
import type { MemberRecord } from '../../src/server/members.ts';

const member = (id: string, opts: { started?: boolean; learner?: boolean } = {}): MemberRecord => ({
  id,
  name: opts.started === false ? '' : `n${id}`,
  peerUrls: [`http://10.0.0.${id}:2380`],
  clientUrls: opts.started === false ? [] : [`http://10.0.0.${id}:2379`],
  isLearner: opts.learner === true,
});

function view(members: MemberRecord[], opts: { down?: string[]; match?: Record<string, number>; strict?: boolean } = {}): LeaderView {
  return {
    self: '1',
    members,
    strict: opts.strict ?? true,
    active: (id) => !(opts.down ?? []).includes(id),
    match: (id) => opts.match?.[id] ?? 100,
  };
}

const three = [member('1'), member('2'), member('3')];

test('peer URLs must be absolute http(s) URLs with a port and nothing else', () => {
  assert.ok(validPeerUrls(['http://127.0.0.1:2380', 'https://host.example:12380']));
  for (const bad of [[], ['127.0.0.1:2380'], ['http://127.0.0.1'], ['ftp://h:1'], ['http://h:1/path'], ['http://h:1?q=1'], ['not a url']]) {
    assert.equal(validPeerUrls(bad), false, JSON.stringify(bad));
  }
});

test('adding: bad URLs, then readiness (started quorum, all voters connected), then URL reuse and the learner limit', () => {
  assert.equal(checkAdd(view(three), ['http://10.0.0.9:2380'], false), null);
  assert.equal(checkAdd(view(three), ['10.0.0.9'], false), 'MEMBER_BAD_URLS');
  assert.equal(checkAdd(view(three), ['http://10.0.0.2:2380'], false), 'PEER_URL_EXISTS');
  assert.equal(checkAdd(view(three, { down: ['3'] }), ['http://10.0.0.9:2380'], false), 'UNHEALTHY');
  assert.equal(checkAdd(view(three, { down: ['3'] }), ['http://10.0.0.2:2380'], false), 'UNHEALTHY', 'readiness is checked first, as in etcd');
  // 5 voters, 3 started: a 6th needs 4 started.
  const unstarted = [...three, member('4', { started: false }), member('5', { started: false })];
  assert.equal(checkAdd(view(unstarted), ['http://10.0.0.9:2380'], false), 'NOT_ENOUGH_STARTED');
  assert.equal(checkAdd(view(unstarted, { strict: false }), ['http://10.0.0.9:2380'], false), null);
  // A learner does not count for quorum, but there may be only one.
  assert.equal(checkAdd(view([...three, member('4', { started: false })], { down: ['4'] }), ['http://10.0.0.9:2380'], true), 'UNHEALTHY', 'member 4 is not connected');
  assert.equal(checkAdd(view([...three, member('7', { learner: true })]), ['http://10.0.0.9:2380'], true), 'TOO_MANY_LEARNERS');
  // Growing a single member (restored from a snapshot) is allowed.
  assert.equal(checkAdd(view([member('1')]), ['http://10.0.0.9:2380'], false), null);
});

test('removing: unknown ids, a quorum of started members must remain, down members may always go', () => {
  assert.equal(checkRemove(view(three), '9'), 'MEMBER_NOT_FOUND');
  assert.equal(checkRemove(view(three), '2'), null);
  assert.equal(checkRemove(view(three), '1'), null, 'the leader may remove itself');
  assert.equal(checkRemove(view(three, { down: ['3'] }), '3'), null, 'a down member is not part of the active quorum');
  assert.equal(checkRemove(view(three, { down: ['3'] }), '2'), 'UNHEALTHY', 'leaves 1 and a down 3: no quorum');
  assert.equal(checkRemove(view([member('1'), member('2', { started: false }), member('3', { started: false })]), '2'), 'NOT_ENOUGH_STARTED');
  assert.equal(checkRemove(view([...three, member('7', { learner: true, started: false })]), '7'), null, 'a learner never counts');
});

test('promoting: only a learner, only once it has caught up, and only when a voter could be added', () => {
  const withLearner = [...three, member('7', { learner: true })];
  assert.equal(checkPromote(view(withLearner), '9'), 'MEMBER_NOT_FOUND');
  assert.equal(checkPromote(view(withLearner), '2'), 'MEMBER_NOT_LEARNER');
  assert.equal(checkPromote(view(withLearner, { match: { '1': 1000, '7': 899 } }), '7'), 'LEARNER_NOT_READY');
  assert.equal(checkPromote(view(withLearner, { match: { '1': 1000, '7': 900 } }), '7'), null);
  assert.equal(checkPromote(view(withLearner, { down: ['2'] }), '7'), 'UNHEALTHY');
});

test('updating: a known member, valid URLs, not another member\'s', () => {
  assert.equal(checkUpdate(view(three), '2', ['http://10.0.0.2:2380', 'http://10.0.0.22:2380']), null);
  assert.equal(checkUpdate(view(three), '9', ['http://10.0.0.9:2380']), 'MEMBER_NOT_FOUND');
  assert.equal(checkUpdate(view(three), '2', ['http://10.0.0.3:2380']), 'PEER_URL_EXISTS');
  assert.equal(checkUpdate(view(three), '2', ['nope']), 'MEMBER_BAD_URLS');
});
