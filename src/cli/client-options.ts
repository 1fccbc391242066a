/**
 * What every client command shares: etcdctl's global flags (on each command, so they may come
 * anywhere on the line), the Client they make, and how failures are reported (one "Error: …"
 * line on stderr, exit code 1).
 */
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { Client, ConnectionError, EtcdError, type ClientOptions } from '../client/index.ts';

export type OutputFormat = 'simple' | 'json' | 'table';

export const CLI_DEFAULTS = {
  endpoints: '127.0.0.1:2379',
  /** etcdctl's defaults. */
  dialTimeout: '2s',
  commandTimeout: '5s',
} as const;

export interface GlobalOptions {
  endpoints: string;
  user?: string;
  cacert?: string;
  cert?: string;
  key?: string;
  dialTimeout: string;
  commandTimeout: string;
  writeOut: OutputFormat;
}

/** A failure of the command's own input (bad flags or arguments): printed as "Error: …", exit 1. */
export class UsageError extends Error {
  readonly code = 'USAGE';
}

/** A Go-style duration ("500ms", "5s", "1m30s") in milliseconds. */
export function parseDuration(text: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) throw new UsageError(`invalid duration ${JSON.stringify(text)}`);
  return parts.reduce((sum, p) => sum + Number(p[1]) * units[p[2]!]!, 0);
}

/** Adds the global flags to a client command. */
export function withGlobalOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--endpoints <list>', 'comma-separated gRPC endpoints').env('CONCLAVE_ENDPOINTS').default(CLI_DEFAULTS.endpoints))
    .addOption(new Option('--user <name:password>', 'username[:password] for authentication (prompted if the password is missing)'))
    .addOption(new Option('--cacert <file>', 'verify certificates of TLS-enabled secure servers using this CA bundle'))
    .addOption(new Option('--cert <file>', 'identify secure client using this TLS certificate file'))
    .addOption(new Option('--key <file>', 'identify secure client using this TLS key file'))
    .addOption(new Option('--dial-timeout <duration>', 'dial timeout for client connections').default(CLI_DEFAULTS.dialTimeout))
    .addOption(new Option('--command-timeout <duration>', 'timeout for short running command (excluding dial timeout)').default(CLI_DEFAULTS.commandTimeout))
    .addOption(new Option('-w, --write-out <format>', 'set the output format').choices(['simple', 'json', 'table']).default('simple'));
}

/** The endpoints as given (for messages), without empty entries. */
export function endpointList(opts: GlobalOptions): string[] {
  const list = opts.endpoints
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  if (list.length === 0) throw new UsageError('no endpoints given');
  return list;
}

/** The client options the global flags describe (`endpoints` overrides the flag's list). */
export function clientOptions(opts: GlobalOptions, endpoints: readonly string[] = endpointList(opts)): ClientOptions {
  const options: ClientOptions = {
    endpoints,
    limits: { dialTimeoutMs: parseDuration(opts.dialTimeout), callTimeoutMs: parseDuration(opts.commandTimeout) },
  };
  if (opts.user !== undefined) {
    const colon = opts.user.indexOf(':');
    if (colon < 0) throw new UsageError('password is missing: give --user name:password');
    options.auth = { username: opts.user.slice(0, colon), password: opts.user.slice(colon + 1) };
  }
  if (opts.cacert !== undefined || opts.cert !== undefined || opts.key !== undefined) {
    if ((opts.cert === undefined) !== (opts.key === undefined)) throw new UsageError('--cert and --key must be given together');
    const read = (f: string | undefined): Buffer | undefined => (f === undefined ? undefined : readFileSync(f));
    options.tls = {};
    const ca = read(opts.cacert);
    const cert = read(opts.cert);
    const key = read(opts.key);
    if (ca !== undefined) options.tls.ca = ca;
    if (cert !== undefined) options.tls.cert = cert;
    if (key !== undefined) options.tls.key = key;
  }
  return options;
}

export function connect(opts: GlobalOptions): Client {
  return new Client(clientOptions(opts));
}

const ERRNO_TEXT: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset by peer',
  ETIMEDOUT: 'i/o timeout',
  EHOSTUNREACH: 'no route to host',
  ENETUNREACH: 'network is unreachable',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'temporary failure in name resolution',
};

/** Why a connection failed, in few words ("connection refused"), from an error's cause chain. */
export function connectionReason(error: unknown): string {
  let last = '';
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    const code = (e as Error & { code?: unknown }).code;
    if (typeof code === 'string' && ERRNO_TEXT[code] !== undefined) return ERRNO_TEXT[code];
    last = e.message;
  }
  return last.replace(/^https?:\/\/\S+: /, '');
}

function hasConnectionError(error: unknown): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) if (e instanceof ConnectionError) return true;
  return false;
}

/** The one line a failure prints (without "Error: "). */
export function errorLine(error: unknown, endpoints: readonly string[]): string {
  if (hasConnectionError(error)) return `no endpoint answered: ${endpoints.join(', ')} (${connectionReason(error)})`;
  if (error instanceof EtcdError || error instanceof UsageError) return error.message;
  return error instanceof Error ? error.message : String(error);
}

/** Positional arguments as commander passes them (a variadic one as an array). */
export type Args = readonly (string | string[] | undefined)[];

/**
 * Runs a client command: hands the action a client made from the global flags (and the
 * command's own options, which share the same object), closes it, and turns a failure into
 * etcdctl's "Error: …" line and exit code 1.
 */
export function clientAction<O extends GlobalOptions>(run: (client: Client, opts: O, args: Args) => Promise<void>): (...params: unknown[]) => Promise<void> {
  return async (...params: unknown[]) => {
    const cmd = params[params.length - 1] as Command;
    const opts = cmd.opts<O>();
    let client: Client | undefined;
    try {
      client = connect(opts);
      await run(client, opts, params.slice(0, -2) as Args);
    } catch (e) {
      fail(e, opts);
    } finally {
      client?.close();
    }
  };
}

/** Prints a failure as etcdctl does and sets exit code 1. */
export function fail(e: unknown, opts: GlobalOptions): void {
  process.stderr.write(`Error: ${errorLine(e, endpointListSafe(opts))}\n`);
  process.exitCode = 1;
}

function endpointListSafe(opts: GlobalOptions): string[] {
  try {
    return endpointList(opts);
  } catch {
    return [opts.endpoints];
  }
}
