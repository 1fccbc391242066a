/**
 * A minimal watch check, pure: what each watcher received, concatenated across its sessions
 * (a watcher that loses its stream resumes from the revision after the last event it got),
 * must be exactly the key range's history from its start revision to the last revision it
 * heard of: ordered, no duplicates, no gaps, no event that did not happen. Plus: the members
 * agree on that history, and every acknowledged write is in it at the revision it was told.
 *
 * Kept separate and small on purpose: the full watch-history checker (responses, fragments,
 * filters, progress notifications) is another branch's test/faults/watch-history.ts; this file
 * is the seam where the watch workload can be pointed at it.
 */

export interface WatchedEvent {
  readonly revision: number;
  readonly type: 'PUT' | 'DELETE';
  readonly key: string;
  readonly value: string;
}

export interface WatcherLog {
  readonly name: string;
  readonly startRevision: number;
  /** Events in arrival order, across sessions. */
  readonly events: readonly WatchedEvent[];
  /** Where each session ran, for messages. */
  readonly sessions: readonly string[];
}

export interface AckedWrite {
  readonly revision: number;
  readonly type: 'PUT' | 'DELETE';
  readonly key: string;
  readonly value: string;
}

export interface WatchAnomaly {
  readonly kind: string;
  readonly details: string;
}

export function showWatchEvent(e: WatchedEvent): string {
  return e.type === 'PUT' ? `@${e.revision} PUT ${e.key}=${e.value}` : `@${e.revision} DELETE ${e.key}`;
}

function same(a: WatchedEvent, b: WatchedEvent): boolean {
  return a.revision === b.revision && a.type === b.type && a.key === b.key && a.value === b.value;
}

/** The members' histories must be equal; returns the anomalies and the history to check against. */
export function agreeOnHistory(histories: ReadonlyMap<string, readonly WatchedEvent[]>): { anomalies: WatchAnomaly[]; history: readonly WatchedEvent[] } {
  const entries = [...histories];
  const [firstName, first] = entries[0] ?? ['', []];
  const anomalies: WatchAnomaly[] = [];
  for (const [name, h] of entries.slice(1)) {
    const n = Math.min(h.length, first.length);
    let i = 0;
    while (i < n && same(h[i]!, first[i]!)) i++;
    if (i < n || h.length !== first.length) {
      const a = first[i] === undefined ? 'nothing' : showWatchEvent(first[i]!);
      const b = h[i] === undefined ? 'nothing' : showWatchEvent(h[i]!);
      anomalies.push({ kind: 'members disagree on history', details: `event ${i}: ${firstName} has ${a}, ${name} has ${b}` });
    }
  }
  return { anomalies, history: first };
}

/** One watcher against the history (events of the watched range, in revision order). */
export function checkWatcher(w: WatcherLog, history: readonly WatchedEvent[]): WatchAnomaly[] {
  const expected = history.filter((e) => e.revision >= w.startRevision);
  const where = `watcher ${w.name} (sessions on ${w.sessions.join(', ')})`;
  for (let i = 0; i < w.events.length; i++) {
    const got = w.events[i]!;
    const want = expected[i];
    if (want !== undefined && same(got, want)) continue;
    const prev = i > 0 ? w.events[i - 1]! : undefined;
    let kind: string;
    if (want === undefined) kind = 'event beyond the history';
    else if (w.events.slice(0, i).some((e) => same(e, got))) kind = 'duplicate event';
    else if (prev !== undefined && got.revision < prev.revision) kind = 'events out of order';
    else if (got.revision > want.revision) kind = 'gap';
    else kind = 'event that did not happen';
    const context = `${where}: event ${i} is ${showWatchEvent(got)}, the history has ${want === undefined ? 'no more events' : showWatchEvent(want)}` + (prev === undefined ? '' : ` (previous ${showWatchEvent(prev)})`);
    return [{ kind, details: context }];
  }
  return [];
}

/** Every acknowledged write must be in the history at the revision it was acknowledged with. */
export function checkAcknowledged(writes: readonly AckedWrite[], history: readonly WatchedEvent[]): WatchAnomaly[] {
  const at = new Map<string, WatchedEvent>();
  for (const e of history) at.set(`${e.revision} ${e.key}`, e);
  const lost = writes.filter((w) => {
    const e = at.get(`${w.revision} ${w.key}`);
    return e === undefined || e.type !== w.type || e.value !== w.value;
  });
  if (lost.length === 0) return [];
  const shown = lost.slice(0, 5).map((w) => `${w.type} ${w.key}${w.type === 'PUT' ? `=${w.value}` : ''} acknowledged at revision ${w.revision}`);
  return [{ kind: 'lost acknowledged write', details: shown.join('\n') + (lost.length > 5 ? `\n… and ${lost.length - 5} more` : '') }];
}
