import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Bytes of a string (UTF-8). */
export function b(s: string): Buffer {
  return Buffer.from(s, 'utf8');
}

/** A fresh temporary directory; remove it with the returned cleanup. */
export function tempDir(prefix = 'conclave-mvcc-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** JSON-comparable form of store responses: bytes as "hex:…", bigints as strings. */
export function norm(x: unknown): unknown {
  if (x instanceof Uint8Array) return `hex:${Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString('hex')}`;
  if (typeof x === 'bigint') return `${x}n`;
  if (Array.isArray(x)) return x.map(norm);
  if (x instanceof Error) return { error: x.message };
  if (x !== null && typeof x === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(x)) if (v !== undefined) out[k] = norm(v);
    return out;
  }
  return x;
}

/** Runs fn and returns its result, or {error: message} if it throws an Error. */
export function attempt<T>(fn: () => T): T | { error: string } {
  try {
    return fn();
  } catch (e) {
    if (e instanceof Error && e.name === 'MvccAssertionError') throw e;
    if (e instanceof Error) return { error: e.message };
    throw e;
  }
}
