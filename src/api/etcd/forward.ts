/**
 * Calls the leader's JSON gateway on behalf of a client that reached a follower, for requests
 * only the leader may answer (keep-alives, remaining TTLs, membership changes), as etcd's
 * followers forward them. The call is marked so that it is never forwarded again (a stale
 * leader answers "not leader" and the client retries); the client's token goes along.
 */
import { GrpcError, Status, type CallContext } from '../grpc/index.ts';
import type { Member } from '../../server/member.ts';
import { serverError } from '../../server/errors.ts';
import { credentials } from './auth.ts';

export const FORWARD_LIMITS = {
  /** How long a follower waits for the leader's answer to a forwarded call. */
  forwardTimeoutMs: 5_000,
} as const;

/** Marks a call forwarded by a follower (metadata key, and the HTTP header it arrives in). */
export const FORWARDED_HEADER = 'x-conclave-forwarded';

export function isForwarded(call: CallContext | undefined): boolean {
  return call?.metadata[FORWARDED_HEADER] !== undefined;
}

/** POSTs `body` to the leader's /v3/<path>; its errors come back as they were. */
export async function forwardToLeader<T>(member: Member, path: string, body: object, call: CallContext | undefined, timeoutMs: number = FORWARD_LIMITS.forwardTimeoutMs): Promise<T> {
  if (isForwarded(call)) throw serverError('NOT_LEADER');
  const url = member.leaderClientUrl();
  if (url === undefined) throw serverError('NO_LEADER');
  const headers: Record<string, string> = { 'content-type': 'application/json', [FORWARDED_HEADER]: '1' };
  const token = call === undefined ? undefined : credentials(call).token;
  if (token !== undefined) headers.authorization = token;
  let res: Response;
  try {
    res = await fetch(`${url}/v3/${path}`, { method: 'POST', headers, body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    throw serverError('NO_LEADER', `leader unreachable: ${(e as Error).message}`, e);
  }
  const json = (await res.json()) as T & { code?: number; message?: string; error?: string };
  if (res.status !== 200) throw new GrpcError((json.code ?? Status.UNAVAILABLE) as Status, json.message ?? json.error ?? `leader answered ${res.status}`);
  return json;
}
