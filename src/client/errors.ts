/**
 * The client's error catalogue: one class per condition a caller may want to handle.
 *
 * A server error arrives as a gRPC status code and a message text. etcd's clients recognise
 * conditions by the exact text (the wording is protocol), so `errorFromStatus` looks the text up
 * first and falls back to the status code. The texts Conclave shares with etcd come from the
 * server's own table (src/api/etcd/errors.ts) so the two cannot drift; the few Conclave does not
 * raise (yet) are written here.
 *
 * Conditions of the client itself (a connection that failed, a write whose outcome is unknown,
 * a recipe's rule) are here too, so one `instanceof` answers every "what went wrong".
 */
import { ETCD_ERRORS } from '../api/etcd/errors.ts';
import { Status } from '../api/grpc/status.ts';

/** Any error the client raises. `code` is the gRPC status (UNKNOWN for client-side conditions). */
export class EtcdError extends Error {
  readonly code: Status;

  constructor(message: string, code: Status = Status.UNKNOWN, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

// ---- request errors (deterministic: the request was refused, nothing was applied) -----------
export class EmptyKeyError extends EtcdError {}
export class KeyNotFoundError extends EtcdError {}
export class ValueProvidedError extends EtcdError {}
export class LeaseProvidedError extends EtcdError {}
export class TooManyOpsError extends EtcdError {}
export class DuplicateKeyError extends EtcdError {}
export class RequestTooLargeError extends EtcdError {}
export class InvalidArgumentError extends EtcdError {}

/** The revision asked for is compacted. `compactRevision` is known on watches, not on ranges. */
export class CompactedError extends EtcdError {
  constructor(
    message: string,
    code: Status,
    readonly compactRevision?: number,
  ) {
    super(message, code);
  }
}
export class FutureRevisionError extends EtcdError {}
export class NoSpaceError extends EtcdError {}

export class LeaseNotFoundError extends EtcdError {}
export class LeaseExistsError extends EtcdError {}
export class LeaseTTLTooLargeError extends EtcdError {}

// ---- cluster state (transient: another member or a later try may succeed) -------------------
export class NoLeaderError extends EtcdError {}
export class NotLeaderError extends EtcdError {}
export class LeaderChangedError extends EtcdError {}
/** The server gave up waiting for the request to apply: a write may still be applied. */
export class ServerTimeoutError extends EtcdError {}
export class StoppedError extends EtcdError {}
export class TooManyRequestsError extends EtcdError {}
export class NotCapableError extends EtcdError {}
export class UnhealthyError extends EtcdError {}
export class LearnerNotSupportedError extends EtcdError {}
export class CorruptError extends EtcdError {}

// ---- membership ------------------------------------------------------------------------------
export class MemberExistsError extends EtcdError {}
export class MemberNotFoundError extends EtcdError {}
export class PeerURLExistsError extends EtcdError {}
export class MemberBadURLsError extends EtcdError {}
export class MemberNotLearnerError extends EtcdError {}
export class LearnerNotReadyError extends EtcdError {}
export class TooManyLearnersError extends EtcdError {}
export class NotEnoughStartedError extends EtcdError {}

// ---- auth ------------------------------------------------------------------------------------
export class AuthFailedError extends EtcdError {}
export class InvalidAuthTokenError extends EtcdError {}
export class PermissionDeniedError extends EtcdError {}
export class AuthNotEnabledError extends EtcdError {}
export class AuthOldRevisionError extends EtcdError {}
export class InvalidAuthMgmtError extends EtcdError {}
export class RootUserNotExistError extends EtcdError {}
export class RootRoleNotExistError extends EtcdError {}
export class UserExistsError extends EtcdError {}
export class UserEmptyError extends EtcdError {}
export class UserNotFoundError extends EtcdError {}
export class RoleExistsError extends EtcdError {}
export class RoleEmptyError extends EtcdError {}
export class RoleNotFoundError extends EtcdError {}
export class RoleNotGrantedError extends EtcdError {}
export class PermissionNotGrantedError extends EtcdError {}

// ---- status codes without a known text ---------------------------------------------------------
export class UnavailableError extends EtcdError {}
export class DeadlineExceededError extends EtcdError {}
export class CancelledError extends EtcdError {}

// ---- the client's own conditions -----------------------------------------------------------

/**
 * The connection to an endpoint failed. `sent` is false only when the request surely never
 * reached a server (the dial failed, or the server refused the stream before reading it).
 */
export class ConnectionError extends EtcdError {
  constructor(
    message: string,
    readonly endpoint: string,
    readonly sent: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, Status.UNAVAILABLE, options);
  }
}

/**
 * A write may or may not have been applied: it reached a server, and then the connection
 * failed, the deadline passed or the server gave up waiting. The client never re-sends such a
 * write; read the key to find out. `cause` is what happened.
 */
export class IndeterminateError extends EtcdError {
  constructor(method: string, cause: unknown) {
    super(`${method}: outcome unknown (the request may have been applied): ${(cause as Error)?.message ?? String(cause)}`, Status.UNKNOWN, { cause });
  }
}

/** Every endpoint is failing and the call's deadline passed; `cause` is the last failure. */
export class NoEndpointAvailableError extends EtcdError {}
/** The client was closed. */
export class ClientClosedError extends EtcdError {}
/** A watch was canceled by the server for a reason other than compaction. */
export class WatchCanceledError extends EtcdError {}
/** A kept-alive lease expired or was revoked before the client could renew it. */
export class LeaseLostError extends EtcdError {}
/** A recipe's session lease is gone, so the lock, election or queue key it held is gone too. */
export class SessionExpiredError extends EtcdError {}
/** Proclaim or resign by a candidate that is not (any longer) the leader. */
export class ElectionNotLeaderError extends EtcdError {}
/** The election has no leader. */
export class ElectionNoLeaderError extends EtcdError {}
/** A double barrier already has `count` participants. */
export class TooManyClientsError extends EtcdError {}
/** An STM transaction conflicted more times than allowed. */
export class StmRetriesExhaustedError extends EtcdError {}

/** MoveLeader to a member that cannot lead (not a voting member). */
export class BadLeaderTransfereeError extends EtcdError {}
/** MoveLeader gave up waiting for the new leader. */
export class LeaderTransferTimeoutError extends EtcdError {}
/** A password was given for a user that has none. */
export class NoPasswordUserError extends EtcdError {}
/** A role grant without a permission. */
export class PermissionNotGivenError extends EtcdError {}
/** A user or role name over the server's limit (a Conclave limit; etcd has none). */
export class NameTooLongError extends EtcdError {}

type ErrorClass = new (message: string, code: Status) => EtcdError;

const E = ETCD_ERRORS;

/** Server texts, exactly as etcd words them, and their classes. */
const BY_TEXT: ReadonlyMap<string, ErrorClass> = new Map<string, ErrorClass>([
  [E.KEY_EMPTY.message, EmptyKeyError],
  [E.KEY_NOT_FOUND.message, KeyNotFoundError],
  [E.VALUE_PROVIDED.message, ValueProvidedError],
  [E.LEASE_PROVIDED.message, LeaseProvidedError],
  [E.TOO_MANY_OPS.message, TooManyOpsError],
  [E.DUPLICATE_KEY.message, DuplicateKeyError],
  [E.REQUEST_TOO_LARGE.message, RequestTooLargeError],
  [E.INVALID_ARGUMENT.message, InvalidArgumentError],
  [E.COMPACTED.message, CompactedError],
  [E.FUTURE_REVISION.message, FutureRevisionError],
  [E.NO_SPACE.message, NoSpaceError],
  [E.LEASE_NOT_FOUND.message, LeaseNotFoundError],
  [E.LEASE_EXISTS.message, LeaseExistsError],
  [E.LEASE_TTL_TOO_LARGE.message, LeaseTTLTooLargeError],
  [E.NO_LEADER.message, NoLeaderError],
  [E.NOT_LEADER.message, NotLeaderError],
  [E.LEADER_CHANGED.message, LeaderChangedError],
  [E.TIMEOUT.message, ServerTimeoutError],
  [E.TIMEOUT_LEADER_FAIL.message, ServerTimeoutError],
  ['etcdserver: request timed out, possibly due to connection lost', ServerTimeoutError],
  [E.STOPPED.message, StoppedError],
  [E.TOO_MANY_REQUESTS.message, TooManyRequestsError],
  [E.NOT_CAPABLE.message, NotCapableError],
  [E.UNHEALTHY.message, UnhealthyError],
  [E.LEARNER_NOT_SUPPORTED.message, LearnerNotSupportedError],
  [E.CORRUPT.message, CorruptError],
  [E.MEMBER_EXISTS.message, MemberExistsError],
  [E.MEMBER_NOT_FOUND.message, MemberNotFoundError],
  [E.PEER_URL_EXISTS.message, PeerURLExistsError],
  [E.MEMBER_BAD_URLS.message, MemberBadURLsError],
  [E.MEMBER_NOT_LEARNER.message, MemberNotLearnerError],
  [E.LEARNER_NOT_READY.message, LearnerNotReadyError],
  [E.TOO_MANY_LEARNERS.message, TooManyLearnersError],
  [E.NOT_ENOUGH_STARTED.message, NotEnoughStartedError],
  [E.BAD_LEADER_TRANSFEREE.message, BadLeaderTransfereeError],
  [E.TIMEOUT_LEADER_TRANSFER.message, LeaderTransferTimeoutError],
  [E.AUTH_FAILED.message, AuthFailedError],
  [E.AUTH_INVALID_TOKEN.message, InvalidAuthTokenError],
  [E.AUTH_PERMISSION_DENIED.message, PermissionDeniedError],
  [E.AUTH_NOT_ENABLED.message, AuthNotEnabledError],
  [E.AUTH_OLD_REVISION.message, AuthOldRevisionError],
  // etcd 3.4 passes the auth package's own text through for an old revision.
  ['auth: revision in header is old', AuthOldRevisionError],
  [E.AUTH_INVALID_MGMT.message, InvalidAuthMgmtError],
  [E.AUTH_ROOT_USER_NOT_EXIST.message, RootUserNotExistError],
  [E.AUTH_ROOT_ROLE_NOT_EXIST.message, RootRoleNotExistError],
  [E.AUTH_USER_EXISTS.message, UserExistsError],
  [E.AUTH_USER_EMPTY.message, UserEmptyError],
  [E.AUTH_USER_NOT_FOUND.message, UserNotFoundError],
  [E.AUTH_ROLE_EXISTS.message, RoleExistsError],
  [E.AUTH_ROLE_EMPTY.message, RoleEmptyError],
  [E.AUTH_ROLE_NOT_FOUND.message, RoleNotFoundError],
  [E.AUTH_ROLE_NOT_GRANTED.message, RoleNotGrantedError],
  [E.AUTH_PERMISSION_NOT_GRANTED.message, PermissionNotGrantedError],
  [E.AUTH_NO_PASSWORD_USER.message, NoPasswordUserError],
  [E.AUTH_PERMISSION_NOT_GIVEN.message, PermissionNotGivenError],
  [E.AUTH_NAME_TOO_LONG.message, NameTooLongError],
]);

const BY_CODE: Partial<Record<Status, ErrorClass>> = {
  [Status.UNAVAILABLE]: UnavailableError,
  [Status.DEADLINE_EXCEEDED]: DeadlineExceededError,
  [Status.CANCELLED]: CancelledError,
  [Status.PERMISSION_DENIED]: PermissionDeniedError,
  [Status.UNAUTHENTICATED]: InvalidAuthTokenError,
};

/** The typed error for a non-OK gRPC status and its message. */
export function errorFromStatus(code: Status, message: string): EtcdError {
  const cls = BY_TEXT.get(message) ?? BY_CODE[code] ?? EtcdError;
  return new cls(message, code);
}
