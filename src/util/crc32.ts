/**
 * CRC-32 (IEEE 802.3, the polynomial zlib and gzip use), chainable: `crc32(b, crc32(a, s))`
 * equals `crc32(a ++ b, s)`. Node has a native one from 20.15 on; the table version keeps the
 * WAL readable on the older 20.x releases `engines` still admits, and lets tests check the two
 * agree.
 */
import * as zlib from 'node:zlib';

const TABLE: Uint32Array = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** Table-driven CRC-32, one byte at a time. Exported for tests; use {@link crc32}. */
export function crc32Table(data: Uint8Array, seed = 0): number {
  let c = (seed ^ 0xffffffff) >>> 0;
  for (let i = 0; i < data.length; i++) c = TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

type Crc32Fn = (data: Uint8Array, seed?: number) => number;
const native = (zlib as { crc32?: Crc32Fn }).crc32;

/** CRC-32 of `data`, continuing from `seed` (the CRC of everything before it; 0 to start). */
export const crc32: (data: Uint8Array, seed: number) => number =
  native !== undefined ? (data, seed) => native(data, seed) : crc32Table;

/** True when the native implementation is in use (reported by the benchmark). */
export const crc32IsNative: boolean = native !== undefined;
