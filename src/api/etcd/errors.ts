/**
 * etcd's gRPC status codes and exact message texts for every server condition. Clients map
 * errors back to types by the text (etcd's errStringToError), so the wording is protocol.
 */
import { GrpcError, Status, unary, type CallContext } from '../grpc/index.ts';
import { ServerError, type ServerErrorCode } from '../../server/errors.ts';
import { AUTH_ERRORS, type AuthErrorCode } from '../../auth/index.ts';
import { RecipeError } from './concurrency.ts';

export interface EtcdError {
  readonly status: Status;
  readonly message: string;
}

const S = Status;

export const ETCD_ERRORS: Record<ServerErrorCode, EtcdError> = {
  NO_LEADER: { status: S.UNAVAILABLE, message: 'etcdserver: no leader' },
  NOT_LEADER: { status: S.FAILED_PRECONDITION, message: 'etcdserver: not leader' },
  BAD_LEADER_TRANSFEREE: { status: S.FAILED_PRECONDITION, message: 'etcdserver: bad leader transferee' },
  // etcd has no gRPC error for it: its catch-all gives UNKNOWN with the server error's text.
  TIMEOUT_LEADER_TRANSFER: { status: S.UNKNOWN, message: 'etcdserver: request timed out, leader transfer took too long' },
  LEADER_CHANGED: { status: S.UNAVAILABLE, message: 'etcdserver: leader changed' },
  TIMEOUT: { status: S.UNAVAILABLE, message: 'etcdserver: request timed out' },
  TIMEOUT_LEADER_FAIL: { status: S.UNAVAILABLE, message: 'etcdserver: request timed out, possibly due to previous leader failure' },
  PROPOSAL_DROPPED: { status: S.UNAVAILABLE, message: 'etcdserver: request timed out' },
  TOO_MANY_REQUESTS: { status: S.RESOURCE_EXHAUSTED, message: 'etcdserver: too many requests' },
  STOPPED: { status: S.UNAVAILABLE, message: 'etcdserver: server stopped' },
  REQUEST_TOO_LARGE: { status: S.INVALID_ARGUMENT, message: 'etcdserver: request is too large' },
  KEY_EMPTY: { status: S.INVALID_ARGUMENT, message: 'etcdserver: key is not provided' },
  TOO_MANY_OPS: { status: S.INVALID_ARGUMENT, message: 'etcdserver: too many operations in txn request' },
  DUPLICATE_KEY: { status: S.INVALID_ARGUMENT, message: 'etcdserver: duplicate key given in txn request' },
  KEY_NOT_FOUND: { status: S.INVALID_ARGUMENT, message: 'etcdserver: key not found' },
  VALUE_PROVIDED: { status: S.INVALID_ARGUMENT, message: 'etcdserver: value is provided' },
  LEASE_PROVIDED: { status: S.INVALID_ARGUMENT, message: 'etcdserver: lease is provided' },
  COMPACTED: { status: S.OUT_OF_RANGE, message: 'etcdserver: mvcc: required revision has been compacted' },
  FUTURE_REVISION: { status: S.OUT_OF_RANGE, message: 'etcdserver: mvcc: required revision is a future revision' },
  NO_SPACE: { status: S.RESOURCE_EXHAUSTED, message: 'etcdserver: mvcc: database space exceeded' },
  LEASE_NOT_FOUND: { status: S.NOT_FOUND, message: 'etcdserver: requested lease not found' },
  LEASE_EXISTS: { status: S.FAILED_PRECONDITION, message: 'etcdserver: lease already exists' },
  LEASE_TTL_TOO_LARGE: { status: S.OUT_OF_RANGE, message: 'etcdserver: too large lease TTL' },
  CORRUPT: { status: S.DATA_LOSS, message: 'etcdserver: corrupt cluster' },
  NOT_CAPABLE: { status: S.UNAVAILABLE, message: 'etcdserver: not capable' },
  LEARNER_NOT_SUPPORTED: { status: S.UNAVAILABLE, message: 'etcdserver: rpc not supported for learner' },
  INVALID_ARGUMENT: { status: S.INVALID_ARGUMENT, message: 'etcdserver: invalid argument' },
  MEMBER_EXISTS: { status: S.FAILED_PRECONDITION, message: 'etcdserver: member ID already exist' },
  PEER_URL_EXISTS: { status: S.FAILED_PRECONDITION, message: 'etcdserver: Peer URLs already exists' },
  MEMBER_BAD_URLS: { status: S.INVALID_ARGUMENT, message: 'etcdserver: given member URLs are invalid' },
  MEMBER_NOT_FOUND: { status: S.NOT_FOUND, message: 'etcdserver: member not found' },
  MEMBER_NOT_LEARNER: { status: S.FAILED_PRECONDITION, message: 'etcdserver: can only promote a learner member' },
  LEARNER_NOT_READY: { status: S.FAILED_PRECONDITION, message: 'etcdserver: can only promote a learner member which is in sync with leader' },
  TOO_MANY_LEARNERS: { status: S.FAILED_PRECONDITION, message: 'etcdserver: too many learner members in cluster' },
  NOT_ENOUGH_STARTED: { status: S.FAILED_PRECONDITION, message: 'etcdserver: re-configuration failed due to not enough started members' },
  UNHEALTHY: { status: S.UNAVAILABLE, message: 'etcdserver: unhealthy cluster' },
  AUTH_ROOT_USER_NOT_EXIST: { status: S.FAILED_PRECONDITION, message: 'etcdserver: root user does not exist' },
  AUTH_ROOT_ROLE_NOT_EXIST: { status: S.FAILED_PRECONDITION, message: 'etcdserver: root user does not have root role' },
  AUTH_USER_EXISTS: { status: S.FAILED_PRECONDITION, message: 'etcdserver: user name already exists' },
  AUTH_USER_EMPTY: { status: S.INVALID_ARGUMENT, message: 'etcdserver: user name is empty' },
  AUTH_USER_NOT_FOUND: { status: S.FAILED_PRECONDITION, message: 'etcdserver: user name not found' },
  AUTH_ROLE_EXISTS: { status: S.FAILED_PRECONDITION, message: 'etcdserver: role name already exists' },
  AUTH_ROLE_NOT_FOUND: { status: S.FAILED_PRECONDITION, message: 'etcdserver: role name not found' },
  AUTH_ROLE_EMPTY: { status: S.INVALID_ARGUMENT, message: 'etcdserver: role name is empty' },
  AUTH_FAILED: { status: S.INVALID_ARGUMENT, message: 'etcdserver: authentication failed, invalid user ID or password' },
  // etcd has no gRPC error for this one and passes the auth package's error through (UNKNOWN).
  AUTH_NO_PASSWORD_USER: { status: S.UNKNOWN, message: 'auth: authentication failed, password was given for no password user' },
  AUTH_PERMISSION_DENIED: { status: S.PERMISSION_DENIED, message: 'etcdserver: permission denied' },
  AUTH_ROLE_NOT_GRANTED: { status: S.FAILED_PRECONDITION, message: 'etcdserver: role is not granted to the user' },
  AUTH_PERMISSION_NOT_GRANTED: { status: S.FAILED_PRECONDITION, message: 'etcdserver: permission is not granted to the role' },
  AUTH_NOT_ENABLED: { status: S.FAILED_PRECONDITION, message: 'etcdserver: authentication is not enabled' },
  // etcd ≥ 3.5's text (3.4 passed "auth: revision in header is old" through as UNKNOWN).
  AUTH_OLD_REVISION: { status: S.INVALID_ARGUMENT, message: 'etcdserver: revision of auth store is old' },
  AUTH_INVALID_TOKEN: { status: S.UNAUTHENTICATED, message: 'etcdserver: invalid auth token' },
  AUTH_INVALID_MGMT: { status: S.INVALID_ARGUMENT, message: 'etcdserver: invalid auth management' },
  AUTH_PERMISSION_NOT_GIVEN: { status: S.INVALID_ARGUMENT, message: 'etcdserver: permission not given' },
  AUTH_KDF_BUSY: { status: S.RESOURCE_EXHAUSTED, message: 'etcdserver: too many requests' },
  // A Conclave limit (AUTH_LIMITS.nameBytesMax); etcd has no such condition.
  AUTH_NAME_TOO_LONG: { status: S.INVALID_ARGUMENT, message: 'etcdserver: user or role name is too long' },
};

/**
 * The way etcd answers auth failures on Hash, HashKV and Alarm: the auth package's own error,
 * unconverted, so gRPC status UNKNOWN and an "auth: …" text. Other conditions as toGrpcError.
 */
export function toRawAuthGrpcError(e: unknown): unknown {
  if (e instanceof ServerError && Object.hasOwn(AUTH_ERRORS, e.code)) return new GrpcError(Status.UNKNOWN, AUTH_ERRORS[e.code as AuthErrorCode], { cause: e });
  return toGrpcError(e);
}

/** A server condition as etcd's gRPC error; anything else passes through (INTERNAL). */
export function toGrpcError(e: unknown): unknown {
  if (!(e instanceof ServerError)) return e;
  const etcd = ETCD_ERRORS[e.code];
  return new GrpcError(etcd.status, etcd.message, { cause: e });
}

/** grpc-go's names of the status codes (codes.Code.String()). */
const GO_CODE_NAMES: Record<Status, string> = {
  [S.OK]: 'OK',
  [S.CANCELLED]: 'Canceled',
  [S.UNKNOWN]: 'Unknown',
  [S.INVALID_ARGUMENT]: 'InvalidArgument',
  [S.DEADLINE_EXCEEDED]: 'DeadlineExceeded',
  [S.NOT_FOUND]: 'NotFound',
  [S.ALREADY_EXISTS]: 'AlreadyExists',
  [S.PERMISSION_DENIED]: 'PermissionDenied',
  [S.RESOURCE_EXHAUSTED]: 'ResourceExhausted',
  [S.FAILED_PRECONDITION]: 'FailedPrecondition',
  [S.ABORTED]: 'Aborted',
  [S.OUT_OF_RANGE]: 'OutOfRange',
  [S.UNIMPLEMENTED]: 'Unimplemented',
  [S.INTERNAL]: 'Internal',
  [S.UNAVAILABLE]: 'Unavailable',
  [S.DATA_LOSS]: 'DataLoss',
  [S.UNAUTHENTICATED]: 'Unauthenticated',
};

/** A gRPC error as grpc-go's status error prints itself ("rpc error: code = … desc = …"). */
export function goStatusText(e: GrpcError): string {
  return `rpc error: code = ${GO_CODE_NAMES[e.code]} desc = ${e.message}`;
}

/**
 * An error of the Lock or Election service as etcd sends it. etcd runs those services on its
 * client recipes, whose errors (their own, and the server's, turned back into plain errors by
 * their text) reach gRPC without a status: code UNKNOWN, with the text. The abort of a call
 * (a GrpcError already) passes through.
 */
export function toRecipeGrpcError(e: unknown): unknown {
  if (e instanceof RecipeError) return new GrpcError(S.UNKNOWN, e.message, { cause: e });
  if (e instanceof ServerError) return new GrpcError(S.UNKNOWN, ETCD_ERRORS[e.code].message, { cause: e });
  return e;
}

/** A Lock or Election handler whose errors leave as etcd's recipes send them. */
export function recipeHandler<Req, Res>(fn: (req: Req, call: CallContext) => Promise<Res>) {
  return unary<Req, Res>(async (req, call) => {
    try {
      return await fn(req, call);
    } catch (e) {
      throw toRecipeGrpcError(e);
    }
  });
}
