/** Fixed-size bitsets over Uint32Array words: the search's "which operations are linearized". */

export function bitsetWords(size: number): number {
  return Math.max(1, Math.ceil(size / 32));
}

export function setBit(bits: Uint32Array, i: number): void {
  bits[i >>> 5] |= 1 << (i & 31);
}

export function clearBit(bits: Uint32Array, i: number): void {
  bits[i >>> 5] &= ~(1 << (i & 31));
}

export function bitsEqual(a: Uint32Array, b: Uint32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Whether every bit of `sub` is also set in `sup`. */
export function isSubset(sub: Uint32Array, sup: Uint32Array): boolean {
  for (let i = 0; i < sub.length; i++) if ((sub[i] & ~sup[i]) !== 0) return false;
  return true;
}
