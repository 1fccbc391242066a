/**
 * etcd's Watch service: one bidirectional stream per call carrying many watchers. Requests are
 * handed to the member's WatchHub stream; the hub's messages go out as WatchResponses, all that
 * are queued at once in one write, a watcher's consecutive events messages merged into one
 * response (see watch-response.ts). Every member serves watches from its own applied state.
 */
import type { Service } from 'protobufjs';
import { bidiStream, FrameBuilder, type BidiStream, type ServiceImpl } from '../grpc/index.ts';
import type { Member } from '../../server/member.ts';
import { StreamBackloggedError, WatchDeniedError, type WatchFilter } from '../../watch/index.ts';
import { GrpcError, type CallContext } from '../grpc/index.ts';
import { callerOf } from './auth.ts';
import { goStatusText, toGrpcError } from './errors.ts';
import { bytes, num, type Int64 } from './convert.ts';
import { WATCH_API_LIMITS, WatchResponseEncoder } from './watch-response.ts';

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

const FILTERS: readonly WatchFilter[] = ['NOPUT', 'NODELETE'];

/**
 * Why the caller may not watch [key, rangeEnd), as the cancel reason etcd 3.4 gives (the gRPC
 * error's text: bad token, no user, permission denied); null when it may.
 */
async function denial(member: Member, call: CallContext, key: Uint8Array, rangeEnd: Uint8Array): Promise<string | null> {
  try {
    member.auth.checkRead(await callerOf(member, call), key, rangeEnd);
    return null;
  } catch (e) {
    const g = toGrpcError(e);
    if (!(g instanceof GrpcError) || g === e) throw e;
    return goStatusText(g);
  }
}

async function serve(member: Member, enc: WatchResponseEncoder, call: BidiStream<PbWatchRequest, never>): Promise<void> {
  const stream = member.watches().openStream();
  const abort = (): void => stream.close();
  call.signal.addEventListener('abort', abort);
  const writer = (async () => {
    for (;;) {
      const first = await stream.next();
      if (first.done === true) return;
      // Everything queued by now goes out together (the outbox's limits bound it).
      const taken = [first.value];
      for (let m = stream.poll(); m !== undefined; m = stream.poll()) taken.push(m);
      let size = 0;
      for (const m of taken) size += WATCH_API_LIMITS.responseOverheadBytes + (m.type === 'events' ? m.bytes : 0);
      const frames = new FrameBuilder(size);
      enc.encodeTaken(frames, taken);
      await call.writeFrames(frames.finish());
    }
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
  // One encoder for all streams of the member: they are sent the same event objects.
  const enc = new WatchResponseEncoder(() => member.header());
  return [service, { Watch: bidiStream((call: BidiStream<PbWatchRequest, never>) => serve(member, enc, call)) }];
}
