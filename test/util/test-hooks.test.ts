/**
 * The test-only fault hooks (src/util/test-hooks.ts) in a child process, since they are read
 * from the environment when the modules load: off without CONCLAVE_TEST_HOOKS (the plain sync
 * and clock), and with it a slow or failing WAL sync and an offset lease clock, changed at run
 * time by rewriting the file and sending SIGUSR2.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');

/** The child: reports each probe on its stdout as one JSON line, on every line read from stdin. */
const CHILD = `
import { openSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { defaultSync } from '${ROOT}/src/wal/fsutil.ts';
import { leaseClock } from '${ROOT}/src/server/lease-duties.ts';
import { testHooks } from '${ROOT}/src/util/test-hooks.ts';
const fd = openSync(process.argv[1], 'w');
for await (const _ of createInterface({ input: process.stdin })) {
  const t0 = performance.now();
  let error = null;
  try { await defaultSync(fd, 'data'); } catch (e) { error = e.code; }
  const syncMs = performance.now() - t0;
  const offset = leaseClock() - performance.now();
  console.log(JSON.stringify({ active: testHooks !== null, syncMs, error, offset }));
}
`;

interface Probe {
  active: boolean;
  syncMs: number;
  error: string | null;
  offset: number;
}

function child(env: Record<string, string>, file: string): { probe(): Promise<Probe>; signal(): void; close(): void } {
  const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD, file], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'inherit'] });
  let buffered = '';
  const waiting: ((p: Probe) => void)[] = [];
  p.stdout.on('data', (b: Buffer) => {
    buffered += b.toString();
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      waiting.shift()?.(JSON.parse(line) as Probe);
    }
  });
  return {
    probe: () =>
      new Promise<Probe>((res) => {
        waiting.push(res);
        p.stdin.write('probe\n');
      }),
    signal: () => p.kill('SIGUSR2'),
    close: () => p.stdin.end(),
  };
}

test('without CONCLAVE_TEST_HOOKS the hooks are off', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hooks-'));
  const c = child({ CONCLAVE_TEST_HOOKS: '' }, join(dir, 'f'));
  try {
    const p = await c.probe();
    assert.equal(p.active, false);
    assert.equal(p.error, null);
    assert.ok(Math.abs(p.offset) < 5, `lease clock offset ${p.offset}`);
  } finally {
    c.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the hooks slow or fail syncs and offset the lease clock, and change on SIGUSR2', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hooks-'));
  const hooks = join(dir, 'hooks.json');
  writeFileSync(hooks, JSON.stringify({ fsyncDelayMs: 150, leaseClockOffsetMs: 5000 }));
  const c = child({ CONCLAVE_TEST_HOOKS: hooks }, join(dir, 'f'));
  try {
    const slow = await c.probe();
    assert.equal(slow.active, true);
    assert.ok(slow.syncMs >= 140, `sync took ${slow.syncMs} ms`);
    assert.equal(slow.error, null);
    assert.ok(Math.abs(slow.offset - 5000) < 5, `offset ${slow.offset}`);
    writeFileSync(hooks, JSON.stringify({ fsyncFailProbability: 1, leaseClockOffsetMs: 7000 }));
    c.signal();
    // The signal is handled on the child's event loop, before the next probe line is read.
    await new Promise((r) => setTimeout(r, 300));
    const failing = await c.probe();
    assert.equal(failing.error, 'EIO');
    assert.ok(failing.syncMs < 100, `sync took ${failing.syncMs} ms`);
    assert.ok(Math.abs(failing.offset - 7000) < 5, `offset ${failing.offset}`);
  } finally {
    c.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
