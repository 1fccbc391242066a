/**
 * WAL append throughput on the real disk with real fdatasync: 256-byte entries in batches of 64.
 *   run 1 "sequential": one save at a time, each awaited (one sync per batch);
 *   run 2 "concurrent": several saves in flight, so batches that arrive during a sync share the
 *   next one (group commit); syncs/s stays near run 1 while entries/s multiplies.
 * Options: --seconds N (per run, default 3)  --dir PATH (default os.tmpdir())
 *          --concurrency N (run 2, default 16)  --entry-bytes N (256)  --batch N (64)
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import type { Entry } from '../src/raft/types.ts';
import { crc32IsNative } from '../src/util/crc32.ts';
import { Wal } from '../src/wal/index.ts';

interface Options {
  seconds: number;
  dir: string;
  concurrency: number;
  entryBytes: number;
  batch: number;
}

function parse(args: string[]): Options {
  const o: Options = { seconds: 3, dir: os.tmpdir(), concurrency: 16, entryBytes: 256, batch: 64 };
  for (let i = 0; i < args.length; i++) {
    const v = args[i + 1];
    const num = (): number => {
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0) throw new Error(`bench wal: ${args[i]} needs a positive number`);
      i++;
      return n;
    };
    switch (args[i]) {
      case '--seconds': o.seconds = num(); break;
      case '--concurrency': o.concurrency = Math.floor(num()); break;
      case '--entry-bytes': o.entryBytes = Math.floor(num()); break;
      case '--batch': o.batch = Math.floor(num()); break;
      case '--dir':
        if (v === undefined) throw new Error('bench wal: --dir needs a path');
        o.dir = v;
        i++;
        break;
      default:
        throw new Error(`bench wal: unknown option ${args[i]}`);
    }
  }
  return o;
}

async function run(name: string, o: Options, inFlight: number): Promise<void> {
  const dir = fs.mkdtempSync(join(o.dir, 'conclave-bench-wal-'));
  try {
    const wal = await Wal.create(dir, { memberId: 'bench', clusterId: 'bench' });
    const data = new Uint8Array(o.entryBytes).fill(0x5a);
    let next = 1;
    const batch = (): Entry[] => {
      const es: Entry[] = [];
      for (let k = 0; k < o.batch; k++) es.push({ term: 1, index: next++, kind: 0, data });
      return es;
    };
    const before = wal.stats();
    const start = performance.now();
    const deadline = start + o.seconds * 1000;
    let latencyTotal = 0;
    let saves = 0;
    const worker = async (): Promise<void> => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        const es = batch();
        await wal.save({ term: 1, vote: 'bench', commit: es[es.length - 1]!.index }, es);
        latencyTotal += performance.now() - t0;
        saves++;
      }
    };
    await Promise.all(Array.from({ length: inFlight }, worker));
    const secs = (performance.now() - start) / 1000;
    const after = wal.stats();
    await wal.close();
    const entries = saves * o.batch;
    const syncs = after.syncs - before.syncs;
    const mib = (after.bytesWritten - before.bytesWritten) / (1024 * 1024);
    console.log(
      `wal ${name.padEnd(10)} in-flight=${String(inFlight).padStart(2)}  ` +
        `${Math.round(entries / secs).toLocaleString('en-US').padStart(9)} entries/s  ` +
        `${Math.round(syncs / secs).toLocaleString('en-US').padStart(6)} syncs/s  ` +
        `${(saves / Math.max(1, syncs)).toFixed(1).padStart(5)} batches/sync  ` +
        `${(mib / secs).toFixed(1)} MiB/s  mean save latency ${(latencyTotal / saves).toFixed(2)} ms`,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchWal(args: string[]): Promise<void> {
  const o = parse(args);
  console.log(
    `wal bench: ${o.entryBytes}-byte entries, ${o.batch} per batch, ${o.seconds}s per run, dir ${o.dir}, ` +
      `crc32 ${crc32IsNative ? 'native (zlib)' : 'table'}, fdatasync per round, 64 MiB preallocated segments`,
  );
  await run('sequential', o, 1);
  await run('concurrent', o, o.concurrency);
}

export default benchWal;
