/**
 * The client port: etcd's gRPC services and, on the same port, HTTP/1.1 for the JSON gateway,
 * /health, /version and /metrics, as etcd serves them.
 */
import type http from 'node:http';
import type { Service } from 'protobufjs';
import { bidiStream, clientStream, GrpcServer, listenClientPort, serverStream, unaryMessage, type BidiStream, type CallContext, type ClientPort, type ClientStream, type MethodImpl, type ServerStream, type ServiceImpl } from '../grpc/index.ts';
import { serverError } from '../../server/errors.ts';
import { toGrpcError, toRawAuthGrpcError } from './errors.ts';
import { LeaderMonitor } from './require-leader.ts';
import type { ServerConfig } from '../../server/config.ts';
import type { Logger, Member } from '../../server/member.ts';
import { ClusterApi, clusterService } from './cluster.ts';
import { rejectedConnectionText } from '../../util/tls-errors.ts';
import { loadRoleTls, requireTlsFor, serverOptions, type TlsMaterial } from '../../server/tls.ts';
import { Gateway, sendHttpError, sendJson } from './gateway.ts';
import { KvApi, kvService } from './kv.ts';
import { ETCD_CLUSTER_VERSION, ETCD_SERVER_VERSION, maintenanceService, snapshotResponses } from './maintenance.ts';
import { memberMetrics } from './metrics.ts';
import { watchService } from './watch.ts';
import { keepAliveRoute, LeaseApi, leaseService } from './lease.ts';
import { FORWARDED_HEADER } from './forward.ts';
import { etcdService } from './proto/load.ts';
import { AUTH_GATEWAY_PATHS, AuthApi, authService, callerOf } from './auth.ts';
import { Concurrency } from './concurrency.ts';
import { LockApi, lockService } from './lock.ts';
import { ElectionApi, electionService, type PbLeaderRequest } from './election.ts';

export const CLIENT_API_LIMITS = {
  /** gRPC messages may exceed --max-request-bytes by this much, so oversize requests get etcd's own error. */
  grpcOverheadBytes: 512 * 1024,
  /** How long GET /health waits for a linearizable read before calling the member unhealthy. */
  healthReadTimeoutMs: 1_000,
} as const;

/** Gateway paths of the unary methods, as etcd's google.api.http annotations give them. */
const GATEWAY_PATHS: Record<string, Record<string, string | readonly string[]>> = {
  'etcdserverpb.KV': { Range: 'kv/range', Put: 'kv/put', DeleteRange: 'kv/deleterange', Txn: 'kv/txn', Compact: 'kv/compaction' },
  'etcdserverpb.Maintenance': {
    Alarm: 'maintenance/alarm',
    Status: 'maintenance/status',
    Hash: 'maintenance/hash',
    Defragment: 'maintenance/defragment',
    MoveLeader: 'maintenance/transfer-leadership',
  },
  'etcdserverpb.Cluster': {
    MemberList: 'cluster/member/list',
    MemberAdd: 'cluster/member/add',
    MemberRemove: 'cluster/member/remove',
    MemberUpdate: 'cluster/member/update',
    MemberPromote: 'cluster/member/promote',
  },
  'etcdserverpb.Lease': {
    LeaseGrant: 'lease/grant',
    LeaseRevoke: ['lease/revoke', 'kv/lease/revoke'],
    LeaseTimeToLive: ['lease/timetolive', 'kv/lease/timetolive'],
    LeaseLeases: ['lease/leases', 'kv/lease/leases'],
  },
  'etcdserverpb.Auth': AUTH_GATEWAY_PATHS,
  'v3lockpb.Lock': { Lock: 'lock/lock', Unlock: 'lock/unlock' },
  'v3electionpb.Election': { Campaign: 'election/campaign', Proclaim: 'election/proclaim', Leader: 'election/leader', Resign: 'election/resign' },
};

/** etcd answers every HTTP/1.1 request with these (its CORS defaults). */
const CORS_HEADERS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'POST, GET, OPTIONS, PUT, DELETE',
  'access-control-allow-headers': 'accept, content-type, authorization',
};

/** What a learner serves, as in etcd 3.4: Status, Snapshot, and Range when serializable. */
function servedByLearner(service: string, method: string, request: unknown): boolean {
  if (service === 'etcdserverpb.Maintenance' && (method === 'Status' || method === 'Snapshot')) return true;
  return service === 'etcdserverpb.KV' && method === 'Range' && (request as { serializable?: boolean } | null)?.serializable === true;
}

/** Wraps every method of a service so that a learner refuses what it does not serve. */
function refuseOnLearner(member: Member, service: Service, impl: ServiceImpl): ServiceImpl {
  const name = service.fullName.replace(/^\./, '');
  const refusal = (): Error => toGrpcError(serverError('LEARNER_NOT_SUPPORTED')) as Error;
  const wrapped: Record<string, MethodImpl> = {};
  for (const [method, m] of Object.entries(impl)) {
    switch (m.kind) {
      case 'unary':
        // Spread, so the method's own response encoding (if any) stays with it.
        wrapped[method] = { ...m, fn: (req: unknown, call: CallContext) => (member.isLearner() && !servedByLearner(name, method, req) ? Promise.reject(refusal()) : m.fn(req, call)) };
        break;
      case 'serverStream':
        wrapped[method] = serverStream((req: unknown, call: ServerStream<unknown>) => (member.isLearner() && !servedByLearner(name, method, req) ? Promise.reject(refusal()) : m.fn(req, call)));
        break;
      case 'bidiStream':
        wrapped[method] = bidiStream((call: BidiStream<unknown, unknown>) => (member.isLearner() ? Promise.reject(refusal()) : m.fn(call)));
        break;
      case 'clientStream':
        wrapped[method] = clientStream((call: ClientStream<unknown>) => (member.isLearner() ? Promise.reject(refusal()) : m.fn(call)));
        break;
    }
  }
  return wrapped;
}

export interface ClientApi {
  /** The bound ports, one per --listen-client-urls entry (useful when a URL asked for port 0). */
  ports(): number[];
  /** New client certificate material (rotated files) for the https:// ports' next connections. */
  reloadTls(material: TlsMaterial): void;
  close(): Promise<void>;
}

function gatewayContext(req: http.IncomingMessage, path: string, signal: AbortSignal): CallContext {
  const metadata: Record<string, string> = {};
  if (typeof req.headers.authorization === 'string') metadata.token = req.headers.authorization;
  if (req.headers[FORWARDED_HEADER] !== undefined) metadata[FORWARDED_HEADER] = '1';
  return { method: path, metadata, peer: `${req.socket.remoteAddress}:${req.socket.remotePort}`, deadline: undefined, signal };
}

/** Serves the unary methods of `impl` on the gateway too, with the same handlers. */
function addGatewayRoutes(gateway: Gateway, service: Service, impl: ServiceImpl, routes: Record<string, string | readonly string[]>): void {
  for (const [method, paths] of Object.entries(routes)) {
    const handler = impl[method];
    const m = service.methods[method];
    if (handler?.kind !== 'unary' || m === undefined) throw new Error(`gateway: ${service.name}/${method} is not a unary method we serve`);
    m.resolve();
    for (const path of typeof paths === 'string' ? [paths] : paths) {
      gateway.add(path, {
        requestType: m.resolvedRequestType!,
        responseType: m.resolvedResponseType!,
        handle: async (body, req, signal) => unaryMessage(handler, await handler.fn(body, gatewayContext(req, `/v3/${path}`, signal))),
      });
    }
  }
}

/** POST /v3/maintenance/snapshot: the Snapshot stream, one {"result":…} line per message. */
function addSnapshotRoute(gateway: Gateway, service: Service, member: Member): void {
  const m = service.methods.Snapshot!;
  m.resolve();
  gateway.addStream('maintenance/snapshot', {
    requestType: m.resolvedRequestType!,
    responseType: m.resolvedResponseType!,
    // The root role once auth is enabled, as the gRPC call.
    stream: async function* (_request, req, signal) {
      try {
        member.auth.checkAdmin(await callerOf(member, gatewayContext(req, '/v3/maintenance/snapshot', signal)));
      } catch (e) {
        throw toRawAuthGrpcError(e);
      }
      yield* snapshotResponses(member);
    },
  });
}

/** POST /v3/election/observe: the Observe stream, one {"result":…} line per message (refused on a learner). */
function addObserveRoute(gateway: Gateway, service: Service, member: Member, api: ElectionApi): void {
  const m = service.methods.Observe!;
  m.resolve();
  gateway.addStream('election/observe', {
    requestType: m.resolvedRequestType!,
    responseType: m.resolvedResponseType!,
    stream: async function* (request, req, signal) {
      // As refuseOnLearner does for the gRPC call.
      if (member.isLearner()) throw toGrpcError(serverError('LEARNER_NOT_SUPPORTED'));
      yield* api.observe(request as PbLeaderRequest, gatewayContext(req, '/v3/election/observe', signal));
    },
  });
}

/** POST /v3/lease/keepalive: one renewal per request (see lease.ts). */
function addKeepAliveRoute(gateway: Gateway, service: Service, api: LeaseApi): void {
  const m = service.methods.LeaseKeepAlive!;
  m.resolve();
  const route = keepAliveRoute(api);
  gateway.add('lease/keepalive', {
    requestType: m.resolvedRequestType!,
    responseType: m.resolvedResponseType!,
    handle: (body, req, signal) => route(body, gatewayContext(req, '/v3/lease/keepalive', signal)),
  });
}

/**
 * Serves the client API on every --listen-client-urls entry. `clientTls` is the loaded client
 * TLS material (see loadServerTls); left out, it is loaded from the configuration here.
 */
export async function startClientApi(member: Member, config: ServerConfig, log: Logger, clientTls?: TlsMaterial | null): Promise<ClientApi> {
  const tls = clientTls !== undefined ? clientTls : await loadRoleTls('client', config, log);
  requireTlsFor('client', config.listenClientUrls, tls);
  const messageBytesMax = config.maxRequestBytes + CLIENT_API_LIMITS.grpcOverheadBytes;
  const grpc = new GrpcServer({
    receiveBytesMax: messageBytesMax,
    onHandlerError: (err, method) => log.error(`${method} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`),
  });
  const gateway = new Gateway(messageBytesMax);
  const leaseApi = new LeaseApi(member);
  const kvApi = new KvApi(member);
  const concurrency = new Concurrency(member, kvApi, log);
  const electionApi = new ElectionApi(concurrency);
  const services: Array<[Service, ServiceImpl]> = [
    kvService(kvApi, etcdService('etcdserverpb.KV')),
    maintenanceService(member, etcdService('etcdserverpb.Maintenance')),
    clusterService(new ClusterApi(member), etcdService('etcdserverpb.Cluster')),
    watchService(member, etcdService('etcdserverpb.Watch')),
    leaseService(leaseApi, etcdService('etcdserverpb.Lease')),
    authService(new AuthApi(member), etcdService('etcdserverpb.Auth')),
    lockService(new LockApi(concurrency), etcdService('v3lockpb.Lock')),
    electionService(electionApi, etcdService('v3electionpb.Election')),
  ];
  const leaderMonitor = new LeaderMonitor(member, config.electionTimeout);
  for (const [service, plain] of services) {
    const impl = leaderMonitor.wrap(refuseOnLearner(member, service, plain));
    const name = service.fullName.replace(/^\./, '');
    grpc.addService(service, impl);
    addGatewayRoutes(gateway, service, impl, GATEWAY_PATHS[name] ?? {});
  }
  addObserveRoute(gateway, etcdService('v3electionpb.Election'), member, electionApi);
  addKeepAliveRoute(gateway, etcdService('etcdserverpb.Lease'), leaseApi);
  addSnapshotRoute(gateway, etcdService('etcdserverpb.Maintenance'), member);
  const metrics = memberMetrics(member);

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    for (const [k, v] of Object.entries(CORS_HEADERS)) res.setHeader(k, v);
    const path = (req.url ?? '/').split('?')[0]!;
    const respond = async (): Promise<void> => {
      if (gateway.matches(path)) return gateway.serve(req, res);
      // etcd serves /health and /version to GET only.
      if ((path === '/health' || path === '/version') && req.method !== 'GET') return sendHttpError(res, 405, 'Method Not Allowed', { allow: 'GET' });
      switch (path) {
        case '/health':
          return health(member, req, res);
        case '/version':
          return sendJson(res, 200, JSON.stringify({ etcdserver: ETCD_SERVER_VERSION, etcdcluster: ETCD_CLUSTER_VERSION }));
        case '/metrics': {
          const text = await metrics.metrics();
          res.writeHead(200, { 'content-type': metrics.contentType });
          res.end(text);
          return;
        }
        default:
          return sendHttpError(res, 404, '404 page not found');
      }
    };
    respond().catch((e: unknown) => {
      log.error(`${path} failed: ${String(e)}`);
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  };

  // A refused handshake (no, an untrusted or an expired client certificate), a warning as in etcd.
  const onTlsError = (reason: string, remote: string | undefined): void => log.warn(rejectedConnectionText(reason, remote));
  const ports: ClientPort[] = [];
  try {
    for (const url of config.listenClientUrls) {
      const u = new URL(url);
      const secure = u.protocol === 'https:' && tls !== null ? { tls: serverOptions(tls), onTlsError } : {};
      ports.push(await listenClientPort({ host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 2379), ...secure }, grpc.handleStream, onRequest));
    }
  } catch (e) {
    await Promise.all(ports.map((p) => p.close(0)));
    throw e;
  }
  leaderMonitor.start();
  return {
    ports: () => ports.map((p) => p.address().port),
    reloadTls: (material) => {
      for (const p of ports) p.reloadTls(serverOptions(material));
    },
    close: async () => {
      leaderMonitor.stop();
      await Promise.all(ports.map((p) => p.close()));
    },
  };
}

/**
 * GET /health as etcd 3.4 answers it: {"health":"true"} when there is a leader, no alarm is
 * raised (but those named by ?exclude=) and a linearizable read completes in time
 * (?serializable=true skips the read).
 */
async function health(member: Member, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const query = new URL(req.url ?? '/', 'http://x').searchParams;
  const serializable = query.get('serializable') === 'true';
  // ?exclude=NOSPACE: report healthy despite that alarm (a full cluster still serves reads).
  const excluded = new Set(query.getAll('exclude'));
  let ok = member.alarms().every((a) => excluded.has(a.alarm)) && member.status().leader !== '';
  if (ok && !serializable) {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timed out')), CLIENT_API_LIMITS.healthReadTimeoutMs);
    });
    try {
      await Promise.race([member.linearizableBarrier(), timeout]);
    } catch (e) {
      if (!(e instanceof Error)) throw e;
      ok = false;
    } finally {
      clearTimeout(timer);
    }
  }
  const body = JSON.stringify({ health: String(ok) });
  // etcd writes an unhealthy answer with Go's http.Error (its headers, a newline after the body).
  if (!ok) return sendHttpError(res, 503, body);
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
