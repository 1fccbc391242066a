/**
 * Fixture for crash.test.ts: appends batches to a WAL as fast as it can, several saves in flight
 * at once, and prints `ack <lastIndex> <commit>` the moment each save resolves. The parent kills
 * it with SIGKILL at a random moment and checks that every acknowledged batch survived.
 *
 * usage: node --import tsx test/wal/crash-writer.ts <dir> <create|open> <term>
 */
import { Wal } from '../../src/wal/index.ts';
import { META, dataFor, snapMeta } from './helpers.ts';
import type { Entry, SnapshotMetadata } from '../../src/raft/types.ts';

export const CRASH_OPTIONS = { segmentBytes: 256 * 1024, zeroChunkBytes: 64 * 1024 } as const;
/** Entry sizes vary with the index so the parent can check each entry's bytes exactly. */
export const crashEntryBytes = (index: number): number => 20 + ((index * 7919) % 600);

async function main(): Promise<void> {
  const [dir, mode, termArg] = process.argv.slice(2);
  if (dir === undefined || (mode !== 'create' && mode !== 'open') || termArg === undefined) throw new Error('usage: crash-writer <dir> <create|open> <term>');
  const term = Number(termArg);
  const terms = new Map<number, number>();
  let wal: Wal;
  let last = 0;
  let snapIndex = 0;
  if (mode === 'create') wal = await Wal.create(dir, META, CRASH_OPTIONS);
  else {
    const r = await Wal.open(dir, CRASH_OPTIONS);
    wal = r.wal;
    snapIndex = r.snapshot?.index ?? 0;
    last = r.entries.length > 0 ? r.entries[r.entries.length - 1]!.index : snapIndex;
    for (const e of r.entries) terms.set(e.index, e.term);
    if (r.snapshot) terms.set(r.snapshot.index, r.snapshot.term);
  }
  process.stdout.write(`ready ${last}\n`);

  let batches = 0;
  const inFlight = new Set<Promise<void>>();
  for (;;) {
    while (inFlight.size < 4) {
      const n = 1 + (batches % 8);
      const entries: Entry[] = [];
      for (let i = last + 1; i <= last + n; i++) {
        entries.push({ index: i, term, kind: 0, data: dataFor(i, term, crashEntryBytes(i)) });
        terms.set(i, term);
      }
      last += n;
      const commit = last;
      let snap: SnapshotMetadata | undefined;
      if (++batches % 40 === 0 && last - 50 > snapIndex) {
        snapIndex = last - 50;
        snap = snapMeta(snapIndex, terms.get(snapIndex)!);
      }
      const p: Promise<void> = wal.save({ term, vote: 'm1', commit }, entries, snap).then(() => {
        process.stdout.write(`ack ${commit} ${commit}\n`);
        inFlight.delete(p);
        if (snap) void wal.releaseTo(snap.index);
      });
      inFlight.add(p);
    }
    await Promise.race(inFlight);
  }
}

if (process.argv[1]?.endsWith('crash-writer.ts')) {
  main().catch((err: unknown) => {
    process.stderr.write(`crash-writer: ${String(err instanceof Error ? err.stack : err)}\n`);
    process.exit(1);
  });
}
