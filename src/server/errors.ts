/**
 * The catalogue of conditions a member reports to clients. Each has its own class and a stable
 * code that is never reused; the front ends map codes to their protocol's status and text
 * (src/api/etcd/errors.ts gives etcd's exact wording). Where the outcome of a write is unknown
 * (it may still commit), the condition says so: `ambiguous` is true.
 */
import { AUTH_ERRORS } from '../auth/index.ts';

export class ServerError extends Error {
  constructor(
    readonly code: ServerErrorCode,
    message: string,
    readonly ambiguous = false,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ServerError';
  }
}

export const SERVER_ERRORS = {
  NO_LEADER: 'no leader is known (election in progress or this member is partitioned)',
  NOT_LEADER: 'this member is not the leader',
  BAD_LEADER_TRANSFEREE: 'the leadership transfer target is not a voting member',
  TIMEOUT_LEADER_TRANSFER: 'the leadership transfer did not finish in time',
  LEADER_CHANGED: 'the leader changed while the request was pending; it may or may not have been applied',
  TIMEOUT: 'the request timed out; it may or may not have been applied',
  TIMEOUT_LEADER_FAIL: 'the request timed out, possibly because the previous leader failed; it may or may not have been applied',
  PROPOSAL_DROPPED: 'the proposal was dropped (leadership transfer in progress or too many uncommitted entries)',
  TOO_MANY_REQUESTS: 'too many requests are waiting to be applied',
  STOPPED: 'the member is stopping',
  REQUEST_TOO_LARGE: 'the request is larger than --max-request-bytes',
  KEY_EMPTY: 'the key is empty',
  TOO_MANY_OPS: 'the transaction has more operations than --max-txn-ops',
  DUPLICATE_KEY: 'a key is written more than once in the transaction',
  KEY_NOT_FOUND: 'the key does not exist (put with ignore_value or ignore_lease)',
  VALUE_PROVIDED: 'a value was given together with ignore_value',
  LEASE_PROVIDED: 'a lease was given together with ignore_lease',
  COMPACTED: 'the requested revision has been compacted',
  FUTURE_REVISION: 'the requested revision is newer than the store',
  NO_SPACE: 'the backend quota is exhausted (NOSPACE alarm)',
  LEASE_NOT_FOUND: 'the lease does not exist',
  LEASE_EXISTS: 'a lease with this id already exists',
  LEASE_TTL_TOO_LARGE: 'the lease TTL is above the maximum',
  CORRUPT: 'members disagree on the data (CORRUPT alarm)',
  NOT_CAPABLE: 'the cluster cannot serve this request yet',
  LEARNER_NOT_SUPPORTED: 'a learner cannot serve this request',
  INVALID_ARGUMENT: 'the request is malformed',
  MEMBER_EXISTS: 'a member with this id already exists',
  PEER_URL_EXISTS: 'another member already has one of these peer URLs',
  MEMBER_BAD_URLS: 'the peer URLs are not valid URLs',
  MEMBER_NOT_FOUND: 'no such member',
  MEMBER_NOT_LEARNER: 'the member is not a learner',
  LEARNER_NOT_READY: 'the learner has not caught up with the leader yet',
  TOO_MANY_LEARNERS: 'the cluster already has the most learners allowed',
  NOT_ENOUGH_STARTED: 'too few members are started for this change to keep a quorum',
  UNHEALTHY: 'too few members are connected to the leader for this change to keep a quorum',
  // Auth conditions keep the auth layer's codes (and its etcd auth-package texts).
  ...AUTH_ERRORS,
} as const;

export type ServerErrorCode = keyof typeof SERVER_ERRORS;

export function serverError(code: ServerErrorCode, detail?: string, cause?: unknown): ServerError {
  const ambiguous = code === 'TIMEOUT' || code === 'TIMEOUT_LEADER_FAIL' || code === 'LEADER_CHANGED';
  return new ServerError(code, detail ?? SERVER_ERRORS[code], ambiguous, cause === undefined ? undefined : { cause });
}
