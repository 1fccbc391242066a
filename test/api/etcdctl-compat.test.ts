/**
 * Conclave as etcd 3.4 to its tools: etcdctl 3.4 and the JSON gateway run the same commands, in
 * the same order, against a 3-member Conclave cluster and a 3-member etcd 3.4 cluster started
 * side by side, and must print the same: stdout, the final "Error: …" line of stderr and the
 * exit code (for HTTP: status, body and content headers). Only what legitimately differs between
 * two clusters is normalized: cluster and member ids, URLs and ports, raft term and index, which
 * member answered or leads, timings, DB size, and the HashKV value (Conclave hashes its own
 * storage encoding, by design; members must still agree with each other).
 *
 * A second, small pair runs with tight limits (--max-txn-ops, --max-request-bytes and
 * --quota-backend-bytes) for the limit errors and the NOSPACE alarm. The snapshot files of the
 * two differ by design (bbolt's file, Conclave's stream): their shape is compared, not their bytes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { etcdAvailable, etcdctl, etcdctlErrorLine, startCluster, type EtcdctlResult, type ProcessCluster } from '../helpers/processes.ts';

const SUITE_LIMITS = {
  /** Starting the four clusters (the helpers allow 20 s each; they start side by side). */
  startMs: 45_000,
  /** The whole suite (about 10 s): a hung etcdctl fails it instead of stalling the run. */
  suiteMs: 120_000,
  /** One HTTP request. */
  httpMs: 10_000,
} as const;

const LIMIT_FLAGS = {
  'max-txn-ops': '4',
  'max-request-bytes': String(64 * 1024),
  'quota-backend-bytes': String(512 * 1024),
};
/** A value under --max-request-bytes of the limits pair: puts of it fill the quota. */
const FILL_VALUE = 'f'.repeat(40_000);

// ---- normalization -----------------------------------------------------------------------

/** What two clusters legitimately differ in, as found in one cluster's outputs. */
interface Names {
  /** Exact strings (member ids in hex and decimal, URLs, the cluster id) → placeholders. */
  readonly replace: ReadonlyMap<string, string>;
  /** Member ids (hex, as `member list` prints them) in the order listed. */
  readonly listedIds: readonly string[];
}

/** Learns a cluster's ids and URLs from `etcdctl member list` (simple and JSON). */
async function learnNames(cluster: ProcessCluster): Promise<Names> {
  const [simple, json] = await Promise.all([etcdctl(cluster.endpoints, ['member', 'list']), etcdctl(cluster.endpoints, ['member', 'list', '-w', 'json'])]);
  assert.equal(simple.code, 0, simple.stderr);
  const replace = new Map<string, string>();
  const listedIds: string[] = [];
  for (const line of simple.stdout.trim().split('\n')) {
    const [hex, , name, peer, client] = line.split(', ');
    assert.ok(hex !== undefined && name !== undefined && peer !== undefined && client !== undefined, line);
    listedIds.push(hex);
    replace.set(hex, `<${name}>`);
    replace.set(BigInt(`0x${hex}`).toString(10), `<${name}>`);
    replace.set(peer, `<${name}-peer>`);
    replace.set(client, `<${name}-client>`);
  }
  const clusterId = /"cluster_id":(\d+)/.exec(json.stdout)?.[1];
  assert.ok(clusterId !== undefined, json.stdout);
  replace.set(clusterId, '<cluster>');
  return { replace, listedIds };
}

/** Turns one cluster's output (stdout or stderr) into text comparable with the other's. */
type Normalizer = (output: string, names: Names) => string;

/** Ids, URLs and the cluster id wherever they appear in text. */
function replaceNames(text: string, names: Names): string {
  return text
    .replace(/https?:\/\/127\.0\.0\.1:\d+/g, (url) => names.replace.get(url) ?? url)
    .replace(/\b[0-9a-f]{6,20}\b/g, (token) => names.replace.get(token) ?? token);
}

/** JSON keys whose values differ between clusters, and what they become. */
const JSON_PLACEHOLDERS: Record<string, string> = {
  member_id: '<member>', // which member answered is the client's choice
  raft_term: '<term>',
  raftTerm: '<term>',
  raftIndex: '<index>',
  raftAppliedIndex: '<index>',
  dbSize: '<size>',
  dbSizeInUse: '<size>',
  leader: '<leader>',
  took: '<took>',
  hash: '<hash>',
};

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function normalizeJsonValue(v: Json, names: Names, key = ''): Json {
  if (Array.isArray(v)) return v.map((x) => normalizeJsonValue(x, names));
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalizeJsonValue(x, names, k)]));
  }
  const placeholder = JSON_PLACEHOLDERS[key];
  // A zero term is the sub-response header of a txn: no term there in either.
  if (placeholder !== undefined && v !== 0 && v !== '0') return placeholder;
  return typeof v === 'string' ? replaceNames(v, names) : v;
}

/** JSON text with 64-bit integers kept exact (ids exceed 2^53), normalized, keys in order. */
function normalizeJson(text: string, names: Names): Json {
  const exact = text.replace(/([:[,]\s*)(\d{10,})(?=\s*[,}\]])/g, '$1"$2"');
  return normalizeJsonValue(JSON.parse(exact) as Json, names);
}

/** Text fields (-w fields) and timings of the simple format. */
function normalizeText(text: string, names: Names): string {
  return replaceNames(text, names)
    .replace(/took = \S+/g, 'took = <took>')
    .replace(/("MemberID" : )<m\d>/g, '$1<member>')
    .replace(/("RaftTerm" : )[1-9]\d*/g, '$1<term>')
    .replace(/("(?:RaftIndex|RaftAppliedIndex)" : )\d+/g, '$1<index>')
    .replace(/("DBSize" : )\d+/g, '$1<size>')
    .replace(/("Leader" : )<m\d>/g, '$1<leader>');
}

/** Table columns whose cells differ between clusters. */
const TABLE_PLACEHOLDERS: Record<string, string> = {
  'DB SIZE': '<size>',
  'IS LEADER': '<leader?>',
  'RAFT TERM': '<term>',
  'RAFT INDEX': '<index>',
  'RAFT APPLIED INDEX': '<index>',
  TOOK: '<took>',
  HASH: '<hash>',
};

/** A table (-w table) cell by cell: column widths follow the content, so they are dropped. */
function normalizeTable(text: string, names: Names): string {
  let columns: string[] = [];
  return replaceNames(text, names)
    .split('\n')
    .map((line) => {
      if (line.startsWith('+')) return '+';
      if (!line.startsWith('|')) return line;
      const cells = line.split('|').slice(1, -1).map((c) => c.trim());
      if (columns.length === 0) {
        columns = cells;
        return cells.join(' | ');
      }
      return cells.map((c, i) => (c !== '' ? (TABLE_PLACEHOLDERS[columns[i]!] ?? c) : c)).join(' | ');
    })
    .join('\n');
}

/** Simple-format lines of comma-separated cells, with the cells at some positions replaced. */
function maskCells(placeholders: Record<number, string>): Normalizer {
  return (text, names) =>
    replaceNames(text, names)
      .split('\n')
      .map((line) => line.split(', ').map((cell, i) => placeholders[i] ?? cell).join(', '))
      .join('\n');
}

/** `endpoint status`: endpoint, id, version, db size, leader?, learner?, term, index, applied, errors. */
const normalizeStatusLines = maskCells({ 3: '<size>', 4: '<leader?>', 6: '<term>', 7: '<index>', 8: '<index>' });
/** `endpoint hashkv`: endpoint, hash. */
const normalizeHashLines = maskCells({ 1: '<hash>' });

/**
 * Sorts the lines of `text`, or the rows of a table normalized by normalizeTable: for outputs
 * in the order of member ids (which differ) or of completion.
 */
function sortLines(text: string): string {
  const lines = text.split('\n').filter((l) => l !== '' && l !== '+');
  if (!text.startsWith('+')) return lines.sort().join('\n');
  const [header, ...rows] = lines;
  return ['+', header, '+', ...rows.sort(), '+'].join('\n');
}

const asText: Normalizer = (s, names) => {
  const t = s.trim();
  if (t.startsWith('{') || t.startsWith('[')) return JSON.stringify(normalizeJson(t, names), null, 1);
  return normalizeText(s, names);
};


// ---- the clusters -------------------------------------------------------------------------

interface Side {
  readonly cluster: ProcessCluster;
  readonly names: Names;
}

interface Pair {
  readonly etcd: Side;
  readonly conclave: Side;
}

/** Every cluster started, so that after() stops them even when a start failed half way. */
const started: ProcessCluster[] = [];

async function startSide(flavour: 'etcd' | 'conclave', flags: Record<string, string>): Promise<Side> {
  const cluster = await startCluster(flavour, 3, { flags });
  started.push(cluster);
  return { cluster, names: await learnNames(cluster) };
}

async function startPair(flags: Record<string, string> = {}): Promise<Pair> {
  const [etcd, conclave] = await Promise.all([startSide('etcd', flags), startSide('conclave', flags)]);
  return { etcd, conclave };
}

interface RunOptions {
  readonly stdin?: string;
  /** Only the first member (m0) instead of all: for what depends on the member asked. */
  readonly firstMemberOnly?: boolean;
  readonly normalize?: Normalizer;
  /** Compare all of stderr, normalized like stdout (endpoint health reports there). */
  readonly wholeStderr?: boolean;
}

interface Outcome {
  readonly code: number;
  readonly stdout: string;
  readonly error: string;
}

function endpointsOf(side: Side, o: RunOptions): string {
  return o.firstMemberOnly === true ? side.cluster.members[0]!.clientUrl : side.cluster.endpoints;
}

function outcome(r: EtcdctlResult, side: Side, o: RunOptions): Outcome {
  const normalize = o.normalize ?? asText;
  const error = o.wholeStderr === true ? normalize(r.stderr, side.names) : replaceNames(etcdctlErrorLine(r.stderr), side.names);
  return { code: r.code, stdout: normalize(r.stdout, side.names), error };
}

/** Runs etcdctl with `args` against both clusters at once; returns both raw results. */
async function runBoth(pair: Pair, args: string[], o: RunOptions = {}): Promise<{ etcd: EtcdctlResult; conclave: EtcdctlResult }> {
  const [etcd, conclave] = await Promise.all([etcdctl(endpointsOf(pair.etcd, o), args, o.stdin), etcdctl(endpointsOf(pair.conclave, o), args, o.stdin)]);
  return { etcd, conclave };
}

/** Runs etcdctl against both clusters and asserts equal outcomes; returns etcd's (normalized). */
async function same(pair: Pair, args: string[], o: RunOptions = {}): Promise<Outcome> {
  const r = await runBoth(pair, args, o);
  const expected = outcome(r.etcd, pair.etcd, o);
  assert.deepEqual(outcome(r.conclave, pair.conclave, o), expected, `etcdctl ${args.join(' ')}${o.stdin === undefined ? '' : ` <<< ${JSON.stringify(o.stdin)}`}`);
  return expected;
}

// ---- HTTP ----------------------------------------------------------------------------------

interface HttpOutcome {
  readonly status: number;
  readonly headers: Record<string, string | null>;
  readonly body: Json | string;
}

/** Headers whose values are compared (the rest are framing: dates, lengths, chunking). */
const COMPARED_HEADERS = ['content-type', 'allow', 'x-content-type-options'];

async function http(side: Side, path: string, body: unknown, method: string): Promise<HttpOutcome> {
  const init: RequestInit = { method, signal: AbortSignal.timeout(SUITE_LIMITS.httpMs) };
  if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
  const res = await fetch(`${side.cluster.members[0]!.clientUrl}${path}`, init);
  const text = await res.text();
  return {
    status: res.status,
    headers: Object.fromEntries(COMPARED_HEADERS.map((h) => [h, res.headers.get(h)])),
    // JSON also under text/plain: /health.
    body: text.startsWith('{') ? normalizeJson(text, side.names) : text,
  };
}

interface HttpOptions {
  readonly method?: string;
  /** Applied to the normalized body of both answers. */
  readonly normalize?: (body: Json | string) => Json | string;
}

/** The same HTTP request to the first member of both clusters; asserts equal answers. */
async function sameHttp(pair: Pair, path: string, body?: unknown, o: HttpOptions = {}): Promise<HttpOutcome> {
  const method = o.method ?? 'POST';
  const [etcd, conclave] = await Promise.all([http(pair.etcd, path, body, method), http(pair.conclave, path, body, method)]);
  const shown = (r: HttpOutcome): HttpOutcome => (o.normalize === undefined ? r : { ...r, body: o.normalize(r.body) });
  assert.deepEqual(shown(conclave), shown(etcd), `${method} ${path} ${body === undefined ? '' : JSON.stringify(body)}`);
  return etcd;
}

/** Members come in the order of their ids, which differ between clusters: compare them as a set. */
function membersAsSet(list: Json | string): Json | string {
  if (typeof list !== 'object' || list === null || Array.isArray(list) || !Array.isArray(list.members)) return list;
  return { ...list, members: list.members.map((m) => JSON.stringify(m)).sort() };
}

/**
 * Which members raise NOSPACE is up to each one's backend size when it applies a write (an etcd
 * member checks its own quota at apply time too), so alarms are compared by type: every member
 * id becomes <member> and duplicates go.
 */
function alarmsByType(text: string): string {
  return [...new Set(text.replace(/memberID:<m\d>/g, 'memberID:<member>').split('\n'))].join('\n');
}

/** alarmsByType in JSON; revisions go too (they count the puts that filled the quota). */
function alarmsByTypeJson(v: Json): Json {
  if (Array.isArray(v)) return [...new Set(v.map((x) => JSON.stringify(alarmsByTypeJson(x))))].map((x) => JSON.parse(x) as Json);
  if (v !== null && typeof v === 'object') {
    const masked: Record<string, string> = { memberID: '<member>', revision: '<revision>' };
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, masked[k] ?? alarmsByTypeJson(x)]));
  }
  return typeof v === 'string' ? alarmsByType(v) : v;
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

// ---- maintenance ---------------------------------------------------------------------------

interface Roles {
  /** Hex ids and client URLs of the leader and of one follower. */
  readonly leader: { readonly id: string; readonly url: string };
  readonly follower: { readonly id: string; readonly url: string };
}

/** Who leads a cluster, from `endpoint status -w json` (ids kept exact: they exceed 2^53). */
async function roles(side: Side): Promise<Roles> {
  const r = await etcdctl(side.cluster.endpoints, ['endpoint', 'status', '-w', 'json']);
  assert.equal(r.code, 0, r.stderr);
  const list = JSON.parse(r.stdout.replace(/:(\d{10,})/g, ':"$1"')) as Array<{ Endpoint: string; Status: { header: { member_id: string }; leader: string } }>;
  const hex = (d: string): string => BigInt(d).toString(16);
  const leader = list.find((s) => s.Status.header.member_id === s.Status.leader);
  const follower = list.find((s) => s.Status.header.member_id !== s.Status.leader);
  assert.ok(leader !== undefined && follower !== undefined, r.stdout);
  return {
    leader: { id: hex(leader.Status.leader), url: leader.Endpoint },
    follower: { id: hex(follower.Status.header.member_id), url: follower.Endpoint },
  };
}

/** Which member of a cluster answered or leads differs between clusters: <m1> and <m1-client> become <member>. */
function anyMember(text: string): string {
  return text.replace(/<m\d(-client|-peer)?>/g, '<member$1>');
}

/** A member's id in decimal, as the gateway takes it (learnNames keeps it in hex and decimal). */
function decimalId(side: Side, name: string): string {
  const keys = [...side.names.replace].filter(([, v]) => v === `<${name}>`).map(([k]) => k);
  const decimal = keys.map((k) => (/^[0-9a-f]+$/.test(k) ? BigInt(`0x${k}`).toString(10) : '')).find((d) => keys.includes(d));
  assert.ok(decimal !== undefined, `no id for ${name}`);
  return decimal;
}

/**
 * The shape of a gateway snapshot stream, which holds each backend's own file (bbolt or
 * Conclave's): {"result":…} lines whose remaining_bytes count down to the last data chunk, then
 * the 32-byte digest of all the data, whose size is a multiple of 512 (what etcdctl checks).
 */
function snapshotStreamShape(text: string): Json {
  const lines = text.split('\n');
  assert.equal(lines.pop(), '', 'the stream ends with a newline');
  const results = lines.map((l) => (JSON.parse(l) as { result: { remaining_bytes?: string; blob: string } }).result);
  const data = results.slice(0, -1).map((r) => Buffer.from(r.blob, 'base64'));
  const digest = Buffer.from(results.at(-1)!.blob, 'base64');
  const all = Buffer.concat(data);
  let remaining = all.length;
  for (let i = 0; i < data.length; i++) {
    remaining -= data[i]!.length;
    assert.equal(Number(results[i]!.remaining_bytes ?? 0), remaining, `chunk ${i} counts down`);
  }
  return {
    keys: [...new Set(results.flatMap((r) => Object.keys(r)))].sort(),
    digestBytes: digest.length,
    digestMatches: createHash('sha256').update(all).digest().equals(digest),
    sizeModulo512: all.length % 512,
  };
}

// ---- the tests -----------------------------------------------------------------------------

const suite = { skip: etcdAvailable() ? false : 'etcd 3.4 is not installed', timeout: SUITE_LIMITS.suiteMs };

describe('etcdctl 3.4 and the JSON gateway: Conclave answers as etcd 3.4', suite, () => {
  let main: Pair;
  let limits: Pair;

  before(async () => {
    [main, limits] = await Promise.all([startPair(), startPair(LIMIT_FLAGS)]);
  }, { timeout: SUITE_LIMITS.startMs });

  after(async () => {
    await Promise.all(started.map((c) => c.destroy()));
  });

  test('put and get: simple, json, fields, prefix, from-key, keys-only, limit, sort, historical revisions, serializable', async () => {
    await same(main, ['put', 'foo', 'bar']);
    await same(main, ['put', 'foo', 'bar2', '--prev-kv']);
    await same(main, ['put', 'foo', 'bar3', '--prev-kv', '-w', 'json']);
    await same(main, ['put', 'foo', 'bar4', '-w', 'fields']);
    await same(main, ['put', 'from-stdin'], { stdin: 'a value\nover two lines' });
    for (const k of ['a', 'b', 'c', 'd', 'e']) await same(main, ['put', `k/${k}`, `v-${k}`]);
    await same(main, ['put', 'k/c', 'v-c2']);
    await same(main, ['put', 'k/a', 'v-a2']);

    await same(main, ['get', 'foo']);
    await same(main, ['get', 'foo', '-w', 'json']);
    await same(main, ['get', 'foo', '-w', 'fields']);
    await same(main, ['get', 'foo', '--hex']);
    await same(main, ['get', 'foo', '--print-value-only']);
    await same(main, ['get', 'from-stdin']);
    await same(main, ['get', 'missing']);
    await same(main, ['get', 'missing', '-w', 'json']);
    await same(main, ['get', 'k/', '--prefix']);
    await same(main, ['get', 'k/', '--prefix', '-w', 'json']);
    await same(main, ['get', 'k/b', 'k/d']);
    await same(main, ['get', 'k/c', '--from-key']);
    await same(main, ['get', '', '--from-key', '--keys-only']);
    await same(main, ['get', 'k/', '--prefix', '--keys-only']);
    await same(main, ['get', 'k/', '--prefix', '--keys-only', '-w', 'json']);
    await same(main, ['get', 'k/', '--prefix', '--limit=2']);
    await same(main, ['get', 'k/', '--prefix', '--limit=2', '-w', 'json']);
    for (const target of ['key', 'version', 'create', 'modify', 'value']) {
      for (const order of ['ascend', 'descend']) await same(main, ['get', 'k/', '--prefix', `--sort-by=${target}`, `--order=${order}`]);
    }
    await same(main, ['get', 'k/', '--prefix', '--sort-by=modify', '--order=descend', '--limit=2', '-w', 'json']);
    await same(main, ['get', 'foo', '--rev=2']);
    await same(main, ['get', 'foo', '--rev=3', '-w', 'json']);
    await same(main, ['get', 'k/', '--prefix', '--rev=8']);
    await same(main, ['get', 'foo', '--rev=1']);
    // A serializable read answers from the member's own state: read linearizably on it first.
    await same(main, ['get', 'k/a'], { firstMemberOnly: true });
    await same(main, ['get', 'k/a', '--consistency=s'], { firstMemberOnly: true });
    await same(main, ['get', 'k/', '--prefix', '--consistency=s', '-w', 'json'], { firstMemberOnly: true });
    // (etcdctl 3.4 has no --count-only, 3.5 added it: the gateway test covers count_only.)
  });

  test('put errors: empty key, --ignore-value, --ignore-lease, unknown lease', async () => {
    await same(main, ['put', '', 'x']);
    await same(main, ['put', 'foo', '--ignore-value']);
    await same(main, ['put', 'foo', '--ignore-value', '--prev-kv', '-w', 'json']);
    await same(main, ['put', 'nokey', '--ignore-value']);
    await same(main, ['put', 'nokey', 'x', '--ignore-lease']);
    await same(main, ['put', 'foo', 'bar5', '--ignore-lease']);
    await same(main, ['put', 'foo', 'x', '--lease=1234']);
    await same(main, ['get', '']);
    await same(main, ['del', '']);
    await same(main, ['get', 'foo', '-w', 'json']);
  });

  test('del: single, missing, prefix with --prev-kv, from-key, json and fields', async () => {
    await same(main, ['put', 'd/1', '1']);
    await same(main, ['put', 'd/2', '2']);
    await same(main, ['put', 'd/3', '3']);
    await same(main, ['put', 'e/1', '1']);
    await same(main, ['put', 'z/1', '1']);
    await same(main, ['put', 'z/2', '2']);
    await same(main, ['del', 'd/1']);
    await same(main, ['del', 'd/1']);
    await same(main, ['del', 'missing', '-w', 'json']);
    await same(main, ['del', 'd/', '--prefix', '--prev-kv']);
    await same(main, ['del', 'e/1', '--prev-kv', '-w', 'json']);
    await same(main, ['del', 'z/', '--from-key', '-w', 'fields']);
    await same(main, ['get', '', '--from-key', '--keys-only']);
  });

  test('txn from stdin: compares on value, version, create and mod; success and failure; json and fields; limits', async () => {
    await same(main, ['put', 't1', 'v1']);
    const compares = ['value("t1") = "v1"', 'mod("t1") > "0"', 'version("t1") = "1"', 'create("t1") != "0"'].join('\n');
    const txn = `${compares}\n\nput t1 v2\nget t1\ndel nothing\n\nput t1 lost\n\n`;
    await same(main, ['txn'], { stdin: txn });
    await same(main, ['txn'], { stdin: txn }); // now the value compare fails
    await same(main, ['txn', '-w', 'json'], { stdin: txn });
    await same(main, ['txn', '-w', 'fields'], { stdin: `version("t2") = "0"\n\nput t2 x\n\n\n` });
    await same(main, ['txn', '-w', 'json'], { stdin: `value("t1") < "zz"\nmod("t1") < "1000"\n\nput t1 v3 --prev-kv\nget t --prefix\n\n\n` });
    await same(main, ['txn', '-w', 'json'], { stdin: `create("t1") = "1"\n\n\nget t1\nget t --prefix --keys-only\n\n` });
    await same(main, ['txn'], { stdin: `\nget t1\n\n\n` });
    await same(main, ['txn'], { stdin: `\nput t1 a\nget t1\n\n\n` });

    // Errors etcd checks before proposing.
    await same(main, ['txn'], { stdin: `\nput dup a\nput dup b\n\n\n` });
    await same(main, ['txn'], { stdin: `\nput dup a\ndel dup\n\n\n` });
    await same(main, ['txn'], { stdin: `\nput dup a\ndel d --prefix\n\n\n` });
    await same(main, ['txn'], { stdin: `\nput "" a\n\n\n` });
    await same(main, ['txn'], { stdin: `value("") = "x"\n\nput a b\n\n\n` });
    const puts = (n: number): string => Array.from({ length: n }, (_, i) => `put many/${i} x`).join('\n');
    await same(main, ['txn'], { stdin: `\n${puts(129)}\n\n\n` }); // over the default --max-txn-ops=128
    await same(limits, ['txn'], { stdin: `\n${puts(4)}\n\n\n` });
    await same(limits, ['txn'], { stdin: `\n${puts(5)}\n\n\n` });
    await same(limits, ['txn'], { stdin: `${['a', 'b', 'c', 'd', 'e'].map((k) => `version("${k}") = "0"`).join('\n')}\n\nput a 1\n\n\n` });
    await same(limits, ['txn'], { stdin: `\nget a\n\n${puts(5)}\n\n` });
    await same(main, ['get', 't', '--prefix', '-w', 'json']);
  });

  test('compact: then historical reads below it fail; compacting again or into the future fails', async () => {
    await same(main, ['compact', '5']);
    await same(main, ['compact', '5']);
    await same(main, ['compact', '3']);
    await same(main, ['get', 'foo', '--rev=4']);
    await same(main, ['get', 'foo', '--rev=5']);
    await same(main, ['get', 'foo', '--rev=5', '-w', 'json']);
    await same(main, ['compact', '100000']);
    await same(main, ['get', 'foo', '--rev=100000']);
    await same(main, ['compact', '7', '--physical', '-w', 'json']);
    await same(main, ['get', 'k/', '--prefix', '--rev=7', '--keys-only']);
    await same(main, ['get', 'k/', '--prefix', '--rev=6']);
  });

  test('request too large: over --max-request-bytes, and over the gRPC message limit', async () => {
    await same(limits, ['put', 'big'], { stdin: 'b'.repeat(60_000) });
    await same(limits, ['put', 'big'], { stdin: 'b'.repeat(70_000) });
    await same(limits, ['put', 'big'], { stdin: 'b'.repeat(700_000) });
    await same(limits, ['get', 'big', '-w', 'fields', '--keys-only']);
  });

  test('endpoint health, endpoint status, endpoint hashkv, member list, alarm list', async () => {
    // Lines come in the order the members answered.
    const health = await same(main, ['endpoint', 'health'], { wholeStderr: true, normalize: (s, n) => sortLines(normalizeText(s, n)) });
    assert.match(health.error, /^<m0-client> is healthy: successfully committed proposal: took = <took>$/m);
    await same(main, ['endpoint', 'health', '-w', 'json'], {
      normalize: (s, n) => JSON.stringify((normalizeJson(s, n) as Json[]).map((x) => JSON.stringify(x)).sort()),
    });
    await same(main, ['endpoint', 'health', '-w', 'table'], { normalize: (s, n) => sortLines(normalizeTable(s, n)) });

    await same(main, ['endpoint', 'status'], { normalize: normalizeStatusLines });
    await same(main, ['endpoint', 'status', '-w', 'json']);
    await same(main, ['endpoint', 'status', '-w', 'table'], { normalize: normalizeTable });
    await same(main, ['endpoint', 'status', '-w', 'fields']);
    // Exactly one member of each cluster says it leads, and all name the same leader.
    const status = await runBoth(main, ['endpoint', 'status', '-w', 'json']);
    for (const r of [status.etcd, status.conclave]) {
      const leaders = [...r.stdout.matchAll(/"leader":(\d+)/g)].map((m) => m[1]);
      const selves = [...r.stdout.matchAll(/"member_id":(\d+)/g)].map((m) => m[1]);
      assert.equal(new Set(leaders).size, 1, r.stdout);
      assert.equal(selves.filter((id) => id === leaders[0]).length, 1, r.stdout);
    }

    await same(main, ['endpoint', 'hashkv'], { normalize: normalizeHashLines });
    await same(main, ['endpoint', 'hashkv', '-w', 'json']);
    await same(main, ['endpoint', 'hashkv', '-w', 'table'], { normalize: normalizeTable });
    const hashes = await runBoth(main, ['endpoint', 'hashkv']);
    for (const r of [hashes.etcd, hashes.conclave]) {
      const values = r.stdout.trim().split('\n').map((l) => l.split(', ')[1]);
      assert.equal(values.length, 3, r.stdout);
      assert.equal(new Set(values).size, 1, `members disagree: ${r.stdout}`);
    }

    // Members come in the order of their ids, which differ: compare sorted, check the order apart.
    await same(main, ['member', 'list'], { normalize: (s, n) => sortLines(replaceNames(s, n)) });
    await same(main, ['member', 'list', '-w', 'table'], { normalize: (s, n) => sortLines(normalizeTable(s, n)) });
    await same(main, ['member', 'list', '-w', 'json'], { normalize: (s, n) => JSON.stringify(membersAsSet(normalizeJson(s, n))) });
    for (const side of [main.etcd, main.conclave]) {
      const ids = side.names.listedIds.map((hex) => BigInt(`0x${hex}`));
      assert.deepEqual(ids, [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)), `${side.cluster.flavour}: member list not in id order`);
    }

    await same(main, ['alarm', 'list']);
    await same(main, ['alarm', 'list', '-w', 'json']);
  });

  test('JSON gateway: kv put, range, deleterange, txn, compaction, errors and HTTP statuses', async () => {
    await sameHttp(main, '/v3/kv/put', { key: b64('gw/a'), value: b64('1') });
    await sameHttp(main, '/v3/kv/put', { key: b64('gw/b'), value: b64('2'), prev_kv: true });
    await sameHttp(main, '/v3/kv/put', { key: b64('gw/b'), value: b64('3'), prev_kv: true });
    await sameHttp(main, '/v3/kv/put', { key: b64('gw/c'), value: b64('4') });
    await sameHttp(main, '/v3/kv/range', { key: b64('gw/a') });
    await sameHttp(main, '/v3/kv/range', { key: b64('gw/none') });
    await sameHttp(main, '/v3/kv/range', { key: b64('gw/'), range_end: b64('gw0') });
    await sameHttp(main, '/v3/kv/range', { key: b64('gw/'), range_end: b64('gw0'), count_only: true });
    await sameHttp(main, '/v3/kv/range', { key: b64('gw/'), range_end: b64('gw0'), keys_only: true, limit: 2 });
    await sameHttp(main, '/v3/kv/range', { key: b64('gw/'), range_end: b64('gw0'), sort_order: 'DESCEND', sort_target: 'MOD' });
    await sameHttp(main, '/v3/kv/range', { key: b64('gw/'), range_end: b64('gw0'), sort_order: 7, limit: 1 });
    await sameHttp(main, '/v3/kv/range', { key: b64('gw/'), range_end: b64('gw0'), min_mod_revision: '3', max_create_revision: '1000' });
    await sameHttp(main, '/v3/kv/range', { key: b64('gw/a'), serializable: true });
    await sameHttp(main, '/v3beta/kv/range', { key: b64('gw/a') });
    await sameHttp(main, '/v3/kv/put', { key: b64('gw/a'), value: b64('x'), ignore_value: true });
    await sameHttp(main, '/v3/kv/put', { key: '', value: b64('x') });
    await sameHttp(main, '/v3/kv/range', {});

    const cmp = (value: string) => [{ key: b64('gw/a'), target: 'VALUE', result: 'EQUAL', value: b64(value) }];
    const txn = (value: string) => ({
      compare: cmp(value),
      success: [{ request_put: { key: b64('gw/a'), value: b64('won'), prev_kv: true } }, { request_range: { key: b64('gw/'), range_end: b64('gw0') } }],
      failure: [{ request_range: { key: b64('gw/a') } }, { request_delete_range: { key: b64('gw/c'), prev_kv: true } }],
    });
    await sameHttp(main, '/v3/kv/txn', txn('1'));
    await sameHttp(main, '/v3/kv/txn', txn('1'));
    await sameHttp(main, '/v3/kv/txn', { compare: [{ key: b64('gw/b'), target: 'VERSION', result: 'GREATER', version: '1' }], success: [{ request_range: { key: b64('gw/b') } }] });
    await sameHttp(main, '/v3/kv/txn', { success: [{ request_put: { key: b64('gw/d'), value: b64('1') } }, { request_put: { key: b64('gw/d'), value: b64('2') } }] });
    await sameHttp(main, '/v3/kv/deleterange', { key: b64('gw/b'), prev_kv: true });
    await sameHttp(main, '/v3/kv/deleterange', { key: b64('gw/b') });
    await sameHttp(main, '/v3/kv/deleterange', { key: b64('gw/'), range_end: b64('gw0') });

    const rev = (await sameHttp(main, '/v3/kv/range', { key: b64('gw/a') })).body as { header: { revision: string } };
    await sameHttp(main, '/v3/kv/compaction', { revision: String(Number(rev.header.revision) - 2) });
    await sameHttp(main, '/v3/kv/compaction', { revision: String(Number(rev.header.revision) - 2) });
    await sameHttp(main, '/v3/kv/compaction', { revision: '100000', physical: true });
    await sameHttp(main, '/v3/kv/range', { key: b64('gw/a'), revision: '2' });
    await sameHttp(main, '/v3/kv/range', { key: b64('gw/a'), revision: '100000' });

    await sameHttp(main, '/v3/maintenance/status', {});
    await sameHttp(main, '/v3/maintenance/alarm', {});
    await sameHttp(main, '/v3/cluster/member/list', {}, { normalize: membersAsSet });

    // Over --max-request-bytes: etcd's own error; over the gRPC message limit: the gRPC server's.
    await sameHttp(limits, '/v3/kv/put', { key: b64('gw'), value: b64('g'.repeat(70_000)) });
    await sameHttp(limits, '/v3/kv/put', { key: b64('gw'), value: b64('g'.repeat(700_000)) });
  });

  test('HTTP endpoints: /health, /version, unknown paths and methods', async () => {
    await sameHttp(main, '/health', undefined, { method: 'GET' });
    await sameHttp(main, '/health?serializable=true', undefined, { method: 'GET' });
    await sameHttp(main, '/health', '{}', { method: 'POST' });
    await sameHttp(main, '/version', undefined, { method: 'GET' });
    await sameHttp(main, '/version', '{}', { method: 'POST' });
    await sameHttp(main, '/nope', undefined, { method: 'GET' });
    await sameHttp(main, '/version/x', undefined, { method: 'GET' });
    await sameHttp(main, '/v3/nope', '{}', { method: 'POST' });
    await sameHttp(main, '/v3beta/kv', '{}', { method: 'POST' });
    await sameHttp(main, '/v3/kv/range/x', '{}', { method: 'POST' });
    await sameHttp(main, '/v3/kv/range', undefined, { method: 'GET' });
    await sameHttp(main, '/v3/kv/range', '{}', { method: 'PUT' });
  });

  test('NOSPACE: writes over --quota-backend-bytes fail, the alarm is listed, reads, deletes and compaction go on, disarm clears it', async () => {
    // Fill through one member until a put is refused; how many fit depends on the backend's page
    // accounting (bbolt and LMDB differ), so the count is not compared.
    const refusals: string[] = [];
    for (const side of [limits.etcd, limits.conclave]) {
      let refusal: string | undefined;
      for (let i = 0; i < 64 && refusal === undefined; i++) {
        const r = await etcdctl(side.cluster.members[0]!.clientUrl, ['put', `fill/${String(i).padStart(2, '0')}`], FILL_VALUE);
        if (r.code !== 0) refusal = `${r.code} ${etcdctlErrorLine(r.stderr)}`;
      }
      assert.ok(refusal !== undefined, `${side.cluster.flavour}: never ran out of space`);
      refusals.push(refusal);
    }
    assert.deepEqual(refusals, ['1 Error: etcdserver: mvcc: database space exceeded', '1 Error: etcdserver: mvcc: database space exceeded']);

    const byType: Normalizer = (s, n) => alarmsByType(replaceNames(s, n));
    const alarmed = { firstMemberOnly: true, normalize: byType };
    assert.equal((await same(limits, ['alarm', 'list'], alarmed)).stdout, 'memberID:<member> alarm:NOSPACE \n');
    const byTypeJson: Normalizer = (s, n) => JSON.stringify(alarmsByTypeJson(normalizeJson(s, n)));
    await same(limits, ['alarm', 'list', '-w', 'json'], { firstMemberOnly: true, normalize: byTypeJson });
    await same(limits, ['endpoint', 'status', '-w', 'json'], { firstMemberOnly: true, normalize: byTypeJson });

    // Growing the store is refused; reading, deleting and compacting are not.
    await same(limits, ['put', 'small', 'x'], alarmed);
    await same(limits, ['put', 'fill/00'], { ...alarmed, stdin: FILL_VALUE });
    await same(limits, ['txn'], { ...alarmed, stdin: `\nput small x\n\n\n` });
    await same(limits, ['txn'], { ...alarmed, stdin: `\nget fill/00 --keys-only\n\n\n` });
    await same(limits, ['get', 'fill/00', '--keys-only'], alarmed);
    await same(limits, ['get', 'fill/', '--prefix', '--keys-only', '--limit=2'], alarmed);
    await same(limits, ['del', 'fill/00'], alarmed);
    await same(limits, ['compact', '4'], alarmed);
    // No new leases either (etcd's capped applier); listing them still works.
    await same(limits, ['lease', 'grant', '60'], alarmed);
    await same(limits, ['lease', 'list'], alarmed);
    await same(limits, ['get', 'fill/01', '--rev=3'], alarmed);

    await same(limits, ['alarm', 'disarm'], alarmed);
    await same(limits, ['alarm', 'list'], alarmed);
    // The file did not shrink (that takes a defrag), so the next big write raises it again.
    await same(limits, ['put', 'fill/00'], { ...alarmed, stdin: FILL_VALUE });
    await same(limits, ['alarm', 'list'], alarmed);
    await same(limits, ['alarm', 'disarm'], alarmed);
    await same(limits, ['alarm', 'list', '-w', 'json'], alarmed);
  });
  test('maintenance: defrag, snapshot save, move-leader, the CORRUPT alarm and its refusals, and their gateway routes', async () => {
    await same(main, ['defrag']);
    await same(main, ['defrag'], { firstMemberOnly: true });
    await same(main, ['defrag', '-w', 'json'], { firstMemberOnly: true });
    await same(main, ['endpoint', 'status', '-w', 'json']);
    const status = await runBoth(main, ['endpoint', 'status', '-w', 'json']);
    for (const r of [status.etcd, status.conclave]) {
      for (const m of r.stdout.matchAll(/"dbSize":(\d+),.*?"dbSizeInUse":(\d+)/g)) assert.ok(Number(m[2]) <= Number(m[1]), `in use ${m[2]} of ${m[1]}`);
    }

    // snapshot save: one endpoint only; the file ends in a digest where etcdctl looks for it.
    const dir = mkdtempSync(join(tmpdir(), 'compat-snapshot-'));
    try {
      const saved: Outcome[] = [];
      for (const side of [main.etcd, main.conclave]) {
        const file = join(dir, `${side.cluster.flavour}.db`);
        const r = await etcdctl(side.cluster.members[0]!.clientUrl, ['snapshot', 'save', file]);
        saved.push({ code: r.code, stdout: r.stdout.replace(file, '<file>'), error: etcdctlErrorLine(r.stderr) });
        assert.equal(statSync(file).size % 512, 32, `${side.cluster.flavour}: ${file}`);
      }
      assert.deepEqual(saved[1], saved[0]);
      assert.equal(saved[0]!.stdout, 'Snapshot saved at <file>\n');
      await same(main, ['snapshot', 'save', join(dir, 'multi.db')]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }

    // move-leader: etcdctl finds the leader among the endpoints and asks it.
    await same(main, ['move-leader', '1234']);
    await same(main, ['move-leader']);
    await same(main, ['move-leader', 'zz']);
    const initial = { etcd: await roles(main.etcd), conclave: await roles(main.conclave) };
    const moved: Outcome[] = [];
    const refused: Outcome[] = [];
    for (const side of [main.etcd, main.conclave]) {
      const r = initial[side.cluster.flavour];
      const followerOnly = await etcdctl(r.follower.url, ['move-leader', r.leader.id]);
      refused.push({ code: followerOnly.code, stdout: followerOnly.stdout, error: anyMember(replaceNames(etcdctlErrorLine(followerOnly.stderr), side.names)) });
      const toSelf = await etcdctl(side.cluster.endpoints, ['move-leader', r.leader.id]);
      assert.equal(toSelf.stdout, `Leadership transferred from ${r.leader.id} to ${r.leader.id}\n`, toSelf.stderr);
      const m = await etcdctl(side.cluster.endpoints, ['move-leader', r.follower.id]);
      moved.push({ code: m.code, stdout: anyMember(replaceNames(m.stdout, side.names)), error: etcdctlErrorLine(m.stderr) });
      assert.equal(m.stdout, `Leadership transferred from ${r.leader.id} to ${r.follower.id}\n`, m.stderr);
      assert.equal((await roles(side)).leader.id, r.follower.id, `${side.cluster.flavour}: the follower leads now`);
    }
    assert.deepEqual(refused[1], refused[0]);
    assert.equal(refused[0]!.error, 'Error: no leader endpoint given at [<member-client>]');
    assert.deepEqual(moved[1], moved[0]);
    await same(main, ['move-leader', '1234', '-w', 'json']);

    // The gateway's MoveLeader: only the leader may, and only to a voting member.
    const gatewayMoves: HttpOutcome[][] = [];
    for (const side of [main.etcd, main.conclave]) {
      const r = await roles(side);
      const post = async (url: string, body: unknown): Promise<HttpOutcome> => {
        const res = await fetch(`${url}/v3/maintenance/transfer-leadership`, { method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(SUITE_LIMITS.httpMs) });
        return { status: res.status, headers: Object.fromEntries(COMPARED_HEADERS.map((h) => [h, res.headers.get(h)])), body: normalizeJson(await res.text(), side.names) };
      };
      const dec = (hex: string): string => BigInt(`0x${hex}`).toString(10);
      gatewayMoves.push([
        await post(r.follower.url, { targetID: dec(r.leader.id) }),
        await post(r.leader.url, { targetID: '5' }),
        await post(r.leader.url, {}),
        await post(r.leader.url, { targetID: dec(r.leader.id) }),
        await post(r.leader.url, { targetID: dec(r.follower.id) }),
      ]);
    }
    assert.deepEqual(gatewayMoves[1], gatewayMoves[0]);
    assert.deepEqual(gatewayMoves[0]!.map((o) => o.status), [412, 412, 412, 200, 200]);

    await sameHttp(main, '/v3/maintenance/defragment', {});
    await sameHttp(main, '/v3beta/maintenance/defragment', {});
    await sameHttp(main, '/v3/maintenance/snapshot', undefined, { method: 'GET' });
    const streams: Json[] = [];
    for (const side of [main.etcd, main.conclave]) {
      const res = await fetch(`${side.cluster.members[0]!.clientUrl}/v3/maintenance/snapshot`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(SUITE_LIMITS.httpMs) });
      streams.push({ status: res.status, contentType: res.headers.get('content-type'), shape: snapshotStreamShape(await res.text()) });
    }
    assert.deepEqual(streams[1], streams[0]);
    assert.deepEqual(streams[0], { status: 200, contentType: 'application/json', shape: { keys: ['blob'], digestBytes: 32, digestMatches: true, sizeModulo512: 0 } });

    // CORRUPT, raised through the gateway as the consistency checker raises it (for m0).
    for (const side of [main.etcd, main.conclave]) {
      const res = await fetch(`${side.cluster.members[0]!.clientUrl}/v3/maintenance/alarm`, {
        method: 'POST',
        body: JSON.stringify({ action: 'ACTIVATE', memberID: decimalId(side, 'm0'), alarm: 'CORRUPT' }),
        signal: AbortSignal.timeout(SUITE_LIMITS.httpMs),
      });
      assert.equal(res.status, 200, await res.text());
    }
    const corrupt = { firstMemberOnly: true };
    assert.equal((await same(main, ['alarm', 'list'], corrupt)).stdout, 'memberID:<m0> alarm:CORRUPT \n');
    await same(main, ['alarm', 'list', '-w', 'json'], corrupt);
    await same(main, ['endpoint', 'status'], { ...corrupt, normalize: normalizeStatusLines });
    await same(main, ['endpoint', 'status', '-w', 'json'], corrupt);
    await sameHttp(main, '/health', undefined, { method: 'GET' });
    // Writes of every kind are refused; reads (linearizable too) are served.
    assert.equal((await same(main, ['put', 'corrupt', 'x'], corrupt)).error, 'Error: etcdserver: corrupt cluster');
    await same(main, ['del', 'k/a'], corrupt);
    await same(main, ['txn'], { ...corrupt, stdin: `\nput corrupt x\n\n\n` });
    await same(main, ['txn'], { ...corrupt, stdin: `\nget k/a\n\n\n` });
    await same(main, ['compact', '9'], corrupt);
    await same(main, ['lease', 'grant', '100'], corrupt);
    await same(main, ['get', 'k/', '--prefix'], corrupt);
    await same(main, ['get', 'k/', '--prefix', '--consistency=s'], corrupt);
    await sameHttp(main, '/v3/kv/put', { key: b64('corrupt'), value: b64('x') });
    await same(main, ['alarm', 'disarm'], corrupt);
    await same(main, ['alarm', 'list'], corrupt);
    await same(main, ['put', 'corrupt', 'healed'], corrupt);
    await same(main, ['get', 'corrupt'], corrupt);
  });
});
