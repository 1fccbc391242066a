/**
 * Raw HTTP/2 for tests that must send what node's client would not: frames and an HPACK
 * header block built by hand (RFC 7540 §4.1, RFC 7541 literals without Huffman coding).
 */
export const SETTINGS = 4;
export const HEADERS = 1;
export const ACK = 0x1;
export const END_STREAM_AND_HEADERS = 0x1 | 0x4;

export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(stream, 5);
  return Buffer.concat([header, payload]);
}

/** A literal header with incremental indexing, its name from static-table entry `nameIndex`. */
export function literal(nameIndex: number, value: string): Buffer {
  return Buffer.concat([Buffer.from([0x40 | nameIndex, value.length]), Buffer.from(value, 'latin1')]);
}

/** POST <scheme>://…/x with a raw (not Huffman-coded) :authority. */
export function rawBlock(authority: string, scheme: 'http' | 'https' = 'http'): Buffer {
  return Buffer.concat([Buffer.from([0x83, scheme === 'http' ? 0x86 : 0x87]), literal(4, '/x'), literal(1, authority)]);
}
