/**
 * Watch guarantees checked after the fact: pure functions over what watchers recorded (their raw
 * WatchResponses, as grouped on the wire) and the store's history.
 *
 * etcd promises that a watcher's events are ordered by revision, never duplicated, never skip an
 * event of its range (no gap), and that all events of one revision reach it in one response
 * (atomic); a client that loses its stream resumes from the last revision it saw + 1 and must
 * then hear exactly what it missed. Concatenated across such resumptions, a watcher's events
 * must equal the history filtered by its range and filters, from its start revision to the last
 * revision it was told about.
 *
 * The history is the authoritative sequence of every event of the key space (a watch of all keys
 * from revision 1 with prev_kv, read back after the run); checkHistory() first checks that it is
 * self-consistent (contiguous revisions, versions, create revisions and previous values that
 * follow from replaying it).
 *
 * Keys and values are latin1 strings (byte-exact), int64 fields numbers (revisions) or decimal
 * strings (lease ids).
 */
import { keyBounds } from '../../src/mvcc/index.ts';
import type { KeyBounds } from '../../src/mvcc/index.ts';
import type { WatchFilter } from '../../src/watch/index.ts';

export type EventType = 'PUT' | 'DELETE';

export interface RecordedKv {
  readonly key: string;
  readonly value: string;
  readonly createRevision: number;
  readonly modRevision: number;
  readonly version: number;
  readonly lease: string;
}

export interface RecordedEvent {
  readonly type: EventType;
  /** For a DELETE: the key, modRevision = the deletion's revision, every other field zero. */
  readonly kv: RecordedKv;
  readonly prevKv?: RecordedKv;
}

/** One WatchResponse as it arrived. */
export interface RecordedResponse {
  readonly watchId: number;
  readonly headerRevision: number;
  readonly created: boolean;
  readonly canceled: boolean;
  readonly compactRevision: number;
  readonly cancelReason: string;
  readonly fragment: boolean;
  readonly events: readonly RecordedEvent[];
}

/** What a watcher asked for: [key, rangeEnd) with etcd's conventions (no rangeEnd = the key alone, "\0" = every key ≥ key). */
export interface WatchSpec {
  readonly key: string;
  readonly rangeEnd?: string;
  readonly filters?: readonly WatchFilter[];
  readonly prevKv?: boolean;
}

/**
 * One create request of a watcher and what came back for it on its stream, in arrival order: its
 * `created` response first, then its events, its progress notifications and the stream-wide ones
 * (watch id −1), and a `canceled` response if it got one.
 */
export interface WatchSession {
  /** The start_revision it asked for; 0 = from the revision after the one `created` reports. */
  readonly startRevision: number;
  readonly responses: readonly RecordedResponse[];
  /** Where it ran (member name), for messages. */
  readonly where?: string;
}

export interface WatcherRecord {
  readonly name: string;
  readonly spec: WatchSpec;
  /** Every session that got its `created` response, in order. */
  readonly sessions: readonly WatchSession[];
}

/** Every event of the key space with prev_kv, revisions fromRevision…toRevision. */
export interface History {
  readonly fromRevision: number;
  readonly toRevision: number;
  readonly events: readonly RecordedEvent[];
}

/** Problems listed per check before the rest are only counted. */
export const WATCH_CHECK_LIMITS = { problemsPerCheckMax: 8 } as const;

class Problems {
  readonly list: string[] = [];
  private dropped = 0;

  add(text: string): void {
    if (this.list.length < WATCH_CHECK_LIMITS.problemsPerCheckMax) this.list.push(text);
    else this.dropped++;
  }

  done(): string[] {
    return this.dropped === 0 ? this.list : [...this.list, `… and ${this.dropped} more`];
  }
}

export function showEvent(e: RecordedEvent): string {
  const k = e.kv;
  const base = e.type === 'PUT' ? `PUT ${JSON.stringify(k.key)}@${k.modRevision}=${JSON.stringify(k.value)} v${k.version} c${k.createRevision}` : `DELETE ${JSON.stringify(k.key)}@${k.modRevision}`;
  return e.prevKv === undefined ? base : `${base} prev=${JSON.stringify(e.prevKv.value)}@${e.prevKv.modRevision}`;
}

function sameKv(a: RecordedKv | undefined, b: RecordedKv | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.key === b.key && a.value === b.value && a.createRevision === b.createRevision && a.modRevision === b.modRevision && a.version === b.version && a.lease === b.lease;
}

function boundsOf(key: string, rangeEnd: string | undefined): KeyBounds {
  return keyBounds(Buffer.from(key, 'latin1'), rangeEnd === undefined ? undefined : Buffer.from(rangeEnd, 'latin1'));
}

function inBounds(b: KeyBounds, k: string): boolean {
  return b.single ? k === b.start : k >= b.start && (b.end === null || k < b.end);
}

/** The key space replayed event by event: each key's current kv. */
export class KeySpace {
  private readonly live = new Map<string, RecordedKv>();

  get(key: string): RecordedKv | undefined {
    return this.live.get(key);
  }

  apply(e: RecordedEvent): void {
    if (e.type === 'PUT') this.live.set(e.kv.key, e.kv);
    else this.live.delete(e.kv.key);
  }

  /** The live keys in [key, rangeEnd), sorted. */
  keysIn(key: string, rangeEnd: string | undefined): string[] {
    const b = boundsOf(key, rangeEnd);
    if (b.single) return this.live.has(key) ? [key] : [];
    return [...this.live.keys()].filter((k) => inBounds(b, k)).sort();
  }

  entries(): Map<string, RecordedKv> {
    return new Map(this.live);
  }
}

/**
 * Whether the history is self-consistent: events in revision order within fromRevision…toRevision,
 * every revision from 2 on (revision 1 is the empty store) holding at least one event, a key at
 * most once per revision, and versions, create revisions and prev_kv that follow from replaying it
 * (from the empty store if it starts at revision 1, else trusting each key's first prev_kv).
 */
export function checkHistory(h: History): string[] {
  const p = new Problems();
  const complete = h.fromRevision <= 1;
  const known = new Set<string>();
  const state = new KeySpace();
  const revisions = new Set<number>();
  let rev = 0;
  let keysAtRev = new Set<string>();
  for (const e of h.events) {
    const k = e.kv.key;
    const r = e.kv.modRevision;
    if (r < h.fromRevision || r > h.toRevision) p.add(`history: ${showEvent(e)} lies outside revisions ${h.fromRevision}…${h.toRevision}`);
    if (r < rev) p.add(`history: ${showEvent(e)} comes after revision ${rev}`);
    if (r !== rev) keysAtRev = new Set();
    rev = Math.max(rev, r);
    revisions.add(r);
    if (keysAtRev.has(k)) p.add(`history: key ${JSON.stringify(k)} changes twice at revision ${r}`);
    keysAtRev.add(k);
    if (!complete && !known.has(k) && e.prevKv !== undefined) state.apply({ type: 'PUT', kv: e.prevKv });
    const before = state.get(k);
    const knowsBefore = complete || known.has(k) || e.prevKv !== undefined;
    if (e.type === 'PUT') {
      const want = before === undefined ? { version: 1, createRevision: r } : { version: before.version + 1, createRevision: before.createRevision };
      if (knowsBefore && (e.kv.version !== want.version || e.kv.createRevision !== want.createRevision)) {
        p.add(`history: ${showEvent(e)} should have version ${want.version} and create revision ${want.createRevision}`);
      }
    } else {
      if (knowsBefore && before === undefined) p.add(`history: ${showEvent(e)} deletes a key that does not exist`);
      if (e.kv.version !== 0 || e.kv.createRevision !== 0 || e.kv.value !== '' || e.kv.lease !== '0') p.add(`history: ${showEvent(e)} carries more than the key and revision`);
    }
    if (knowsBefore && !sameKv(e.prevKv, before)) {
      p.add(`history: ${showEvent(e)} has prev_kv ${e.prevKv === undefined ? 'none' : showEvent({ type: 'PUT', kv: e.prevKv })}, replay gives ${before === undefined ? 'none' : showEvent({ type: 'PUT', kv: before })}`);
    }
    known.add(k);
    state.apply(e);
  }
  for (let r = Math.max(h.fromRevision, 2); r <= h.toRevision; r++) if (!revisions.has(r)) p.add(`history: revision ${r} has no event`);
  return p.done();
}

/** Each key's kv at `revision` (the history must start at revision 1). */
export function stateAt(h: History, revision: number): Map<string, RecordedKv> {
  if (h.fromRevision > 1) throw new RangeError(`the history starts at ${h.fromRevision}: the state before it is unknown`);
  if (revision > h.toRevision) throw new RangeError(`revision ${revision} is beyond the history (${h.toRevision})`);
  const s = new KeySpace();
  for (const e of h.events) {
    if (e.kv.modRevision > revision) break;
    s.apply(e);
  }
  return s.entries();
}

/** The events a watcher of `spec` must hear for revisions from…through, as it must hear them. */
export function expectedEvents(spec: WatchSpec, h: History, from: number, through: number): RecordedEvent[] {
  const b = boundsOf(spec.key, spec.rangeEnd);
  const noPut = spec.filters?.includes('NOPUT') === true;
  const noDelete = spec.filters?.includes('NODELETE') === true;
  const out: RecordedEvent[] = [];
  for (const e of h.events) {
    const r = e.kv.modRevision;
    if (r < from || r > through || !inBounds(b, e.kv.key)) continue;
    if (e.type === 'PUT' ? noPut : noDelete) continue;
    out.push(spec.prevKv === true || e.prevKv === undefined ? e : { type: e.type, kv: e.kv });
  }
  return out;
}

export interface SessionCoverage {
  /** The first revision the session reports. */
  readonly start: number;
  /** Every event up to here has been delivered, by the session's own word (its last event or progress notification). */
  readonly through: number;
}

function isProgress(r: RecordedResponse): boolean {
  return !r.created && !r.canceled && r.events.length === 0;
}

/**
 * The revisions a session speaks for: from its start to its last event or progress notification.
 * A client that loses the session resumes at `through + 1`. Undefined if it was never created.
 */
export function sessionCoverage(s: WatchSession): SessionCoverage | undefined {
  const first = s.responses[0];
  if (first === undefined || !first.created || first.canceled) return undefined;
  const start = s.startRevision > 0 ? s.startRevision : first.headerRevision + 1;
  let through = start - 1;
  for (const r of s.responses.slice(1)) {
    if (r.created || r.canceled) continue;
    if (isProgress(r)) through = Math.max(through, r.headerRevision);
    for (const e of r.events) through = Math.max(through, e.kv.modRevision);
  }
  return { start, through };
}

export interface WatcherCheck {
  /** Events delivered and compared with the history. */
  readonly events: number;
  /** The revision through which the watcher has everything. */
  readonly through: number;
  readonly problems: string[];
}

interface Delivered {
  readonly event: RecordedEvent;
  /** Index of the response that carried it. */
  readonly response: number;
}

const eventId = (e: RecordedEvent): string => `${e.kv.modRevision} ${e.kv.key}`;

/**
 * Checks one watcher against the history: every session well formed (created first, nothing after
 * canceled, no compaction, no event after a progress notification that vouched for its revision,
 * header revision not behind the events it carries), each resumed exactly after the last revision
 * the previous one spoke for, its events exactly the history's for its range, filters and
 * revisions — in order, no duplicate, no gap, the same values, each revision in one response —
 * and the whole covering the history through `throughRevision`.
 */
export function checkWatcher(w: WatcherRecord, h: History, throughRevision: number): WatcherCheck {
  const p = new Problems();
  let checked = 0;
  let covered: number | undefined;
  w.sessions.forEach((s, i) => {
    const at = `${w.name} session ${i}${s.where === undefined ? '' : ` (${s.where})`}`;
    const cov = sessionCoverage(s);
    if (cov === undefined) {
      const first = s.responses[0];
      p.add(`${at}: not created${first?.canceled === true ? `: ${first.cancelReason}` : ''}`);
      return;
    }
    if (covered !== undefined && cov.start !== covered + 1) {
      p.add(`${at}: resumed at revision ${cov.start}, but the watcher had everything through ${covered} (${cov.start > covered + 1 ? 'a hole' : 'an overlap'})`);
    }
    if (cov.start < h.fromRevision || cov.through > h.toRevision) p.add(`${at}: covers ${cov.start}…${cov.through}, beyond the history ${h.fromRevision}…${h.toRevision}`);
    const delivered: Delivered[] = [];
    let progress = 0;
    let ended = false;
    s.responses.forEach((r, ri) => {
      if (ri === 0) return;
      if (ended) p.add(`${at}: response ${ri} after the watcher was canceled`);
      if (r.created) p.add(`${at}: a second created response`);
      if (r.fragment) p.add(`${at}: a fragment, though the watcher did not ask for fragments`);
      if (r.canceled) {
        ended = true;
        if (r.compactRevision !== 0) p.add(`${at}: canceled as compacted at ${r.compactRevision} (${r.cancelReason})`);
        return;
      }
      if (isProgress(r)) {
        progress = Math.max(progress, r.headerRevision);
        return;
      }
      for (const e of r.events) {
        const rev = e.kv.modRevision;
        if (rev <= progress) p.add(`${at}: ${showEvent(e)} arrives after a progress notification for revision ${progress}`);
        if (rev > r.headerRevision) p.add(`${at}: ${showEvent(e)} in a response whose header revision is ${r.headerRevision}`);
        delivered.push({ event: e, response: ri });
      }
    });
    compareStream(at, delivered, expectedEvents(w.spec, h, cov.start, cov.through), p);
    checked += delivered.length;
    covered = cov.through;
  });
  if (covered === undefined) p.add(`${w.name}: no session was ever created`);
  else if (covered < throughRevision) p.add(`${w.name}: has everything only through revision ${covered}, not ${throughRevision}`);
  return { events: checked, through: covered ?? 0, problems: p.done() };
}

/** Delivered events against the expected ones: order, duplicates, unexpected events, values, atomicity, gaps. */
function compareStream(at: string, delivered: readonly Delivered[], expected: readonly RecordedEvent[], p: Problems): void {
  const index = new Map<string, number>();
  expected.forEach((e, i) => index.set(eventId(e), i));
  const seen = new Set<string>();
  const responseOf = new Map<number, number>();
  let last = -1;
  let lastEvent: RecordedEvent | undefined;
  for (const { event, response } of delivered) {
    const id = eventId(event);
    const rev = event.kv.modRevision;
    const carrier = responseOf.get(rev);
    if (carrier === undefined) responseOf.set(rev, response);
    else if (carrier !== response) p.add(`${at}: revision ${rev} split across responses ${carrier} and ${response} (${showEvent(event)})`);
    if (seen.has(id)) {
      p.add(`${at}: duplicate ${showEvent(event)}`);
      continue;
    }
    seen.add(id);
    const i = index.get(id);
    if (i === undefined) {
      p.add(`${at}: ${showEvent(event)} is not in the history of its range, filters and revisions`);
      continue;
    }
    if (i < last) p.add(`${at}: out of order: ${showEvent(event)} after ${lastEvent === undefined ? '?' : showEvent(lastEvent)}`);
    else {
      last = i;
      lastEvent = event;
    }
    const want = expected[i]!;
    if (event.type !== want.type || !sameKv(event.kv, want.kv) || !sameKv(event.prevKv, want.prevKv)) p.add(`${at}: got ${showEvent(event)}, the history has ${showEvent(want)}`);
  }
  const missing = expected.filter((e) => !seen.has(eventId(e)));
  if (missing.length > 0) p.add(`${at}: gap: ${missing.length} event(s) of the history never delivered, first ${showEvent(missing[0]!)}`);
}
