/** The gRPC transport of the client port: see server.ts (calls, codecs) and mux.ts (one port). */
export {
  bidiStream,
  clientStream,
  GrpcServer,
  serverStream,
  unary,
  unaryMessage,
  type BidiStream,
  type BidiStreamHandler,
  type CallContext,
  type ClientStream,
  type ClientStreamHandler,
  type GrpcServerOptions,
  type Int64In,
  type Int64Out,
  type Metadata,
  type MethodImpl,
  type MethodKind,
  type ServerStream,
  type ServerStreamHandler,
  type ServiceImpl,
  type UnaryEncoding,
  type UnaryHandler,
} from './server.ts';
export { GrpcError, Status, decodeGrpcMessage, encodeGrpcMessage, statusText } from './status.ts';
export {
  HTTP2_PREFACE,
  listenClientPort,
  type ClientPort,
  type ClientPortOptions,
  type Http1RequestHandler,
  type Http2StreamHandler,
} from './mux.ts';
export { FrameBuilder } from './framing.ts';
export * as grpcLimits from './limits.ts';
