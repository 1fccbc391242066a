/**
 * --auto-tls and --peer-auto-tls: a self-signed certificate made at first start and kept in
 * <data-dir>/fixtures/client or /peer (cert.pem, key.pem), reused as it is on later starts, as
 * etcd does. Like etcd's: an ECDSA P-521 key, valid for a year, subject O=conclave, the hosts of
 * the listen URLs as IP or DNS subject alternative names, serverAuth (and clientAuth for peers,
 * who present it when they dial).
 *
 * Node cannot create X.509 certificates, so this runs the openssl command (Debian's openssl,
 * on the base image and installed by .ci/run). A small npm package could do it in-process
 * instead; until one is adopted, the command's absence is a clear startup error.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const SELF_SIGNED_CERT_LIMITS = {
  /** Validity of a generated certificate (etcd: one year). */
  validityDays: 365,
  /** How long openssl may take to make the key and the certificate. */
  commandTimeoutMs: 30_000,
} as const;

export interface CertFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

/** `hosts` are host names or IP addresses (IPv6 without brackets). */
export async function selfSignedCert(dir: string, hosts: readonly string[], extendedKeyUsage: readonly ('serverAuth' | 'clientAuth')[]): Promise<CertFiles & { created: boolean }> {
  const files = { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem') };
  if (existsSync(files.certFile) && existsSync(files.keyFile)) return { ...files, created: false };
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const names = [...new Set(hosts)].map((h) => (isIP(h) !== 0 ? `IP:${h}` : `DNS:${h}`));
  // Our own config, so that the system's openssl.cnf (its default CA extensions) has no say.
  const config = [
    '[req]',
    'distinguished_name = dn',
    'x509_extensions = ext',
    'prompt = no',
    '[dn]',
    'O = conclave',
    '[ext]',
    'basicConstraints = critical, CA:FALSE',
    'keyUsage = critical, digitalSignature, keyEncipherment',
    `extendedKeyUsage = ${extendedKeyUsage.join(', ')}`,
    ...(names.length > 0 ? [`subjectAltName = ${names.join(', ')}`] : []),
    '',
  ].join('\n');
  const tmp = { config: join(dir, 'openssl.cnf.tmp'), cert: `${files.certFile}.tmp`, key: `${files.keyFile}.tmp` };
  await writeFile(tmp.config, config);
  try {
    await run(
      'openssl',
      ['req', '-x509', '-config', tmp.config, '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-521', '-nodes', '-keyout', tmp.key, '-out', tmp.cert, '-days', String(SELF_SIGNED_CERT_LIMITS.validityDays)],
      { timeout: SELF_SIGNED_CERT_LIMITS.commandTimeoutMs },
    );
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    const why = err.code === 'ENOENT' ? 'the openssl command was not found' : (err.stderr ?? '').trim() || err.message;
    throw new Error(`cannot generate a self-signed certificate in ${dir}: ${why}`, { cause: e });
  } finally {
    await rm(tmp.config, { force: true });
  }
  await chmod(tmp.key, 0o600);
  // The key first: a cert.pem present means both are complete.
  await rename(tmp.key, files.keyFile);
  await rename(tmp.cert, files.certFile);
  return { ...files, created: true };
}
