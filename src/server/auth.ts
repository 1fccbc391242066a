/**
 * The member's side of auth. It keeps the current AuthState (reloaded from the store's meta after
 * every auth change applied and after a snapshot install), turns a client's credentials into who
 * the request runs as, checks requests served from local state (reads, watches, TimeToLive),
 * applies auth entries, and runs Authenticate: the password is checked here, asynchronously,
 * against the latest state, and only the issuing of the token goes through the log.
 *
 * Tokens: simple tokens are registered by every member as it applies the Authenticate entry, so
 * a member given a token it has not applied yet waits for that index first (as etcd does). JWTs
 * are signed by the member that answers Authenticate and verified anywhere.
 */
import { readFileSync } from 'node:fs';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import {
  applyAuthChange,
  AuthError,
  AuthOptionsError,
  AuthState,
  checkLeaseRead,
  checkLeaseWrite,
  checkRequest,
  JwtTokens,
  NO_USER,
  SimpleTokens,
  verifyPassword,
  AUTH_LIMITS,
  type AuthChangeRequest,
  type AuthInfo,
  type AuthRequest,
  type TokenOptions,
} from '../auth/index.ts';
import type { MetaReader, MetaWriter, MvccRequest } from '../mvcc/index.ts';
import { serverError, type ServerError } from './errors.ts';
import type { InternalRequest } from './request-codec.ts';

/** What a client presented. */
export interface Credentials {
  /** gRPC metadata `token`, or the JSON gateway's Authorization header. */
  readonly token?: string;
  /** The verified client certificate's common name, when TLS client authentication is on. */
  readonly commonName?: string;
}

/** What an applied auth entry answers. */
export type AuthResponse =
  | { readonly op: 'authChange' }
  /** token: the simple token, '' under JWT (the proposer signs one), null when the check went stale. */
  | { readonly op: 'authenticate'; readonly token: string | null; readonly revision: number };

export type TokenProvider = { readonly kind: 'simple'; readonly tokens: SimpleTokens } | { readonly kind: 'jwt'; readonly tokens: JwtTokens };

/** What the member lends its auth. */
export interface AuthHost {
  /** The current store's meta space. */
  meta(): MetaReader;
  /** The index this member has applied. */
  applied(): number;
  linearizableBarrier(): Promise<void>;
  /** Proposes a request and resolves with its applied response. */
  write(request: InternalRequest, as: AuthInfo | null): Promise<unknown>;
  /** Keys attached to a lease in the applied state. */
  leaseKeys(id: bigint): readonly Uint8Array[] | undefined;
  readonly requestTimeoutMs: number;
}

/** An expected auth failure as the server's condition; anything else is a bug and rethrown. */
export function fromAuthError(e: unknown): ServerError {
  if (!(e instanceof AuthError)) throw e;
  return serverError(e.code, undefined, e);
}

/** The token provider --auth-token and --auth-token-ttl ask for (reads the JWT key files). */
export function tokenProvider(options: TokenOptions, simpleTtlSeconds: number): TokenProvider {
  if (options.kind === 'simple') return { kind: 'simple', tokens: new SimpleTokens(simpleTtlSeconds * 1000) };
  const read = (file: string): string => {
    try {
      return readFileSync(file, 'utf8');
    } catch (e) {
      throw new AuthOptionsError(`--auth-token: cannot read key file ${file}: ${(e as Error).message}`, { cause: e });
    }
  };
  try {
    const privateKey = options.privateKeyFile === undefined ? undefined : createPrivateKey(read(options.privateKeyFile));
    const publicKey = createPublicKey(read(options.publicKeyFile));
    const jwt = new JwtTokens(privateKey === undefined ? { signMethod: options.signMethod, publicKey, ttlMs: options.ttlMs } : { signMethod: options.signMethod, publicKey, privateKey, ttlMs: options.ttlMs });
    return { kind: 'jwt', tokens: jwt };
  } catch (e) {
    if (e instanceof AuthOptionsError) throw e;
    throw new AuthOptionsError(`--auth-token: bad key: ${(e as Error).message}`, { cause: e });
  }
}

export class ServerAuth {
  private current: AuthState | null = null;
  private appliedWaiters: Array<{ index: number; done: (ok: boolean) => void }> = [];

  constructor(
    private readonly host: AuthHost,
    readonly provider: TokenProvider,
  ) {}

  state(): AuthState {
    this.current ??= AuthState.load(this.host.meta());
    return this.current;
  }

  /** The store's auth records changed under us (snapshot install): read them again. */
  reload(): void {
    this.current = null;
  }

  onApplied(index: number): void {
    if (this.appliedWaiters.length === 0) return;
    const still = [];
    for (const w of this.appliedWaiters) {
      if (w.index <= index) w.done(true);
      else still.push(w);
    }
    this.appliedWaiters = still;
  }

  // ---- credentials -----------------------------------------------------------------------

  /**
   * Who a client's request runs as. While auth is disabled credentials are not looked at (as in
   * etcd ≥ 3.5; 3.4 refused unknown tokens even then). A token wins over a certificate name;
   * neither means no user.
   */
  async resolve(c: Credentials): Promise<AuthInfo> {
    if (!this.state().enabled) return NO_USER;
    if (c.token !== undefined && c.token !== '') return this.fromToken(c.token);
    if (c.commonName !== undefined && c.commonName !== '') return { user: c.commonName, revision: this.state().revision };
    return NO_USER;
  }

  private async fromToken(token: string): Promise<AuthInfo> {
    if (this.provider.kind === 'jwt') {
      const info = this.provider.tokens.verify(token, Date.now());
      if (info === null) throw serverError('AUTH_INVALID_TOKEN');
      return info;
    }
    const index = SimpleTokens.indexOf(token);
    if (index === null) throw serverError('AUTH_INVALID_TOKEN');
    if (index > this.host.applied() && !(await this.waitApplied(index))) throw serverError('AUTH_INVALID_TOKEN');
    const user = this.provider.tokens.use(token, performance.now());
    if (user === null) throw serverError('AUTH_INVALID_TOKEN');
    return { user, revision: this.state().revision };
  }

  private waitApplied(index: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.appliedWaiters = this.appliedWaiters.filter((w) => w !== waiter);
        resolve(false);
      }, this.host.requestTimeoutMs);
      const waiter = {
        index,
        done: (ok: boolean) => {
          clearTimeout(timer);
          resolve(ok);
        },
      };
      this.appliedWaiters.push(waiter);
    });
  }

  // ---- checks on local state -------------------------------------------------------------

  /** Refuses a key-value request `info` may not make (reads are checked here; writes again at apply). */
  checkRequest(info: AuthInfo, request: MvccRequest): void {
    const e = checkRequest(this.state(), info, request, (id) => this.host.leaseKeys(id));
    if (e !== null) throw fromAuthError(e);
  }

  /** Refuses a watch of [key, rangeEnd) that `info` may not read. */
  checkRead(info: AuthInfo, key: Uint8Array, rangeEnd: Uint8Array): void {
    const e = this.state().checkAccess(info, 'read', key, rangeEnd);
    if (e !== null) throw fromAuthError(e);
  }

  checkAdmin(info: AuthInfo): void {
    const e = this.state().checkAdmin(info);
    if (e !== null) throw fromAuthError(e);
  }

  /** LeaseTimeToLive with keys: read access to every attached key (no credentials: "user name is empty"). */
  checkLeaseKeysRead(info: AuthInfo, lease: bigint): void {
    const state = this.state();
    if (!state.enabled) return;
    if (info.revision === 0) throw serverError('AUTH_USER_EMPTY');
    const e = checkLeaseRead(state, info, this.host.leaseKeys(lease));
    if (e !== null) throw fromAuthError(e);
  }

  // ---- Authenticate ----------------------------------------------------------------------

  /**
   * Checks the password against the latest state and has a token issued through the log; if
   * the auth state changed meanwhile the check is repeated (etcd's loop), a few times at most.
   * As in etcd, the caller's own credentials are looked at only once the password is right.
   */
  async authenticate(name: string, password: string, caller: Credentials): Promise<string> {
    await this.host.linearizableBarrier();
    for (let attempt = 0; attempt < AUTH_LIMITS.authenticateAttemptsMax; attempt++) {
      const state = this.state();
      if (!state.enabled) throw serverError('AUTH_NOT_ENABLED');
      const user = state.user(name);
      if (user === undefined) throw serverError('AUTH_FAILED');
      if (user.noPassword) throw serverError('AUTH_NO_PASSWORD_USER');
      if (!(await verifyPassword(password, user.password))) throw serverError('AUTH_FAILED');
      const as = await this.resolve(caller);
      const res = (await this.host.write({ op: 'authenticate', name, tokenPrefix: SimpleTokens.prefix(), checkedRevision: state.revision }, as)) as AuthResponse | null;
      if (res?.op !== 'authenticate') throw new Error('authenticate applied as something else');
      if (res.token === null) continue;
      return this.provider.kind === 'jwt' ? this.provider.tokens.sign(name, res.revision, Date.now()) : res.token;
    }
    throw serverError('AUTH_OLD_REVISION');
  }

  // ---- the apply step --------------------------------------------------------------------

  /** Why the log entry `request` made as `as` must be refused, or null (writes, at apply time). */
  refusal(as: AuthInfo, request: MvccRequest): ServerError | null {
    const e = checkRequest(this.state(), as, request, (id) => this.host.leaseKeys(id));
    return e === null ? null : fromAuthError(e);
  }

  /** A lease revoke needs write access to every key attached to the lease (etcd's checkLeasePuts). */
  revokeRefusal(as: AuthInfo, lease: bigint): ServerError | null {
    const e = checkLeaseWrite(this.state(), as, this.host.leaseKeys(lease));
    return e === null ? null : fromAuthError(e);
  }

  /**
   * Applies one auth entry inside the store write at its index: the admin check (etcd's
   * needAdminPermission), then the change. Throws the refusal as a ServerError; writes nothing then.
   */
  apply(meta: MetaWriter, index: number, request: AuthRequest, as: AuthInfo | null): AuthResponse {
    const state = this.state();
    if (request.op === 'authenticate') return this.issue(state, index, request);
    if (as !== null) {
      const e = state.checkAdmin(as);
      if (e !== null) throw fromAuthError(e);
    }
    let change;
    try {
      change = applyAuthChange(state, meta, request as AuthChangeRequest);
    } catch (e) {
      throw fromAuthError(e);
    }
    if (change.changed) this.current = null;
    if (change.disabled === true && this.provider.kind === 'simple') this.provider.tokens.clear();
    if (change.invalidatesUser !== undefined && this.provider.kind === 'simple') this.provider.tokens.invalidateUser(change.invalidatesUser);
    return { op: 'authChange' };
  }

  /** The token of an Authenticate entry, registered on every member (simple tokens). */
  private issue(state: AuthState, index: number, r: Extract<AuthRequest, { op: 'authenticate' }>): AuthResponse {
    if (!state.enabled) throw serverError('AUTH_NOT_ENABLED');
    const user = state.user(r.name);
    if (user === undefined || user.noPassword) throw serverError('AUTH_FAILED');
    if (state.revision !== r.checkedRevision) return { op: 'authenticate', token: null, revision: state.revision };
    if (this.provider.kind === 'jwt') return { op: 'authenticate', token: '', revision: state.revision };
    const token = SimpleTokens.token(r.tokenPrefix, index);
    this.provider.tokens.add(token, r.name, performance.now());
    return { op: 'authenticate', token, revision: state.revision };
  }
}
