/**
 * etcd's backup and disaster recovery, end to end: `etcdctl snapshot save` from a member of a
 * 3-member Conclave cluster holding keys, history, a compaction and a lease; `conclave snapshot
 * status` on the file; `conclave snapshot restore` into three new data dirs for a NEW cluster
 * (new names' peer URLs, its own membership); the new cluster starts from them, holds all the
 * data and works. And the restore's refusals: a non-empty data dir, an altered file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CONCLAVE_BIN, etcdctl, startCluster, type ProcessCluster } from '../helpers/processes.ts';

const run = promisify(execFile);

const TEST_LIMITS = {
  testMs: 90_000,
} as const;

async function conclave(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [CONCLAVE_BIN, ...args]);
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : 1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

async function ok(endpoints: string, args: string[], stdin?: string): Promise<string> {
  const r = await etcdctl(endpoints, args, stdin);
  assert.equal(r.code, 0, `etcdctl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** JSON with 64-bit integers kept exact (ids, leases). */
function parseExact(text: string): unknown {
  return JSON.parse(text.replace(/([:[,]\s*)(\d{10,})(?=\s*[,}\]])/g, '$1"$2"'));
}

interface RangeJson {
  header: { cluster_id: string; revision: number };
  kvs: unknown[];
  count: number;
}

test('snapshot save from a 3-member cluster, restore into 3 new data dirs, and the new cluster has all the data and works', { timeout: TEST_LIMITS.testMs }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'conclave-restore-'));
  const file = join(dir, 'backup.db');
  let source: ProcessCluster | null = await startCluster('conclave', 3);
  let restored: ProcessCluster | null = null;
  try {
    const src = source.endpoints;
    // A txn puts many keys in one revision and one etcdctl run; single puts give each its own.
    const puts = (n: number, value: string): string => Array.from({ length: n }, (_, i) => `put app/${String(i).padStart(3, '0')} ${value}-${i}`).join('\n');
    assert.equal(await ok(src, ['txn'], `\n${puts(60, 'value')}\n\n\n`).then((t) => t.split('\n')[0]), 'SUCCESS');
    for (let i = 0; i < 10; i++) await ok(src, ['put', `app/${String(i).padStart(3, '0')}`, `updated-${i}`]);
    await ok(src, ['del', 'app/059']);
    const compactAt = (parseExact(await ok(src, ['get', 'app/000', '-w', 'json'])) as RangeJson).header.revision - 5;
    await ok(src, ['compact', String(compactAt)]);
    const lease = /lease ([0-9a-f]+) granted/.exec(await ok(src, ['lease', 'grant', '600']))![1]!;
    await ok(src, ['put', 'session/holder', 'me', `--lease=${lease}`]);
    const expected = parseExact(await ok(src, ['get', '', '--from-key', '-w', 'json'])) as RangeJson;
    const history = await ok(src, ['get', 'app/', '--prefix', `--rev=${compactAt + 1}`, '-w', 'json']);

    const save = await etcdctl(source.members[1]!.clientUrl, ['snapshot', 'save', file]);
    assert.equal(save.code, 0, save.stderr);
    assert.equal(save.stdout, `Snapshot saved at ${file}\n`);
    assert.equal(readFileSync(file).length % 512, 32);
    await source.destroy();
    source = null;

    const status = await conclave(['snapshot', 'status', file, '-w', 'json']);
    assert.equal(status.code, 0, status.stderr);
    const s = JSON.parse(status.stdout) as { hash: number; revision: number; totalKey: number; totalSize: number };
    assert.equal(s.revision, expected.header.revision);
    assert.ok(s.totalKey > 70 && s.totalSize > 0 && s.hash > 0, status.stdout);
    assert.match((await conclave(['snapshot', 'status', file])).stdout, new RegExp(`^${s.hash.toString(16)}, ${s.revision}, ${s.totalKey}, \\d+(\\.\\d)? kB\\n$`));

    // Member m1 keeps its WAL in a directory of its own (--wal-dir), from the restore on.
    const walDir = join(dir, 'm1-wal');
    restored = await startCluster('conclave', 3, {
      memberFlags: { 1: { 'wal-dir': walDir } },
      beforeStart: async (members, cluster) => {
        for (const m of members) {
          const r = await conclave([
            'snapshot', 'restore', file,
            '--data-dir', m.dataDir,
            ...(m.name === 'm1' ? ['--wal-dir', walDir] : []),
            '--name', m.name,
            '--initial-cluster', cluster.initialCluster,
            '--initial-cluster-token', cluster.token,
            '--initial-advertise-peer-urls', m.peerUrl,
          ]);
          assert.equal(r.code, 0, r.stderr);
          assert.match(r.stdout, new RegExp(`^restored .* \\(${m.name}\\) of new cluster [0-9a-f]+ with 3 member\\(s\\); revision ${expected.header.revision}, ${s.totalKey} records\\n$`));
        }
      },
    });
    const dst = restored.endpoints;

    // Every key with its revisions, versions and lease, on every member; the history above the compaction.
    const got = parseExact(await ok(dst, ['get', '', '--from-key', '-w', 'json'])) as RangeJson;
    assert.notEqual(got.header.cluster_id, expected.header.cluster_id, 'a new cluster');
    assert.deepEqual(got.kvs, expected.kvs);
    assert.equal(got.header.revision, expected.header.revision);
    for (const m of restored.members) {
      const local = parseExact(await ok(m.clientUrl, ['get', '', '--from-key', '-w', 'json', '--consistency=s'])) as RangeJson;
      assert.deepEqual(local.kvs, expected.kvs, `${m.name} holds the data`);
    }
    assert.equal(await ok(dst, ['get', 'app/', '--prefix', `--rev=${compactAt + 1}`, '-w', 'json']).then((t) => JSON.stringify((JSON.parse(t) as RangeJson).kvs)), JSON.stringify((JSON.parse(history) as RangeJson).kvs));
    assert.match((await etcdctl(dst, ['get', 'app/000', `--rev=${compactAt - 1}`])).stderr, /required revision has been compacted/);
    assert.match(await ok(dst, ['lease', 'timetolive', lease, '--keys']), /attached keys\(\[session\/holder\]\)/);

    // Its own membership, and it works: writes, watches' revisions go on from the snapshot's.
    const members = (await ok(dst, ['member', 'list'])).trim().split('\n').map((l) => l.split(', ').slice(2, 4).join(' ')).sort();
    assert.deepEqual(members, restored.members.map((m) => `${m.name} ${m.peerUrl}`).sort());
    await ok(dst, ['put', 'after/restore', 'yes']);
    const after = parseExact(await ok(dst, ['get', 'after/restore', '-w', 'json'])) as RangeJson;
    assert.equal(after.header.revision, expected.header.revision + 1);
    const hashes = (await ok(dst, ['endpoint', 'hashkv'])).trim().split('\n').map((l) => l.split(', ')[1]);
    assert.equal(new Set(hashes).size, 1, `members agree: ${hashes.join(' ')}`);
    assert.ok(readdirSync(walDir).some((f) => f.endsWith('.wal')), 'm1 writes its WAL in --wal-dir');
    assert.equal(existsSync(join(restored.members[1]!.dataDir, 'member', 'wal')), false, 'and not in its data dir');
  } finally {
    await source?.destroy();
    await restored?.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('restore refuses a non-empty data dir and an altered file; --skip-hash-check still finds an altered body', { timeout: TEST_LIMITS.testMs }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'conclave-restore-'));
  const cluster = await startCluster('conclave', 1);
  try {
    await ok(cluster.endpoints, ['put', 'k', 'v']);
    const file = join(dir, 'one.db');
    await ok(cluster.members[0]!.clientUrl, ['snapshot', 'save', file]);
    const flags = (dataDir: string): string[] => ['--data-dir', dataDir, '--name', 'x', '--initial-advertise-peer-urls', 'http://127.0.0.1:1', '--initial-cluster', 'x=http://127.0.0.1:1'];

    const busy = join(dir, 'busy');
    mkdirSync(busy);
    writeFileSync(join(busy, 'something'), '');
    const r1 = await conclave(['snapshot', 'restore', file, ...flags(busy)]);
    assert.notEqual(r1.code, 0);
    assert.match(r1.stderr, /^Error: data-dir ".*busy" not empty or could not be read\n$/);

    const bytes = readFileSync(file);
    const altered = join(dir, 'altered.db');
    const copy = Buffer.from(bytes);
    copy[20] = copy[20]! ^ 0xff;
    writeFileSync(altered, copy);
    const r2 = await conclave(['snapshot', 'restore', altered, ...flags(join(dir, 'a'))]);
    assert.notEqual(r2.code, 0);
    assert.match(r2.stderr, /^Error: expected sha256 [0-9a-f]{64}, got [0-9a-f]{64}\n$/);
    const r3 = await conclave(['snapshot', 'restore', altered, ...flags(join(dir, 'b')), '--skip-hash-check']);
    assert.notEqual(r3.code, 0);
    assert.equal(r3.stderr, 'Error: mvcc: snapshot is corrupt: checksum mismatch\n');
    const r4 = await conclave(['snapshot', 'restore', join(dir, 'missing.db'), ...flags(join(dir, 'c'))]);
    assert.match(r4.stderr, /^Error: ENOENT: no such file or directory/);
    assert.equal(r4.code, 1);
    const r5 = await conclave(['snapshot', 'restore', file, ...flags(join(dir, 'd'))]);
    assert.equal(r5.code, 0, r5.stderr);
  } finally {
    await cluster.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});
