/**
 * The backend's write buffer against a model (two ordered maps): random writes, removals and
 * write transactions that throw, interleaved with commits to LMDB and pinned read views. Every
 * read (point, range with its options, scan, meta, counts) must see exactly the model, whether
 * the data is pending, committing or in LMDB, and a pinned view must keep its moment's state
 * through later writes and commits. Closing and reopening must find the model's state.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import fc from 'fast-check';
import { Backend, type ReadSnapshot } from '../../src/mvcc/backend.ts';
import { revKey } from '../../src/mvcc/codec.ts';
import { tempDir } from './helpers.ts';

type Model = { kv: Map<string, string>; meta: Map<string, string> };

type Command =
  | { kind: 'kvPut'; main: number; sub: number; value: number }
  | { kind: 'kvRemove'; main: number; sub: number }
  | { kind: 'metaPut'; key: number; value: number }
  | { kind: 'metaRemove'; key: number }
  | { kind: 'throwingWrite'; main: number; value: number }
  | { kind: 'settle' }
  | { kind: 'pin' }
  | { kind: 'check'; from: number; to: number; limit: number; exclusiveStart: boolean };

const MAINS = 6;
/** Meta keys: few, so writes to a key already in LMDB are common. */
const META_KEYS = 4;
/** A revision holds a put or a tombstone, never both: here every third main revision is a tombstone. */
const kvKey = (main: number, sub: number): Buffer => revKey(main, sub, main % 3 === 0);
const metaKey = (k: number): Buffer => Buffer.from(`m${String.fromCharCode(97 + k)}`);
const valueOf = (n: number): Buffer => Buffer.from(`value-${n}-`.repeat(1 + (n % 3)));

const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('kvPut' as const), main: fc.integer({ min: 1, max: MAINS }), sub: fc.integer({ min: 0, max: 2 }), value: fc.nat(50) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('kvRemove' as const), main: fc.integer({ min: 1, max: MAINS }), sub: fc.integer({ min: 0, max: 2 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('metaPut' as const), key: fc.nat(META_KEYS - 1), value: fc.nat(50) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('metaRemove' as const), key: fc.nat(META_KEYS - 1) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('throwingWrite' as const), main: fc.integer({ min: 1, max: MAINS }), value: fc.nat(50) }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'settle' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'pin' as const }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('check' as const), from: fc.integer({ min: 0, max: MAINS + 1 }), to: fc.integer({ min: 0, max: MAINS + 1 }), limit: fc.integer({ min: 0, max: 6 }), exclusiveStart: fc.boolean() }) },
);

// kvGetFast may hand out LMDB's reusable buffer, whose `length` is the value's length within a larger area.
const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');

function modelRange(m: Map<string, string>, start: Buffer | undefined, end: Buffer | undefined, exclusiveStart: boolean, limit: number | undefined): string[] {
  const out: string[] = [];
  for (const k of [...m.keys()].sort()) {
    const key = Buffer.from(k, 'hex');
    if (start !== undefined && (Buffer.compare(key, start) < 0 || (exclusiveStart && key.equals(start)))) continue;
    if (end !== undefined && Buffer.compare(key, end) >= 0) continue;
    out.push(`${k}=${m.get(k)}`);
  }
  return limit === undefined ? out : out.slice(0, limit);
}

function read(entries: Iterable<{ key: Buffer; value: Buffer }>): string[] {
  return [...entries].map((e) => `${hex(e.key)}=${hex(e.value)}`);
}

function checkAll(backend: Backend, model: Model, c: Extract<Command, { kind: 'check' }>): void {
  for (let main = 1; main <= MAINS; main++) {
    for (let sub = 0; sub <= 2; sub++) {
      const key = kvKey(main, sub);
      const got = backend.kvGetFast(key);
      assert.equal(got === undefined ? undefined : hex(got), model.kv.get(hex(key)), `kvGetFast ${main}.${sub}`);
    }
  }
  const start = c.from === 0 ? undefined : kvKey(c.from, 0);
  const end = c.to > MAINS ? undefined : kvKey(c.to, 0);
  const limit = c.limit === 0 ? undefined : c.limit;
  assert.deepEqual(
    read(backend.kvRange({ ...(start && { start }), ...(end && { end }), ...(limit !== undefined && { limit }), exclusiveStart: c.exclusiveStart && start !== undefined })),
    modelRange(model.kv, start, end, c.exclusiveStart && start !== undefined, limit),
    'kvRange',
  );
  checkScan(backend, model, c.from, c.to, limit);
  checkScan(backend, model, 1, MAINS, undefined);
  assert.deepEqual(read(backend.metaRange({})), modelRange(model.meta, undefined, undefined, false, undefined), 'metaRange');
  for (let k = 0; k < META_KEYS; k++) {
    const got = backend.metaGetRaw(metaKey(k));
    assert.equal(got === undefined ? undefined : hex(got), model.meta.get(hex(metaKey(k))), `metaGet ${k}`);
  }
  assert.equal(backend.kvEntryCount(), model.kv.size, 'kvEntryCount');
}

/** A scan from main revision `from` to `to` (inclusive) that stops after `limit` records. */
function checkScan(backend: Backend, model: Model, from: number, to: number, limit: number | undefined): void {
  const scanFrom = revKey(Math.max(from, 1), 0, false);
  const scanLast = revKey(Math.max(to, 1), 2, false);
  const scanned: string[] = [];
  backend.kvScan(scanFrom, scanLast, (main, sub, record, length) => {
    if (Buffer.compare(revKey(main, sub, false), scanLast) > 0) return false;
    scanned.push(`${main}.${sub}=${hex(record.subarray(0, length))}`);
    return limit === undefined || scanned.length < limit;
  });
  const wanted = [...model.kv.entries()]
    .map(([k, v]) => ({ key: Buffer.from(k, 'hex'), v }))
    .filter(({ key }) => Buffer.compare(key, scanFrom) >= 0 && Buffer.compare(key.subarray(0, 16), scanLast) <= 0)
    .sort((a, b) => Buffer.compare(a.key, b.key))
    .map(({ key, v }) => `${key.readBigUInt64BE(0)}.${key.readBigUInt64BE(8)}=${v}`);
  assert.deepEqual(scanned, limit === undefined ? wanted : wanted.slice(0, limit), 'kvScan');
}

test('write buffer: every read sees exactly the writes made, pending, committing or committed; pinned views keep their moment; a reopen finds the state', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 60 }), async (commands) => {
      const t = tempDir();
      const dir = join(t.dir, 'db');
      let backend = Backend.open(dir);
      const model: Model = { kv: new Map(), meta: new Map() };
      const pins: Array<{ snap: ReadSnapshot; kv: string[]; meta: string[] }> = [];
      try {
        for (const c of commands) {
          switch (c.kind) {
            case 'kvPut':
              backend.write(() => backend.kvPut(kvKey(c.main, c.sub), valueOf(c.value)));
              model.kv.set(hex(kvKey(c.main, c.sub)), hex(valueOf(c.value)));
              break;
            case 'kvRemove': {
              const existed = backend.write(() => backend.kvRemove(kvKey(c.main, c.sub)));
              assert.equal(existed, model.kv.delete(hex(kvKey(c.main, c.sub))), 'kvRemove says whether the key was there');
              break;
            }
            case 'metaPut':
              backend.write(() => backend.metaPut(metaKey(c.key), valueOf(c.value)));
              model.meta.set(hex(metaKey(c.key)), hex(valueOf(c.value)));
              break;
            case 'metaRemove': {
              const existed = backend.write(() => backend.metaRemove(metaKey(c.key)));
              assert.equal(existed, model.meta.delete(hex(metaKey(c.key))), 'metaRemove says whether the key was there');
              break;
            }
            case 'throwingWrite':
              assert.throws(
                () =>
                  backend.write(() => {
                    backend.kvPut(kvKey(c.main, 0), valueOf(c.value + 1));
                    backend.kvRemove(kvKey(c.main, 1));
                    backend.metaPut(metaKey(0), valueOf(c.value + 2));
                    throw new Error('abort');
                  }),
                /abort/,
              );
              break;
            case 'settle':
              await backend.settle();
              break;
            case 'pin': {
              const snap = backend.snapshot();
              pins.push({ snap, kv: modelRange(model.kv, undefined, undefined, false, undefined), meta: modelRange(model.meta, undefined, undefined, false, undefined) });
              break;
            }
            case 'check':
              checkAll(backend, model, c);
              for (const p of pins) {
                assert.deepEqual(read(backend.kvRange({ snapshot: p.snap })), p.kv, 'a pinned view kept its kv');
                assert.deepEqual(read(backend.metaRange({ snapshot: p.snap })), p.meta, 'a pinned view kept its meta');
              }
              break;
          }
        }
        for (const p of pins.splice(0)) p.snap.done();
        await backend.close();
        backend = Backend.open(dir);
        checkAll(backend, model, { kind: 'check', from: 0, to: MAINS + 1, limit: 0, exclusiveStart: false });
      } finally {
        for (const p of pins) p.snap.done();
        await backend.close();
        t.cleanup();
      }
    }),
    { numRuns: 500 },
  );
});

test('write buffer: a write is committed to LMDB within the commit interval without anyone asking', async () => {
  const t = tempDir();
  const backend = Backend.open(join(t.dir, 'db'));
  try {
    backend.write(() => backend.kvPut(kvKey(1, 0), valueOf(1)));
    assert.ok(backend.pendingBytes() > 0, 'pending right after the write');
    for (let i = 0; backend.pendingBytes() > 0; i++) {
      assert.ok(i < 100, 'still pending after 2 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(hex(backend.kvGetFast(kvKey(1, 0))!), hex(valueOf(1)));
  } finally {
    await backend.close();
    t.cleanup();
  }
});
