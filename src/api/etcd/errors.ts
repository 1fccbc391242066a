/**
 * etcd's gRPC status codes and exact message texts for every server condition. Clients map
 * errors back to types by the text (etcd's errStringToError), so the wording is protocol.
 */
import { GrpcError, Status, unary, type CallContext } from '../grpc/index.ts';
import { ServerError, type ServerErrorCode } from '../../server/errors.ts';
import { RecipeError } from './concurrency.ts';

export interface EtcdError {
  readonly status: Status;
  readonly message: string;
}

const S = Status;

export const ETCD_ERRORS: Record<ServerErrorCode, EtcdError> = {
  NO_LEADER: { status: S.UNAVAILABLE, message: 'etcdserver: no leader' },
  NOT_LEADER: { status: S.FAILED_PRECONDITION, message: 'etcdserver: not leader' },
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
};

/** A server condition as etcd's gRPC error; anything else passes through (INTERNAL). */
export function toGrpcError(e: unknown): unknown {
  if (!(e instanceof ServerError)) return e;
  const etcd = ETCD_ERRORS[e.code];
  return new GrpcError(etcd.status, etcd.message, { cause: e });
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
