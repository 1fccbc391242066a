/**
 * etcd's Watch service: one bidirectional stream per call carrying many watchers. Requests are
 * handed to the member's WatchHub stream; the hub's messages go out as WatchResponses in the
 * order the hub queued them. Every member serves watches from its own applied state.
 *
 * Fragmenting: a watcher that set `fragment` gets a response whose events exceed the send limit
 * split into several responses, all but the last with fragment=true (etcd's rule); the others
 * get it whole.
 */
import type { Service } from 'protobufjs';
import { bidiStream, type BidiStream, type ServiceImpl } from '../grpc/index.ts';
import type { MvccEvent } from '../../mvcc/index.ts';
import { eventBytes } from '../../mvcc/index.ts';
import type { Member } from '../../server/member.ts';
import { StreamBackloggedError, WatchDeniedError, type WatchFilter, type WatchMessage } from '../../watch/index.ts';
import { GrpcError } from '../grpc/index.ts';
import { callerOf } from './auth.ts';
import { goStatusText, toGrpcError } from './errors.ts';
import { bytes, header, keyValue, num, type Int64, type PbHeader, type PbKeyValue } from './convert.ts';

export const WATCH_API_LIMITS = {
  /** Event bytes per response before a fragmenting watcher's response is split. */
  fragmentBytesMax: 1536 * 1024,
} as const;

interface PbWatchCreateRequest {
  key: Uint8Array;
  range_end: Uint8Array;
  start_revision: Int64;
  progress_notify: boolean;
  filters: number[];
  prev_kv: boolean;
  watch_id: Int64;
  fragment: boolean;
}

interface PbWatchRequest {
  create_request: PbWatchCreateRequest | null;
  cancel_request: { watch_id: Int64 } | null;
  progress_request: object | null;
}

interface PbEvent {
  type: number;
  kv: PbKeyValue;
  prev_kv: PbKeyValue | null;
}

interface PbWatchResponse {
  header: PbHeader;
  watch_id: number;
  created?: boolean;
  canceled?: boolean;
  compact_revision?: number;
  cancel_reason?: string;
  fragment?: boolean;
  events?: PbEvent[];
}

const FILTERS: readonly WatchFilter[] = ['NOPUT', 'NODELETE'];
function toEvent(e: MvccEvent): PbEvent {
  return { type: e.type === 'PUT' ? 0 : 1, kv: keyValue(e.kv), prev_kv: e.prevKv === undefined ? null : keyValue(e.prevKv) };
}

/** Splits a fragmenting watcher's events into responses of at most fragmentBytesMax (at least one event each). */
function fragments(events: readonly MvccEvent[]): MvccEvent[][] {
  const out: MvccEvent[][] = [];
  let current: MvccEvent[] = [];
  let bytes = 0;
  for (const e of events) {
    const size = eventBytes(e);
    if (current.length > 0 && bytes + size > WATCH_API_LIMITS.fragmentBytesMax) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(e);
    bytes += size;
  }
  out.push(current);
  return out;
}

/** The responses for one hub message. */
function responses(member: Member, m: WatchMessage): PbWatchResponse[] {
  const h = header(member.header(), m.revision);
  switch (m.type) {
    case 'created':
      return [{ header: h, watch_id: m.watchId, created: true }];
    case 'rejected':
      return [{ header: h, watch_id: m.watchId, created: true, canceled: true, cancel_reason: m.error.message }];
    case 'progress':
      return [{ header: h, watch_id: m.watchId }];
    case 'canceled':
      return [{ header: h, watch_id: m.watchId, canceled: true, compact_revision: m.compactRevision, cancel_reason: m.reason }];
    case 'events': {
      if (!m.fragment) return [{ header: h, watch_id: m.watchId, events: m.events.map(toEvent) }];
      const parts = fragments(m.events);
      return parts.map((part, i) => ({ header: h, watch_id: m.watchId, events: part.map(toEvent), fragment: i < parts.length - 1 }));
    }
  }
}

/**
 * Why the caller may not watch [key, rangeEnd), as the cancel reason etcd 3.4 gives (the gRPC
 * error's text: bad token, no user, permission denied); null when it may.
 */
async function denial(member: Member, call: BidiStream<PbWatchRequest, PbWatchResponse>, key: Uint8Array, rangeEnd: Uint8Array): Promise<string | null> {
  try {
    member.auth.checkRead(await callerOf(member, call), key, rangeEnd);
    return null;
  } catch (e) {
    const g = toGrpcError(e);
    if (!(g instanceof GrpcError) || g === e) throw e;
    return goStatusText(g);
  }
}

async function serve(member: Member, call: BidiStream<PbWatchRequest, PbWatchResponse>): Promise<void> {
  const stream = member.watches().openStream();
  const abort = (): void => stream.close();
  call.signal.addEventListener('abort', abort);
  const writer = (async () => {
    for await (const m of stream) for (const r of responses(member, m)) await call.write(r);
  })();
  try {
    for await (const req of call) {
      if (req.create_request) {
        const c = req.create_request;
        const refused = await denial(member, call, bytes(c.key), bytes(c.range_end));
        if (refused !== null) {
          stream.reject(new WatchDeniedError(refused));
          continue;
        }
        stream.watch({
          key: bytes(c.key),
          rangeEnd: bytes(c.range_end),
          startRevision: num(c.start_revision),
          filters: (c.filters ?? []).map((f) => FILTERS[f]).filter((f): f is WatchFilter => f !== undefined),
          prevKv: c.prev_kv === true,
          progressNotify: c.progress_notify === true,
          fragment: c.fragment === true,
          watchId: num(c.watch_id),
        });
      } else if (req.cancel_request) {
        stream.cancel(num(req.cancel_request.watch_id));
      } else if (req.progress_request) {
        stream.requestProgress();
      }
    }
    // The client half-closed: etcd keeps sending until the call ends; so do we.
    await writer;
  } catch (e) {
    // A client that keeps creating watchers without reading the answers loses its stream.
    if (!(e instanceof StreamBackloggedError) && !call.signal.aborted) throw e;
  } finally {
    call.signal.removeEventListener('abort', abort);
    stream.close();
    await writer.catch(() => {});
  }
}

export function watchService(member: Member, service: Service): [Service, ServiceImpl] {
  return [service, { Watch: bidiStream((call: BidiStream<PbWatchRequest, PbWatchResponse>) => serve(member, call)) }];
}
