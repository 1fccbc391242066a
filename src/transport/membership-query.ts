/**
 * Asks a running member for the cluster's membership over its peer port (the Membership
 * channel): how a member started with --initial-cluster-state existing learns the cluster's id
 * and its own id, which MemberAdd chose, before it opens its data directory.
 */
import type tls from 'node:tls';
import { decodeText, encodeHello, Channel, FrameKind, FrameSplitter, type Frame } from './frames.ts';
import { dialPeer, TRANSPORT_LIMITS, type ClusterMembership } from './transport.ts';

export async function fetchMembership(peerUrl: string, dialTls?: tls.ConnectionOptions, timeoutMs: number = TRANSPORT_LIMITS.dialTimeoutMs): Promise<ClusterMembership> {
  return new Promise<ClusterMembership>((resolve, reject) => {
    const { socket, ready } = dialPeer(peerUrl, dialTls);
    const splitter = new FrameSplitter(TRANSPORT_LIMITS.frameBytesMax);
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no answer from ${peerUrl} within ${timeoutMs} ms`)));
    socket.once(ready, () => socket.write(encodeHello({ clusterId: '', from: '', to: '', channel: Channel.Membership })));
    socket.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = splitter.push(chunk);
      } catch (e) {
        socket.destroy(e as Error);
        return;
      }
      for (const f of frames) {
        if (f.kind === FrameKind.Membership) {
          resolve(JSON.parse(decodeText(f.body)) as ClusterMembership);
        } else {
          reject(new Error(`${peerUrl} refused the membership question: ${f.kind === FrameKind.Reject ? decodeText(f.body) : `frame kind ${f.kind}`}`));
        }
        socket.destroy();
        return;
      }
    });
    socket.once('error', reject);
    socket.once('close', () => reject(new Error(`${peerUrl} closed the connection without an answer`)));
  });
}
