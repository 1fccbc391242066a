/**
 * etcd's `hasleader` metadata on streams (clientv3.WithRequireLeader), against a real etcd 3.4
 * and Conclave alike: with the other two members gone, a watch or keep-alive stream opened with
 * it on the survivor ends with UNAVAILABLE "etcdserver: no leader" within a few election
 * timeouts, and a new one is refused at once; without the metadata the stream is served.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import type { Type } from 'protobufjs';
import { etcdService } from '../../src/api/etcd/proto/load.ts';
import { etcdAvailable, startCluster, waitHealthy, type Flavour, type ProcessCluster } from '../helpers/processes.ts';

const LIMITS = {
  /** etcd gives up after 3 leaderless checks, one per election timeout (500 ms here), plus an election. */
  streamEndsWithinMs: 10_000,
  /** How long a stream without the metadata must stay open while the member has no leader. */
  servedForMs: 2_500,
};

function method(service: string, name: string) {
  const m = etcdService(service).methods[name]!;
  m.resolve();
  const req: Type = m.resolvedRequestType!;
  const res: Type = m.resolvedResponseType!;
  return {
    path: `/${service}/${name}`,
    serialize: (o: object): Buffer => Buffer.from(req.encode(req.fromObject(o)).finish()),
    deserialize: (b: Buffer): unknown => res.toObject(res.decode(b), { longs: String, defaults: true }),
  };
}
const WATCH = method('etcdserverpb.Watch', 'Watch');
const KEEP_ALIVE = method('etcdserverpb.Lease', 'LeaseKeepAlive');
const LEASE_GRANT = method('etcdserverpb.Lease', 'LeaseGrant');

interface Outcome {
  readonly responses: number;
  readonly error: grpc.ServiceError | null;
}

/** Opens a bidi stream, sends `first`, and resolves when it ends or after `openMs`. */
function openStream(client: grpc.Client, m: typeof WATCH, first: object, requireLeader: boolean, openMs: number): { outcome: Promise<Outcome>; call: grpc.ClientDuplexStream<object, unknown> } {
  const md = new grpc.Metadata();
  if (requireLeader) md.set('hasleader', 'true');
  const call = client.makeBidiStreamRequest(m.path, m.serialize, m.deserialize, md);
  let responses = 0;
  const outcome = new Promise<Outcome>((resolve) => {
    const timer = setTimeout(() => resolve({ responses, error: null }), openMs);
    call.on('data', () => responses++);
    call.on('error', (e: grpc.ServiceError) => {
      clearTimeout(timer);
      resolve({ responses, error: e });
    });
  });
  call.write(first);
  return { outcome, call };
}

const watchKey = { create_request: { key: Buffer.from('require-leader') } };

for (const flavour of ['conclave', 'etcd'] as Flavour[]) {
  describe(`hasleader streams against ${flavour}`, { skip: flavour === 'etcd' && !etcdAvailable() ? 'etcd 3.4 is not installed' : false, timeout: 60_000 }, () => {
    let cluster: ProcessCluster;
    let client: grpc.Client;
    before(async () => {
      cluster = await startCluster(flavour, 3);
      await waitHealthy(cluster);
      client = new grpc.Client(cluster.members[0]!.clientUrl.replace(/^http:\/\//, ''), grpc.credentials.createInsecure());
    });
    after(async () => {
      client?.close();
      await cluster?.destroy();
    });

    test('a stream that requires a leader ends when the member loses it; new ones are refused; others are served', async () => {
      const lease = (await new Promise<unknown>((resolve, reject) => client.makeUnaryRequest(LEASE_GRANT.path, LEASE_GRANT.serialize, LEASE_GRANT.deserialize, { TTL: 60 }, (e, r) => (e ? reject(e) : resolve(r))))) as { ID: string };
      const watching = openStream(client, WATCH, watchKey, true, LIMITS.streamEndsWithinMs + 5_000);
      const keepingAlive = openStream(client, KEEP_ALIVE, { ID: lease.ID }, true, LIMITS.streamEndsWithinMs + 5_000);
      const plain = openStream(client, WATCH, watchKey, false, LIMITS.streamEndsWithinMs + 5_000);
      // Both streams are working before the others go.
      await new Promise((r) => setTimeout(r, 500));
      const started = Date.now();
      await cluster.kill(1);
      await cluster.kill(2);

      for (const s of [watching, keepingAlive]) {
        const { responses, error } = await s.outcome;
        assert.ok(responses >= 1, 'the stream answered while there was a leader');
        assert.ok(error !== null, 'the stream ended');
        assert.equal(error.code, grpc.status.UNAVAILABLE, error.details);
        assert.equal(error.details, 'etcdserver: no leader');
      }
      assert.ok(Date.now() - started < LIMITS.streamEndsWithinMs, `took ${Date.now() - started} ms`);

      const refused = await openStream(client, WATCH, watchKey, true, LIMITS.servedForMs).outcome;
      assert.equal(refused.error?.code, grpc.status.UNAVAILABLE);
      assert.equal(refused.error?.details, 'etcdserver: no leader');
      assert.equal(refused.responses, 0);

      // Without the metadata, the old stream lives on and a new one is created as usual.
      const freshStream = openStream(client, WATCH, watchKey, false, LIMITS.servedForMs);
      const fresh = await freshStream.outcome;
      freshStream.call.cancel();
      assert.equal(fresh.error, null);
      assert.equal(fresh.responses, 1, 'the created response');
      plain.call.cancel();
      const old = await plain.outcome;
      assert.equal(old.error?.code, grpc.status.CANCELLED, 'the plain stream was still open until we canceled it');
    });
  });
}
