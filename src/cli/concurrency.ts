/**
 * `conclave lock` and `conclave elect`: the client's Mutex and Election recipes (etcd's
 * algorithms, so they contend with `etcdctl lock`/`elect` on the same names).
 *
 * lock prints the lock key and its fencing token (the key's create revision), then holds the
 * lock until interrupted, or while a given command runs (with CONCLAVE_LOCK_KEY and
 * CONCLAVE_LOCK_REV — and etcdctl's ETCD_LOCK_KEY/ETCD_LOCK_REV — in its environment; the
 * command's exit code becomes ours). A lost session lease ends the hold with an error.
 */
import { spawn } from 'node:child_process';
import { Command } from 'commander';
import { Election, Mutex } from '../client/index.ts';
import { clientAction, UsageError, withGlobalOptions, type GlobalOptions } from './client-options.ts';
import { print } from './output.ts';

export const CONCURRENCY_DEFAULTS = {
  /** Session lease TTL in seconds (etcdctl's --ttl default). */
  ttlSeconds: 60,
} as const;

/** Resolves on SIGINT or SIGTERM (or when `also` settles). */
function interrupted(also?: Promise<unknown>): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
    also?.then(done, done);
  });
}

function runCommand(argv: readonly string[], env: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: 'inherit', env: { ...process.env, ...env } });
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? (signal !== null ? 1 : 0)));
  });
}

function ttlOf(text: string): number {
  const ttl = Number(text);
  if (!Number.isInteger(ttl) || ttl <= 0) throw new UsageError(`bad --ttl ${JSON.stringify(text)}`);
  return ttl;
}

export function lockCommand(): Command {
  const cmd = new Command('lock')
    .description('Acquires a named lock, prints its key and fencing token, and holds it until interrupted or while the given command runs')
    .argument('<lockname>', 'name of the lock (its keys live under <lockname>/)')
    .argument('[command...]', 'command to run while holding the lock')
    .option('--ttl <seconds>', 'timeout for the session lease', String(CONCURRENCY_DEFAULTS.ttlSeconds));
  return withGlobalOptions(cmd).action(
    clientAction<GlobalOptions & { ttl: string }>(async (client, o, [name, argv]) => {
      const session = await client.lease(ttlOf(o.ttl));
      const mutex = new Mutex(client, session, name as string);
      const waiting = new AbortController();
      const abortWait = (): void => waiting.abort(new UsageError('interrupted while waiting for the lock'));
      process.once('SIGINT', abortWait);
      try {
        await mutex.lock({ signal: waiting.signal });
      } finally {
        process.off('SIGINT', abortWait);
      }
      const key = mutex.key!;
      const token = mutex.token;
      print(`${key}\n${token}\n`);
      try {
        const command = (argv as string[] | undefined) ?? [];
        if (command.length > 0) {
          const env = { CONCLAVE_LOCK_KEY: key, CONCLAVE_LOCK_REV: String(token), ETCD_LOCK_KEY: key, ETCD_LOCK_REV: String(token) };
          const exit = await Promise.race([runCommand(command, env), session.lost.then((e) => Promise.reject(e))]);
          if (exit !== 0) process.exitCode = exit;
        } else {
          await interrupted(session.lost.then((e) => Promise.reject(e)));
          if (session.isLost) throw await session.lost;
        }
      } finally {
        await mutex.unlock().catch(() => {});
        await session.revoke().catch(() => {});
      }
    }),
  );
}

export function electCommand(): Command {
  const cmd = new Command('elect')
    .description('Campaigns in a named election with a proposal (printing the leader key and value once elected, holding until interrupted), or observes it with -l')
    .argument('<election-name>', 'name of the election')
    .argument('[proposal]', 'the value to campaign with')
    .option('-l, --listen', 'observation mode: print each leader as it comes')
    .option('--ttl <seconds>', 'timeout for the session lease', String(CONCURRENCY_DEFAULTS.ttlSeconds));
  return withGlobalOptions(cmd).action(
    clientAction<GlobalOptions & { listen?: boolean; ttl: string }>(async (client, o, [name, proposal]) => {
      if ((o.listen === true) === (proposal !== undefined)) throw new UsageError(o.listen === true ? 'no proposal argument is allowed in observation mode' : 'elect takes a proposal argument unless -l is given');
      const session = await client.lease(ttlOf(o.ttl));
      const election = new Election(client, session, name as string);
      const stop = new AbortController();
      const onSignal = (): void => stop.abort(new UsageError('interrupted'));
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        if (o.listen === true) {
          session.close();
          try {
            for await (const kv of election.observe({ signal: stop.signal })) print(`${kv.key.toString('utf8')}\n${kv.value.toString('utf8')}\n`);
          } catch (e) {
            if (!stop.signal.aborted) throw e;
          }
          return;
        }
        try {
          await election.campaign(proposal as string, { signal: stop.signal });
        } catch (e) {
          if (stop.signal.aborted) return;
          throw e;
        }
        print(`${election.key}\n${proposal as string}\n`);
        await interrupted(session.lost.then((e) => Promise.reject(e)));
        if (session.isLost) throw await session.lost;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        await election.resign().catch(() => {});
        await session.revoke().catch(() => {});
      }
    }),
  );
}
