/**
 * etcd's "simple" tokens: `<random letters>.<log index>`, opaque to clients. The member that
 * authenticates a user proposes the random part; every member registers the whole token when it
 * applies that entry, so any member accepts it. A token lives for `ttlMs` after its last use (each
 * use extends it, as in etcd) and only in memory: a restart forgets it and clients authenticate
 * again. Deleting a user, changing its password or disabling auth voids tokens at once.
 *
 * Entries are kept in order of last use (a Map re-inserted on use), so expired ones are always at
 * the front and the least recently used one goes first when the table is full.
 */
import { randomInt } from 'node:crypto';
import { AUTH_LIMITS } from './limits.ts';

const LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

interface Entry {
  readonly user: string;
  expiresAt: number;
}

export class SimpleTokens {
  private readonly tokens = new Map<string, Entry>();

  constructor(
    private readonly ttlMs: number,
    private readonly max: number = AUTH_LIMITS.simpleTokensMax,
  ) {}

  /** A fresh random prefix (the proposer's part of a token). */
  static prefix(): string {
    let s = '';
    for (let i = 0; i < AUTH_LIMITS.simpleTokenPrefixChars; i++) s += LETTERS[randomInt(LETTERS.length)];
    return s;
  }

  static token(prefix: string, index: number): string {
    return `${prefix}.${index}`;
  }

  /** The log index a token was issued at; null if it is not a simple token at all. */
  static indexOf(token: string): number | null {
    const dot = token.lastIndexOf('.');
    if (dot <= 0) return null;
    const digits = token.slice(dot + 1);
    if (!/^[0-9]{1,15}$/.test(digits)) return null;
    return Number(digits);
  }

  get size(): number {
    return this.tokens.size;
  }

  add(token: string, user: string, now: number): void {
    this.sweep(now);
    this.tokens.delete(token);
    if (this.tokens.size >= this.max) {
      const oldest = this.tokens.keys().next();
      if (oldest.done !== true) this.tokens.delete(oldest.value);
    }
    this.tokens.set(token, { user, expiresAt: now + this.ttlMs });
  }

  /** The token's user, extending its life; null when unknown or expired. */
  use(token: string, now: number): string | null {
    this.sweep(now);
    const e = this.tokens.get(token);
    if (e === undefined) return null;
    this.tokens.delete(token);
    e.expiresAt = now + this.ttlMs;
    this.tokens.set(token, e);
    return e.user;
  }

  invalidateUser(user: string): void {
    for (const [token, e] of this.tokens) if (e.user === user) this.tokens.delete(token);
  }

  clear(): void {
    this.tokens.clear();
  }

  private sweep(now: number): void {
    for (const [token, e] of this.tokens) {
      if (e.expiresAt > now) return;
      this.tokens.delete(token);
    }
  }
}
