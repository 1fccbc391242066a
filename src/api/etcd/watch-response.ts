/**
 * WatchResponses as bytes, built for fan-out: one committed revision goes to every watcher of
 * the key on the member, so its events are encoded once (mvccpb.Event bytes kept a while per
 * event object, which the hub hands to all watchers alike) and each watcher's response is its header,
 * watch id and those bytes copied in. The response header is encoded once per revision and term.
 *
 * Events responses are written field by field: WatchResponse { header = 1 (ResponseHeader);
 * watch_id = 2 (int64, ≥ 0 for a watcher); fragment = 7 (bool); events = 11 (repeated
 * mvccpb.Event) }, fields at their default value left out, as etcd's encoder does. The other
 * responses (created, canceled, progress) go through protobufjs.
 *
 * Fragmenting: a watcher that set `fragment` gets a response whose events exceed
 * fragmentBytesMax split into several responses, all but the last with fragment=true (etcd's
 * rule); the others get it whole.
 */
import type { Type } from 'protobufjs';
import type { MvccEvent } from '../../mvcc/index.ts';
import { eventBytes } from '../../mvcc/index.ts';
import type { ResponseHeader } from '../../server/member.ts';
import { Writer } from '../../util/binary.ts';
import type { FrameBuilder } from '../grpc/index.ts';
import type { WatchMessage } from '../../watch/index.ts';
import { header, type PbHeader } from './convert.ts';
import { encodeEvent, encodeHeader } from './kv-encoding.ts';
import { etcdType } from './proto/load.ts';

export const WATCH_API_LIMITS = {
  /** Event bytes per response before a fragmenting watcher's response is split. */
  fragmentBytesMax: 1536 * 1024,
  /**
   * Event bytes (as eventBytes counts them) up to which a watcher's queued messages are merged
   * into one response; a single revision may exceed it. Large enough that per-response costs
   * vanish, small enough that a client (which reassembles and decodes a whole message before
   * handing out any of its events) copies little and waits little.
   */
  mergedResponseBytesMax: 64 * 1024,
  /** Bytes a batch of responses needs beyond its events' eventBytes, reserved up front (per response). */
  responseOverheadBytes: 64,
  /**
   * Encoded events a member keeps for reuse, twice over (see WatchResponseEncoder): a revision
   * goes to many watchers on several streams, each stream taking it a moment apart.
   */
  encodedEventsCached: 4096,
  /** Bytes of encoded multi-event lists a member keeps for reuse, twice over (see eventsBlock). */
  eventBlocksCachedBytes: 8 << 20,
  /** Differing merged runs starting with the same list that one batch keeps encoded (bounds the search, see RunBlocks). */
  runBlocksPerFirstList: 8,
} as const;

/** Protobuf field keys: field number << 3 | wire type (0 varint, 2 length-delimited). */
const KEY_HEADER = (1 << 3) | 2;
const KEY_WATCH_ID = (2 << 3) | 0;
const KEY_FRAGMENT = (7 << 3) | 0;
const KEY_EVENTS = (11 << 3) | 2;

/** A WatchResponse without events, as protobufjs encodes it. */
interface PbControlResponse {
  header: PbHeader;
  watch_id: number;
  created?: boolean;
  canceled?: boolean;
  compact_revision?: number;
  cancel_reason?: string;
}

/** One watcher's events taken from the stream together, to go out as one response. */
interface Merged {
  readonly watchId: number;
  readonly fragment: boolean;
  /** Header revision: that of the latest message merged in. */
  revision: number;
  /** The events lists of the messages merged, in order (the hub hands one list to many watchers). */
  readonly lists: Array<readonly MvccEvent[]>;
  bytes: number;
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

/** Byte arrays one after the other, in one new buffer. */
function concat(parts: readonly Uint8Array[]): Uint8Array {
  let size = 0;
  for (const p of parts) size += p.length;
  const out = Buffer.allocUnsafeSlow(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * The encoded events of merged responses within one batch, by their sequence of events lists.
 * Watchers of a stream that select the same events are handed the same lists revision after
 * revision, so their merged responses usually hold the same sequence: encoded once, it is then
 * one copy per watcher instead of one per revision per watcher.
 */
class RunBlocks {
  private readonly byFirst = new Map<readonly MvccEvent[], Array<{ lists: ReadonlyArray<readonly MvccEvent[]>; block: Uint8Array }>>();

  get(lists: ReadonlyArray<readonly MvccEvent[]>): Uint8Array | undefined {
    const candidates = this.byFirst.get(lists[0]!);
    if (candidates === undefined) return undefined;
    for (const c of candidates) if (c.lists.length === lists.length && c.lists.every((l, i) => l === lists[i])) return c.block;
    return undefined;
  }

  /** Keeps block for lists (unless runBlocksPerFirstList differing runs start alike already); returns it. */
  add(lists: ReadonlyArray<readonly MvccEvent[]>, block: Uint8Array): Uint8Array {
    const candidates = this.byFirst.get(lists[0]!);
    if (candidates === undefined) this.byFirst.set(lists[0]!, [{ lists, block }]);
    else if (candidates.length < WATCH_API_LIMITS.runBlocksPerFirstList) candidates.push({ lists, block });
    return block;
  }
}

export class WatchResponseEncoder {
  private readonly responseType: Type = etcdType('etcdserverpb.WatchResponse');
  /**
   * Events fields (key, length, mvccpb.Event bytes) of recently encoded events, in two generations of up to
   * encodedEventsCached each: when the newer one fills it becomes the older one, and the older
   * one is dropped.
   */
  private encodedEvents = new Map<MvccEvent, Uint8Array>();
  private olderEncodedEvents = new Map<MvccEvent, Uint8Array>();
  /** Blocks of events fields by events list (eventsBlock), in two generations of up to eventBlocksCachedBytes. */
  private blocks = new Map<readonly MvccEvent[], Uint8Array>();
  private olderBlocks = new Map<readonly MvccEvent[], Uint8Array>();
  private blocksBytes = 0;
  private headerRevision = -1;
  private headerTerm = -1;
  private headerBytes: Uint8Array = new Uint8Array(0);

  /** `memberHeader` gives the member's ids and current term (Member.header()). */
  constructor(private readonly memberHeader: () => ResponseHeader) {}

  /**
   * Encodes messages taken from a stream in one go, each response a frame of `out`.
   *
   * A watcher's events messages with no other kind of message between them are merged into one
   * response of several revisions (as etcd's catch-up responses are), up to
   * mergedResponseBytesMax, never splitting a revision: a stream whose client reads slower than
   * events come then sends fewer, larger responses instead of falling further behind. Each
   * watcher's events keep their order; any other message (created, canceled, progress) goes out
   * after every events message taken before it.
   */
  encodeTaken(out: FrameBuilder, taken: readonly WatchMessage[]): void {
    // Ids and term, read once: the term cannot change while this runs.
    const member = this.memberHeader();
    const merging = new Map<number, Merged>();
    const runs = new RunBlocks();
    const emit = (m: Merged): void => {
      if (!m.fragment) {
        this.writeEvents(out, member, m.revision, m.watchId, m.lists, false, runs);
        return;
      }
      const parts = fragments(m.lists.flat());
      for (let i = 0; i < parts.length; i++) this.writeEvents(out, member, m.revision, m.watchId, [parts[i]!], i < parts.length - 1, runs);
    };
    for (const m of taken) {
      if (m.type !== 'events') {
        for (const open of merging.values()) emit(open);
        merging.clear();
        out.begin();
        out.writer.raw(this.responseType.encode(this.controlResponse(member, m)).finish());
        out.end();
        continue;
      }
      const open = merging.get(m.watchId);
      if (open !== undefined && open.bytes + m.bytes <= WATCH_API_LIMITS.mergedResponseBytesMax) {
        open.lists.push(m.events);
        open.bytes += m.bytes;
        open.revision = m.revision;
        continue;
      }
      if (open !== undefined) emit(open);
      merging.set(m.watchId, { watchId: m.watchId, fragment: m.fragment, revision: m.revision, lists: [m.events], bytes: m.bytes });
    }
    for (const open of merging.values()) emit(open);
  }

  /** Appends one events response, of the events of `lists` in order, to out, as a frame. */
  private writeEvents(
    out: FrameBuilder,
    member: ResponseHeader,
    revision: number,
    watchId: number,
    lists: ReadonlyArray<readonly MvccEvent[]>,
    fragment: boolean,
    runs: RunBlocks,
  ): void {
    out.begin();
    const w = out.writer;
    w.u8(KEY_HEADER);
    w.bytes(this.header(member, revision));
    if (watchId !== 0) {
      w.u8(KEY_WATCH_ID);
      w.uint(watchId);
    }
    if (fragment) {
      w.u8(KEY_FRAGMENT);
      w.u8(1);
    }
    if (lists.length === 1) w.raw(this.listBlock(lists[0]!));
    else w.raw(runs.get(lists) ?? runs.add(lists, concat(lists.map((l) => this.listBlock(l)))));
    out.end();
  }

  /** The events fields of one events list. */
  private listBlock(list: readonly MvccEvent[]): Uint8Array {
    return list.length === 1 ? this.eventField(list[0]!) : this.eventsBlock(list);
  }

  /**
   * The events fields of a list of several events, as one block: a catch-up batch's list goes
   * to every watcher that selects the same events, and one copy of a block per watcher is much
   * cheaper than one copy per event.
   */
  private eventsBlock(list: readonly MvccEvent[]): Uint8Array {
    let block = this.blocks.get(list) ?? this.olderBlocks.get(list);
    if (block === undefined) {
      block = concat(list.map((e) => this.eventField(e)));
      const size = block.length;
      if (this.blocksBytes + size > WATCH_API_LIMITS.eventBlocksCachedBytes) {
        this.olderBlocks = this.blocks;
        this.blocks = new Map();
        this.blocksBytes = 0;
      }
      this.blocks.set(list, block);
      this.blocksBytes += size;
    }
    return block;
  }

  private controlResponse(member: ResponseHeader, m: Exclude<WatchMessage, { type: 'events' }>): PbControlResponse {
    const h = header(member, m.revision);
    switch (m.type) {
      case 'created':
        return { header: h, watch_id: m.watchId, created: true };
      case 'rejected':
        return { header: h, watch_id: m.watchId, created: true, canceled: true, cancel_reason: m.error.message };
      case 'progress':
        return { header: h, watch_id: m.watchId };
      case 'canceled':
        return { header: h, watch_id: m.watchId, canceled: true, compact_revision: m.compactRevision, cancel_reason: m.reason };
    }
  }

  /** The ResponseHeader bytes for `revision` under the member's term. */
  private header(member: ResponseHeader, revision: number): Uint8Array {
    if (revision !== this.headerRevision || member.raftTerm !== this.headerTerm) {
      this.headerBytes = encodeHeader(member, revision);
      this.headerRevision = revision;
      this.headerTerm = member.raftTerm;
    }
    return this.headerBytes;
  }

  /** The event as a WatchResponse events field: key, length and mvccpb.Event bytes. */
  private eventField(e: MvccEvent): Uint8Array {
    let field = this.encodedEvents.get(e) ?? this.olderEncodedEvents.get(e);
    if (field === undefined) {
      const event = encodeEvent(e);
      const w = new Writer(event.length + 6);
      w.u8(KEY_EVENTS);
      w.bytes(event);
      field = w.finish();
      if (this.encodedEvents.size === WATCH_API_LIMITS.encodedEventsCached) {
        this.olderEncodedEvents = this.encodedEvents;
        this.encodedEvents = new Map();
      }
      this.encodedEvents.set(e, field);
    }
    return field;
  }
}
