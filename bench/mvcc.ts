/**
 * Storage benchmark of the MVCC store (src/mvcc):
 *   put/s   — N keys of `--value-bytes` (256 B) values, applied as Raft entries through applyBatch,
 *             `--batch` entries (1000) per LMDB write transaction, each entry its own revision;
 *   get/s   — point reads (range of one key) at random keys;
 *   range/s — ranges of exactly `--range-keys` (1000) consecutive keys at random offsets;
 *   RSS     — resident memory added by the loaded store, per million keys (index + LMDB pages),
 *             after loading and again after the reads have touched the LMDB pages;
 *   reopen  — time to reopen (rebuild the in-memory index from LMDB).
 * Each rate is given by wall clock and by this process's CPU time (user + system), which is the
 * steadier figure on a machine shared with other work.
 * Options: --keys N (1,000,000) --batch B --value-bytes V --range-keys R --gets G --ranges Q --dir D
 *          --shuffled: write the keys in a random order rather than in key order, so that the
 *          revisions of a range of keys are scattered (ranges then look each record up rather than
 *          scan nearby revisions)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MvccStore } from '../src/mvcc/index.ts';
import type { MvccRequest } from '../src/mvcc/index.ts';

function option(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(args[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} needs a positive number`);
  return v;
}

function keyOf(i: number): Buffer {
  return Buffer.from(`key/${String(i).padStart(10, '0')}`);
}

/** Runs fn and returns [wall seconds, cpu seconds]. */
function timed(fn: () => void): [number, number] {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  fn();
  const c = process.cpuUsage(c0);
  return [(performance.now() - t0) / 1000, (c.user + c.system) / 1e6];
}

function rates(n: number, [wall, cpu]: [number, number], unit: string): string {
  return `${fmt(n / wall)} ${unit}/s (${fmt(n / cpu)} ${unit}/s of CPU time)`;
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function mib(bytes: number): string {
  return `${(bytes / (1 << 20)).toFixed(0)} MiB`;
}

/** Deterministic pseudo-random sequence (the bench must not depend on Math.random). */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 4294967296;
  };
}

/** A random permutation of 0..n-1 (Fisher–Yates). */
function shuffle(n: number, rand: () => number): Uint32Array {
  const a = new Uint32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
  return a;
}

export async function benchMvcc(args: string[]): Promise<void> {
  const keys = option(args, 'keys', 1_000_000);
  const batch = option(args, 'batch', 1000);
  const valueBytes = option(args, 'value-bytes', 256);
  const rangeKeys = Math.min(option(args, 'range-keys', 1000), keys);
  const gets = option(args, 'gets', Math.min(keys, 500_000));
  const ranges = option(args, 'ranges', 2000);
  const dirArg = args.indexOf('--dir') >= 0 ? args[args.indexOf('--dir') + 1] : undefined;
  const base = dirArg ?? mkdtempSync(join(tmpdir(), 'conclave-bench-mvcc-'));
  const dir = join(base, 'store');
  const rand = lcg(42);
  const shuffled = args.includes('--shuffled');
  const order = shuffled ? shuffle(keys, rand) : null;
  console.log(`mvcc storage bench: ${fmt(keys)} keys × ${valueBytes} B values, ${batch} entries per LMDB transaction${shuffled ? ', keys written in random order' : ''}`);
  try {
    const rssBefore = process.memoryUsage().rss;
    let store = await MvccStore.open(dir);

    const value = Buffer.alloc(valueBytes);
    for (let i = 0; i < valueBytes; i++) value[i] = 97 + (i % 26);
    let index = 0;
    const putTime = timed(() => {
      for (let i = 0; i < keys; ) {
        const entries: Array<{ index: number; request: MvccRequest }> = [];
        for (let k = 0; k < batch && i < keys; k++, i++) entries.push({ index: ++index, request: { op: 'put', request: { key: keyOf(order === null ? i : order[i]!), value } } });
        store.applyBatch(entries);
      }
    });
    console.log(`put:    ${rates(keys, putTime, 'puts')}; ${putTime[0].toFixed(2)} s, revision ${store.revision}`);

    const rssLoaded = process.memoryUsage().rss;
    const heap = process.memoryUsage().heapUsed;
    const perMillion = (bytes: number): string => mib((bytes / keys) * 1e6);
    console.log(`memory: RSS +${mib(rssLoaded - rssBefore)} after loading = ${perMillion(rssLoaded - rssBefore)} per million keys (JS heap ${mib(heap)})`);

    const getKeys = Array.from({ length: Math.min(gets, 100_000) }, () => keyOf(Math.floor(rand() * keys)));
    let found = 0;
    const getTime = timed(() => {
      for (let g = 0; g < gets; g++) found += store.range({ key: getKeys[g % getKeys.length]! }).count;
    });
    if (found !== gets) throw new Error(`point gets found ${found} of ${gets}`);
    console.log(`get:    ${rates(gets, getTime, 'gets')}; ${fmt(gets)} random point reads`);

    let seen = 0;
    const rangeTime = timed(() => {
      for (let q = 0; q < ranges; q++) {
        const start = Math.floor(rand() * (keys - rangeKeys + 1));
        seen += store.range({ key: keyOf(start), rangeEnd: keyOf(start + rangeKeys) }).kvs.length;
      }
    });
    if (seen !== ranges * rangeKeys) throw new Error(`ranges returned ${seen} kvs, expected ${ranges * rangeKeys}`);
    console.log(`range:  ${rates(ranges, rangeTime, 'ranges')} of ${fmt(rangeKeys)} keys = ${fmt((ranges * rangeKeys) / rangeTime[0])} kvs/s`);
    const rssRead = process.memoryUsage().rss;
    console.log(`memory: RSS +${mib(rssRead - rssBefore)} after the reads = ${perMillion(rssRead - rssBefore)} per million keys`);

    const stats = store.stats();
    await store.close();
    const t0 = performance.now();
    store = await MvccStore.open(dir);
    console.log(`reopen: ${((performance.now() - t0) / 1000).toFixed(2)} s to rebuild the index of ${fmt(stats.indexedKeys)} keys from ${fmt(stats.kvRecords)} records`);
    await store.close();
  } finally {
    if (dirArg === undefined) rmSync(base, { recursive: true, force: true });
    else rmSync(dir, { recursive: true, force: true });
  }
}

export default benchMvcc;
