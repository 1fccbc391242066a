/**
 * Physical compaction: frees, in the background, the LMDB records that an index compaction made
 * unreachable. The index is the authority: a record with main ≤ target whose revision the
 * (already compacted) index no longer holds is garbage. Work proceeds in batches of
 * `compactionBatchLimit` records per LMDB write transaction, with `compactionSleepIntervalMs`
 * between batches so that Raft applies interleave. When a pass reaches the target, the same
 * transaction records "sys:finishedCompact"; a crash before that leaves scheduled > finished and
 * the store resumes the pass on open. A newer compaction restarts the pass from the first record
 * (records kept for the old target may be garbage for the new one).
 */
import type { Backend } from './backend.ts';
import { decodeRevKey, encodeU64, metaKeys, recordKeyString, revKey } from './codec.ts';
import type { MvccLimits } from './limits.ts';
import type { TreeIndex } from './tree-index.ts';

export class Compactor {
  private target = -1;
  private cursor: Buffer | undefined;
  private dirty = false;
  private stopped = false;
  private running: Promise<void> | null = null;
  /** Ends the pause between batches early (on stop). */
  private wake: (() => void) | null = null;
  /** Records freed since the store opened (for stats and tests). */
  freed = 0;

  constructor(
    private readonly backend: Backend,
    private readonly index: TreeIndex,
    private readonly limits: MvccLimits,
  ) {}

  /** Starts (or restarts) freeing everything a compaction at rev made unreachable. */
  schedule(rev: number): void {
    this.target = rev;
    this.cursor = undefined;
    this.dirty = true;
    if (this.running === null && !this.stopped) this.start();
  }

  /** Resolves when no physical compaction is pending. */
  async idle(): Promise<void> {
    while (this.running !== null) await this.running;
  }

  /** Stops after the current batch; the pass resumes on the next open. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.idle();
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }

  private start(): void {
    this.running = this.loop().then(() => {
      this.running = null;
      if (this.dirty && !this.stopped) this.start();
    });
  }

  private async loop(): Promise<void> {
    await Promise.resolve();
    while (this.dirty && !this.stopped) {
      if (this.batch()) {
        this.dirty = false;
        return;
      }
      await this.pause(this.limits.compactionSleepIntervalMs);
    }
  }

  /** One LMDB write transaction's worth of work; true when the pass reached the target. */
  private batch(): boolean {
    const target = this.target;
    const limit = this.limits.compactionBatchLimit;
    return this.backend.write(() => {
      const opts: { start?: Buffer; exclusiveStart?: boolean; end: Buffer; limit: number } = { end: revKey(target + 1, 0, false), limit };
      if (this.cursor !== undefined) {
        opts.start = this.cursor;
        opts.exclusiveStart = true;
      }
      const garbage: Buffer[] = [];
      let seen = 0;
      let last: Buffer | undefined;
      for (const { key, value } of this.backend.kvRange(opts)) {
        seen++;
        last = key;
        const r = decodeRevKey(key);
        if (!this.index.hasRevision(recordKeyString(value), r.main, r.sub)) garbage.push(Buffer.from(key));
      }
      for (const k of garbage) this.backend.kvRemove(k);
      this.freed += garbage.length;
      if (seen < limit) {
        this.backend.metaPut(metaKeys.finishedCompact, encodeU64(target));
        return true;
      }
      this.cursor = Buffer.from(last!);
      return false;
    });
  }
}
