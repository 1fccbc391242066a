/**
 * A member installing a snapshot swaps its store: watchers continue on the new store from the
 * revision after the last one they were sent, missing nothing and repeating nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MvccStore } from '../../src/mvcc/index.ts';
import { tempDir } from '../mvcc/helpers.ts';
import { b, drain, eventsOf, openHub, settle, show } from './helpers.ts';

test('after replaceStore, watchers get the new store\'s later revisions exactly once', async () => {
  const f = await openHub();
  const { dir, cleanup } = tempDir('conclave-watch-replaced-');
  let replacement: MvccStore | undefined;
  try {
    const s = f.hub.openStream();
    const id = s.watch({ key: b('k/'), rangeEnd: b('k0') });
    f.store.put({ key: b('k/1'), value: b('a') }); // 2, seen live
    assert.deepEqual(show(eventsOf(drain(s), id)), ['PUT k/1@2=a']);

    // The "leader" store moved on by three revisions; this member receives it as a snapshot.
    f.store.put({ key: b('k/2'), value: b('b') }); // 3 (also seen live: it is the same store here)
    drain(s);
    const leader = await MvccStore.open(`${dir}/leader`);
    for (const [k, v] of [['k/1', 'a'], ['k/2', 'b'], ['k/3', 'c'], ['x', 'y'], ['k/1', 'd']] as const) leader.put({ key: b(k), value: b(v) });
    await MvccStore.restore(`${dir}/received`, leader.snapshot());
    await leader.close();
    replacement = await MvccStore.open(`${dir}/received`);
    f.hub.replaceStore(replacement);

    const [msgs] = await settle(f.hub, [s]);
    assert.deepEqual(show(eventsOf(msgs!, id)), ['PUT k/3@4=c', 'PUT k/1@6=d']);
    replacement.put({ key: b('k/4'), value: b('e') }); // 7, live from the new store
    assert.deepEqual(show(eventsOf(drain(s), id)), ['PUT k/4@7=e']);
  } finally {
    await f.close();
    await replacement?.close();
    cleanup();
  }
});
