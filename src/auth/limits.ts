/** Every bound of the auth layer, in one place; names end with their unit. */
export const AUTH_LIMITS = {
  /**
   * Longest user or role name. Names are keys of the store's meta space (at most 1 KiB with the
   * namespace prefix); etcd has no such limit, but nothing real comes near it.
   */
  nameBytesMax: 512,
  /** Default lifetime of an unused simple token (etcd --auth-token-ttl, 300 s). */
  simpleTokenTtlSecondsDefault: 300,
  /** Simple tokens a member keeps at once; past it the least recently used is dropped. */
  simpleTokensMax: 100_000,
  /** Random letters before the '.' of a simple token (etcd: 16). */
  simpleTokenPrefixChars: 16,
  /** Default lifetime of a JWT (etcd's jwt ttl option, 5 minutes). */
  jwtTtlMsDefault: 5 * 60 * 1000,
  /** scrypt cost: N = 2^14 (about 16 MiB and 30–60 ms per hash on this class of machine). */
  scryptCostLog2: 14,
  /** scrypt block size r. */
  scryptBlockSize: 8,
  /** scrypt parallelization p. */
  scryptParallelism: 1,
  /** Random salt per password. */
  scryptSaltBytes: 16,
  /** Derived key length. */
  scryptKeyBytes: 32,
  /** Highest scrypt cost accepted from a stored hash (2^20: 1 GiB), so a bad record cannot exhaust memory. */
  scryptCostLog2Max: 20,
  /**
   * Password hashings running at once. They run on libuv's thread pool, which the WAL's syncs
   * share: a flood of Authenticate or UserAdd calls must not take every thread.
   */
  kdfConcurrentMax: 2,
  /** Password hashings waiting for a turn before more are refused ("too many requests"). */
  kdfWaitingMax: 1000,
  /** Times Authenticate re-checks a password when the auth state changed while it was being checked. */
  authenticateAttemptsMax: 5,
} as const;
