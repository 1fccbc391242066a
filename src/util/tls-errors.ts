/** Telling TLS handshake failures apart, and saying them briefly (for the logs). */

/** A failed TLS handshake (an OpenSSL error: no, an untrusted or an expired certificate, …), not a hang-up. */
export function isTlsFailure(err: Error): boolean {
  return ((err as NodeJS.ErrnoException).code ?? '').startsWith('ERR_SSL_');
}

/** OpenSSL's reason ("peer did not return a certificate") instead of its long error string. */
export function tlsErrorText(err: Error): string {
  return (err as Error & { reason?: string }).reason ?? err.message;
}
