/**
 * One watcher: what it watches (key range, filters, prevKv) and where it stands. A watcher is
 * synced while every committed event it wants has been handed to its stream, so new commits go
 * straight to it; unsynced while it still has to read revisions minRevision… back from the store
 * (etcd's watcher in the synced or unsynced group).
 */
import { keyBounds } from '../mvcc/index.ts';
import type { KeyBounds, MvccEvent } from '../mvcc/index.ts';
import { EmptyWatcherRangeError } from './errors.ts';
import type { WatchStream } from './stream.ts';
import type { WatcherSpec } from './types.ts';

export interface WatchedRange {
  readonly key: Uint8Array;
  readonly rangeEnd: Uint8Array | undefined;
  readonly bounds: KeyBounds;
}

/**
 * The spec's range as etcd's gRPC layer reads it: an empty key is "\0", the smallest key.
 * Throws EmptyWatcherRangeError when rangeEnd (other than "\0") is not above the key.
 */
export function watchedRange(spec: WatcherSpec): WatchedRange {
  const key = spec.key.byteLength === 0 ? new Uint8Array([0]) : spec.key;
  const rangeEnd = spec.rangeEnd !== undefined && spec.rangeEnd.byteLength > 0 ? spec.rangeEnd : undefined;
  const bounds = keyBounds(key, rangeEnd);
  if (bounds.end !== null && bounds.start >= bounds.end) throw new EmptyWatcherRangeError();
  return { key, rangeEnd, bounds };
}

export type WatcherState = 'synced' | 'unsynced' | 'canceled';

/** Catch-up events read for an unsynced watcher: those of minRevision … nextRevision − 1 it wants. */
export interface PendingEvents {
  readonly events: readonly MvccEvent[];
  /** Their size as eventBytes counts it. */
  readonly bytes: number;
  readonly nextRevision: number;
}

export class Watcher {
  readonly key: Uint8Array;
  readonly rangeEnd: Uint8Array | undefined;
  readonly bounds: KeyBounds;
  readonly prevKv: boolean;
  readonly progressNotify: boolean;
  readonly fragment: boolean;
  private readonly noPut: boolean;
  private readonly noDelete: boolean;
  /** The requested start revision, 0 = from the next one. */
  readonly startRevision: number;
  state: WatcherState = 'unsynced';
  /**
   * The first revision the watcher has not been given yet while unsynced. While synced, commits
   * below it are skipped (a start revision in the future).
   */
  minRevision: number;
  /** Events were sent since the last periodic progress tick (only idle watchers get progress). */
  active = false;
  /**
   * While unsynced: events read for it that its stream had no room for (etcd's victim watcher
   * and its pending batch), offered again before anything more is read for it.
   */
  pending: PendingEvents | undefined = undefined;
  /**
   * What the watcher takes of a revision's events (range, filters, prevKv) as a string: watchers
   * with equal selectors from the same revision on get the same events.
   */
  readonly selector: string;

  constructor(
    readonly id: number,
    readonly stream: WatchStream,
    spec: WatcherSpec,
    range: WatchedRange,
    currentRevision: number,
  ) {
    this.key = range.key;
    this.rangeEnd = range.rangeEnd;
    this.bounds = range.bounds;
    this.prevKv = spec.prevKv === true;
    this.progressNotify = spec.progressNotify === true;
    this.fragment = spec.fragment === true;
    this.noPut = spec.filters?.includes('NOPUT') === true;
    this.noDelete = spec.filters?.includes('NODELETE') === true;
    this.startRevision = spec.startRevision ?? 0;
    this.minRevision = this.startRevision === 0 ? currentRevision + 1 : this.startRevision;
    const b = this.bounds;
    // Unambiguous: the start's length delimits it (keys may hold any byte), then the end if any.
    const end = b.end === null ? '' : `:${b.end}`;
    this.selector = `${b.single ? 's' : 'r'}${this.noPut ? 1 : 0}${this.noDelete ? 1 : 0}${this.prevKv ? 1 : 0}${b.start.length}:${b.start}${end}`;
  }

  /** Whether the latin1 key string k is in the watched range. */
  covers(k: string): boolean {
    const b = this.bounds;
    return b.single ? k === b.start : k >= b.start && (b.end === null || k < b.end);
  }

  /**
   * Whether a progress notification at rev may speak for this watcher: it must have everything
   * up to rev, and rev must not lie before its start revision (etcd ≥ 3.5.8: a client resuming
   * from such a notification would ask for revisions before the ones it wanted).
   */
  canVouchFor(rev: number): boolean {
    return this.state === 'synced' && rev >= this.startRevision;
  }

  /** Whether the filters let ev through. */
  accepts(ev: MvccEvent): boolean {
    return ev.type === 'PUT' ? !this.noPut : !this.noDelete;
  }
}
