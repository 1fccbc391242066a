/**
 * Writes against the store's history: a pure check that every acknowledged write is in the
 * history at the revision its response named, doing exactly what it must have done there, and
 * that every other revision is explained by one write whose outcome the client never learned.
 *
 * A write is a put, a delete of a key or range, or a txn whose guard is "the key exists"
 * (Version > 0) with a list of puts and deletes per branch. Its effect is predicted by replaying
 * the history up to the revision before it: puts write their value, a delete removes the keys of
 * its range that are live then, in key order, the txn's branch follows its guard. The ops of one
 * write must touch distinct keys (etcd refuses a txn that puts and deletes one key).
 *
 * The recorder must give every put a value no other write uses, so that a revision can be traced
 * to its write; every writer of the key space must be recorded (each revision is one write's).
 */
import { KeySpace, showEvent, type EventType, type History, type RecordedEvent } from './watch-history.ts';

export type WriteOp = { readonly type: 'put'; readonly key: string; readonly value: string } | { readonly type: 'delete'; readonly key: string; readonly rangeEnd?: string };

export interface WriteOutcome {
  /** The response header's revision: the write's own revision if it changed anything, else the store's revision when it ran. */
  readonly revision: number;
  /** Which branch a guarded txn took (true for an unguarded write). */
  readonly succeeded: boolean;
  /** Keys each op of the branch taken deleted (0 for a put). */
  readonly deleted: readonly number[];
}

export interface WriteRecord {
  /** Who and which, for messages. */
  readonly id: string;
  /** A txn's guard: the branch `then` runs if this key exists, else `else`. Absent: `then` always. */
  readonly guardKey?: string;
  readonly then: readonly WriteOp[];
  readonly else?: readonly WriteOp[];
  /** What the client heard; null when it never learned the outcome (timed out, connection lost). */
  readonly outcome: WriteOutcome | null;
}

export interface WriteCheck {
  readonly acknowledged: number;
  readonly indeterminate: number;
  /** Indeterminate writes the history shows applied. */
  readonly indeterminateApplied: number;
  readonly problems: string[];
}

interface Effect {
  readonly type: EventType;
  readonly key: string;
  /** For a PUT. */
  readonly value: string;
}

interface Prediction {
  readonly succeeded: boolean;
  readonly effects: Effect[];
  /** Keys deleted per op of the branch taken. */
  readonly deleted: number[];
}

function predict(w: WriteRecord, state: KeySpace): Prediction {
  const succeeded = w.guardKey === undefined || state.get(w.guardKey) !== undefined;
  const ops = succeeded ? w.then : (w.else ?? []);
  const effects: Effect[] = [];
  const deleted: number[] = [];
  for (const op of ops) {
    if (op.type === 'put') {
      effects.push({ type: 'PUT', key: op.key, value: op.value });
      deleted.push(0);
    } else {
      const keys = state.keysIn(op.key, op.rangeEnd);
      for (const key of keys) effects.push({ type: 'DELETE', key, value: '' });
      deleted.push(keys.length);
    }
  }
  return { succeeded, effects, deleted };
}

const showEffects = (es: readonly Effect[]): string => `[${es.map((e) => (e.type === 'PUT' ? `PUT ${JSON.stringify(e.key)}=${JSON.stringify(e.value)}` : `DELETE ${JSON.stringify(e.key)}`)).join(', ')}]`;

function matches(effects: readonly Effect[], events: readonly RecordedEvent[]): boolean {
  return effects.length === events.length && effects.every((f, i) => f.type === events[i]!.type && f.key === events[i]!.kv.key && (f.type === 'DELETE' || f.value === events[i]!.kv.value));
}

/** Whether the ops of the branch taken changed anything, by the write's own response. */
function changedSomething(w: WriteRecord, o: WriteOutcome): boolean {
  const ops = o.succeeded ? w.then : (w.else ?? []);
  return ops.some((op, i) => op.type === 'put' || (o.deleted[i] ?? 0) > 0);
}

/** Maximum bipartite matching (Kuhn): revision i may go to any write in candidates[i]; returns how many revisions got one. */
function matchCount(candidates: readonly (readonly number[])[]): number {
  const owner = new Map<number, number>();
  const tryAssign = (rev: number, visited: Set<number>): boolean => {
    for (const w of candidates[rev]!) {
      if (visited.has(w)) continue;
      visited.add(w);
      const holder = owner.get(w);
      if (holder === undefined || tryAssign(holder, visited)) {
        owner.set(w, rev);
        return true;
      }
    }
    return false;
  };
  let n = 0;
  for (let rev = 0; rev < candidates.length; rev++) if (tryAssign(rev, new Set())) n++;
  return n;
}

export function checkWrites(h: History, writes: readonly WriteRecord[]): WriteCheck {
  const problems: string[] = [];
  if (h.fromRevision > 1) throw new RangeError('checkWrites needs the history from revision 1');
  const effective = new Map<number, WriteRecord>();
  const noOps = new Map<number, WriteRecord[]>();
  const unknown: WriteRecord[] = [];
  const values = new Map<string, string>();
  for (const w of writes) {
    for (const op of [...w.then, ...(w.else ?? [])]) {
      if (op.type !== 'put') continue;
      const other = values.get(op.value);
      if (other !== undefined) throw new RangeError(`writes ${other} and ${w.id} put the same value ${JSON.stringify(op.value)}`);
      values.set(op.value, w.id);
    }
    const o = w.outcome;
    if (o === null) unknown.push(w);
    else if (o.revision < h.fromRevision || o.revision > h.toRevision) problems.push(`${w.id}: acknowledged at revision ${o.revision}, outside the history ${h.fromRevision}…${h.toRevision}`);
    else if (changedSomething(w, o)) {
      const other = effective.get(o.revision);
      if (other !== undefined) problems.push(`${w.id} and ${other.id} were both acknowledged as the write of revision ${o.revision}`);
      effective.set(o.revision, w);
    } else {
      const list = noOps.get(o.revision) ?? [];
      list.push(w);
      noOps.set(o.revision, list);
    }
  }

  const byRevision = new Map<number, RecordedEvent[]>();
  for (const e of h.events) {
    const list = byRevision.get(e.kv.modRevision) ?? [];
    list.push(e);
    byRevision.set(e.kv.modRevision, list);
  }

  const state = new KeySpace();
  const unexplained: number[] = [];
  const candidates: number[][] = [];
  for (let rev = h.fromRevision; rev <= h.toRevision; rev++) {
    const events = byRevision.get(rev) ?? [];
    // `state` is the key space at rev − 1 here.
    const w = effective.get(rev);
    if (w !== undefined) {
      const want = predict(w, state);
      const o = w.outcome!;
      if (want.succeeded !== o.succeeded) problems.push(`${w.id}: its guard ${JSON.stringify(w.guardKey)} ${o.succeeded ? 'held' : 'failed'} at revision ${rev}, but the history says it ${want.succeeded ? 'held' : 'failed'}`);
      else if (!matches(want.effects, events)) problems.push(`${w.id}: acknowledged at revision ${rev} as ${showEffects(want.effects)}, the history has [${events.map(showEvent).join(', ')}]`);
      else if (want.deleted.some((n, i) => n !== o.deleted[i])) problems.push(`${w.id}: reported deleting ${JSON.stringify(o.deleted)} keys per op at revision ${rev}, the history deleted ${JSON.stringify(want.deleted)}`);
    } else if (events.length > 0) {
      unexplained.push(rev);
      candidates.push(unknown.flatMap((u, i) => (matches(predict(u, state).effects, events) ? [i] : [])));
    }
    for (const e of events) state.apply(e);
    // `state` is the key space at rev: what a write that changed nothing saw.
    for (const n of noOps.get(rev) ?? []) {
      const want = predict(n, state);
      if (want.succeeded !== n.outcome!.succeeded) problems.push(`${n.id}: its guard ${JSON.stringify(n.guardKey)} ${n.outcome!.succeeded ? 'held' : 'failed'} at revision ${rev}, but the history says it ${want.succeeded ? 'held' : 'failed'}`);
      else if (want.effects.length > 0) problems.push(`${n.id}: changed nothing at revision ${rev}, but there it would have done ${showEffects(want.effects)}`);
    }
  }
  const applied = matchCount(candidates);
  if (applied < unexplained.length) {
    const orphans = unexplained.filter((_, i) => candidates[i]!.length === 0);
    const shown = (orphans.length > 0 ? orphans : unexplained).slice(0, 5).map((r) => `${r} [${byRevision.get(r)!.map(showEvent).join(', ')}]`);
    problems.push(`${unexplained.length - applied} revision(s) no recorded write explains, e.g. ${shown.join('; ')}`);
  }
  return { acknowledged: writes.length - unknown.length, indeterminate: unknown.length, indeterminateApplied: applied, problems };
}
