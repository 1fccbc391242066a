/**
 * Every bound of the gRPC server in one place (units last). Options of GrpcServer and
 * listenClientPort default to these; related limits are checked against each other in
 * checkGrpcLimits() when a server is built.
 */

/**
 * Largest request message accepted, after decompression. etcd: --max-request-bytes (1.5 MiB)
 * plus 512 KiB of headroom for gRPC framing and the rest of the request (grpcOverheadBytes).
 */
export const grpcReceiveBytesMax = 1.5 * 1024 * 1024 + 512 * 1024;

/** Largest response message sent. etcd: --max-send-bytes defaults to math.MaxInt32. */
export const grpcSendBytesMax = 2 ** 31 - 1;

/**
 * Concurrent streams per HTTP/2 connection, advertised in SETTINGS. etcd defaults to
 * math.MaxUint32; we bound it because each open stream holds buffers. A client holds few
 * streams (one watch stream carries many watchers, one keep-alive stream many leases).
 */
export const grpcStreamsPerSessionMax = 4096;

/**
 * nghttp2's per-session memory budget (MiB) before node refuses new streams with
 * ENHANCE_YOUR_CALM. Node's default (10) is too small for many concurrent calls carrying
 * large puts.
 */
export const grpcSessionMemoryMiBMax = 64;

/**
 * Bytes a stream may hold unsent before write() makes the handler wait (the Writable
 * high-water mark). The HTTP/2 flow-control window of the client stops unsent bytes from
 * leaving, so this, not the client, bounds server memory per stream.
 */
export const grpcStreamWriteBufferBytes = 64 * 1024;

/**
 * Hard cap on unsent bytes per stream for a handler that ignores write()'s promise; past it
 * the call fails with RESOURCE_EXHAUSTED rather than growing without bound.
 */
export const grpcStreamWriteBufferBytesMax = 16 * 1024 * 1024;

/**
 * Request messages decoded but not yet taken by a streaming handler. At this many the stream
 * is paused, so the client's flow-control window closes instead of our queue growing.
 */
export const grpcStreamReceiveQueueMessagesMax = 64;

/** Longest grpc-timeout honoured (the spec allows 8 digits of hours; we clamp to a year). */
export const grpcTimeoutMsMax = 365 * 24 * 3600 * 1000;

/**
 * Time a new plaintext connection has to send its first bytes so the mux can tell HTTP/2
 * from HTTP/1.1 (and a TLS one to complete its handshake); a silent connection holds no more
 * than this.
 */
export const muxSniffTimeoutMs = 10_000;

/**
 * After a new HTTP/2 client acknowledged the handshake's SETTINGS, time to wait for its first
 * request before giving the connection to node's session unexamined (see authority.ts). grpc-go
 * sends its first request right behind the ACK; only an idle client waits this long.
 */
export const muxFirstRequestGraceMs = 50;

/** Bytes a client may send during that handshake (its preface, settings, first requests). */
export const muxHandshakeBytesMax = 1024 * 1024;

/** Time close() gives open calls to finish after GOAWAY before destroying connections. */
export const muxCloseGraceMs = 2_000;

/** Throws if the limits a server is built with contradict each other. */
export function checkGrpcLimits(l: {
  receiveBytesMax: number;
  sendBytesMax: number;
  writeBufferBytes: number;
  writeBufferBytesMax: number;
  streamsPerSessionMax: number;
}): void {
  const positiveInt = (name: string, v: number, max: number): void => {
    if (!Number.isInteger(v) || v <= 0 || v > max) {
      throw new RangeError(`grpc: ${name} must be an integer in 1..${max}, got ${v}`);
    }
  };
  // The 5-byte frame prefix carries a u32 length; above 2^31-1 Buffer lengths get awkward.
  positiveInt('receiveBytesMax', l.receiveBytesMax, 2 ** 31 - 1);
  positiveInt('sendBytesMax', l.sendBytesMax, 2 ** 31 - 1);
  positiveInt('writeBufferBytes', l.writeBufferBytes, 2 ** 31 - 1);
  positiveInt('writeBufferBytesMax', l.writeBufferBytesMax, 2 ** 31 - 1);
  positiveInt('streamsPerSessionMax', l.streamsPerSessionMax, 2 ** 32 - 1);
  if (l.writeBufferBytesMax < l.writeBufferBytes) {
    throw new RangeError('grpc: writeBufferBytesMax must be at least writeBufferBytes');
  }
}
