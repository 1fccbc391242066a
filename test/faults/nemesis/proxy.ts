/**
 * Network partitions without privileges: every member advertises a proxy port as its peer URL
 * (in --initial-cluster and `member add`), so every peer connection towards member T passes
 * through T's proxy, which forwards it to T's real peer port.
 *
 * A proxy per destination cannot tell who dialled it from the TCP connection alone, but the
 * peer protocol can: a connection opens with a HELLO frame naming the sender and the receiver
 * (src/transport/frames.ts), and each Raft message travels on its *sender's* outbound
 * connection. So the proxy reads frames, not bytes: the HELLO tells it the link (from → to), and
 * every later frame on that connection is forwarded or dropped whole, by the current rule for
 * that directed link. Dropping whole frames keeps the stream well-formed, so a link that heals
 * carries traffic again on the same connection, and a one-way partition is just one blocked
 * direction. Traffic the other way on a connection (the receiver's REJECT, a snapshot's result)
 * follows the rule of the reverse link. A snapshot connection whose link is blocked is cut
 * (dropping chunks would hand the receiver a corrupt body). A blocked link behaves as a
 * black hole (as iptables' DROP): the sender's writes succeed and nothing arrives.
 *
 * Members are named in rules; HELLOs carry member ids, which the harness registers
 * (Network.nameMember) once it knows them. A connection whose sender is not known yet is
 * forwarded until it is; a joining member's membership question (a HELLO without ids) always is.
 */
import net from 'node:net';
import { Channel, decodeHello, frame, FrameKind, FrameSplitter, type Hello } from '../../../src/transport/frames.ts';
import { TRANSPORT_LIMITS } from '../../../src/transport/transport.ts';
import { parsePeerUrl } from '../../../src/transport/transport.ts';

/** The directed links that are cut, by member name, and who is who. */
export class Network {
  private readonly blocked = new Set<string>();
  private readonly names = new Map<string, string>();
  private readonly proxies: DestinationProxy[] = [];
  /** Frames dropped per directed link ("a→b"), for the run report. */
  readonly dropped = new Map<string, number>();

  nameMember(id: string, name: string): void {
    this.names.set(id, name);
  }

  nameOf(id: string): string | undefined {
    return this.names.get(id);
  }

  /** Cuts exactly these directed links (every other link heals). */
  setBlocked(links: Iterable<readonly [string, string]>): void {
    this.blocked.clear();
    for (const [from, to] of links) this.blocked.add(linkKey(from, to));
    for (const p of this.proxies) p.enforce();
  }

  heal(): void {
    this.setBlocked([]);
  }

  blockedLinks(): string[] {
    return [...this.blocked].sort();
  }

  isBlocked(fromId: string, toName: string): boolean {
    const from = this.names.get(fromId);
    return from !== undefined && this.blocked.has(linkKey(from, toName));
  }

  countDrop(fromId: string, toName: string): void {
    const key = linkKey(this.names.get(fromId) ?? fromId, toName);
    this.dropped.set(key, (this.dropped.get(key) ?? 0) + 1);
  }

  /** A proxy for member `name` listening on `port`, forwarding to its real peer URL. */
  async addProxy(name: string, port: number, targetUrl: string): Promise<string> {
    const proxy = new DestinationProxy(this, name, targetUrl);
    await proxy.listen(port);
    this.proxies.push(proxy);
    return `http://127.0.0.1:${port}`;
  }

  async close(): Promise<void> {
    await Promise.all(this.proxies.map((p) => p.close()));
  }
}

function linkKey(from: string, to: string): string {
  return `${from}→${to}`;
}

/** One proxied peer connection: the dialler's socket and ours to the destination. */
interface Pipe {
  readonly client: net.Socket;
  readonly upstream: net.Socket;
  hello: Hello | null;
}

class DestinationProxy {
  private readonly server: net.Server;
  private readonly pipes = new Set<Pipe>();
  private readonly target: { host: string; port: number };

  constructor(
    private readonly network: Network,
    private readonly name: string,
    targetUrl: string,
  ) {
    this.target = parsePeerUrl(targetUrl);
    this.server = net.createServer((client) => this.accept(client));
  }

  listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  /** Cuts snapshot connections on links that just became blocked. */
  enforce(): void {
    for (const p of this.pipes) {
      if (p.hello?.channel === Channel.Snapshot && this.cut(p)) this.destroy(p);
    }
  }

  close(): Promise<void> {
    for (const p of this.pipes) this.destroy(p);
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private cut(p: Pipe): boolean {
    const h = p.hello;
    if (h === null) return false;
    return this.network.isBlocked(h.from, this.name) || this.backwardBlocked(h);
  }

  private backwardBlocked(h: Hello): boolean {
    const from = this.network.nameOf(h.from);
    const to = this.network.nameOf(h.to);
    return from !== undefined && to !== undefined && this.network.isBlocked(h.to, from);
  }

  private destroy(p: Pipe): void {
    p.client.destroy();
    p.upstream.destroy();
    this.pipes.delete(p);
  }

  private accept(client: net.Socket): void {
    client.setNoDelay(true);
    const upstream = net.connect(this.target);
    upstream.setNoDelay(true);
    const pipe: Pipe = { client, upstream, hello: null };
    this.pipes.add(pipe);
    const forward = new FrameSplitter(TRANSPORT_LIMITS.frameBytesMax);
    const backward = new FrameSplitter(TRANSPORT_LIMITS.frameBytesMax);
    const fail = (): void => this.destroy(pipe);
    client.on('error', fail);
    upstream.on('error', fail);
    client.on('close', () => {
      upstream.end();
      this.pipes.delete(pipe);
    });
    upstream.on('close', () => client.end());
    // Backpressure both ways: a slow reader pauses the other side.
    const relay = (to: net.Socket, from: net.Socket, bytes: Buffer): void => {
      if (!to.write(bytes)) {
        from.pause();
        to.once('drain', () => from.resume());
      }
    };
    client.on('data', (chunk: Buffer) => {
      let frames;
      try {
        frames = forward.push(chunk);
      } catch {
        return fail();
      }
      for (const f of frames) {
        if (pipe.hello === null) {
          try {
            pipe.hello = decodeHello(f.body);
          } catch {
            return fail();
          }
          // The handshake always passes: the receiver would accept the TCP connection too.
          relay(upstream, client, frame(f.kind, f.body));
          continue;
        }
        if (this.network.isBlocked(pipe.hello.from, this.name)) {
          this.network.countDrop(pipe.hello.from, this.name);
          if (pipe.hello.channel === Channel.Snapshot) return fail();
          continue;
        }
        relay(upstream, client, frame(f.kind, f.body));
      }
    });
    upstream.on('data', (chunk: Buffer) => {
      let frames;
      try {
        frames = backward.push(chunk);
      } catch {
        return fail();
      }
      for (const f of frames) {
        const h = pipe.hello;
        if (h !== null && f.kind !== FrameKind.Membership && this.backwardBlocked(h)) continue;
        relay(client, upstream, frame(f.kind, f.body));
      }
    });
  }
}
