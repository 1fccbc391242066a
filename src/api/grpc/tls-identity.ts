/**
 * The identity a client proved with its TLS certificate: the CN of a certificate that was
 * verified against the trusted CAs (etcd takes it as the user name under --client-cert-auth).
 * The mux tags the stream it hands to node's http2 session with it; calls read it back through
 * the session's socket (node's proxy passes property reads on to that stream).
 */
import type tls from 'node:tls';

const TLS_COMMON_NAME = Symbol('conclave.tlsCommonName');

type Tagged = { [TLS_COMMON_NAME]?: string };

/**
 * The CN of the client's verified certificate; undefined when the client sent none, it was not
 * verified (no client certificates requested) or it has no CN. With several CN attributes the
 * last counts, as Go's x509 reads them (and so etcd).
 */
export function verifiedCommonName(socket: tls.TLSSocket): string | undefined {
  if (!socket.authorized) return undefined;
  const cn = socket.getPeerCertificate().subject?.CN as string | string[] | undefined;
  const last = Array.isArray(cn) ? cn[cn.length - 1] : cn;
  return last === '' ? undefined : last;
}

export function tagTlsCommonName(stream: object, commonName: string): void {
  (stream as Tagged)[TLS_COMMON_NAME] = commonName;
}

/** The tag of the stream under an http2 session's socket (or undefined). */
export function taggedTlsCommonName(socket: object | undefined): string | undefined {
  return socket === undefined ? undefined : (socket as Tagged)[TLS_COMMON_NAME];
}
