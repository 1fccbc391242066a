/**
 * Memory of one member holding N keys: a real etcd 3.4 single member (Debian's /usr/bin/etcd)
 * and a Conclave single member (`bin/conclave serve`), one after the other, loaded the same way
 * through the `etcd3` client: txns of --txn-ops puts (100; one revision each) of
 * --value-bytes values (256) on keys "key/0000000000"… (the mvcc bench's keys), --concurrency
 * txns in flight (16). Both run with the test helper's flags (heartbeat 50 ms, election 500 ms),
 * everything else at its default.
 *
 * Printed per system, right after loading and again after reading every key once (ranges of
 * 10,000, which maps in every page of the data file): VmRSS from /proc/<pid>/status, split into
 * RssAnon (the process's own memory: Go or JS heap, index, Raft log…) and RssFile (pages of
 * mapped files — the bbolt or LMDB file, the executable — which the kernel can reclaim; the
 * largest per file from /proc/<pid>/smaps), and the PSS (smaps_rollup, which counts a page mapped
 * twice once and a page shared with other processes in part). After loading, also the heap
 * according to the member's /metrics (Go: heap_inuse and heap_sys − heap_released; Node: V8 heap
 * used and total, and the external memory of Buffers). At the end, the size of the data
 * directory on disk (allocated blocks, as du) with its largest files.
 * With txns of 100 puts, 1,000,000 keys are 10,000 Raft entries: fewer than the default
 * --snapshot-count (100,000), so both members still hold every entry of the load in their
 * in-memory Raft log (about 27 KB each) when measured. With --txn-ops 1 (slower: a Raft entry
 * per key) both snapshot every 100,000 entries and release their log up to then.
 *
 *   npm run bench -- memory [--keys N] [--value-bytes B] [--txn-ops T] [--concurrency C]
 *                           [--systems etcd,conclave]
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Etcd3 } from 'etcd3';
import { etcdAvailable, startCluster, type Flavour, type ServerProcess } from '../test/helpers/processes.ts';
import { ratio } from './lib/measure.ts';

interface Options {
  keys: number;
  valueBytes: number;
  txnOps: number;
  concurrency: number;
  systems: Flavour[];
}

interface Memory {
  readonly rss: number;
  /** Proportional set size: a page mapped twice (LMDB keeps its old maps when it grows the map) counts once. */
  readonly pss: number;
  readonly anon: number;
  readonly file: number;
  /** Resident bytes of the mapped files with the most, by file name (from /proc/<pid>/smaps). */
  readonly byFile: Array<{ path: string; bytes: number }>;
}

interface SystemResult {
  readonly system: Flavour;
  readonly loadSeconds: number;
  readonly empty: Memory;
  readonly loaded: Memory;
  readonly heap: Heap;
  readonly read: Memory;
  readonly diskBytes: number;
  readonly largestFiles: Array<{ path: string; bytes: number }>;
}

/** Keys per range when reading everything back: ~2.7 MiB responses, under gRPC's 4 MiB default. */
const READ_PAGE_KEYS = 10_000;

export function parse(args: string[]): Options {
  const o: Options = { keys: 1_000_000, valueBytes: 256, txnOps: 100, concurrency: 16, systems: ['etcd', 'conclave'] };
  for (let i = 0; i < args.length; i++) {
    const v = args[i + 1];
    const num = (): number => {
      const n = Number(v);
      if (!Number.isSafeInteger(n) || n < 1) throw new Error(`bench memory: ${args[i]} needs a positive integer`);
      i++;
      return n;
    };
    switch (args[i]) {
      case '--keys': o.keys = num(); break;
      case '--value-bytes': o.valueBytes = num(); break;
      case '--txn-ops': o.txnOps = num(); break;
      case '--concurrency': o.concurrency = num(); break;
      case '--systems': {
        const list = (v ?? '').split(',').filter((s) => s !== '');
        for (const s of list) if (s !== 'etcd' && s !== 'conclave') throw new Error(`bench memory: unknown system ${s}`);
        o.systems = list as Flavour[];
        i++;
        break;
      }
      default:
        throw new Error(`bench memory: unknown option ${args[i]}`);
    }
  }
  return o;
}

function keyName(i: number): Buffer {
  return Buffer.from(`key/${String(i).padStart(10, '0')}`);
}

function memoryOf(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string): number => {
    const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(status);
    if (m === null) throw new Error(`no ${field} in /proc/${pid}/status`);
    return Number(m[1]) * 1024;
  };
  const pss = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
  return { rss: kib('VmRSS'), pss: Number(pss?.[1] ?? NaN) * 1024, anon: kib('RssAnon'), file: kib('RssFile') + kib('RssShmem'), byFile: residentFiles(pid) };
}

/** Resident bytes per mapped file, largest first (top 3). */
function residentFiles(pid: number): Array<{ path: string; bytes: number }> {
  const perFile = new Map<string, number>();
  let path: string | null = null;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const mapping = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (mapping !== null) {
      path = mapping[1]!.startsWith('/') ? mapping[1]! : null;
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss !== null && path !== null) perFile.set(path, (perFile.get(path) ?? 0) + Number(rss[1]) * 1024);
  }
  return [...perFile].map(([p, bytes]) => ({ path: p.split('/').slice(-2).join('/'), bytes })).sort((a, b) => b.bytes - a.bytes).slice(0, 3);
}

/** What the member's /metrics says about its heap (MiB figures in the report). */
interface Heap {
  /** Go heap_inuse, or V8's heap used. */
  readonly inUse: number;
  /** Go heap_sys − heap_released, or V8's heap total: what the heap holds from the OS. */
  readonly reserved: number;
  /** Node only: memory of Buffers and other objects outside the V8 heap (0 for Go). */
  readonly external: number;
}

async function heapOf(m: ServerProcess): Promise<Heap> {
  const text = await (await fetch(`${m.clientUrl}/metrics`)).text();
  const metric = (name: string): number => {
    const line = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
    return line === null ? 0 : Number(line[1]);
  };
  if (text.includes('go_memstats_heap_inuse_bytes')) {
    return { inUse: metric('go_memstats_heap_inuse_bytes'), reserved: metric('go_memstats_heap_sys_bytes') - metric('go_memstats_heap_released_bytes'), external: 0 };
  }
  return { inUse: metric('nodejs_heap_size_used_bytes'), reserved: metric('nodejs_heap_size_total_bytes'), external: metric('nodejs_external_memory_bytes') };
}

/** Files under dir with their allocated bytes (st_blocks, as du counts them). */
export function files(dir: string): Array<{ path: string; bytes: number }> {
  const out: Array<{ path: string; bytes: number }> = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.push({ path: relative(dir, p), bytes: statSync(p).blocks * 512 });
    }
  };
  walk(dir);
  return out;
}

/** Puts keys 0..n-1 in txns of txnOps puts, `concurrency` txns in flight. */
export async function load(client: Etcd3, o: Options): Promise<void> {
  const value = Buffer.alloc(o.valueBytes, 'v');
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < o.keys) {
      const first = next;
      next = Math.min(o.keys, next + o.txnOps);
      const success = [];
      for (let i = first; i < next; i++) success.push({ request_put: { key: keyName(i), value } });
      await client.kv.txn({ compare: [], success, failure: [] });
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
}

/** Reads every key once, in pages; returns how many there were. */
async function readAll(client: Etcd3, o: Options): Promise<number> {
  let count = 0;
  let start = keyName(0);
  const end = Buffer.from('key0'); // the prefix "key/" ends before "key0"
  for (;;) {
    const r = await client.kv.range({ key: start, range_end: end, limit: READ_PAGE_KEYS });
    count += r.kvs.length;
    for (const kv of r.kvs) if (kv.value.length !== o.valueBytes) throw new Error(`bench memory: ${kv.key.toString()} has ${kv.value.length} bytes`);
    if (!r.more) return count;
    start = Buffer.concat([r.kvs[r.kvs.length - 1]!.key, Buffer.from([0])]);
  }
}

async function runSystem(system: Flavour, o: Options): Promise<SystemResult> {
  const cluster = await startCluster(system, 1);
  const member = cluster.members[0]!;
  const client = new Etcd3({ hosts: member.clientUrl });
  try {
    const pid = member.child?.pid;
    if (pid === undefined) throw new Error(`${system} member is not running`);
    const empty = memoryOf(pid);
    const t0 = performance.now();
    await load(client, o);
    const loadSeconds = (performance.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 1000));
    const loaded = memoryOf(pid);
    const heap = await heapOf(member);
    const seen = await readAll(client, o);
    if (seen !== o.keys) throw new Error(`bench memory: ${system} holds ${seen} keys, expected ${o.keys}`);
    const read = memoryOf(pid);
    const all = files(member.dataDir);
    const largest = [...all].sort((a, b) => b.bytes - a.bytes).slice(0, 3);
    return { system, loadSeconds, empty, loaded, heap, read, diskBytes: all.reduce((s, f) => s + f.bytes, 0), largestFiles: largest };
  } finally {
    client.close();
    await cluster.destroy();
  }
}

function mib(bytes: number): string {
  return `${(bytes / (1 << 20)).toFixed(0)} MiB`;
}

function memoryLine(m: Memory): string {
  return `${mib(m.rss)} (anon ${mib(m.anon)}, file ${mib(m.file)}: ${m.byFile.map((f) => `${f.path} ${mib(f.bytes)}`).join(', ')}), PSS ${mib(m.pss)}`;
}

function report(r: SystemResult, o: Options): void {
  const perMillion = (bytes: number): string => mib((bytes / o.keys) * 1e6);
  console.log(`${r.system}: loaded ${o.keys.toLocaleString('en-US')} keys in ${r.loadSeconds.toFixed(1)} s`);
  console.log(`  RSS empty            ${memoryLine(r.empty)}`);
  console.log(`  RSS after loading    ${memoryLine(r.loaded)}; ${perMillion(r.loaded.rss - r.empty.rss)} per million keys over empty`);
  console.log(`  heap after loading   in use ${mib(r.heap.inUse)}, held ${mib(r.heap.reserved)}${r.heap.external > 0 ? `, outside the heap ${mib(r.heap.external)}` : ''}`);
  console.log(`  RSS after reading    ${memoryLine(r.read)}; ${perMillion(r.read.rss - r.empty.rss)} per million keys over empty`);
  console.log(`  data dir on disk     ${mib(r.diskBytes)}; largest: ${r.largestFiles.map((f) => `${f.path} ${mib(f.bytes)}`).join(', ')}`);
}

export default async function benchMemory(args: string[]): Promise<void> {
  const o = parse(args);
  if (o.systems.includes('etcd') && !etcdAvailable()) throw new Error('bench memory: /usr/bin/etcd is not installed');
  console.log(`memory bench: ${o.keys.toLocaleString('en-US')} keys × ${o.valueBytes} B, txns of ${o.txnOps} puts, ${o.concurrency} in flight, one member`);
  const results: SystemResult[] = [];
  for (const system of o.systems) {
    const r = await runSystem(system, o);
    report(r, o);
    results.push(r);
  }
  const etcd = results.find((r) => r.system === 'etcd');
  const conclave = results.find((r) => r.system === 'conclave');
  if (etcd !== undefined && conclave !== undefined) {
    console.log(`Conclave/etcd: RSS after loading ×${ratio(conclave.loaded.rss, etcd.loaded.rss)} (anon ×${ratio(conclave.loaded.anon, etcd.loaded.anon)}), after reading ×${ratio(conclave.read.rss, etcd.read.rss)}, data dir ×${ratio(conclave.diskBytes, etcd.diskBytes)}`);
  }
}
