import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MvccStore } from '../../src/mvcc/index.ts';
import { fileChunks, inspectSnapshotFile, padding, snapshotBody, SnapshotFileError, verifySnapshotDigest } from '../../src/server/snapshot-file.ts';
import { formatStatus, humanBytes } from '../../src/cli/snapshot.ts';

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

test('padding makes body and padding whole 512-byte blocks, ending in its own length', () => {
  for (const body of [0, 1, 509, 510, 511, 512, 513, 1000, 4096]) {
    const pad = padding(body);
    assert.equal((body + pad.length) % 512, 0, `body ${body}`);
    assert.ok(pad.length >= 2 && pad.length <= 513);
    assert.equal(pad.readUInt16BE(pad.length - 2), pad.length);
    assert.ok(pad.subarray(0, -2).every((b) => b === 0));
  }
});

test('a store becomes a file etcdctl accepts: chunks count down, the last is the digest; the file reads back as the store', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'conclave-snapfile-'));
  try {
    const store = await MvccStore.open(join(dir, 'src'));
    for (let i = 1; i <= 300; i++) store.apply(i, { op: 'put', request: { key: Buffer.from(`k${i}`), value: Buffer.alloc(300, i) } });
    const sized = await store.sizedSnapshot();
    const chunks = await collect(fileChunks(sized.body, sized.bytes, 4096));
    const data = Buffer.concat(chunks.slice(0, -1).map((c) => Buffer.from(c.blob)));
    const digest = Buffer.from(chunks.at(-1)!.blob);
    assert.equal(chunks.at(-1)!.remainingBytes, 0);
    let remaining = data.length;
    for (const c of chunks.slice(0, -1)) {
      assert.ok(c.blob.byteLength <= 4096);
      remaining -= c.blob.byteLength;
      assert.equal(c.remainingBytes, remaining);
    }
    assert.equal(data.length % 512, 0);
    assert.ok(digest.equals(createHash('sha256').update(data).digest()));

    const file = join(dir, 'snap.db');
    writeFileSync(file, Buffer.concat([data, digest]));
    const info = await inspectSnapshotFile(file);
    assert.equal(info.bodyBytes, sized.bytes);
    assert.equal(info.fileBytes % 512, 32);
    let read = 0;
    await verifySnapshotDigest(info, (n) => (read += n));
    assert.equal(read, data.length);
    await MvccStore.restore(join(dir, 'dst'), snapshotBody(info));
    const copy = await MvccStore.open(join(dir, 'dst'));
    assert.deepEqual(await copy.hash(), await store.hash());
    await copy.close();
    await store.close();

    const altered = Buffer.concat([data, digest]);
    altered[100] = altered[100]! ^ 1;
    writeFileSync(file, altered);
    await assert.rejects(verifySnapshotDigest(await inspectSnapshotFile(file)), /expected sha256/);
    writeFileSync(file, Buffer.alloc(1000));
    await assert.rejects(inspectSnapshotFile(file), SnapshotFileError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('snapshot status prints as etcdctl 3.4 does (simple, json, table; go-humanize sizes)', () => {
  assert.deepEqual([0, 9, 10, 999, 1000, 20480, 1_500_000, 12_345_678, 2 ** 31].map(humanBytes), ['0 B', '9 B', '10 B', '999 B', '1.0 kB', '20 kB', '1.5 MB', '12 MB', '2.1 GB']);
  const s = { hash: 0xafeeca2f, revision: 2, totalKey: 7, totalSize: 20480 };
  assert.equal(formatStatus(s, 'simple'), 'afeeca2f, 2, 7, 20 kB\n');
  assert.equal(formatStatus(s, 'json'), '{"hash":2951662127,"revision":2,"totalKey":7,"totalSize":20480}\n');
  // etcdctl 3.4's output for the same status.
  assert.equal(
    formatStatus(s, 'table'),
    [
      '+----------+----------+------------+------------+',
      '|   HASH   | REVISION | TOTAL KEYS | TOTAL SIZE |',
      '+----------+----------+------------+------------+',
      '| afeeca2f |        2 |          7 |      20 kB |',
      '+----------+----------+------------+------------+',
      '',
    ].join('\n'),
  );
});
