/** Why a TLS handshake failed, briefly (for the logs). */
import type tls from 'node:tls';

/**
 * The reason a handshake on `socket` failed: node's verdict on the other side's certificate
 * (CERT_HAS_EXPIRED, UNABLE_TO_VERIFY_LEAF_SIGNATURE, …; node then closes the connection
 * itself) or OpenSSL's reason ("peer did not return a certificate", …). null when the other
 * side merely hung up.
 */
export function tlsHandshakeFailure(err: Error, socket: tls.TLSSocket): string | null {
  const verdict = socket.authorizationError as unknown;
  if (verdict !== null && verdict !== undefined) return `certificate rejected: ${String(verdict)}`;
  if (((err as NodeJS.ErrnoException).code ?? '').startsWith('ERR_SSL_')) return tlsErrorText(err);
  return null;
}

/** OpenSSL's reason ("peer did not return a certificate") instead of its long error string. */
export function tlsErrorText(err: Error): string {
  return (err as Error & { reason?: string }).reason ?? err.message;
}

/** The log line for a refused handshake, in etcd's words. */
export function rejectedConnectionText(reason: string, remote: string | undefined): string {
  return `rejected connection${remote === undefined ? '' : ` from "${remote}"`} (error "${reason}")`;
}
