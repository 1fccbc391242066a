/**
 * Framing on a peer connection: u32 big-endian length · u8 kind · body (length counts kind and
 * body). A connection opens with HELLO naming the cluster, the sender, the receiver and the
 * channel (messages or one snapshot); the receiver answers a bad HELLO with REJECT and closes.
 *
 *   HELLO        clusterId · from · to · u8 channel (0 messages, 1 snapshot)
 *   MESSAGE      one Raft message (codec.ts)
 *   REJECT       reason (UTF-8)
 *   SNAP_CHUNK   a piece of the snapshot body
 *   SNAP_END     the body is complete
 *   SNAP_RESULT  u8 ok · error text: the receiver installed the snapshot, or why not
 *   REQUEST      an application request (opaque bytes), the only frame of a request channel
 *   RESPONSE     u8 ok · the answer (bytes) or why there is none (text); then the receiver closes
 */
import { CodecError, Reader, Writer } from '../util/binary.ts';

export const FrameKind = { Hello: 1, Message: 2, Reject: 3, SnapChunk: 4, SnapEnd: 5, SnapResult: 6, Membership: 7, Request: 8, Response: 9 } as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

/**
 * What a connection carries. Membership is a one-question connection a member that is joining a
 * running cluster opens before it knows the cluster's id or its own: the answer is the
 * membership (the same facts MemberList gives any client). Request carries one question of a
 * member to another (see Transport.request).
 */
export const Channel = { Messages: 0, Snapshot: 1, Membership: 2, Request: 3 } as const;
export type Channel = (typeof Channel)[keyof typeof Channel];

export interface Frame {
  readonly kind: FrameKind;
  readonly body: Uint8Array;
}

export interface Hello {
  readonly clusterId: string;
  readonly from: string;
  readonly to: string;
  readonly channel: Channel;
}

/** Appends a frame header to `w`; its length is set by endFrame(w, at) once the body is written. */
export function beginFrame(w: Writer, kind: FrameKind): number {
  const at = w.length;
  w.raw(FRAME_PLACEHOLDER);
  w.u8(kind);
  return at;
}

export function endFrame(w: Writer, at: number): void {
  w.patchU32BE(at, w.length - at - 4);
}

const FRAME_PLACEHOLDER = new Uint8Array(4);

export function frame(kind: FrameKind, body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + body.byteLength);
  out.writeUInt32BE(1 + body.byteLength, 0);
  out[4] = kind;
  out.set(body, 5);
  return out;
}

export function encodeHello(h: Hello): Buffer {
  const w = new Writer();
  w.string(h.clusterId);
  w.string(h.from);
  w.string(h.to);
  w.u8(h.channel);
  return frame(FrameKind.Hello, w.finish());
}

export function decodeHello(body: Uint8Array): Hello {
  const r = new Reader(body);
  const clusterId = r.string();
  const from = r.string();
  const to = r.string();
  const channel = r.u8();
  if (channel !== Channel.Messages && channel !== Channel.Snapshot && channel !== Channel.Membership && channel !== Channel.Request) throw new CodecError(`unknown channel ${channel}`);
  r.done();
  return { clusterId, from, to, channel };
}

export function encodeText(kind: FrameKind, text: string): Buffer {
  const w = new Writer();
  w.string(text);
  return frame(kind, w.finish());
}

export function decodeText(body: Uint8Array): string {
  const r = new Reader(body);
  const text = r.string();
  r.done();
  return text;
}

export function encodeSnapResult(ok: boolean, error: string): Buffer {
  const w = new Writer();
  w.bool(ok);
  w.string(error);
  return frame(FrameKind.SnapResult, w.finish());
}

export function decodeSnapResult(body: Uint8Array): { ok: boolean; error: string } {
  const r = new Reader(body);
  const result = { ok: r.bool(), error: r.string() };
  r.done();
  return result;
}

export type PeerResponse = { readonly ok: true; readonly body: Uint8Array } | { readonly ok: false; readonly error: string };

export function encodeResponse(r: PeerResponse): Buffer {
  const w = new Writer();
  w.bool(r.ok);
  if (r.ok) w.bytes(r.body);
  else w.string(r.error);
  return frame(FrameKind.Response, w.finish());
}

export function decodeResponse(body: Uint8Array): PeerResponse {
  const r = new Reader(body);
  const result: PeerResponse = r.bool() ? { ok: true, body: r.bytes() } : { ok: false, error: r.string() };
  r.done();
  return result;
}

/** Splits a byte stream into frames, across and within chunks. */
export class FrameSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly maxFrameBytes: number) {}

  push(chunk: Buffer): Frame[] {
    this.pending.push(chunk);
    this.pendingBytes += chunk.byteLength;
    const frames: Frame[] = [];
    let buf = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    let at = 0;
    while (buf.byteLength - at >= 4) {
      const length = buf.readUInt32BE(at);
      if (length < 1 || length > this.maxFrameBytes) throw new CodecError(`frame of ${length} bytes exceeds the limit of ${this.maxFrameBytes}`);
      if (buf.byteLength - at < 4 + length) break;
      const kind = buf[at + 4]! as FrameKind;
      frames.push({ kind, body: buf.subarray(at + 5, at + 4 + length) });
      at += 4 + length;
    }
    buf = buf.subarray(at);
    this.pending = buf.byteLength > 0 ? [buf] : [];
    this.pendingBytes = buf.byteLength;
    return frames;
  }
}
