/**
 * Invariant checks that stay on in production. A failed assertion in the store means a bug or a
 * corrupted backend: carrying on could serve or replicate wrong data, so it throws and is not
 * meant to be caught. Expected conditions (compacted, future revision, duplicate key) are typed
 * errors from errors.ts instead.
 */
export class MvccAssertionError extends Error {
  constructor(message: string) {
    super(`mvcc invariant violated: ${message}`);
    this.name = 'MvccAssertionError';
  }
}

export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new MvccAssertionError(message);
}

/** A revision, version or count must be a non-negative safe integer to round-trip through 8 bytes. */
export function assertRevisionNumber(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new MvccAssertionError(`${what} is not a safe non-negative integer: ${n}`);
}
