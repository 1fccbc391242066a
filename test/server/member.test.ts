import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig } from '../../src/server/config.ts';
import { Member, type Logger } from '../../src/server/member.ts';
import { ServerError } from '../../src/server/errors.ts';
import { freePorts } from '../helpers/ports.ts';

const quiet: Logger = process.env.TEST_LOG ? { debug: console.log, info: console.log, warn: console.log, error: console.log } : { debug() {}, info() {}, warn() {}, error() {} };
const enc = (s: string) => Buffer.from(s);

interface Spec {
  name: string;
  peer: number;
  client: number;
}

function config(dir: string, me: Spec, all: Spec[], token = 'test-cluster') {
  return resolveConfig(
    {
      name: me.name,
      'data-dir': join(dir, me.name),
      'listen-peer-urls': `http://127.0.0.1:${me.peer}`,
      'initial-advertise-peer-urls': `http://127.0.0.1:${me.peer}`,
      'listen-client-urls': `http://127.0.0.1:${me.client}`,
      'advertise-client-urls': `http://127.0.0.1:${me.client}`,
      'initial-cluster': all.map((s) => `${s.name}=http://127.0.0.1:${s.peer}`).join(','),
      'initial-cluster-token': token,
      'heartbeat-interval': '20',
      'election-timeout': '200',
    },
    {},
  );
}

async function until(pred: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function specs(n: number): Promise<Spec[]> {
  const ports = await freePorts(2 * n);
  return Array.from({ length: n }, (_, i) => ({ name: `m${i}`, peer: ports[2 * i]!, client: ports[2 * i + 1]! }));
}

test('a single member writes, reads, and comes back from its data dir with everything', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'conclave-member-'));
  const [s] = await specs(1);
  try {
    let m = await Member.start(config(dir, s!, [s!]), quiet, (e) => assert.fail(String(e)));
    await until(() => m.status().role === 'leader');
    for (let i = 0; i < 50; i++) await m.write({ op: 'put', request: { key: enc(`k${i}`), value: enc(`v${i}`) } }, null);
    const r = await m.range({ key: enc('k'), rangeEnd: enc('l') }, false);
    assert.equal(r.count, 50);
    await until(() => m.members()[0]?.clientUrls.length === 1);
    assert.deepEqual(m.members().map((x) => x.name), ['m0']);
    await m.stop();

    m = await Member.start(config(dir, s!, [s!]), quiet, (e) => assert.fail(String(e)));
    const again = await m.range({ key: enc('k'), rangeEnd: enc('l') }, true);
    assert.equal(again.count, 50);
    assert.equal(again.revision, r.revision);
    await until(() => m.status().role === 'leader');
    await m.write({ op: 'put', request: { key: enc('after'), value: enc('restart') } }, null);
    assert.equal((await m.range({ key: enc('after') }, false)).kvs.length, 1);
    await m.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a data dir of another cluster is refused with a clear error", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'conclave-member-'));
  const [s] = await specs(1);
  try {
    const m = await Member.start(config(dir, s!, [s!]), quiet, (e) => assert.fail(String(e)));
    await m.stop();
    await assert.rejects(Member.start(config(dir, s!, [s!], 'other-token'), quiet, () => {}), /belongs to another member or cluster/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('three members replicate; a follower forwards writes; reads are linearizable on every member', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'conclave-member-'));
  const all = await specs(3);
  const members: Member[] = [];
  try {
    for (const s of all) members.push(await Member.start(config(dir, s, all), quiet, (e) => assert.fail(String(e))));
    await until(() => members.every((m) => m.status().leader !== ''));
    const follower = members.find((m) => m.status().role !== 'leader')!;
    const put = await follower.write({ op: 'put', request: { key: enc('x'), value: enc('1') } }, null);
    assert.ok(put !== null && put.op === 'put');
    for (const m of members) {
      const r = await m.range({ key: enc('x') }, false);
      assert.equal(Buffer.from(r.kvs[0]!.value).toString(), '1', `linearizable read on ${m.id}`);
    }
    await until(() => members.every((m) => m.members().length === 3 && m.members().every((x) => x.clientUrls.length === 1)));
    // Errors of the store come back as the server's conditions.
    await assert.rejects(follower.write({ op: 'compact', revision: 1_000_000 }, null), (e: unknown) => e instanceof ServerError && e.code === 'FUTURE_REVISION');
  } finally {
    for (const m of members) await m.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
