/**
 * Invariant checks that stay on in production: a broken invariant means a bug or corrupted
 * state, and continuing would risk acknowledging something false. Expected conditions (no
 * leader, compacted, too large) are returned as values, never asserted.
 */
export class AssertionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AssertionError';
  }
}

export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}
