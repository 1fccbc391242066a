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
import { decodeRevKey, encodeU64, metaKeys, recordKeyString, revKey } from './codec.ts';
import type { StoreState } from './state.ts';

export class Compactor {
  private target = -1;
  private cursor: Buffer | undefined;
  private dirty = false;
  private stopped = false;
  /** Held off while the store is defragmented (its backend must not change meanwhile). */
  private paused = false;
  private running: Promise<void> | null = null;
  /** Ends the pause between batches early (on stop). */
  private wake: (() => void) | null = null;
  /** Records freed since the store opened (for stats and tests). */
  freed = 0;

  /** Reads the store's backend afresh for every batch: a defragmentation replaces it. */
  constructor(private readonly s: StoreState) {}

  /** Starts (or restarts) freeing everything a compaction at rev made unreachable. */
  schedule(rev: number): void {
    this.target = rev;
    this.cursor = undefined;
    this.dirty = true;
    if (this.running === null && !this.stopped && !this.paused) this.start();
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

  /** Stops after the current batch until resume(); the pass goes on from where it was. */
  async pause(): Promise<void> {
    this.paused = true;
    this.wake?.();
    await this.idle();
  }

  resume(): void {
    this.paused = false;
    if (this.dirty && this.running === null && !this.stopped) this.start();
  }

  private sleep(ms: number): Promise<void> {
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
      if (this.dirty && !this.stopped && !this.paused) this.start();
    });
  }

  private async loop(): Promise<void> {
    await Promise.resolve();
    while (this.dirty && !this.stopped && !this.paused) {
      if (this.batch()) {
        this.dirty = false;
        return;
      }
      await this.sleep(this.s.limits.compactionSleepIntervalMs);
    }
  }

  /** One LMDB write transaction's worth of work; true when the pass reached the target. */
  private batch(): boolean {
    const target = this.target;
    const limit = this.s.limits.compactionBatchLimit;
    const backend = this.s.backend;
    return backend.write(() => {
      const opts: { start?: Buffer; exclusiveStart?: boolean; end: Buffer; limit: number } = { end: revKey(target + 1, 0, false), limit };
      if (this.cursor !== undefined) {
        opts.start = this.cursor;
        opts.exclusiveStart = true;
      }
      const garbage: Buffer[] = [];
      let seen = 0;
      let last: Buffer | undefined;
      for (const { key, value } of backend.kvRange(opts)) {
        seen++;
        last = key;
        const r = decodeRevKey(key);
        if (!this.s.index.hasRevision(recordKeyString(value), r.main, r.sub)) garbage.push(Buffer.from(key));
      }
      for (const k of garbage) backend.kvRemove(k);
      this.freed += garbage.length;
      if (seen < limit) {
        backend.metaPut(metaKeys.finishedCompact, encodeU64(target));
        return true;
      }
      this.cursor = Buffer.from(last!);
      return false;
    });
  }
}
