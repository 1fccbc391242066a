/**
 * gRPC status codes (per the gRPC spec's statuscodes.md) and the error handlers throw to end
 * a call with one. The etcd layer maps its error catalogue to these; this module knows no etcd.
 */

export const Status = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type Status = (typeof Status)[keyof typeof Status];

/** Thrown by a handler (or raised by the server) to end a call with `code` and `message`. */
export class GrpcError extends Error {
  readonly code: Status;

  constructor(code: Status, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'GrpcError';
    this.code = code;
  }
}

// Texts as grpc-go words them, because clients and operators compare them.
export const statusText = {
  unknownService: (service: string): string => `unknown service ${service}`,
  unknownMethod: (service: string, method: string): string =>
    `unknown method ${method} for service ${service}`,
  malformedMethod: (path: string): string => `malformed method name: ${JSON.stringify(path)}`,
  receivedTooLarge: (size: number, max: number): string =>
    `grpc: received message larger than max (${size} vs. ${max})`,
  receivedTooLargeInflated: (max: number): string =>
    `grpc: received message after decompression larger than max (${max})`,
  sendTooLarge: (size: number, max: number): string =>
    `grpc: trying to send message larger than max (${size} vs. ${max})`,
  noDecompressor: (encoding: string): string =>
    `grpc: Decompressor is not installed for grpc-encoding ${JSON.stringify(encoding)}`,
  compressedWithoutEncoding: 'grpc: compressed flag set with identity or empty encoding',
  unmarshal: (err: string): string => `grpc: error unmarshalling request: ${err}`,
  marshal: (err: string): string => `grpc: error while marshaling: ${err}`,
  malformedTimeout: (value: string): string => `malformed grpc-timeout: ${value}`,
  deadlineExceeded: 'context deadline exceeded',
  cancelled: 'context canceled',
  noRequest: 'grpc: no request message received for a unary or server-streaming call',
  tooManyRequests: 'grpc: more than one request message for a unary or server-streaming call',
  truncated: 'grpc: request ended inside a message frame',
  noCodec: (subtype: string): string => `grpc: no codec registered for content-subtype ${subtype}`,
  writeBufferFull: (max: number): string =>
    `grpc: stream write buffer over ${max} bytes; the handler does not wait for write()`,
  serverClosing: 'grpc: the server is closing',
} as const;

/**
 * Percent-encodes a status message for the grpc-message trailer: the spec allows printable
 * ASCII except '%'; everything else is sent as %XX of its UTF-8 bytes.
 */
export function encodeGrpcMessage(message: string): string {
  let plain = true;
  for (let i = 0; i < message.length; i++) {
    const c = message.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return message;
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out += byte < 0x20 || byte > 0x7e || byte === 0x25
      ? '%' + byte.toString(16).toUpperCase().padStart(2, '0')
      : String.fromCharCode(byte);
  }
  return out;
}

/** Inverse of encodeGrpcMessage; malformed escapes are kept as they are, as the spec asks. */
export function decodeGrpcMessage(encoded: string): string {
  if (!encoded.includes('%')) return encoded;
  const parts: Buffer[] = [];
  let plainFrom = 0;
  for (let i = 0; i + 2 < encoded.length; i++) {
    if (encoded[i] === '%' && /^[0-9a-fA-F]{2}$/.test(encoded.slice(i + 1, i + 3))) {
      parts.push(Buffer.from(encoded.slice(plainFrom, i), 'utf8'));
      parts.push(Buffer.from([parseInt(encoded.slice(i + 1, i + 3), 16)]));
      i += 2;
      plainFrom = i + 1;
    }
  }
  parts.push(Buffer.from(encoded.slice(plainFrom), 'utf8'));
  return Buffer.concat(parts).toString('utf8');
}

/** Maps anything a handler threw to a status and message. */
export function toStatus(err: unknown): { code: Status; message: string } {
  if (err instanceof GrpcError) return { code: err.code, message: err.message };
  if (err instanceof Error) return { code: Status.INTERNAL, message: err.message };
  return { code: Status.INTERNAL, message: String(err) };
}
