/**
 * The --auth-token flag as etcd spells it: "simple", or "jwt,pub-key=<file>,priv-key=<file>,
 * sign-method=<RS256|…|ES512>[,ttl=<duration>]" (priv-key may be left out on a member that only
 * verifies tokens). Durations are Go's: "300s", "5m", "1h30m", "1.5h", "250ms".
 */
import { AuthOptionsError } from './errors.ts';
import { isJwtSignMethod, type JwtSignMethod } from './jwt.ts';
import { AUTH_LIMITS } from './limits.ts';

export type TokenOptions =
  | { readonly kind: 'simple' }
  | {
      readonly kind: 'jwt';
      readonly signMethod: JwtSignMethod;
      readonly publicKeyFile: string;
      readonly privateKeyFile?: string;
      readonly ttlMs: number;
    };

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A Go duration string in milliseconds. */
export function parseGoDuration(text: string): number {
  const part = /([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h)/y;
  let total = 0;
  let at = 0;
  while (at < text.length) {
    part.lastIndex = at;
    const m = part.exec(text);
    if (m === null) throw new AuthOptionsError(`invalid duration "${text}"`);
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    at = part.lastIndex;
  }
  if (text === '') throw new AuthOptionsError('invalid duration ""');
  return total;
}

export function parseTokenOptions(spec: string): TokenOptions {
  const [kind, ...rest] = spec.split(',');
  const opts = new Map<string, string>();
  for (const pair of rest) {
    const kv = pair.split('=');
    if (kv.length !== 2) throw new AuthOptionsError(`--auth-token: invalid option "${pair}" in "${spec}"`);
    if (opts.has(kv[0]!)) throw new AuthOptionsError(`--auth-token: option "${kv[0]}" given twice`);
    opts.set(kv[0]!, kv[1]!);
  }
  if (kind === 'simple') {
    if (opts.size > 0) throw new AuthOptionsError(`--auth-token: simple tokens take no options ("${spec}")`);
    return { kind: 'simple' };
  }
  if (kind !== 'jwt') throw new AuthOptionsError(`--auth-token: unknown token type "${kind}" (simple or jwt)`);
  const known = new Set(['pub-key', 'priv-key', 'sign-method', 'ttl']);
  for (const k of opts.keys()) if (!known.has(k)) throw new AuthOptionsError(`--auth-token: unknown jwt option "${k}"`);
  const signMethod = opts.get('sign-method') ?? '';
  if (!isJwtSignMethod(signMethod)) throw new AuthOptionsError(`--auth-token: invalid sign-method "${signMethod}"`);
  const publicKeyFile = opts.get('pub-key');
  if (publicKeyFile === undefined || publicKeyFile === '') throw new AuthOptionsError('--auth-token: jwt needs pub-key=<file>');
  const ttl = opts.get('ttl');
  const ttlMs = ttl === undefined ? AUTH_LIMITS.jwtTtlMsDefault : parseGoDuration(ttl);
  if (!(ttlMs > 0)) throw new AuthOptionsError(`--auth-token: ttl must be positive, got "${ttl}"`);
  const privateKeyFile = opts.get('priv-key');
  return privateKeyFile === undefined ? { kind: 'jwt', signMethod, publicKeyFile, ttlMs } : { kind: 'jwt', signMethod, publicKeyFile, privateKeyFile, ttlMs };
}
