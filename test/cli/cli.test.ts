/**
 * Golden-output tests of the `conclave` client commands: bin/conclave runs as a child process
 * against a 3-member Conclave cluster and its output is compared with expected text (member and
 * lease ids, URLs, revisions and timings normalized where they vary). Where etcdctl 3.4 is
 * installed, get/put/del outputs are also compared with its outputs for the same commands.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CONCLAVE_BIN, etcdAvailable, etcdctl, startCluster, type ProcessCluster } from '../helpers/processes.ts';
import { freePorts } from '../helpers/ports.ts';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let cluster: ProcessCluster;
let endpoints: string;

/** Runs bin/conclave; `until` ends a long-running command (SIGINT) once stdout contains it. */
function conclave(args: string[], o: { input?: string; until?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(CONCLAVE_BIN, args, { env: { ...process.env, CONCLAVE_ENDPOINTS: endpoints, ...o.env } });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGINT'), o.timeoutMs ?? 30_000);
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
      if (o.until !== undefined && stdout.includes(o.until)) child.kill('SIGINT');
    });
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    });
    child.stdin.end(o.input ?? '');
  });
}

async function ok(args: string[], o?: Parameters<typeof conclave>[1]): Promise<string> {
  const r = await conclave(args, o);
  assert.equal(r.code, 0, `conclave ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/** Member ids, lease ids and ports as placeholders. */
function normalize(text: string): string {
  return text
    .replace(/\b[0-9a-f]{16}\b/g, '<id>')
    .replace(/\b[0-9a-f]{13,15}\b/g, '<id>')
    .replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:<port>');
}

describe('conclave CLI against a 3-member Conclave cluster', () => {
  const dir = mkdtempSync(join(tmpdir(), 'conclave-cli-'));

  before(async () => {
    cluster = await startCluster('conclave', 3);
    endpoints = cluster.members.map((m) => m.clientUrl.replace('http://', '')).join(',');
  });

  after(async () => {
    await cluster?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  test('put, get (simple, json, table, flags), del', async () => {
    assert.equal(await ok(['put', 'k1', 'v1']), 'OK\n');
    assert.equal(await ok(['put', 'k2'], { input: 'from stdin' }), 'OK\n');
    assert.equal(await ok(['put', 'k1', 'v1b', '--prev-kv']), 'OK\nk1\nv1\n');
    assert.equal(await ok(['get', 'k', '--prefix']), 'k1\nv1b\nk2\nfrom stdin\n');
    assert.equal(await ok(['get', 'k', '--prefix', '--keys-only']), 'k1\n\nk2\n\n');
    assert.equal(await ok(['get', 'k1', '--print-value-only']), 'v1b\n');
    assert.equal(await ok(['get', 'k', '--prefix', '--sort-by', 'KEY', '--order', 'DESCEND', '--limit', '1']), 'k2\nfrom stdin\n');
    assert.equal(await ok(['get', 'k1', 'k3', '--consistency', 's']), 'k1\nv1b\nk2\nfrom stdin\n');
    const json = JSON.parse(await ok(['get', 'k1', '-w', 'json'])) as { header: { cluster_id: number; revision: number }; kvs: { key: string; value: string; version: number }[]; count: number };
    assert.equal(Buffer.from(json.kvs[0]!.key, 'base64').toString(), 'k1');
    assert.equal(Buffer.from(json.kvs[0]!.value, 'base64').toString(), 'v1b');
    assert.equal(json.kvs[0]!.version, 2);
    assert.equal(json.count, 1);
    // uint64s are plain numbers (not strings) as etcdctl writes them.
    assert.match(await ok(['get', 'k1', '-w', 'json']), /"cluster_id":\d+,"member_id":\d+,"revision":\d+,"raft_term":\d+/);
    const table = await ok(['get', 'k1', '-w', 'table']);
    assert.match(table, /^\+-+\+/);
    assert.match(table, /\| KEY \| VALUE \| CREATE REVISION \| MOD REVISION \| VERSION \| LEASE \|/);
    assert.equal(await ok(['del', 'k2', '--prev-kv']), '1\nk2\nfrom stdin\n');
    assert.equal(await ok(['del', 'nothing']), '0\n');
    const rev = JSON.parse(await ok(['get', 'k1', '-w', 'json'])).kvs[0].create_revision as number;
    assert.equal(await ok(['get', 'k1', '--rev', String(rev)]), 'k1\nv1\n');
  });

  test('txn from stdin: success and failure branches', async () => {
    await ok(['put', 't1', 'a']);
    const txn = 'value("t1") = "a"\nmod("t1") > "0"\n\nput t1 "b c"\nget t1\n\nget t1\n';
    assert.equal(await ok(['txn'], { input: txn }), 'SUCCESS\n\nOK\n\nt1\nb c\n');
    assert.equal(await ok(['txn'], { input: txn }), 'FAILURE\n\nt1\nb c\n');
  });

  test('etcd error texts and the no-endpoint error, exit code 1', async () => {
    const bad = await conclave(['put', 'x', 'y', '--lease', '1234']);
    assert.equal(bad.code, 1);
    assert.equal(bad.stderr, 'Error: etcdserver: requested lease not found\n');
    const [port] = await freePorts(1);
    const dead = await conclave(['get', 'x', '--endpoints', `127.0.0.1:${port}`, '--command-timeout', '1s']);
    assert.equal(dead.code, 1);
    assert.equal(dead.stderr, `Error: no endpoint answered: 127.0.0.1:${port} (connection refused)\n`);
  });

  test('watch prints events until interrupted', async () => {
    const watching = conclave(['watch', 'w/', '--prefix', '--prev-kv'], { until: 'DELETE\nw/a\nv2\nw/a\n\n', timeoutMs: 20_000 });
    await sleep(1500);
    await ok(['put', 'w/a', 'v1']);
    await ok(['put', 'w/a', 'v2']);
    await ok(['del', 'w/a']);
    const r = await watching;
    assert.equal(r.stdout, 'PUT\nw/a\nv1\nPUT\nw/a\nv1\nw/a\nv2\nDELETE\nw/a\nv2\nw/a\n\n');
  });

  test('lease grant, timetolive --keys, list, keep-alive --once, revoke', async () => {
    const granted = await ok(['lease', 'grant', '30']);
    assert.match(granted, /^lease [0-9a-f]{16} granted with TTL\(30s\)\n$/);
    const id = granted.split(' ')[1]!;
    await ok(['put', 'leased', 'x', '--lease', id]);
    assert.match(await ok(['lease', 'timetolive', id, '--keys']), new RegExp(`^lease ${id} granted with TTL\\(30s\\), remaining\\(\\d+s\\), attached keys\\(\\[leased\\]\\)\\n$`));
    assert.match(await ok(['lease', 'list']), new RegExp(`^found \\d+ leases\\n(?:[0-9a-f]{16}\\n)*${id}\\n`));
    assert.equal(await ok(['lease', 'keep-alive', '--once', id]), `lease ${id} keepalived with TTL(30)\n`);
    assert.equal(await ok(['lease', 'revoke', id]), `lease ${id} revoked\n`);
    assert.equal(await ok(['lease', 'timetolive', id]), `lease ${id} already expired\n`);
    assert.equal(await ok(['get', 'leased']), '');
  });

  test('lock runs a command while holding the lock, with its key and fencing token', async () => {
    const out = await ok(['lock', 'jobs', '--', 'sh', '-c', 'echo "held $CONCLAVE_LOCK_KEY $CONCLAVE_LOCK_REV"']);
    const [key, token, line] = out.split('\n');
    assert.match(key!, /^jobs\/[0-9a-f]+$/);
    assert.match(token!, /^\d+$/);
    assert.equal(line, `held ${key} ${token}`);
    assert.equal(await ok(['get', 'jobs/', '--prefix']), '', 'the lock is released after the command');
    const failing = await conclave(['lock', 'jobs', '--', 'sh', '-c', 'exit 3']);
    assert.equal(failing.code, 3);
  });

  test('elect campaigns and elect -l observes the leader', async () => {
    const observer = conclave(['elect', '-l', 'ele'], { until: 'proposal-1\n', timeoutMs: 20_000 });
    await sleep(1000);
    const leader = await conclave(['elect', 'ele', 'proposal-1'], { until: 'proposal-1\n', timeoutMs: 20_000 });
    assert.equal(leader.code, 0, leader.stderr);
    assert.match(leader.stdout, /^ele\/[0-9a-f]+\nproposal-1\n$/);
    const seen = await observer;
    assert.equal(seen.stdout, leader.stdout);
  });

  test('member list and endpoint health/status', async () => {
    const list = normalize(await ok(['member', 'list']));
    assert.equal(
      list
        .split('\n')
        .filter((l) => l !== '')
        .sort()
        .join('\n'),
      ['m0', 'm1', 'm2'].map((n) => `<id>, started, ${n}, http://127.0.0.1:<port>, http://127.0.0.1:<port>, false`).join('\n'),
    );
    const health = normalize(await ok(['endpoint', 'health'])).replace(/took = [\d.]+(µs|ms|s)/g, 'took = <t>');
    assert.equal(health, '127.0.0.1:<port> is healthy: successfully committed proposal: took = <t>\n'.repeat(3));
    const status = normalize(await ok(['endpoint', 'status', '-w', 'table']))
      .replace(/\| +\d+(\.\d)? [kM]?B \|/g, '| <size> |')
      .replace(/\| +\d+ \| +\d+ \| +\d+ \| +\|/g, '| <term> | <index> | <applied> | |');
    const lines = status.split('\n');
    assert.match(lines[1]!, /^\| +ENDPOINT +\| +ID +\| VERSION \| DB SIZE \| IS LEADER \| IS LEARNER \| RAFT TERM \| RAFT INDEX \| RAFT APPLIED INDEX \| ERRORS \|$/);
    const rows = lines.filter((l) => l.includes('127.0.0.1'));
    assert.equal(rows.length, 3);
    for (const row of rows) assert.match(row, /^\| 127\.0\.0\.1:<port> \| +<id> \| +\d+\.\d+\.\d+ \| <size> \| +(true|false) \| +false \| <term> \| <index> \| <applied> \| \|$/);
    assert.equal(rows.filter((r) => r.includes(' true |')).length, 1, 'one leader');
  });

  test('user, role and auth basics', async () => {
    assert.equal(await ok(['user', 'add', 'root:rootpw']), 'User root created\n');
    assert.equal(await ok(['role', 'add', 'root']), 'Role root created\n');
    assert.equal(await ok(['user', 'grant-role', 'root', 'root']), 'Role root is granted to user root\n');
    assert.equal(await ok(['role', 'add', 'app']), 'Role app created\n');
    assert.equal(await ok(['role', 'grant-permission', 'app', 'readwrite', 'app/', '--prefix']), 'Role app updated\n');
    assert.equal(await ok(['role', 'grant-permission', 'app', 'read', 'cfg']), 'Role app updated\n');
    assert.equal(await ok(['role', 'get', 'app']), 'Role app\nKV Read:\n\t[app/, app0) (prefix app/)\n\tcfg\nKV Write:\n\t[app/, app0) (prefix app/)\n');
    assert.equal(await ok(['user', 'add', 'alice', '--new-user-password', 'pw']), 'User alice created\n');
    assert.equal(await ok(['user', 'grant-role', 'alice', 'app']), 'Role app is granted to user alice\n');
    assert.equal(await ok(['user', 'get', 'alice']), 'User: alice\nRoles: app\n');
    assert.equal(await ok(['user', 'list']), 'alice\nroot\n');
    assert.equal(await ok(['role', 'list']), 'app\nroot\n');
    assert.equal(await ok(['auth', 'enable']), 'Authentication Enabled\n');
    try {
      assert.equal(await ok(['put', 'app/x', '1', '--user', 'alice:pw']), 'OK\n');
      const denied = await conclave(['put', 'other', '1', '--user', 'alice:pw']);
      assert.deepEqual([denied.code, denied.stderr], [1, 'Error: etcdserver: permission denied\n']);
      const wrong = await conclave(['get', 'app/x', '--user', 'alice:nope']);
      assert.deepEqual([wrong.code, wrong.stderr], [1, 'Error: etcdserver: authentication failed, invalid user ID or password\n']);
      assert.match(await ok(['auth', 'status', '--user', 'root:rootpw']), /^Authentication Status: true\nAuthRevision: \d+\n$/);
    } finally {
      assert.equal(await ok(['auth', 'disable', '--user', 'root:rootpw']), 'Authentication Disabled\n');
    }
    assert.equal(await ok(['role', 'revoke-permission', 'app', 'cfg']), 'Permission of key cfg is revoked from role app\n');
    assert.equal(await ok(['user', 'revoke-role', 'alice', 'app']), 'Role app is revoked from user alice\n');
    assert.equal(await ok(['user', 'delete', 'alice']), 'User alice deleted\n');
    assert.equal(await ok(['role', 'delete', 'app']), 'Role app deleted\n');
  });

  test('snapshot save writes a file snapshot status reads', async () => {
    const file = join(dir, 'backup.db');
    assert.equal(await ok(['snapshot', 'save', file]), `Snapshot saved at ${file}\n`);
    assert.ok(statSync(file).size > 0);
    assert.match(await ok(['snapshot', 'status', file]), /^[0-9a-f]+, \d+, \d+, [\d.]+ [kM]?B\n$/);
  });

  test('bench put/get/watch print a summary table', async () => {
    for (const operation of ['put', 'get', 'watch']) {
      const out = await ok(['bench', operation, '--clients', '2', '--total', '20']);
      const lines = out.split('\n');
      assert.match(lines[1]!, /^\| OPERATION \| CLIENTS \| TOTAL \| ERRORS \| SECONDS \| +OPS\/S +\| +P50 +\| +P90 +\| +P99 +\| +P99\.9 +\|$/);
      const total = operation === 'watch' ? 40 : 20;
      assert.match(lines[3]!, new RegExp(`^\\| +${operation} \\| +2 \\| +${total} \\| +0 \\| +[\\d.]+ \\| +[\\d.]+ \\|( +[\\d.]+ms \\|){4}$`));
      assert.equal(lines.length, 6);
    }
  });

  test('get/put/del outputs equal etcdctl 3.4 outputs', { skip: etcdAvailable() ? false : 'etcdctl not installed' }, async () => {
    const cases: string[][] = [
      ['put', 'cmp/a', 'one'],
      ['put', 'cmp/b', 'two', '--prev-kv'],
      ['get', 'cmp/', '--prefix'],
      ['get', 'cmp/', '--prefix', '--keys-only'],
      ['get', 'cmp/b', '--print-value-only'],
      ['get', 'cmp/', '--prefix', '--sort-by', 'VALUE', '--order', 'DESCEND'],
      ['get', 'cmp/a', 'cmp/c', '--limit', '1'],
      ['del', 'cmp/', '--prefix', '--prev-kv'],
      ['del', 'cmp/none'],
    ];
    // The same state before each run of each tool.
    const reset = async (): Promise<void> => {
      await ok(['put', 'cmp/a', 'one']);
      await ok(['put', 'cmp/b', 'two']);
    };
    await reset();
    for (const args of cases) {
      const writes = args[0] !== 'get';
      if (writes) await reset();
      const ours = await ok(args);
      if (writes) await reset();
      const theirs = await etcdctl(endpoints, args);
      assert.equal(theirs.code, 0, theirs.stderr);
      assert.equal(ours, theirs.stdout, `conclave ${args.join(' ')}`);
    }
    await reset();
    // Each tool may ask another member: the header names the one that answered.
    const json = (text: string): object => {
      const r = JSON.parse(text) as { header: { member_id?: unknown } };
      delete r.header.member_id;
      return r;
    };
    const ours = json(await ok(['get', 'cmp/a', '-w', 'json']));
    const theirs = json((await etcdctl(endpoints, ['get', 'cmp/a', '-w', 'json'])).stdout);
    assert.deepEqual(ours, theirs);
  });
});
