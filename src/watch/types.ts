/**
 * What a watch stream is asked for and what it answers: etcd's WatchCreateRequest and
 * WatchResponse, one message kind per response shape.
 */
import type { MvccEvent } from '../mvcc/index.ts';
import type { WatchError } from './errors.ts';

/** etcd's WatchCreateRequest.FilterType: NOPUT drops PUT events, NODELETE drops DELETE events. */
export type WatchFilter = 'NOPUT' | 'NODELETE';

export interface WatcherSpec {
  /** [key, rangeEnd) with etcd's conventions; an empty key means "\0", the smallest key. */
  readonly key: Uint8Array;
  readonly rangeEnd?: Uint8Array;
  /** First revision to report (inclusive); 0 or absent = from the next revision on. */
  readonly startRevision?: number;
  readonly filters?: readonly WatchFilter[];
  /** Attach the key's previous value to each event. */
  readonly prevKv?: boolean;
  /** Periodic progress notifications while idle. */
  readonly progressNotify?: boolean;
  /** The client accepts responses split into fragments (done by the gRPC layer). */
  readonly fragment?: boolean;
  /** A client-chosen id; 0 or absent = the stream picks one (etcd's AutoWatchID). */
  readonly watchId?: number;
}

/** etcd's InvalidWatchID: the watchId of a failed create and of a stream-wide progress notification. */
export const invalidWatchId = -1;

/**
 * One response on a stream, in the order the stream must send them. `revision` is the header
 * revision: the store's revision when the message was made (for a live event, its revision).
 */
export type WatchMessage =
  | { readonly type: 'created'; readonly watchId: number; readonly revision: number }
  /**
   * A create request that failed (watchId −1); etcd answers it with created and canceled set and
   * the error's message (etcd's text) as cancel_reason.
   */
  | { readonly type: 'rejected'; readonly watchId: number; readonly revision: number; readonly error: WatchError }
  /**
   * Events of one or more whole revisions, in revision order (each event's kv.modRevision is its
   * revision), never splitting a revision; `fragment` is the watcher's wish to have a large
   * message split.
   */
  | {
      readonly type: 'events';
      readonly watchId: number;
      readonly revision: number;
      readonly events: readonly MvccEvent[];
      /** The events' size as eventBytes counts it (what a stream's byte limit counts). */
      readonly bytes: number;
      readonly fragment: boolean;
    }
  /** Every event up to `revision` has been sent for the watcher (or, watchId −1, for all of the stream's). */
  | { readonly type: 'progress'; readonly watchId: number; readonly revision: number }
  /**
   * The watcher is gone: on the client's request (compactRevision 0, reason '') or because the
   * revision it needs next was compacted (compactRevision set, reason etcd's ErrCompacted text).
   */
  | { readonly type: 'canceled'; readonly watchId: number; readonly revision: number; readonly compactRevision: number; readonly reason: string };
