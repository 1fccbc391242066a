/**
 * What a lock contender (Mutex) and an election candidate (Election) share, as in etcd's
 * recipes: a key `<prefix>/<lease id in hex>` attached to a session lease, whose create revision
 * orders the contenders (the lowest owns the lock or leads).
 */
import type { Client } from '../client.ts';
import type { ResponseHeader } from '../kv.ts';
import type { Lease } from '../lease.ts';

export abstract class Contender {
  protected readonly pfx: string;
  /** This contender's key while it owns or waits; undefined otherwise. */
  protected myKey: string | undefined;
  /** The create revision of that key (0 without one). */
  protected myRev = 0;
  protected hdr: ResponseHeader | undefined;

  constructor(
    protected readonly client: Client,
    protected readonly session: Lease,
    prefix: string,
  ) {
    this.pfx = `${prefix}/`;
  }

  /** This contender's key while it owns (holds the lock, leads) or waits. */
  get key(): string | undefined {
    return this.myKey;
  }

  /** The response header from when it became the owner. */
  get header(): ResponseHeader | undefined {
    return this.hdr;
  }

  /** The key this session contends with. */
  protected ownKey(): string {
    return `${this.pfx}${this.session.hexId}`;
  }
}
