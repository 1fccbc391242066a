/**
 * A one-line progress bar for long CLI steps, drawn on stderr only when it is a terminal (so
 * scripts and logs get none), redrawn at most every PROGRESS_LIMITS.redrawMs.
 */
import type { RestoreProgress } from '../server/restore.ts';

export const PROGRESS_LIMITS = {
  redrawMs: 100,
  barWidth: 30,
} as const;

function megabytes(n: number): string {
  return (n / 1e6).toFixed(1);
}

/** How the bar states its progress after the percentage (bytes in MB unless told otherwise). */
export type ProgressAmount = (done: number, total: number) => string;

const inMegabytes: ProgressAmount = (done, total) => `${megabytes(done)}/${megabytes(total)} MB`;

export class ProgressBar implements RestoreProgress {
  private step = '';
  private total = 0;
  private done = 0;
  private drawnAt = 0;

  constructor(
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly amount: ProgressAmount = inMegabytes,
  ) {}

  private get enabled(): boolean {
    return this.out.isTTY === true;
  }

  begin(step: string, total: number): void {
    this.step = step;
    this.total = total;
    this.done = 0;
    this.drawnAt = 0;
    this.draw();
  }

  advance(amount: number): void {
    this.done += amount;
    if (performance.now() - this.drawnAt >= PROGRESS_LIMITS.redrawMs) this.draw();
  }

  end(): void {
    this.done = this.total;
    this.draw();
    if (this.enabled) this.out.write('\n');
  }

  private draw(): void {
    if (!this.enabled) return;
    this.drawnAt = performance.now();
    const fraction = this.total === 0 ? 1 : Math.min(1, this.done / this.total);
    const filled = Math.round(fraction * PROGRESS_LIMITS.barWidth);
    const bar = '#'.repeat(filled) + '-'.repeat(PROGRESS_LIMITS.barWidth - filled);
    this.out.write(`\r${this.step.padEnd(10)} [${bar}] ${String(Math.floor(fraction * 100)).padStart(3)}% ${this.amount(this.done, this.total)}`);
  }
}
