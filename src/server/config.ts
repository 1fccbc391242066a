/**
 * A member's configuration, under etcd's flag names and meanings so etcd operators feel at
 * home. Each setting comes from (highest first) a command-line flag, a CONCLAVE_* environment
 * variable (flag name upper-cased, dashes as underscores: CONCLAVE_DATA_DIR), a config file
 * (--config-file: flat `flag-name: value` lines, as in etcd's YAML file), or the default.
 */
import { readFileSync } from 'node:fs';
import { AUTH_LIMITS, AuthOptionsError, parseTokenOptions, type TokenOptions } from '../auth/index.ts';
import { OPENSSL_CIPHER_OF, REFUSED_WEAK_SUITES } from './cipher-suites.ts';

export const SERVER_DEFAULTS = {
  name: 'default',
  /** Default: `${name}.conclave` in the working directory. */
  dataDir: '',
  /** Default: the WAL lives in <data-dir>/member/wal. */
  walDir: '',
  listenClientUrls: 'http://127.0.0.1:2379',
  advertiseClientUrls: 'http://127.0.0.1:2379',
  listenPeerUrls: 'http://127.0.0.1:2380',
  initialAdvertisePeerUrls: 'http://127.0.0.1:2380',
  /** Default: `${name}=${initialAdvertisePeerUrls}`. */
  initialCluster: '',
  initialClusterState: 'new',
  initialClusterToken: 'conclave-cluster',
  /** Milliseconds between leader heartbeats (one Raft tick). */
  heartbeatInterval: 100,
  /** Milliseconds without a leader before a follower campaigns. */
  electionTimeout: 1000,
  /** Applied entries between Raft snapshots (after which the WAL and log are compacted). */
  snapshotCount: 100_000,
  /** Entries kept in the log behind a snapshot so slow followers catch up without one. */
  snapshotCatchUpEntries: 5_000,
  /** Backend size at which the NOSPACE alarm is raised; 0 means the default of 2 GiB. */
  quotaBackendBytes: 0,
  /** How often the leader compares members' key-space hashes (a Go duration, as etcd's flag); 0s: never. */
  experimentalCorruptCheckTime: '0s',
  /** Compare this member's key-space hash with the others' before serving clients; refuse to start on a difference. */
  experimentalInitialCorruptCheck: 'false',
  /** Largest client request accepted (etcd: 1.5 MiB). */
  maxRequestBytes: 1.5 * 1024 * 1024,
  /** Most operations in one list of a transaction. */
  maxTxnOps: 128,
  logLevel: 'info',
  /** Refuse membership changes that could cost the cluster its quorum (etcd's default: true). */
  strictReconfigCheck: true,
  // Client TLS (the client port), etcd's flags: see tls.ts.
  certFile: '',
  keyFile: '',
  trustedCaFile: '',
  clientCertAuth: false,
  autoTls: false,
  clientCrlFile: '',
  // Peer TLS (the peer transport).
  peerCertFile: '',
  peerKeyFile: '',
  peerTrustedCaFile: '',
  peerClientCertAuth: false,
  peerAutoTls: false,
  peerCrlFile: '',
  /** TLS 1.2 cipher suites (IANA names, comma-separated) for client and peer TLS; '' = the library's defaults. */
  cipherSuites: '',
  /** With peer client-certificate auth: the only Common Name a member's certificate may carry ('' = any). */
  peerCertAllowedCn: '',
  /** Token kind: "simple", or "jwt,pub-key=…,priv-key=…,sign-method=…[,ttl=…]" (etcd's --auth-token). */
  authToken: 'simple',
  /** Seconds an unused simple token lives. */
  authTokenTtl: AUTH_LIMITS.simpleTokenTtlSecondsDefault,
} as const;

export const QUOTA_BACKEND_BYTES_DEFAULT = 2 * 1024 * 1024 * 1024;
/** etcd's warning threshold: quotas above this are allowed but discouraged. */
export const QUOTA_BACKEND_BYTES_MAX = 8 * 1024 * 1024 * 1024;

/** One side's TLS flags (client or peer), as given; tls.ts loads and checks the files. */
export interface TlsSettings {
  /** PEM certificate and key of this member ('' = none). */
  readonly certFile: string;
  readonly keyFile: string;
  /** PEM CA certificates the other side's certificate must chain to ('' = the system's). */
  readonly trustedCaFile: string;
  /** Require a certificate from whoever connects (etcd: also implied by trustedCaFile). */
  readonly clientCertAuth: boolean;
  /** Make (or reuse) a self-signed certificate under <data-dir>/fixtures when no files are given. */
  readonly autoTls: boolean;
  /** PEM certificate revocation lists: a connecting side's certificate listed there is refused ('' = none). */
  readonly crlFile: string;
}

export interface ServerConfig {
  readonly name: string;
  readonly dataDir: string;
  /** A separate directory for the write-ahead log ('' : <data-dir>/member/wal), e.g. on a faster disk. */
  readonly walDir: string;
  readonly listenClientUrls: readonly string[];
  readonly advertiseClientUrls: readonly string[];
  readonly listenPeerUrls: readonly string[];
  readonly initialAdvertisePeerUrls: readonly string[];
  /** name → peer URLs of the initial members. */
  readonly initialCluster: ReadonlyMap<string, readonly string[]>;
  readonly initialClusterState: 'new' | 'existing';
  readonly initialClusterToken: string;
  readonly heartbeatInterval: number;
  readonly electionTimeout: number;
  readonly snapshotCount: number;
  readonly snapshotCatchUpEntries: number;
  readonly quotaBackendBytes: number;
  /** Milliseconds between the leader's consistency checks; 0: none. */
  readonly corruptCheckIntervalMs: number;
  readonly initialCorruptCheck: boolean;
  readonly maxRequestBytes: number;
  readonly maxTxnOps: number;
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error';
  readonly strictReconfigCheck: boolean;
  readonly clientTls: TlsSettings;
  readonly peerTls: TlsSettings;
  /** '' = any Common Name (see SERVER_DEFAULTS). */
  readonly peerCertAllowedCn: string;
  /** IANA names, checked against OPENSSL_CIPHER_OF; empty: the library's defaults. */
  readonly cipherSuites: readonly string[];
  readonly authToken: TokenOptions;
  /** Seconds. */
  readonly authTokenTtl: number;
}

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Key = keyof typeof SERVER_DEFAULTS;

/** Flag name (kebab-case, as etcd spells it) of each setting. */
export const FLAG_NAMES: Record<Key, string> = {
  name: 'name',
  dataDir: 'data-dir',
  walDir: 'wal-dir',
  listenClientUrls: 'listen-client-urls',
  advertiseClientUrls: 'advertise-client-urls',
  listenPeerUrls: 'listen-peer-urls',
  initialAdvertisePeerUrls: 'initial-advertise-peer-urls',
  initialCluster: 'initial-cluster',
  initialClusterState: 'initial-cluster-state',
  initialClusterToken: 'initial-cluster-token',
  heartbeatInterval: 'heartbeat-interval',
  electionTimeout: 'election-timeout',
  snapshotCount: 'snapshot-count',
  snapshotCatchUpEntries: 'snapshot-catchup-entries',
  quotaBackendBytes: 'quota-backend-bytes',
  experimentalCorruptCheckTime: 'experimental-corrupt-check-time',
  experimentalInitialCorruptCheck: 'experimental-initial-corrupt-check',
  maxRequestBytes: 'max-request-bytes',
  maxTxnOps: 'max-txn-ops',
  logLevel: 'log-level',
  strictReconfigCheck: 'strict-reconfig-check',
  certFile: 'cert-file',
  keyFile: 'key-file',
  trustedCaFile: 'trusted-ca-file',
  clientCertAuth: 'client-cert-auth',
  autoTls: 'auto-tls',
  clientCrlFile: 'client-crl-file',
  peerCertFile: 'peer-cert-file',
  peerKeyFile: 'peer-key-file',
  peerTrustedCaFile: 'peer-trusted-ca-file',
  peerClientCertAuth: 'peer-client-cert-auth',
  peerAutoTls: 'peer-auto-tls',
  peerCrlFile: 'peer-crl-file',
  peerCertAllowedCn: 'peer-cert-allowed-cn',
  cipherSuites: 'cipher-suites',
  authToken: 'auth-token',
  authTokenTtl: 'auth-token-ttl',
};

export const FLAG_HELP: Record<Key, string> = {
  name: 'human-readable name for this member',
  dataDir: 'path to the data directory (default "${name}.conclave")',
  walDir: 'path to a separate directory for the write-ahead log (default "${data-dir}/member/wal")',
  listenClientUrls: 'comma-separated URLs to listen on for client traffic',
  advertiseClientUrls: 'comma-separated client URLs of this member to advertise to the cluster',
  listenPeerUrls: 'comma-separated URLs to listen on for peer traffic',
  initialAdvertisePeerUrls: "comma-separated peer URLs of this member to advertise to the rest of the cluster",
  initialCluster: 'initial cluster configuration for bootstrapping: name=peerURL,… (default "${name}=${initial-advertise-peer-urls}")',
  initialClusterState: "initial cluster state ('new' or 'existing')",
  initialClusterToken: 'initial cluster token, distinguishing clusters bootstrapped with the same peer URLs',
  heartbeatInterval: 'time (in milliseconds) of a heartbeat interval',
  electionTimeout: 'time (in milliseconds) for an election to timeout',
  snapshotCount: 'number of committed transactions to trigger a snapshot to disk',
  snapshotCatchUpEntries: 'number of entries kept for slow followers after a snapshot',
  quotaBackendBytes: 'raise alarms when backend size exceeds the given quota (0 defaults to 2 GiB)',
  experimentalCorruptCheckTime: 'duration of time between cluster corruption check passes (e.g. 30s, 5m; 0s disables them)',
  experimentalInitialCorruptCheck: 'enable to check data corruption before serving any client/peer traffic (true or false)',
  maxRequestBytes: 'maximum client request size in bytes the server will accept',
  maxTxnOps: 'maximum number of operations permitted in a transaction',
  logLevel: "log level: 'debug', 'info', 'warn' or 'error'",
  strictReconfigCheck: 'reject reconfiguration requests that would cause quorum loss',
  certFile: 'path to the client server TLS cert file',
  keyFile: 'path to the client server TLS key file',
  trustedCaFile: 'path to the client server TLS trusted CA cert file (client certificates are then required)',
  clientCertAuth: 'enable client cert authentication',
  autoTls: 'client TLS using generated certificates',
  clientCrlFile: 'path to the client certificate revocation list (PEM): a client certificate listed there is refused',
  peerCertFile: 'path to the peer server TLS cert file',
  peerKeyFile: 'path to the peer server TLS key file',
  peerTrustedCaFile: 'path to the peer server TLS trusted CA file (peer certificates are then required)',
  peerClientCertAuth: 'enable peer client cert authentication',
  peerAutoTls: 'peer TLS using generated certificates',
  peerCrlFile: 'path to the peer certificate revocation list (PEM): a member certificate listed there is refused',
  peerCertAllowedCn: 'allowed CN for inter peer authentication',
  cipherSuites: 'comma-separated TLS 1.2 cipher suites (IANA names) for client and peer TLS; empty: the TLS library\'s defaults',
  authToken: "auth token type and options: 'simple' or 'jwt,pub-key=<file>,priv-key=<file>,sign-method=<RS256|…|ES512>[,ttl=5m]'",
  authTokenTtl: 'time (in seconds) of the auth-token-ttl (simple tokens)',
};

/** Settings that are switches: `--flag` alone means true, as with etcd's boolean flags. */
export function isBooleanSetting(key: Key): boolean {
  return typeof SERVER_DEFAULTS[key] === 'boolean';
}

/**
 * etcd's config file nests the TLS settings in two sections; a setting inside one is read as the
 * flag of that name, with the section's prefix.
 */
const CONFIG_FILE_SECTIONS: Record<string, string> = {
  'client-transport-security': '',
  'peer-transport-security': 'peer-',
};

/** Settings whose name in a config-file section is not the flag's name with the section's prefix. */
const CONFIG_FILE_RENAMES: Record<string, string> = {
  'peer-allowed-cn': 'peer-cert-allowed-cn',
  'crl-file': 'client-crl-file',
};

/**
 * Reads etcd's config-file format: `key: value` lines, `#` comments, optional quotes, and the
 * indented settings of the client-transport-security and peer-transport-security sections.
 */
export function parseConfigFile(text: string, path: string): Record<string, string> {
  const out: Record<string, string> = {};
  let prefix: string | null = null;
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/\s+#.*$/, '').trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^([A-Za-z0-9_-]+)\s*:\s*(.*)$/.exec(line);
    if (m === null) throw new ConfigError(`${path}:${i + 1}: expected "key: value", got "${raw.trim()}"`);
    const indented = /^\s/.test(raw);
    if (!indented) prefix = null;
    let value = m[2]!.trim();
    if (!indented && value === '' && CONFIG_FILE_SECTIONS[m[1]!] !== undefined) {
      prefix = CONFIG_FILE_SECTIONS[m[1]!]!;
      return;
    }
    if (/^(['"]).*\1$/.test(value)) value = value.slice(1, -1);
    if (value === 'null' || value === '~') return;
    const key = `${indented && prefix !== null ? prefix : ''}${m[1]!}`;
    out[CONFIG_FILE_RENAMES[key] ?? key] = value;
  });
  return out;
}

/** The --cipher-suites list, with etcd's error for a name it does not know. */
function cipherSuites(value: string): string[] {
  const suites = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const s of suites) {
    if (REFUSED_WEAK_SUITES.has(s)) throw new ConfigError(`TLS cipher suite "${s}" (RC4 or 3DES) is not supported: choose an AES-GCM, AES-CBC or CHACHA20 suite`);
    if (!OPENSSL_CIPHER_OF.has(s)) throw new ConfigError(`unexpected TLS cipher suite "${s}"`);
  }
  return suites;
}

function urls(value: string, flag: string): string[] {
  const list = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (list.length === 0) throw new ConfigError(`--${flag} must not be empty`);
  for (const u of list) {
    let parsed: URL;
    try {
      parsed = new URL(u);
    } catch {
      throw new ConfigError(`--${flag}: "${u}" is not a valid URL`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new ConfigError(`--${flag}: URL scheme must be http or https: ${u}`);
    if (parsed.port === '') throw new ConfigError(`--${flag}: URL must include a port: ${u}`);
  }
  return list;
}

function positiveInt(value: string, flag: string, allowZero = false): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || (!allowZero && n === 0)) throw new ConfigError(`--${flag} must be a ${allowZero ? 'non-negative' : 'positive'} integer, got "${value}"`);
  return n;
}

const DURATION_UNITS_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A Go duration ("1m30s", "500ms", "0s"), as etcd's duration flags take, in whole milliseconds. */
export function parseDuration(value: string, flag: string): number {
  const parts = /^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$/.test(value) ? value.match(/\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h)/g)! : value === '0' ? ['0ms'] : null;
  if (parts === null) throw new ConfigError(`--${flag}: invalid duration "${value}" (e.g. 30s, 5m, 1h30m)`);
  let ms = 0;
  for (const p of parts) {
    const [, n, unit] = /^(\d+(?:\.\d+)?)(.+)$/.exec(p)!;
    ms += Number(n) * DURATION_UNITS_MS[unit!]!;
  }
  return Math.round(ms);
}

/** Go's strconv.ParseBool, which etcd's boolean flags use. */
function bool(value: string, flag: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false;
  throw new ConfigError(`invalid boolean value "${value}" for --${flag}`);
}

function parseInitialCluster(value: string): Map<string, string[]> {
  const members = new Map<string, string[]>();
  for (const part of value.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new ConfigError(`--initial-cluster: expected name=URL, got "${part}"`);
    const name = part.slice(0, eq);
    const list = members.get(name) ?? [];
    list.push(...urls(part.slice(eq + 1), 'initial-cluster'));
    members.set(name, list);
  }
  return members;
}

/**
 * Resolves the configuration. `flags` holds the flags given on the command line (by flag
 * name); `env` is the process environment.
 */
export function resolveConfig(flags: Readonly<Record<string, string | undefined>>, env: NodeJS.ProcessEnv): ServerConfig {
  const configFile = flags['config-file'] ?? env.CONCLAVE_CONFIG_FILE;
  const file = configFile !== undefined ? parseConfigFile(readFileSync(configFile, 'utf8'), configFile) : {};
  const known = new Set(Object.values(FLAG_NAMES));
  for (const k of Object.keys(file)) if (!known.has(k)) throw new ConfigError(`${configFile}: unknown setting "${k}"`);

  const raw = (key: Key): string => {
    const flag = FLAG_NAMES[key];
    return flags[flag] ?? env[`CONCLAVE_${flag.toUpperCase().replace(/-/g, '_')}`] ?? file[flag] ?? String(SERVER_DEFAULTS[key]);
  };

  const name = raw('name');
  const initialAdvertisePeerUrls = urls(raw('initialAdvertisePeerUrls'), FLAG_NAMES.initialAdvertisePeerUrls);
  const clusterSpec = raw('initialCluster') || `${name}=${initialAdvertisePeerUrls.join(`,${name}=`)}`;
  const initialCluster = parseInitialCluster(clusterSpec);
  const mine = initialCluster.get(name);
  if (mine === undefined) throw new ConfigError(`couldn't find local name "${name}" in the initial cluster configuration`);
  const advertised = [...initialAdvertisePeerUrls].sort().join(',');
  if ([...mine].sort().join(',') !== advertised) {
    throw new ConfigError(`--initial-cluster has ${name}=${mine.join(',')} but missing from --initial-advertise-peer-urls=${initialAdvertisePeerUrls.join(',')}`);
  }

  const state = raw('initialClusterState');
  if (state !== 'new' && state !== 'existing') throw new ConfigError(`--initial-cluster-state must be "new" or "existing", got "${state}"`);
  const logLevel = raw('logLevel');
  if (logLevel !== 'debug' && logLevel !== 'info' && logLevel !== 'warn' && logLevel !== 'error') {
    throw new ConfigError(`--log-level must be one of debug, info, warn, error; got "${logLevel}"`);
  }
  const heartbeatInterval = positiveInt(raw('heartbeatInterval'), FLAG_NAMES.heartbeatInterval);
  const electionTimeout = positiveInt(raw('electionTimeout'), FLAG_NAMES.electionTimeout);
  // etcd's rule: an election timeout must span several heartbeats, or followers campaign needlessly.
  if (electionTimeout < 5 * heartbeatInterval) {
    throw new ConfigError(`--election-timeout[${electionTimeout}ms] should be at least as 5 times as --heartbeat-interval[${heartbeatInterval}ms]`);
  }
  const quota = positiveInt(raw('quotaBackendBytes'), FLAG_NAMES.quotaBackendBytes, true);
  const tlsSettings = (keys: readonly [Key, Key, Key, Key, Key, Key]): TlsSettings => ({
    certFile: raw(keys[0]),
    keyFile: raw(keys[1]),
    trustedCaFile: raw(keys[2]),
    clientCertAuth: bool(raw(keys[3]), FLAG_NAMES[keys[3]]),
    autoTls: bool(raw(keys[4]), FLAG_NAMES[keys[4]]),
    crlFile: raw(keys[5]),
  });
  let authToken: TokenOptions;
  try {
    authToken = parseTokenOptions(raw('authToken'));
  } catch (e) {
    if (e instanceof AuthOptionsError) throw new ConfigError(e.message);
    throw e;
  }

  return {
    name,
    dataDir: raw('dataDir') || `${name}.conclave`,
    walDir: raw('walDir'),
    listenClientUrls: urls(raw('listenClientUrls'), FLAG_NAMES.listenClientUrls),
    advertiseClientUrls: urls(raw('advertiseClientUrls'), FLAG_NAMES.advertiseClientUrls),
    listenPeerUrls: urls(raw('listenPeerUrls'), FLAG_NAMES.listenPeerUrls),
    initialAdvertisePeerUrls,
    initialCluster,
    initialClusterState: state,
    initialClusterToken: raw('initialClusterToken'),
    heartbeatInterval,
    electionTimeout,
    snapshotCount: positiveInt(raw('snapshotCount'), FLAG_NAMES.snapshotCount),
    snapshotCatchUpEntries: positiveInt(raw('snapshotCatchUpEntries'), FLAG_NAMES.snapshotCatchUpEntries),
    quotaBackendBytes: quota === 0 ? QUOTA_BACKEND_BYTES_DEFAULT : quota,
    corruptCheckIntervalMs: parseDuration(raw('experimentalCorruptCheckTime'), FLAG_NAMES.experimentalCorruptCheckTime),
    initialCorruptCheck: bool(raw('experimentalInitialCorruptCheck'), FLAG_NAMES.experimentalInitialCorruptCheck),
    maxRequestBytes: positiveInt(raw('maxRequestBytes'), FLAG_NAMES.maxRequestBytes),
    maxTxnOps: positiveInt(raw('maxTxnOps'), FLAG_NAMES.maxTxnOps),
    logLevel,
    strictReconfigCheck: bool(raw('strictReconfigCheck'), FLAG_NAMES.strictReconfigCheck),
    clientTls: tlsSettings(['certFile', 'keyFile', 'trustedCaFile', 'clientCertAuth', 'autoTls', 'clientCrlFile']),
    peerTls: tlsSettings(['peerCertFile', 'peerKeyFile', 'peerTrustedCaFile', 'peerClientCertAuth', 'peerAutoTls', 'peerCrlFile']),
    peerCertAllowedCn: raw('peerCertAllowedCn'),
    cipherSuites: cipherSuites(raw('cipherSuites')),
    authToken,
    authTokenTtl: positiveInt(raw('authTokenTtl'), FLAG_NAMES.authTokenTtl),
  };
}
