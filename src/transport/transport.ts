/**
 * Peer transport: long-lived TCP connections between members carrying framed Raft messages
 * (frames.ts), one outbound connection per peer, plus one short-lived connection per snapshot
 * so that a large snapshot never delays heartbeats, and one per request a member asks of a peer
 * (request(): opaque bytes in, bytes out, e.g. the consistency checker's hashes).
 *
 * Loss is fine (Raft retries), unbounded memory is not: each peer has a bounded queue; when it
 * is full, or the peer is down, messages are dropped and Raft is told the peer is unreachable.
 * Messages from another cluster, from unknown members, or addressed to another member are
 * refused at the handshake.
 *
 * TLS (etcd's https:// peer URLs): with `tls.server` the listener speaks TLS only (and, if those
 * options require one, refuses a dialer without a certificate the CA vouches for, or whose
 * certificate does not name the address it dials from: peer-san.ts); a peer whose
 * URL is https:// is dialed over TLS with `tls.dial` (our certificate, and the CAs its
 * certificate must chain to; its name or IP must match the URL's host), snapshot connections
 * included.
 */
import net from 'node:net';
import tls from 'node:tls';
import { decodeMessage, encodeMessage, writeMessage, Writer } from './codec.ts';
import { coalesce } from './coalesce.ts';
import {
  beginFrame,
  Channel,
  decodeHello,
  endFrame,
  decodeResponse,
  decodeSnapResult,
  decodeText,
  encodeHello,
  encodeResponse,
  encodeSnapResult,
  encodeText,
  frame,
  FrameKind,
  FrameSplitter,
  type Frame,
  type Hello,
} from './frames.ts';
import type { Message, MsgSnap, NodeId } from '../raft/types.ts';
import { rejectedConnectionText, tlsErrorText, tlsHandshakeFailure } from '../util/tls-errors.ts';
import { checkPeerSan } from './peer-san.ts';

export const TRANSPORT_LIMITS = {
  /** Messages waiting for one peer's connection before new ones are dropped. */
  peerQueueMessagesMax: 8192,
  /** Largest frame accepted (an append carries at most Raft's maxSizePerMsg, or one bigger entry). */
  frameBytesMax: 64 * 1024 * 1024,
  /** Size of the pieces a snapshot body is sent in. */
  snapshotChunkBytes: 1024 * 1024,
  /** Snapshot chunks buffered on the receiving side before reading from the socket pauses. */
  snapshotChunksBuffered: 16,
  reconnectBackoffMinMs: 50,
  reconnectBackoffMaxMs: 2000,
  dialTimeoutMs: 3000,
  /** Time an inbound TLS connection has to complete its handshake. */
  tlsHandshakeTimeoutMs: 10_000,
} as const;

export type TransportLimits = { -readonly [K in keyof typeof TRANSPORT_LIMITS]: number };

export interface TransportHandlers {
  /** A message from a peer, already checked to be for this member. */
  onMessage(m: Message): void;
  /** A snapshot from the leader: consume `body`, then step `m`. Rejects if it could not be installed. */
  onSnapshot(m: MsgSnap, body: AsyncIterable<Uint8Array>): Promise<void>;
  /** The body of a snapshot this member sends. */
  snapshotBody(m: MsgSnap): AsyncIterable<Uint8Array>;
  onUnreachable(peer: NodeId): void;
  onSnapshotSent(peer: NodeId, ok: boolean): void;
  /** The cluster as this member knows it, for a member that is joining (see fetchMembership). */
  membership(): ClusterMembership;
  /** Whether `id` was removed from the cluster (its connections are refused as such). */
  isRemoved(id: NodeId): boolean;
  /** A peer refused this member as removed: it missed the commit of its own removal. */
  onRemoved(): void;
  /** A peer's request (see request()); the answer, or a rejection whose message goes back. Absent: requests are refused. */
  onRequest?(from: NodeId, body: Uint8Array): Promise<Uint8Array>;
}

/** The reason a member that was removed from the cluster is refused with. */
export const REMOVED_REASON = 'the member has been permanently removed from the cluster';

/** What a joining member learns from a running one: the cluster's id and its members. */
export interface ClusterMembership {
  readonly clusterId: string;
  readonly members: ReadonlyArray<{ readonly id: NodeId; readonly name: string; readonly peerUrls: readonly string[] }>;
}

export interface TransportTls {
  /** The listener serves TLS with these options (certificate, key, client-certificate checks). */
  readonly server?: tls.TlsOptions;
  /** Options for dialing a peer whose URL is https://. */
  readonly dial?: tls.ConnectionOptions;
  /** With client certificates required: the Common Name they must carry (etcd's --peer-cert-allowed-cn). */
  readonly allowedCommonName?: string;
}

export interface TransportOptions {
  readonly memberId: NodeId;
  readonly clusterId: string;
  readonly listenHost: string;
  readonly listenPort: number;
  readonly handlers: TransportHandlers;
  readonly tls?: TransportTls;
  readonly limits?: Partial<TransportLimits>;
  readonly log?: (level: 'debug' | 'info' | 'warn', msg: string) => void;
}

export function parsePeerUrl(url: string): { host: string; port: number; secure: boolean } {
  const u = new URL(url);
  const secure = u.protocol === 'https:';
  const port = Number(u.port || (secure ? 443 : 80));
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port, secure };
}

/** A connection to a peer and the event after which it may carry frames. */
export interface DialedPeer {
  readonly socket: net.Socket;
  readonly ready: 'connect' | 'secureConnect';
}

/**
 * Opens a connection to a peer URL, over TLS if it is https:// (for TLS, frames may flow once
 * the peer's certificate passed the checks: `secureConnect`).
 */
export function dialPeer(url: string, dialTls: tls.ConnectionOptions | undefined): DialedPeer {
  const { host, port, secure } = parsePeerUrl(url);
  if (!secure) return { socket: net.connect({ host, port }), ready: 'connect' };
  return { socket: tls.connect({ ...dialTls, host, port }), ready: 'secureConnect' };
}

export class Transport {
  private readonly limits: TransportLimits;
  private readonly peers = new Map<NodeId, Peer>();
  private readonly server: net.Server;
  private readonly inbound = new Set<net.Socket>();
  private stopped = false;

  /** The dial options every peer uses for its next connection (replaced when certificates are reloaded). */
  private readonly dialTls: { current: tls.ConnectionOptions | undefined };

  constructor(private readonly opts: TransportOptions) {
    this.limits = { ...TRANSPORT_LIMITS, ...opts.limits };
    this.dialTls = { current: opts.tls?.dial };
    const serverTls = opts.tls?.server;
    if (serverTls !== undefined) {
      this.server = tls.createServer({ ...serverTls, handshakeTimeout: this.limits.tlsHandshakeTimeoutMs }, (socket) => this.accept(socket));
      this.server.on('tlsClientError', (err: Error, socket: tls.TLSSocket) => {
        const reason = tlsHandshakeFailure(err, socket);
        const remote = socket.remoteAddress === undefined ? undefined : `${socket.remoteAddress}:${socket.remotePort}`;
        if (reason !== null) opts.log?.('warn', rejectedConnectionText(reason, remote));
      });
    } else {
      this.server = net.createServer((socket) => this.accept(socket));
    }
    // Every connection, TLS ones still in their handshake too, so that stop() ends them all.
    this.server.on('connection', (socket: net.Socket) => {
      if (this.stopped) {
        socket.destroy();
        return;
      }
      this.inbound.add(socket);
      socket.on('close', () => this.inbound.delete(socket));
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.listenPort, this.opts.listenHost, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  port(): number {
    const addr = this.server.address();
    return typeof addr === 'object' && addr !== null ? addr.port : 0;
  }

  /**
   * New certificate material (rotated files): connections accepted or dialed from now on use
   * it; established ones keep theirs, as in etcd.
   */
  reloadTls(server: tls.SecureContextOptions | undefined, dial: tls.ConnectionOptions): void {
    if (server !== undefined && this.server instanceof tls.Server) this.server.setSecureContext(server);
    this.dialTls.current = dial;
  }

  /** Sets (or changes) the address of a peer. */
  setPeer(id: NodeId, url: string): void {
    if (id === this.opts.memberId) return;
    const existing = this.peers.get(id);
    if (existing !== undefined && existing.url === url) return;
    existing?.close();
    this.peers.set(id, new Peer(id, url, this.opts, this.limits, this.dialTls));
  }

  removePeer(id: NodeId): void {
    this.peers.get(id)?.close();
    this.peers.delete(id);
  }

  hasPeer(id: NodeId): boolean {
    return this.peers.has(id);
  }

  /**
   * Asks a peer something on a connection of its own: `body` goes to the peer's onRequest
   * handler, whose answer comes back. Rejects if the peer is unknown, unreachable, refuses or
   * fails the request, or does not answer within timeoutMs.
   */
  request(to: NodeId, body: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    const peer = this.peers.get(to);
    if (peer === undefined || this.stopped) return Promise.reject(new Error(`no connection to member ${to}`));
    return peer.request(body, timeoutMs);
  }

  send(messages: readonly Message[]): void {
    for (const m of messages) {
      const peer = this.peers.get(m.to);
      if (peer === undefined) {
        this.opts.handlers.onUnreachable(m.to);
        continue;
      }
      if (m.type === 'snap') peer.sendSnapshot(m);
      else peer.send(m);
    }
  }

  /**
   * Writes what is queued for every peer now instead of at the next event-loop turn (the Raft
   * driver calls it before it waits for a sync and when it runs out of work: the messages are on
   * the commit path, and the next turn may first spend a while reading client requests).
   */
  flush(): void {
    for (const p of this.peers.values()) p.flushNow();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const p of this.peers.values()) p.close();
    for (const s of this.inbound) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: net.Socket): void {
    if (this.stopped) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    this.inbound.add(socket); // a TLS socket is not the raw one seen on 'connection'
    socket.on('close', () => this.inbound.delete(socket));
    socket.on('error', () => socket.destroy());
    if (!(socket instanceof tls.TLSSocket) || this.opts.tls?.server?.requestCert !== true) {
      this.serve(socket);
      return;
    }
    // A client certificate must also name the address it comes from (peer-san.ts).
    socket.pause();
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    const cert = socket.getPeerCertificate();
    const allowedCn = this.opts.tls.allowedCommonName;
    // etcd's words for a certificate whose CN is not the allowed one.
    const check = allowedCn !== undefined && cert.subject?.CN !== allowedCn ? Promise.resolve('CommonName authentication failed') : checkPeerSan(cert, socket.remoteAddress ?? '');
    void check.then((problem) => {
      if (socket.destroyed) return;
      if (problem !== null) {
        this.opts.log?.('warn', rejectedConnectionText(`tls: ${problem}`, remote));
        socket.destroy();
        return;
      }
      this.serve(socket);
      socket.resume();
    });
  }

  /** Reads the handshake, then messages or a snapshot, from an accepted connection. */
  private serve(socket: net.Socket): void {
    const splitter = new FrameSplitter(this.limits.frameBytesMax);
    let hello: Hello | null = null;
    let snapshot: SnapshotReceiver | null = null;
    let requested = false;
    const refuse = (reason: string): void => {
      this.opts.log?.('warn', `peer connection refused: ${reason}`);
      socket.end(encodeText(FrameKind.Reject, reason));
    };
    socket.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = splitter.push(chunk);
      } catch (e) {
        refuse((e as Error).message);
        return;
      }
      for (const f of frames) {
        try {
          if (hello === null) {
            if (f.kind !== FrameKind.Hello) return refuse('expected a handshake');
            hello = decodeHello(f.body);
            if (hello.channel === Channel.Membership) {
              socket.end(encodeText(FrameKind.Membership, JSON.stringify(this.opts.handlers.membership())));
              return;
            }
            const problem = this.checkHello(hello);
            if (problem !== null) return refuse(problem);
            if (hello.channel === Channel.Snapshot) snapshot = new SnapshotReceiver(socket, this.opts.handlers, this.limits);
            continue;
          }
          if (snapshot !== null) {
            snapshot.frame(f, hello.from);
            continue;
          }
          if (hello.channel === Channel.Request) {
            if (f.kind !== FrameKind.Request || requested) return refuse(`unexpected frame kind ${f.kind} on a request channel`);
            requested = true;
            this.answer(socket, hello.from, f.body);
            continue;
          }
          if (f.kind !== FrameKind.Message) return refuse(`unexpected frame kind ${f.kind}`);
          const m = decodeMessage(f.body);
          if (m.from !== hello.from || m.to !== this.opts.memberId) return refuse(`message from ${m.from} to ${m.to} on ${hello.from}'s connection`);
          this.opts.handlers.onMessage(m);
        } catch (e) {
          return refuse((e as Error).message);
        }
      }
    });
  }

  /** Runs a peer's request through the handler and sends the answer back. */
  private answer(socket: net.Socket, from: NodeId, body: Uint8Array): void {
    const handler = this.opts.handlers.onRequest;
    const answered = handler === undefined ? Promise.reject(new Error('this member serves no peer requests')) : handler(from, Buffer.from(body));
    answered.then(
      (res) => socket.end(encodeResponse({ ok: true, body: res })),
      (e: unknown) => socket.end(encodeResponse({ ok: false, error: e instanceof Error ? e.message : String(e) })),
    );
  }

  private checkHello(h: Hello): string | null {
    if (h.clusterId !== this.opts.clusterId) return `cluster ID mismatch (local ${this.opts.clusterId}, remote ${h.clusterId})`;
    if (h.to !== this.opts.memberId) return `connection meant for member ${h.to}, this is ${this.opts.memberId}`;
    if (this.opts.handlers.isRemoved(h.from)) return REMOVED_REASON;
    if (!this.peers.has(h.from)) return `unknown member ${h.from}`;
    return null;
  }
}

/** Assembles one incoming snapshot body and hands it to the application as it arrives. */
class SnapshotReceiver {
  private message: MsgSnap | null = null;
  private readonly chunks: Uint8Array[] = [];
  private ended = false;
  private failed: Error | null = null;
  private wake: (() => void) | null = null;

  constructor(
    private readonly socket: net.Socket,
    private readonly handlers: TransportHandlers,
    private readonly limits: TransportLimits,
  ) {
    socket.on('close', () => {
      if (!this.ended) this.fail(new Error('snapshot connection closed before the body was complete'));
    });
  }

  frame(f: Frame, from: NodeId): void {
    if (this.message === null) {
      const m = f.kind === FrameKind.Message ? decodeMessage(f.body) : null;
      if (m === null || m.type !== 'snap' || m.from !== from) throw new Error('snapshot channel must start with the snapshot message');
      this.message = m;
      this.handlers.onSnapshot(m, this.body()).then(
        () => this.socket.end(encodeSnapResult(true, '')),
        (e: unknown) => this.socket.end(encodeSnapResult(false, e instanceof Error ? e.message : String(e))),
      );
      return;
    }
    if (f.kind === FrameKind.SnapChunk) {
      this.chunks.push(f.body);
      if (this.chunks.length >= this.limits.snapshotChunksBuffered) this.socket.pause();
    } else if (f.kind === FrameKind.SnapEnd) {
      this.ended = true;
    } else {
      throw new Error(`unexpected frame kind ${f.kind} in a snapshot`);
    }
    this.wake?.();
  }

  private fail(e: Error): void {
    this.failed = e;
    this.wake?.();
  }

  private async *body(): AsyncGenerator<Uint8Array> {
    for (;;) {
      const next = this.chunks.shift();
      if (next !== undefined) {
        if (this.chunks.length < this.limits.snapshotChunksBuffered) this.socket.resume();
        yield next;
        continue;
      }
      if (this.ended) return;
      if (this.failed !== null) throw this.failed;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = null;
    }
  }
}

/** Where Peer.flush encodes (the event loop runs one flush at a time). */
const scratch = new Writer(64 * 1024);

/** The outbound side towards one peer. */
class Peer {
  private socket: net.Socket | null = null;
  private connecting = false;
  private closed = false;
  /** Messages waiting for the next write; combined (coalesce.ts) and encoded when it happens. */
  private queue: Message[] = [];
  private flushScheduled = false;
  private backoffMs: number;
  private reconnectTimer: NodeJS.Timeout | null = null;
  /** Why the last dial failed, logged once until it changes or a dial succeeds. */
  private lastDialError = '';

  constructor(
    readonly id: NodeId,
    readonly url: string,
    private readonly opts: TransportOptions,
    private readonly limits: TransportLimits,
    private readonly dialTls: { readonly current: tls.ConnectionOptions | undefined },
  ) {
    this.backoffMs = limits.reconnectBackoffMinMs;
  }

  send(m: Message): void {
    if (this.closed) return;
    if (this.socket === null) this.connect();
    if (this.socket === null && !this.connecting) {
      // Down and waiting to redial: Raft will retry once the peer is back.
      this.opts.handlers.onUnreachable(this.id);
      return;
    }
    if (this.queue.length >= this.limits.peerQueueMessagesMax) {
      this.opts.handlers.onUnreachable(this.id);
      return;
    }
    this.queue.push(m);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // Everything produced in this turn of the event loop leaves in one write.
      setImmediate(() => this.flush());
    }
  }

  /** Writes the queue now (a scheduled flush then finds it empty). */
  flushNow(): void {
    if (this.queue.length > 0) this.flush();
  }

  private flush(): void {
    this.flushScheduled = false;
    const socket = this.socket;
    // While dialing, the queue waits for the connection (see connect).
    if (socket === null || this.queue.length === 0) return;
    if (socket.writableNeedDrain) {
      socket.once('drain', () => this.flush());
      return;
    }
    const messages = this.queue.length === 1 ? this.queue : coalesce(this.queue);
    this.queue = [];
    // Every frame into one scratch buffer, then one copy that the socket keeps.
    const w = scratch;
    w.reset();
    for (const m of messages) {
      const at = beginFrame(w, FrameKind.Message);
      writeMessage(w, m);
      endFrame(w, at);
    }
    socket.write(Buffer.from(w.finish()));
  }

  /**
   * Opens a connection to the peer, over TLS if its URL is https://; `ready` is the event after
   * which it may carry frames (for TLS: once the peer's certificate passed the checks).
   */
  private dial(): DialedPeer {
    return dialPeer(this.url, this.dialTls.current);
  }

  private dialFailed(e: Error): void {
    const why = tlsErrorText(e);
    if (why === this.lastDialError) return;
    this.lastDialError = why;
    this.opts.log?.('warn', `cannot reach peer ${this.id} at ${this.url}: ${why}`);
  }

  private connect(): void {
    if (this.connecting || this.socket !== null || this.closed || this.reconnectTimer !== null) return;
    this.connecting = true;
    const { socket, ready } = this.dial();
    socket.setNoDelay(true);
    socket.setTimeout(this.limits.dialTimeoutMs, () => socket.destroy(new Error('dial timeout')));
    socket.once(ready, () => {
      socket.setTimeout(0);
      this.connecting = false;
      this.socket = socket;
      this.lastDialError = '';
      this.backoffMs = this.limits.reconnectBackoffMinMs;
      socket.write(encodeHello({ clusterId: this.opts.clusterId, from: this.opts.memberId, to: this.id, channel: Channel.Messages }));
      this.opts.log?.('info', `connected to peer ${this.id} at ${this.url}`);
      this.flush();
    });
    const splitter = new FrameSplitter(this.limits.frameBytesMax);
    socket.on('data', (chunk: Buffer) => {
      for (const f of splitter.push(chunk)) {
        if (f.kind !== FrameKind.Reject) continue;
        const reason = decodeText(f.body);
        this.opts.log?.('warn', `peer ${this.id} refused the connection: ${reason}`);
        if (reason === REMOVED_REASON) this.opts.handlers.onRemoved();
      }
    });
    socket.on('error', (e) => {
      this.dialFailed(e);
      socket.destroy();
    });
    socket.once('close', () => {
      this.connecting = false;
      if (this.socket === socket) this.socket = null;
      this.queue = [];
      if (this.closed) return;
      this.opts.handlers.onUnreachable(this.id);
      this.reconnectTimer = setTimeout(() => {
        this.reconnectTimer = null;
        this.connect();
      }, this.backoffMs);
      this.backoffMs = Math.min(this.backoffMs * 2, this.limits.reconnectBackoffMaxMs);
    });
  }

  /** Streams a snapshot on its own connection and reports the outcome to Raft. */
  sendSnapshot(m: MsgSnap): void {
    if (this.closed) return;
    const { socket, ready } = this.dial();
    socket.setNoDelay(true);
    let reported = false;
    const report = (ok: boolean, why: string): void => {
      if (reported) return;
      reported = true;
      if (!ok) this.opts.log?.('warn', `snapshot to ${this.id} failed: ${why}`);
      this.opts.handlers.onSnapshotSent(this.id, ok);
      socket.destroy();
    };
    const splitter = new FrameSplitter(this.limits.frameBytesMax);
    socket.on('data', (chunk: Buffer) => {
      for (const f of splitter.push(chunk)) {
        if (f.kind === FrameKind.SnapResult) {
          const r = decodeSnapResult(f.body);
          report(r.ok, r.error);
        } else if (f.kind === FrameKind.Reject) report(false, decodeText(f.body));
      }
    });
    socket.on('error', (e) => report(false, e.message));
    socket.on('close', () => report(false, 'connection closed'));
    socket.once(ready, () => {
      void (async () => {
        socket.write(encodeHello({ clusterId: this.opts.clusterId, from: this.opts.memberId, to: this.id, channel: Channel.Snapshot }));
        socket.write(frame(FrameKind.Message, encodeMessage(m)));
        for await (const piece of this.opts.handlers.snapshotBody(m)) {
          for (let at = 0; at < piece.byteLength; at += this.limits.snapshotChunkBytes) {
            const ok = socket.write(frame(FrameKind.SnapChunk, piece.subarray(at, at + this.limits.snapshotChunkBytes)));
            if (!ok) await new Promise<void>((resolve) => socket.once('drain', resolve));
            if (socket.destroyed) return;
          }
        }
        socket.write(frame(FrameKind.SnapEnd, new Uint8Array(0)));
      })().catch((e: unknown) => report(false, e instanceof Error ? e.message : String(e)));
    });
  }

  /** One request on a connection of its own (see Transport.request). */
  request(body: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      const { socket, ready } = this.dial();
      socket.setNoDelay(true);
      let settled = false;
      const settle = (e: Error | null, res?: Uint8Array): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        if (e === null) resolve(res!);
        else reject(e);
      };
      const timer = setTimeout(() => settle(new Error(`member ${this.id} did not answer within ${timeoutMs} ms`)), timeoutMs);
      const splitter = new FrameSplitter(this.limits.frameBytesMax);
      socket.on('data', (chunk: Buffer) => {
        let frames: Frame[];
        try {
          frames = splitter.push(chunk);
        } catch (e) {
          settle(e as Error);
          return;
        }
        for (const f of frames) {
          if (f.kind === FrameKind.Reject) settle(new Error(`member ${this.id} refused the request: ${decodeText(f.body)}`));
          else if (f.kind === FrameKind.Response) {
            const r = decodeResponse(f.body);
            settle(r.ok ? null : new Error(r.error), r.ok ? Buffer.from(r.body) : undefined);
          }
        }
      });
      socket.on('error', (e) => settle(e));
      socket.on('close', () => settle(new Error(`member ${this.id} closed the connection without an answer`)));
      socket.once(ready, () => {
        socket.write(encodeHello({ clusterId: this.opts.clusterId, from: this.opts.memberId, to: this.id, channel: Channel.Request }));
        socket.write(frame(FrameKind.Request, body));
      });
    });
  }

  close(): void {
    this.closed = true;
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.socket?.destroy();
    this.socket = null;
    this.queue = [];
  }
}
