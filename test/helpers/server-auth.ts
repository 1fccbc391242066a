/**
 * A member's ServerAuth over a bare store, for tests that drive the apply step directly: simple
 * tokens, lease keys from `lessor`, and no log (Authenticate, which proposes, is not available).
 */
import { SimpleTokens } from '../../src/auth/index.ts';
import type { Lessor } from '../../src/lease/index.ts';
import type { MvccStore } from '../../src/mvcc/index.ts';
import { ServerAuth } from '../../src/server/auth.ts';

export function storeAuth(store: () => MvccStore, lessor?: Lessor, applied: () => number = () => store().consistentIndex()): ServerAuth {
  return new ServerAuth(
    {
      meta: () => store().meta,
      applied,
      linearizableBarrier: () => Promise.resolve(),
      write: () => Promise.reject(new Error('this test has no log to propose to')),
      leaseKeys: (id) => (lessor?.has(id) === true ? lessor.timeToLive(id, 0, true).keys : undefined),
      requestTimeoutMs: 1_000,
    },
    { kind: 'simple', tokens: new SimpleTokens(300_000) },
  );
}
