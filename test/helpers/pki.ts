/**
 * Certificates made at test time with the openssl command (Debian's openssl, installed by
 * .ci/run): a CA, a server certificate for 127.0.0.1 (also usable as a client certificate, as
 * members use their peer certificate both ways), a client certificate whose CN names a user, an
 * expired client certificate, one for another address only, and a second CA with a server and a
 * client certificate of its own.
 * EC P-256 keys: quick to make on a loaded machine.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const PKI_LIMITS = {
  /** One openssl invocation. */
  commandTimeoutMs: 20_000,
  /** Validity of the certificates that are meant to be valid. */
  validDays: 2,
} as const;

export interface KeyPair {
  readonly cert: string;
  readonly key: string;
}

export interface TestPki {
  readonly dir: string;
  readonly ca: string;
  /** The CA's key (to sign revocation lists). */
  readonly caKey: string;
  /** CN "server", SAN IP:127.0.0.1 and DNS:localhost; serverAuth and clientAuth. */
  readonly server: KeyPair;
  /** CN "alice", signed by the CA. */
  readonly client: KeyPair;
  /** CN "alice", signed by the CA, expired. */
  readonly expired: KeyPair;
  /** A second, unrelated CA and its certificates (the same names and SANs as above). */
  readonly otherCa: string;
  readonly otherServer: KeyPair;
  readonly otherClient: KeyPair;
  /** The server certificate with the key of the client certificate: they do not match. */
  readonly mismatched: KeyPair;
  /** CN "server", signed by the CA, for another address only (IP:192.0.2.1, a documentation address). */
  readonly elsewhere: KeyPair;
}

async function openssl(args: string[]): Promise<void> {
  await run('openssl', args, { timeout: PKI_LIMITS.commandTimeoutMs });
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

async function makeCa(dir: string, name: string): Promise<KeyPair> {
  const pair = { cert: join(dir, `${name}.pem`), key: join(dir, `${name}-key.pem`) };
  await openssl(['req', '-x509', ...EC_KEY, '-keyout', pair.key, '-out', pair.cert, '-days', String(PKI_LIMITS.validDays), '-subj', `/CN=${name}`]);
  return pair;
}

const LOCAL_SANS = 'IP:127.0.0.1,DNS:localhost';

async function issue(dir: string, name: string, ca: KeyPair, cn: string, days: number, sans = LOCAL_SANS): Promise<KeyPair> {
  const pair = { cert: join(dir, `${name}.pem`), key: join(dir, `${name}-key.pem`) };
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(
    ext,
    [
      'basicConstraints=CA:FALSE',
      'keyUsage=digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth,clientAuth',
      `subjectAltName=${sans}`,
    ].join('\n'),
  );
  await openssl(['req', ...EC_KEY, '-keyout', pair.key, '-out', csr, '-subj', `/CN=${cn}`]);
  // A negative -days gives a certificate whose notAfter is already past.
  await openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', `0x${randomBytes(16).toString('hex')}`, '-days', String(days), '-extfile', ext, '-out', pair.cert]);
  return pair;
}

/** Makes the whole set under `dir` (created if missing). */
export async function makeTestPki(dir: string): Promise<TestPki> {
  mkdirSync(dir, { recursive: true });
  const [ca, otherCa] = await Promise.all([makeCa(dir, 'ca'), makeCa(dir, 'other-ca')]);
  const [server, client, expired, otherServer, otherClient, elsewhere] = await Promise.all([
    issue(dir, 'server', ca, 'server', PKI_LIMITS.validDays),
    issue(dir, 'client', ca, 'alice', PKI_LIMITS.validDays),
    issue(dir, 'expired', ca, 'alice', -1),
    issue(dir, 'other-server', otherCa, 'server', PKI_LIMITS.validDays),
    issue(dir, 'other-client', otherCa, 'alice', PKI_LIMITS.validDays),
    issue(dir, 'elsewhere', ca, 'server', PKI_LIMITS.validDays, 'IP:192.0.2.1'),
  ]);
  return { dir, ca: ca.cert, caKey: ca.key, server, client, expired, otherCa: otherCa.cert, otherServer, otherClient, mismatched: { cert: server.cert, key: client.key }, elsewhere };
}

/**
 * Writes to `out` a revocation list (PEM) of the test CA that lists `revoked` (none: an empty
 * list), made with `openssl ca` and a throwaway database under the PKI's directory.
 */
export async function makeCrl(pki: TestPki, revoked: readonly KeyPair[], out: string): Promise<void> {
  const db = join(pki.dir, `crl-db-${randomBytes(4).toString('hex')}`);
  mkdirSync(db);
  writeFileSync(join(db, 'index.txt'), '');
  writeFileSync(join(db, 'crlnumber'), '01\n');
  const config = join(db, 'ca.cnf');
  writeFileSync(config, ['[ ca ]', 'default_ca = test_ca', '[ test_ca ]', `database = ${join(db, 'index.txt')}`, `crlnumber = ${join(db, 'crlnumber')}`, 'default_md = sha256', `default_crl_days = ${PKI_LIMITS.validDays}`].join('\n'));
  const ca = ['-config', config, '-keyfile', pki.caKey, '-cert', pki.ca];
  for (const pair of revoked) await openssl(['ca', ...ca, '-revoke', pair.cert]);
  await openssl(['ca', ...ca, '-gencrl', '-out', out]);
}
