/**
 * TEST ONLY: fault hooks for the multi-process fault harness (test/faults). Off unless the
 * environment variable CONCLAVE_TEST_HOOKS names a JSON file; only then does the member read it,
 * at start and again on every SIGUSR2 (so the harness changes a running member's faults by
 * rewriting the file and signalling it):
 *
 *   { "fsyncDelayMs": 0, "fsyncFailProbability": 0, "leaseClockOffsetMs": 0, "killBeforeSnapshotInstall": 0 }
 *
 *   fsyncDelayMs               every WAL and snapshot sync waits this long first (a slow disk);
 *   fsyncFailProbability       each sync fails with EIO with this probability (the WAL then stops
 *                              the member, as it must after a failed fsync);
 *   leaseClockOffsetMs         added to the monotonic clock lease expiry reads (a forward clock jump);
 *   killBeforeSnapshotInstall  1: the member SIGKILLs itself when it is about to swap in a received
 *                              snapshot's store, after the WAL recorded the snapshot (a crash there).
 *
 * With the variable unset, `testHooks` is null and the callers bind their plain functions when
 * their module loads: nothing is read, no signal handler is installed, no hot path tests a flag.
 */
import { readFileSync } from 'node:fs';

export const TEST_HOOKS_ENV = 'CONCLAVE_TEST_HOOKS';

export interface TestHookValues {
  readonly fsyncDelayMs: number;
  readonly fsyncFailProbability: number;
  readonly leaseClockOffsetMs: number;
  readonly killBeforeSnapshotInstall: number;
}

const off: TestHookValues = { fsyncDelayMs: 0, fsyncFailProbability: 0, leaseClockOffsetMs: 0, killBeforeSnapshotInstall: 0 };

function read(path: string): TestHookValues {
  const raw = JSON.parse(readFileSync(path, 'utf8')) as Partial<Record<keyof TestHookValues, unknown>>;
  const num = (k: keyof TestHookValues): number => {
    const v = raw[k] ?? off[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new Error(`${TEST_HOOKS_ENV} file ${path}: ${k} must be a number ≥ 0`);
    return v;
  };
  return {
    fsyncDelayMs: num('fsyncDelayMs'),
    fsyncFailProbability: num('fsyncFailProbability'),
    leaseClockOffsetMs: num('leaseClockOffsetMs'),
    killBeforeSnapshotInstall: num('killBeforeSnapshotInstall'),
  };
}

function install(path: string | undefined): { current: TestHookValues } | null {
  if (path === undefined || path === '') return null;
  const hooks = { current: read(path) };
  process.stderr.write(`${TEST_HOOKS_ENV}=${path}: test fault hooks are active (never in production)\n`);
  process.on('SIGUSR2', () => {
    hooks.current = read(path);
  });
  return hooks;
}

export const testHooks: { readonly current: TestHookValues } | null = install(process.env[TEST_HOOKS_ENV]);

/** `sync` with the hooks' delay and failures in front of it. */
export function withSyncFaults<A extends unknown[]>(sync: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  const hooks = testHooks;
  if (hooks === null) return sync;
  return async (...args) => {
    const { fsyncDelayMs, fsyncFailProbability } = hooks.current;
    if (fsyncDelayMs > 0) await new Promise((r) => setTimeout(r, fsyncDelayMs));
    if (Math.random() < fsyncFailProbability) throw Object.assign(new Error('EIO: i/o error, fsync (injected by the test hook)'), { code: 'EIO' });
    return sync(...args);
  };
}

/** performance.now(), plus the hooks' clock offset when they are active. */
export const hookedMonotonicClock: () => number =
  testHooks === null ? () => performance.now() : () => performance.now() + testHooks!.current.leaseClockOffsetMs;

/** Where a received snapshot's store is about to be swapped in: the member dies here if the hooks say so. */
export function snapshotInstallCrashPoint(): void {
  if (testHooks === null || testHooks.current.killBeforeSnapshotInstall === 0) return;
  process.stderr.write('test hook: SIGKILL before swapping in the received snapshot\n');
  process.kill(process.pid, 'SIGKILL');
}
