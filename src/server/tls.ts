/**
 * TLS of the client port and of the peer transport, with etcd's flags and meanings:
 *
 *  - --cert-file / --key-file: this member's certificate and key; an https:// listen URL needs
 *    them (or --auto-tls), an http:// one ignores them;
 *  - --trusted-ca-file: the CA certificates (PEM) that a connecting client's certificate must
 *    chain to. As in etcd 3.4, giving it already requires a client certificate;
 *  - --client-cert-auth: require and verify a client certificate (against the system's CAs if
 *    no --trusted-ca-file is given). The verified certificate's CN is the user, as in etcd;
 *  - --auto-tls: no files given, use a self-signed certificate (self-signed-cert.ts); given
 *    files win, with a warning;
 *  - --client-crl-file: certificate revocation lists (PEM); a connecting client whose certificate
 *    one of them lists is refused at the handshake;
 *  - the --peer-* flags mean the same for peer connections, in both directions: the listener
 *    serves the peer certificate (and with --peer-client-cert-auth requires one from the
 *    dialing member, chained to --peer-trusted-ca-file), and the dialer presents the same
 *    certificate and verifies the listener's against --peer-trusted-ca-file and the peer URL's
 *    host. A --peer-auto-tls certificate cannot be verified by the other members, so with it
 *    peers' certificates are not checked when dialing (etcd does the same), and requiring peer
 *    client certificates with it is refused at startup (etcd 3.4 silently drops that check).
 *
 * Files are read and checked at startup; a bad one stops the member with etcd's wording
 * ("open …: no such file or directory", "tls: private key does not match public key", …),
 * prefixed by the flag that named it. Replaced files are read and checked the same way again
 * (tls-reload.ts).
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type tls from 'node:tls';
import { ConfigError, type ServerConfig, type TlsSettings } from './config.ts';
import { selfSignedCert } from './self-signed-cert.ts';
import { opensslCiphers } from './cipher-suites.ts';

export type TlsRole = 'client' | 'peer';

/** One side's certificate material, loaded and checked. */
export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** CA certificates that the other side's certificate must chain to; undefined: the system's. */
  readonly ca: Buffer | undefined;
  /** Revocation lists a connecting side's certificate is checked against; undefined: none. */
  readonly crl: Buffer | undefined;
  /** Require a verified certificate from whoever connects. */
  readonly clientCertAuth: boolean;
  /** The certificate is our own --auto-tls one: others' certificates are not verified on dialing. */
  readonly selfSigned: boolean;
  /** OpenSSL's cipher list from --cipher-suites; undefined: the library's defaults. */
  readonly ciphers: string | undefined;
}

export interface ServerTls {
  readonly client: TlsMaterial | null;
  readonly peer: TlsMaterial | null;
}

export interface TlsLog {
  info(message: string): void;
  warn(message: string): void;
}

const FLAGS: Record<TlsRole, { cert: string; key: string; ca: string; clientCertAuth: string; autoTls: string; crl: string }> = {
  client: { cert: '--cert-file', key: '--key-file', ca: '--trusted-ca-file', clientCertAuth: '--client-cert-auth', autoTls: '--auto-tls', crl: '--client-crl-file' },
  peer: { cert: '--peer-cert-file', key: '--peer-key-file', ca: '--peer-trusted-ca-file', clientCertAuth: '--peer-client-cert-auth', autoTls: '--peer-auto-tls', crl: '--peer-crl-file' },
};

/** Reads a file; a failure reads as Go's "open <path>: <reason>", after the flag. */
function readFile(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    const reason = /^[A-Z]+: (.*?), /.exec((e as Error).message)?.[1] ?? (e as Error).message;
    throw new ConfigError(`${flag}: open ${path}: ${reason}`);
  }
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function certificates(pem: Buffer): X509Certificate[] {
  return (pem.toString('latin1').match(PEM_CERTIFICATE) ?? []).map((block) => new X509Certificate(block));
}

/** Runs `what`; a failure becomes a ConfigError that names the flag and file (`message`). */
function orConfigError<T>(what: () => T, message: string): T {
  try {
    return what();
  } catch (e) {
    throw new ConfigError(`${message}: ${(e as Error).message}`);
  }
}

/** The hosts of URLs, for the subject alternative names of a self-signed certificate. */
function hostsOf(urls: readonly string[]): string[] {
  return urls.map((u) => new URL(u).hostname.replace(/^\[|\]$/g, ''));
}

/**
 * Loads one side's TLS material: null when no certificate is configured (and no auto-TLS).
 * Throws ConfigError for a missing or unreadable file, a certificate or key that is not PEM, a
 * key that does not belong to the certificate, or a CA file without a certificate.
 */
async function loadTls(role: TlsRole, settings: TlsSettings, cipherSuites: readonly string[], listenUrls: readonly string[], dataDir: string, log: TlsLog): Promise<TlsMaterial | null> {
  const flags = FLAGS[role];
  let { certFile, keyFile } = settings;
  let selfSigned = false;
  if (settings.autoTls) {
    if (certFile !== '' || keyFile !== '') {
      log.warn(`ignoring ${role} auto TLS since certs given`);
    } else {
      if (role === 'peer' && (settings.clientCertAuth || settings.trustedCaFile !== '')) {
        // etcd 3.4 drops the client-certificate check here; we refuse rather than weaken it.
        throw new ConfigError('--peer-auto-tls cannot be combined with --peer-client-cert-auth or --peer-trusted-ca-file: no CA vouches for the other members\' self-signed certificates; give --peer-cert-file and --peer-key-file instead');
      }
      const usage = role === 'peer' ? (['serverAuth', 'clientAuth'] as const) : (['serverAuth'] as const);
      const made = await selfSignedCert(join(dataDir, 'fixtures', role), hostsOf(listenUrls), usage).catch((e: unknown) => {
        throw new ConfigError(`${flags.autoTls}: ${(e as Error).message}`);
      });
      if (made.created) log.info(`created a self-signed ${role} certificate ${made.certFile}`);
      ({ certFile, keyFile } = made);
      selfSigned = true;
    }
  }
  if (certFile === '' && keyFile === '') return null;
  if (certFile === '' || keyFile === '') throw new ConfigError(`KeyFile and CertFile must both be present[key: ${keyFile}, cert: ${certFile}] (${flags.key}, ${flags.cert})`);

  const cert = readFile(certFile, flags.cert);
  const key = readFile(keyFile, flags.key);
  const chain = orConfigError(() => certificates(cert), `${flags.cert}: ${certFile}`);
  const leaf = chain[0];
  if (leaf === undefined) throw new ConfigError(`${flags.cert}: ${certFile}: tls: failed to find any PEM data in certificate input`);
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key.toString('latin1'))) throw new ConfigError(`${flags.key}: ${keyFile}: tls: failed to find any PEM data in key input`);
  const privateKey = orConfigError(() => createPrivateKey(key), `${flags.key}: ${keyFile}`);
  if (!leaf.checkPrivateKey(privateKey)) throw new ConfigError(`${flags.key}: ${keyFile}: tls: private key does not match public key (${flags.cert} ${certFile})`);

  let ca: Buffer | undefined;
  if (settings.trustedCaFile !== '') {
    ca = readFile(settings.trustedCaFile, flags.ca);
    const authorities = orConfigError(() => certificates(ca!), `${flags.ca}: ${settings.trustedCaFile}`);
    if (authorities.length === 0) throw new ConfigError(`${flags.ca}: ${settings.trustedCaFile}: no PEM certificate found`);
  }
  let crl: Buffer | undefined;
  if (settings.crlFile !== '') {
    crl = readFile(settings.crlFile, flags.crl);
    if (!/-----BEGIN X509 CRL-----/.test(crl.toString('latin1'))) throw new ConfigError(`${flags.crl}: ${settings.crlFile}: no PEM certificate revocation list found`);
  }
  return { cert, key, ca, crl, clientCertAuth: settings.clientCertAuth || ca !== undefined, selfSigned, ciphers: opensslCiphers(cipherSuites) };
}

/** Throws etcd's error for an https:// URL when there is no certificate to serve it with. */
export function requireTlsFor(role: TlsRole, urls: readonly string[], material: TlsMaterial | null): void {
  if (material !== null) return;
  for (const url of urls) {
    const u = new URL(url);
    if (u.protocol !== 'https:') continue;
    if (role === 'client') throw new ConfigError(`TLS key/cert (--cert-file, --key-file) must be provided for client url ${url} with HTTPS scheme`);
    throw new ConfigError(`cannot listen on TLS for ${u.host}: KeyFile and CertFile are not presented (--peer-cert-file, --peer-key-file)`);
  }
}

/** One side's TLS settings and listen URLs in a member's configuration. */
function sideOf(role: TlsRole, config: ServerConfig): { settings: TlsSettings; urls: readonly string[] } {
  return role === 'client' ? { settings: config.clientTls, urls: config.listenClientUrls } : { settings: config.peerTls, urls: config.listenPeerUrls };
}

/** One side's files, read and checked (at startup, and again when they are replaced). */
export function readRoleTls(role: TlsRole, config: ServerConfig, log: TlsLog): Promise<TlsMaterial | null> {
  const { settings, urls } = sideOf(role, config);
  return loadTls(role, settings, config.cipherSuites, urls, config.dataDir, log);
}

/** The files one side's material comes from (what a rotation replaces). */
export function roleTlsFiles(role: TlsRole, config: ServerConfig): string[] {
  const { settings } = sideOf(role, config);
  return [settings.certFile, settings.keyFile, settings.trustedCaFile, settings.crlFile].filter((p) => p !== '');
}

/** One side's material for a member's listen URLs, checked against their schemes. */
export async function loadRoleTls(role: TlsRole, config: ServerConfig, log: TlsLog): Promise<TlsMaterial | null> {
  const { settings, urls } = sideOf(role, config);
  const material = await readRoleTls(role, config, log);
  requireTlsFor(role, urls, material);
  // As etcd: an http:// URL is served in plaintext even when a certificate is configured.
  for (const url of urls.filter((u) => new URL(u).protocol === 'http:')) {
    if (material !== null) log.warn(`scheme is HTTP while key and cert files are present; ignoring key and cert files (${role} url ${url})`);
    if (settings.clientCertAuth) log.warn(`scheme is HTTP while ${FLAGS[role].clientCertAuth} is enabled; ignoring client cert auth for this URL (${url})`);
  }
  return material;
}

/** Loads and checks both sides' TLS material of a member, before anything listens. */
export async function loadServerTls(config: ServerConfig, log: TlsLog): Promise<ServerTls> {
  return { client: await loadRoleTls('client', config, log), peer: await loadRoleTls('peer', config, log) };
}

/** Options of a TLS server (the client port, the peer listener). */
export function serverOptions(m: TlsMaterial): tls.TlsOptions {
  return {
    cert: m.cert,
    key: m.key,
    ca: m.ca,
    requestCert: m.clientCertAuth,
    rejectUnauthorized: m.clientCertAuth,
    ...(m.crl !== undefined ? { crl: m.crl } : {}),
    ...(m.ciphers !== undefined ? { ciphers: m.ciphers } : {}),
  };
}

/** Options for dialing a peer: our certificate as client certificate, the peer's verified unless self-signed. */
export function dialOptions(m: TlsMaterial | null): tls.ConnectionOptions {
  if (m === null) return {};
  return { cert: m.cert, key: m.key, ca: m.ca, rejectUnauthorized: !m.selfSigned, ...(m.ciphers !== undefined ? { ciphers: m.ciphers } : {}) };
}
