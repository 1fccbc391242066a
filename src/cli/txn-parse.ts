/**
 * etcdctl's txn input: compares, a blank line, success requests, a blank line, failure
 * requests (end of input also ends a section).
 *
 *   mod("key1") > "0"            value|val, create|c, mod|m, version|ver, lease; = != > <
 *   value("key1") = "val1"
 *
 *   put key1 "new value"         put <key> <value> [--lease=<hex id>]
 *   get key2 --prefix            get <key> [<range_end>] [--prefix] [--from-key] [--limit=N] [--rev=N] [--keys-only]
 *                                del <key> [<range_end>] [--prefix] [--from-key] [--prev-kv]
 *   del key3
 */
import { compare, op, type Compare, type CompareOp, type Op } from '../client/index.ts';
import { UsageError } from './client-options.ts';

export interface ParsedTxn {
  compares: Compare[];
  success: Op[];
  failure: Op[];
}

/** Splits a line into words as a shell would for double-quoted ("a \"b\"") and plain words. */
export function argify(line: string): string[] {
  const words: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (const m of line.matchAll(re)) words.push(m[1] !== undefined ? (JSON.parse(`"${m[1]}"`) as string) : m[2]!);
  return words;
}

const TARGETS: Record<string, 'value' | 'create' | 'mod' | 'version' | 'lease'> = {
  value: 'value',
  val: 'value',
  create: 'create',
  c: 'create',
  mod: 'mod',
  m: 'mod',
  version: 'version',
  ver: 'version',
  lease: 'lease',
};

function integer(text: string, what: string): number {
  if (!/^-?\d+$/.test(text)) throw new UsageError(`invalid txn compare request: ${what} must be an integer, got ${JSON.stringify(text)}`);
  return Number(text);
}

export function parseCompare(line: string): Compare {
  const m = /^\s*(\w+)\("((?:[^"\\]|\\.)*)"\)\s*(=|!=|>|<)\s*(.*?)\s*$/.exec(line);
  const target = m === null ? undefined : TARGETS[m[1]!.toLowerCase()];
  if (m === null || target === undefined) throw new UsageError(`malformed comparison: ${line}; got ${JSON.stringify(line)}`);
  const key = JSON.parse(`"${m[2]}"`) as string;
  const cmpOp = m[3] as CompareOp;
  const words = argify(m[4]!);
  if (words.length !== 1) throw new UsageError(`malformed comparison: ${line}`);
  const value = words[0]!;
  switch (target) {
    case 'value':
      return compare.value(key, cmpOp, value);
    case 'create':
      return compare.createRevision(key, cmpOp, integer(value, 'create revision'));
    case 'mod':
      return compare.modRevision(key, cmpOp, integer(value, 'mod revision'));
    case 'version':
      return compare.version(key, cmpOp, integer(value, 'version'));
    case 'lease':
      return compare.lease(key, cmpOp, parseLeaseId(value));
  }
}

/** A lease id as etcdctl takes it: hexadecimal. */
export function parseLeaseId(text: string): bigint {
  if (!/^[0-9a-f]{1,16}$/i.test(text)) throw new UsageError(`bad lease ID (${JSON.stringify(text)}), expecting ID in Hex`);
  return BigInt.asIntN(64, BigInt(`0x${text}`));
}

/** `--name=value` and `--flag` words of an operation line, and the rest in order. */
function splitFlags(words: readonly string[]): { positional: string[]; flags: Map<string, string> } {
  const positional: string[] = [];
  const flags = new Map<string, string>();
  for (const w of words) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(w);
    if (m === null) positional.push(w);
    else flags.set(m[1]!, m[2] ?? 'true');
  }
  return { positional, flags };
}

export function parseOp(line: string): Op {
  const [verb, ...rest] = argify(line);
  const { positional, flags } = splitFlags(rest);
  const allowed: Record<string, readonly string[]> = {
    put: ['lease', 'prev-kv', 'ignore-value', 'ignore-lease'],
    get: ['prefix', 'from-key', 'limit', 'rev', 'keys-only', 'count-only'],
    del: ['prefix', 'from-key', 'prev-kv'],
  };
  const known = verb === undefined ? undefined : allowed[verb];
  if (known === undefined) throw new UsageError(`invalid txn request: ${line}`);
  for (const f of flags.keys()) if (!known.includes(f)) throw new UsageError(`unknown flag: --${f} in txn request: ${line}`);
  const key = positional[0];
  if (key === undefined) throw new UsageError(`${verb} command needs 1 argument and input from stdin or 2 arguments`);
  const selector = { prefix: flags.has('prefix'), fromKey: flags.has('from-key'), ...(positional[1] !== undefined && verb !== 'put' ? { rangeEnd: positional[1] } : {}) };
  switch (verb) {
    case 'put': {
      if (positional.length !== 2) throw new UsageError(`put command needs 1 argument and input from stdin or 2 arguments`);
      const lease = flags.get('lease');
      return op.put(key, positional[1]!, {
        ...(lease !== undefined ? { lease: parseLeaseId(lease) } : {}),
        prevKv: flags.has('prev-kv'),
        ignoreValue: flags.has('ignore-value'),
        ignoreLease: flags.has('ignore-lease'),
      });
    }
    case 'get':
      return op.get(key, {
        ...selector,
        limit: integer(flags.get('limit') ?? '0', 'limit'),
        revision: integer(flags.get('rev') ?? '0', 'rev'),
        keysOnly: flags.has('keys-only'),
        countOnly: flags.has('count-only'),
      });
    default:
      return op.delete(key, { ...selector, prevKv: flags.has('prev-kv') });
  }
}

/** Parses the whole input; a section ends at a blank line or the end of the input. */
export function parseTxn(input: string): ParsedTxn {
  const sections: string[][] = [[], [], []];
  let at = 0;
  for (const raw of input.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '') {
      at++;
      if (at > 2) break;
      continue;
    }
    sections[at]!.push(line);
  }
  return { compares: sections[0]!.map(parseCompare), success: sections[1]!.map(parseOp), failure: sections[2]!.map(parseOp) };
}
