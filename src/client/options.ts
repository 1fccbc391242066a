/**
 * The client's options and limits. Every time, size and count the client uses is here, with a
 * default that suits a LAN cluster; override any of them with `limits`.
 */

export const CLIENT_LIMITS = {
  /** How long one attempt to open a connection to an endpoint may take. */
  dialTimeoutMs: 2_000,
  /** Overall deadline of one call, all its tries and back-offs included. */
  callTimeoutMs: 10_000,
  /** First back-off between tries of a call; doubled each try up to backoffMaxMs, with jitter. */
  backoffBaseMs: 25,
  backoffMaxMs: 1_000,
  /** How long an endpoint that failed is passed over while another may be healthy. */
  endpointCooldownMs: 1_000,
  /** HTTP/2 PING interval on an open connection, and how long an answer may take before the
   *  connection is declared dead (a partitioned member never resets the TCP connection). */
  pingIntervalMs: 5_000,
  pingTimeoutMs: 5_000,
  /** Largest response message accepted. */
  receiveBytesMax: 64 * 1024 * 1024,
  /** Events a watcher buffers for a slow consumer before it stops reading its stream. */
  watchBufferEventsMax: 10_000,
  /** Keep-alives per TTL period (etcd's client renews every TTL/3). */
  leaseKeepAlivesPerTtl: 3,
  /** Tries of an STM transaction that keeps conflicting before it gives up. */
  stmRetriesMax: 1_000,
} as const;

export type ClientLimits = { -readonly [K in keyof typeof CLIENT_LIMITS]: number };

export interface TlsOptions {
  /** PEM CA bundle that signed the servers' certificates (defaults to the system's). */
  ca?: string | Buffer;
  /** PEM client certificate and key, for servers that require client certificates. */
  cert?: string | Buffer;
  key?: string | Buffer;
}

export interface ClientOptions {
  /**
   * Client URLs of the members: "http://host:port", "https://host:port", or "host:port"
   * (https when `tls` is given, else http).
   */
  endpoints: readonly string[];
  /** User and password: the client authenticates and sends the token with every call. */
  auth?: { username: string; password: string };
  tls?: TlsOptions;
  limits?: Partial<ClientLimits>;
}

/** Endpoints as absolute URLs ("http://127.0.0.1:2379"), validated. */
export function normalizeEndpoints(endpoints: readonly string[], tls: boolean): string[] {
  if (endpoints.length === 0) throw new TypeError('at least one endpoint is required');
  return endpoints.map((e) => {
    const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(e) ? e : `${tls ? 'https' : 'http'}://${e}`;
    const url = new URL(withScheme);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`endpoint ${e}: scheme must be http or https`);
    if (url.port === '') throw new TypeError(`endpoint ${e}: a port is required`);
    return `${url.protocol}//${url.host}`;
  });
}

export function resolveLimits(overrides: Partial<ClientLimits> | undefined): ClientLimits {
  const limits: ClientLimits = { ...CLIENT_LIMITS, ...overrides };
  for (const [name, value] of Object.entries(limits)) {
    if (!(Number.isFinite(value) && value > 0)) throw new TypeError(`limit ${name} must be a positive number, got ${value}`);
  }
  if (limits.backoffMaxMs < limits.backoffBaseMs) throw new TypeError('backoffMaxMs must be at least backoffBaseMs');
  return limits;
}
