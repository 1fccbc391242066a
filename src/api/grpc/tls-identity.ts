/**
 * The identity a client proved with its TLS certificate: the CN of a certificate that was
 * verified against the trusted CAs (etcd takes it as the user name under --client-cert-auth).
 * The mux records it for the http2 session it creates for the connection; calls look it up by
 * their stream's session.
 */
import type http2 from 'node:http2';
import type tls from 'node:tls';

const commonNames = new WeakMap<http2.Http2Session, string>();

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

export function setSessionCommonName(session: http2.Http2Session, commonName: string): void {
  commonNames.set(session, commonName);
}

export function sessionCommonName(session: http2.Http2Session | undefined): string | undefined {
  return session === undefined ? undefined : commonNames.get(session);
}
