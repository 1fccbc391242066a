/**
 * etcd's JWT tokens (--auth-token jwt,…): signed with the configured key, carrying the user name,
 * the auth revision at issue and an expiry, so any member holding the public key can check them
 * without shared state. A token issued before an auth change still verifies, but requests made
 * with it then fail with "revision of auth store is old", and the client authenticates again.
 *
 *   header  {"alg":"<method>","typ":"JWT"}
 *   claims  {"exp":<unix seconds>,"revision":<n>,"username":"<user>"}   (etcd's claim names)
 */
import { createPublicKey, sign as cryptoSign, verify as cryptoVerify, constants, type KeyObject } from 'node:crypto';
import { AuthOptionsError } from './errors.ts';
import type { AuthInfo } from './types.ts';

export const JWT_SIGN_METHODS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'] as const;
export type JwtSignMethod = (typeof JWT_SIGN_METHODS)[number];

export interface JwtOptions {
  readonly signMethod: JwtSignMethod;
  readonly publicKey: KeyObject;
  /** Absent: this member only verifies tokens (it cannot issue them). */
  readonly privateKey?: KeyObject;
  readonly ttlMs: number;
}

const CURVES: Record<string, string> = { ES256: 'prime256v1', ES384: 'secp384r1', ES512: 'secp521r1' };

function digest(method: JwtSignMethod): string {
  return `sha${method.slice(2)}`;
}

function signOptions(method: JwtSignMethod, key: KeyObject) {
  switch (method[0]) {
    case 'P':
      return { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST };
    case 'E':
      return { key, dsaEncoding: 'ieee-p1363' as const };
    default:
      return { key };
  }
}

function base64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

export function isJwtSignMethod(s: string): s is JwtSignMethod {
  return (JWT_SIGN_METHODS as readonly string[]).includes(s);
}

export class JwtTokens {
  private readonly encodedHeader: string;

  constructor(private readonly options: JwtOptions) {
    const method = options.signMethod;
    const type = options.publicKey.asymmetricKeyType;
    const wanted = method.startsWith('ES') ? 'ec' : 'rsa';
    // An RSA key may be tagged rsa-pss; either verifies PS tokens.
    if (type !== wanted && !(wanted === 'rsa' && type === 'rsa-pss' && method.startsWith('PS'))) {
      throw new AuthOptionsError(`auth token: a ${method} key must be ${wanted.toUpperCase()}, got ${type ?? 'a symmetric key'}`);
    }
    if (wanted === 'ec' && options.publicKey.asymmetricKeyDetails?.namedCurve !== CURVES[method]) {
      throw new AuthOptionsError(`auth token: ${method} needs curve ${CURVES[method]}, got ${options.publicKey.asymmetricKeyDetails?.namedCurve}`);
    }
    if (options.privateKey !== undefined) {
      const probe = Buffer.from('conclave key check');
      const signature = cryptoSign(digest(method), probe, signOptions(method, options.privateKey));
      if (!cryptoVerify(digest(method), probe, signOptions(method, options.publicKey), signature)) {
        throw new AuthOptionsError("auth token: public and private keys don't match");
      }
    }
    this.encodedHeader = base64url(JSON.stringify({ alg: method, typ: 'JWT' }));
  }

  static publicKeyOf(privateKey: KeyObject): KeyObject {
    return createPublicKey(privateKey);
  }

  get canSign(): boolean {
    return this.options.privateKey !== undefined;
  }

  sign(user: string, revision: number, nowMs: number): string {
    const key = this.options.privateKey;
    if (key === undefined) throw new AuthOptionsError('auth: token signing attempted with verify-only key');
    const claims = base64url(JSON.stringify({ exp: Math.floor((nowMs + this.options.ttlMs) / 1000), revision, username: user }));
    const input = `${this.encodedHeader}.${claims}`;
    const signature = cryptoSign(digest(this.options.signMethod), Buffer.from(input), signOptions(this.options.signMethod, key));
    return `${input}.${signature.toString('base64url')}`;
  }

  /** Who the token stands for; null when it is malformed, not ours, expired or of another method. */
  verify(token: string, nowMs: number): AuthInfo | null {
    const parts = token.split('.');
    if (parts.length !== 3) return null;
    const [header, claims, signature] = parts as [string, string, string];
    let h: unknown;
    let c: unknown;
    try {
      h = JSON.parse(Buffer.from(header, 'base64url').toString('utf8'));
      c = JSON.parse(Buffer.from(claims, 'base64url').toString('utf8'));
    } catch {
      return null;
    }
    if (typeof h !== 'object' || h === null || (h as { alg?: unknown }).alg !== this.options.signMethod) return null;
    const ok = cryptoVerify(
      digest(this.options.signMethod),
      Buffer.from(`${header}.${claims}`),
      signOptions(this.options.signMethod, this.options.publicKey),
      Buffer.from(signature, 'base64url'),
    );
    if (!ok || typeof c !== 'object' || c === null) return null;
    const { exp, revision, username } = c as { exp?: unknown; revision?: unknown; username?: unknown };
    if (typeof username !== 'string' || typeof revision !== 'number' || !Number.isSafeInteger(revision) || revision < 0) return null;
    if (exp !== undefined && (typeof exp !== 'number' || Math.floor(nowMs / 1000) > exp)) return null;
    return { user: username, revision };
  }
}
