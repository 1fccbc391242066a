/**
 * The watch checker against crafted streams: a correct stream (live, caught up, resumed) passes,
 * and each broken guarantee — a gap, a duplicate, a reordering, a split revision, a wrong value
 * or prev_kv, a filtered event, a resumption hole or overlap, an event behind a progress
 * notification, a short stream — is reported as such. The history checker likewise.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkHistory,
  checkWatcher,
  expectedEvents,
  sessionCoverage,
  stateAt,
  type History,
  type RecordedEvent,
  type RecordedKv,
  type RecordedResponse,
  type WatchSession,
  type WatchSpec,
} from './watch-history.ts';

type Op = readonly ['put', string, string] | readonly ['del', string];

/** A history made by applying one list of ops per revision, from revision 2 on, to an empty store. */
function buildHistory(revisions: readonly (readonly Op[])[]): History {
  const live = new Map<string, RecordedKv>();
  const events: RecordedEvent[] = [];
  revisions.forEach((ops, i) => {
    const rev = i + 2;
    for (const op of ops) {
      const prev = live.get(op[1]);
      if (op[0] === 'put') {
        const kv = { key: op[1], value: op[2], createRevision: prev?.createRevision ?? rev, modRevision: rev, version: (prev?.version ?? 0) + 1, lease: '0' };
        events.push(prev === undefined ? { type: 'PUT', kv } : { type: 'PUT', kv, prevKv: prev });
        live.set(op[1], kv);
      } else {
        assert.ok(prev !== undefined, `test history deletes absent ${op[1]}`);
        events.push({ type: 'DELETE', kv: { key: op[1], value: '', createRevision: 0, modRevision: rev, version: 0, lease: '0' }, prevKv: prev });
        live.delete(op[1]);
      }
    }
  });
  return { fromRevision: 1, toRevision: revisions.length + 1, events };
}

// Revisions 2…8; revision 3 is a txn of two puts, revision 5 a range delete of two keys.
const H = buildHistory([
  [['put', 'p/a', '1']],
  [['put', 'p/b', '1'], ['put', 'p/c', '1']],
  [['put', 'p/a', '2']],
  [['del', 'p/a'], ['del', 'p/b']],
  [['put', 'z', '1']],
  [['put', 'p/c', '2']],
  [['put', 'p/a', '3']],
]);
const LAST = 8;

const prefix: WatchSpec = { key: 'p/', rangeEnd: 'p0' };
const WATCH_ID = 7;

function response(events: readonly RecordedEvent[], fields: Partial<RecordedResponse> = {}): RecordedResponse {
  const headerRevision = Math.max(0, ...events.map((e) => e.kv.modRevision));
  return { watchId: WATCH_ID, headerRevision, created: false, canceled: false, compactRevision: 0, cancelReason: '', fragment: false, events, ...fields };
}
const created = (headerRevision: number): RecordedResponse => response([], { created: true, headerRevision });
const progress = (headerRevision: number): RecordedResponse => response([], { watchId: -1, headerRevision });

/** A correct stream: one response per revision (as live events come), or all in one (as a catch-up batch). */
function stream(spec: WatchSpec, from: number, through: number, grouping: 'live' | 'batch'): RecordedResponse[] {
  const evs = expectedEvents(spec, H, from, through);
  if (grouping === 'batch') return evs.length === 0 ? [] : [response(evs)];
  const byRev = new Map<number, RecordedEvent[]>();
  for (const e of evs) byRev.set(e.kv.modRevision, [...(byRev.get(e.kv.modRevision) ?? []), e]);
  return [...byRev.values()].map((list) => response(list));
}

function session(startRevision: number, responses: RecordedResponse[], createdAt = 1): WatchSession {
  return { startRevision, responses: [created(createdAt), ...responses] };
}

function check(spec: WatchSpec, sessions: WatchSession[], through = LAST): string[] {
  return checkWatcher({ name: 'w', spec, sessions }, H, through).problems;
}

function rejects(problems: string[], pattern: RegExp): void {
  assert.ok(problems.length > 0, 'the checker accepted a bad stream');
  assert.ok(
    problems.some((p) => pattern.test(p)),
    `no problem matches ${pattern}: ${JSON.stringify(problems)}`,
  );
}

describe('history', () => {
  test('a consistent history passes; its state at a revision is the replay', () => {
    assert.deepEqual(checkHistory(H), []);
    const s = stateAt(H, 6);
    assert.deepEqual([...s.keys()].sort(), ['p/c', 'z']);
    assert.equal(s.get('p/c')!.version, 1);
  });

  test('a missing revision, a wrong version, a wrong prev_kv, a delete of an absent key are reported', () => {
    rejects(checkHistory({ ...H, events: H.events.filter((e) => e.kv.modRevision !== 4) }), /revision 4 has no event|version/);
    const bump = H.events.map((e) => (e.kv.modRevision === 4 ? { ...e, kv: { ...e.kv, version: 5 } } : e));
    rejects(checkHistory({ ...H, events: bump }), /should have version 2/);
    const badPrev = H.events.map((e) => (e.kv.modRevision === 7 ? { ...e, prevKv: { ...e.prevKv!, value: 'x' } } : e));
    rejects(checkHistory({ ...H, events: badPrev }), /replay gives/);
    const extra = buildHistory([[['put', 'k', '1']], [['del', 'k']]]);
    const twice: History = { ...extra, toRevision: 4, events: [...extra.events, { ...extra.events[1]!, kv: { ...extra.events[1]!.kv, modRevision: 4 } }] };
    rejects(checkHistory(twice), /deletes a key that does not exist/);
  });
});

describe('watcher: correct streams pass', () => {
  test('range, filters and prev_kv select the expected events', () => {
    const show = (spec: WatchSpec): string[] => expectedEvents(spec, H, 1, LAST).map((e) => `${e.type} ${e.kv.key}@${e.kv.modRevision}${e.prevKv ? '<' + e.prevKv.value : ''}`);
    assert.deepEqual(show({ key: 'p/a' }), ['PUT p/a@2', 'PUT p/a@4', 'DELETE p/a@5', 'PUT p/a@8']);
    assert.deepEqual(show({ key: 'p/b', rangeEnd: 'p/d', filters: ['NOPUT'], prevKv: true }), ['DELETE p/b@5<1']);
    assert.deepEqual(show({ key: 'p/', rangeEnd: '\0', filters: ['NODELETE'] }), ['PUT p/a@2', 'PUT p/b@3', 'PUT p/c@3', 'PUT p/a@4', 'PUT z@6', 'PUT p/c@7', 'PUT p/a@8']);
  });

  test('live, caught up in one batch, and resumed across sessions after a progress notification', () => {
    assert.deepEqual(check(prefix, [session(0, stream(prefix, 2, LAST, 'live'))]), []);
    assert.deepEqual(check({ ...prefix, prevKv: true }, [session(2, stream({ ...prefix, prevKv: true }, 2, LAST, 'batch'))]), []);
    // Lost after revision 5 (a progress notification vouched for 6), resumed at 7 on another member.
    const first = session(2, [...stream(prefix, 2, 5, 'live'), progress(6)]);
    assert.deepEqual(sessionCoverage(first), { start: 2, through: 6 });
    const second = session(7, stream(prefix, 7, LAST, 'batch'), 7);
    assert.deepEqual(check(prefix, [first, second]), []);
  });

  test('start revision 0 means the revision after the one created reports', () => {
    assert.deepEqual(check(prefix, [session(0, stream(prefix, 5, LAST, 'live'), 4)]), []);
    rejects(check(prefix, [session(0, stream(prefix, 4, LAST, 'live'), 4)]), /not in the history/);
  });
});

describe('watcher: each broken guarantee is rejected', () => {
  const good = (): RecordedResponse[] => stream(prefix, 2, LAST, 'live');

  test('gap: an event never delivered', () => {
    rejects(check(prefix, [session(2, good().filter((r) => r.events[0]!.kv.modRevision !== 4))]), /gap: 1 event\(s\).*PUT "p\/a"@4/);
  });

  test('gap: a resumption that skips revisions', () => {
    const first = session(2, stream(prefix, 2, 3, 'live'));
    rejects(check(prefix, [first, session(5, stream(prefix, 5, LAST, 'live'))]), /resumed at revision 5, but the watcher had everything through 3 \(a hole\)/);
  });

  test('duplicate: an event delivered twice, within a session or across a resumption', () => {
    const rs = good();
    rejects(check(prefix, [session(2, [...rs.slice(0, 3), rs[2]!, ...rs.slice(3)])]), /duplicate PUT "p\/a"@4/);
    const first = session(2, stream(prefix, 2, 4, 'live'));
    rejects(check(prefix, [first, session(4, stream(prefix, 4, LAST, 'live'))]), /an overlap/);
  });

  test('reorder: revisions out of order', () => {
    const rs = good();
    rejects(check(prefix, [session(2, [rs[0]!, rs[2]!, rs[1]!, ...rs.slice(3)])]), /out of order: PUT "p\/b"@3/);
    const txn = rs[1]!;
    const swapped = [rs[0]!, response([txn.events[1]!, txn.events[0]!]), ...rs.slice(2)];
    rejects(check(prefix, [session(2, swapped)]), /out of order: PUT "p\/b"@3=.* after PUT "p\/c"@3/);
  });

  test('split revision: one txn revision in two responses', () => {
    const rs = good();
    const txn = rs[1]!;
    rejects(check(prefix, [session(2, [rs[0]!, response([txn.events[0]!]), response([txn.events[1]!]), ...rs.slice(2)])]), /revision 3 split across responses/);
  });

  test('wrong value, wrong version, missing or unasked prev_kv', () => {
    const rs = good();
    const tamper = (i: number, f: (e: RecordedEvent) => RecordedEvent): RecordedResponse[] => rs.map((r, j) => (j === i ? response(r.events.map(f)) : r));
    rejects(check(prefix, [session(2, tamper(2, (e) => ({ ...e, kv: { ...e.kv, value: 'x' } })))]), /got PUT "p\/a"@4="x".*the history has PUT "p\/a"@4="2"/);
    rejects(check(prefix, [session(2, tamper(2, (e) => ({ ...e, kv: { ...e.kv, version: 1 } })))]), /the history has/);
    rejects(check(prefix, [session(2, tamper(2, (e) => ({ ...e, prevKv: H.events[0]!.kv })))]), /prev=.*the history has/);
    const withPrev = { ...prefix, prevKv: true };
    const rp = stream(withPrev, 2, LAST, 'live').map((r) => response(r.events.map((e) => ({ type: e.type, kv: e.kv }))));
    rejects(check(withPrev, [session(2, rp)]), /the history has .* prev=/);
  });

  test('an event the range or the filters exclude', () => {
    const noPut: WatchSpec = { ...prefix, filters: ['NOPUT'] };
    rejects(check(noPut, [session(2, good())]), /PUT "p\/a"@2=.* is not in the history of its range/);
    const single: WatchSpec = { key: 'p/a' };
    rejects(check(single, [session(2, [...stream(single, 2, LAST, 'live'), response([H.events.find((e) => e.kv.key === 'z')!])])]), /PUT "z"@6.*not in the history|out of order/);
  });

  test('an event behind a progress notification that vouched for its revision', () => {
    const rs = good();
    rejects(check(prefix, [session(2, [rs[0]!, progress(4), ...rs.slice(1)])]), /arrives after a progress notification for revision 4/);
  });

  test('a stream that ends short of the revision it must reach, or was canceled as compacted', () => {
    rejects(check(prefix, [session(2, stream(prefix, 2, 6, 'live'))]), /only through revision 5, not 8/);
    rejects(check(prefix, [session(2, [response([], { canceled: true, compactRevision: 3, cancelReason: 'mvcc: required revision has been compacted' })])]), /canceled as compacted at 3/);
    rejects(check(prefix, [{ startRevision: 2, responses: [response([], { created: true, canceled: true, cancelReason: 'mvcc: watcher range is empty' })] }]), /not created: mvcc: watcher range is empty/);
  });
});
