/**
 * Password hashing with scrypt (node:crypto, run on libuv's thread pool so the event loop stays
 * free). A stored hash carries its own parameters, so the cost can be raised later without
 * invalidating existing passwords:
 *
 *   u8 format (1) · u8 log2(N) · u8 r · u8 p · bytes salt · bytes key
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { CodecError, Reader, Writer } from '../util/binary.ts';
import { AuthError } from './errors.ts';
import { AUTH_LIMITS } from './limits.ts';

const FORMAT = 1;

export interface ScryptParams {
  readonly costLog2: number;
  readonly blockSize: number;
  readonly parallelism: number;
}

export const DEFAULT_SCRYPT_PARAMS: ScryptParams = {
  costLog2: AUTH_LIMITS.scryptCostLog2,
  blockSize: AUTH_LIMITS.scryptBlockSize,
  parallelism: AUTH_LIMITS.scryptParallelism,
};

let running = 0;
const waiting: Array<() => void> = [];

/** Runs `fn` when fewer than kdfConcurrentMax hashings run; refuses past kdfWaitingMax waiting. */
async function limited<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= AUTH_LIMITS.kdfConcurrentMax) {
    if (waiting.length >= AUTH_LIMITS.kdfWaitingMax) throw new AuthError('AUTH_KDF_BUSY');
    await new Promise<void>((resolve) => waiting.push(resolve));
  }
  running++;
  try {
    return await fn();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

function derive(password: string, salt: Uint8Array, keyBytes: number, p: ScryptParams): Promise<Buffer> {
  return limited(() => scryptAsync(password, salt, keyBytes, p));
}

function scryptAsync(password: string, salt: Uint8Array, keyBytes: number, p: ScryptParams): Promise<Buffer> {
  const N = 2 ** p.costLog2;
  // scrypt needs 128·N·r bytes; leave room above that for node's own bookkeeping.
  const maxmem = 256 * N * p.blockSize;
  return new Promise((resolve, reject) => {
    scrypt(password, salt, keyBytes, { N, r: p.blockSize, p: p.parallelism, maxmem }, (err, key) => (err === null ? resolve(key) : reject(err)));
  });
}

export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT_PARAMS): Promise<Uint8Array> {
  const salt = randomBytes(AUTH_LIMITS.scryptSaltBytes);
  const key = await derive(password, salt, AUTH_LIMITS.scryptKeyBytes, params);
  const w = new Writer(16 + salt.byteLength + key.byteLength);
  w.u8(FORMAT);
  w.u8(params.costLog2);
  w.u8(params.blockSize);
  w.u8(params.parallelism);
  w.bytes(salt);
  w.bytes(key);
  return w.finish();
}

/** Whether `password` matches `stored`; false for an empty or malformed hash. */
export async function verifyPassword(password: string, stored: Uint8Array): Promise<boolean> {
  if (stored.byteLength === 0) return false;
  let params: ScryptParams;
  let salt: Uint8Array;
  let key: Uint8Array;
  try {
    const r = new Reader(stored);
    if (r.u8() !== FORMAT) return false;
    params = { costLog2: r.u8(), blockSize: r.u8(), parallelism: r.u8() };
    salt = r.bytes();
    key = r.bytes();
    r.done();
  } catch (e) {
    if (e instanceof CodecError) return false;
    throw e;
  }
  if (params.costLog2 < 1 || params.costLog2 > AUTH_LIMITS.scryptCostLog2Max || params.blockSize < 1 || params.parallelism < 1 || key.byteLength === 0) return false;
  const derived = await derive(password, salt, key.byteLength, params);
  return timingSafeEqual(derived, key);
}
