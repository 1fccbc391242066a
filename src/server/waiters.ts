/**
 * Requests waiting for their proposal to be applied, by request id. Bounded: a member that
 * cannot keep up says "too many requests" instead of queueing without limit.
 */
import { serverError, type ServerError } from './errors.ts';

interface Waiter<T> {
  resolve(value: T): void;
  reject(error: ServerError): void;
  timer: NodeJS.Timeout;
}

export class Waiters<T> {
  private readonly pending = new Map<number, Waiter<T>>();

  constructor(
    private readonly maxPending: number,
    private readonly timeoutMs: number,
  ) {}

  size(): number {
    return this.pending.size;
  }

  /** Registers `id`; fails with TOO_MANY_REQUESTS when full, TIMEOUT when nothing triggers it in time. */
  register(id: number): Promise<T> {
    if (this.pending.size >= this.maxPending) return Promise.reject(serverError('TOO_MANY_REQUESTS'));
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(serverError('TIMEOUT'));
      }, this.timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
    });
  }

  has(id: number): boolean {
    return this.pending.has(id);
  }

  trigger(id: number, value: T): void {
    const w = this.pending.get(id);
    if (w === undefined) return;
    this.pending.delete(id);
    clearTimeout(w.timer);
    w.resolve(value);
  }

  fail(id: number, error: ServerError): void {
    const w = this.pending.get(id);
    if (w === undefined) return;
    this.pending.delete(id);
    clearTimeout(w.timer);
    w.reject(error);
  }

  failAll(error: ServerError): void {
    for (const id of [...this.pending.keys()]) this.fail(id, error);
  }
}
