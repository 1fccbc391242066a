/**
 * Where reads copy records out of LMDB's reusable buffer: consecutive slices of one slab, so a kv
 * costs no allocation of its own (a Buffer per kv costs more than the copy). Slabs are shared
 * across reads like Node's Buffer pool; a kv kept alive keeps its slab alive, and readArenaBytes
 * bounds what that pins.
 */
import { readArenaBytes } from './limits.ts';

export class ReadArena {
  private slab = new ArrayBuffer(0);
  private bytes = new Uint8Array(this.slab);
  private pos = 0;

  /** Copies src[0, len) into the arena and returns the copy's offset for view(). */
  copy(src: Uint8Array, len: number): number {
    if (this.pos + len > this.slab.byteLength) {
      // Its own ArrayBuffer (offset 0, not a slice of Node's pool), not zero-filled: every byte
      // handed out is written first.
      this.bytes = Buffer.allocUnsafeSlow(Math.max(readArenaBytes, len));
      this.slab = this.bytes.buffer as ArrayBuffer;
      this.pos = 0;
    }
    const at = this.pos;
    // A plain Uint8Array view: src may be a Buffer, whose subarray is several times slower.
    this.bytes.set(new Uint8Array(src.buffer, src.byteOffset, len), at);
    this.pos = at + len;
    return at;
  }

  /** Bytes [at, at + length) of the slab the last copy went to. */
  view(at: number, length: number): Uint8Array {
    return new Uint8Array(this.slab, at, length);
  }
}
