/**
 * A running member: the WAL and snapshot files, the MVCC store, the Raft driver and the peer
 * transport, put together; and the request paths the front ends use (propose a write and wait
 * for it to apply; read linearizably or serializably).
 *
 * Data directory: see data-dir.ts; besides, <data-dir>/member/db.incoming-<index>/ holds a store
 * received from the leader before it is installed.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { WatchHub } from '../watch/index.ts';
import { MvccStore, type DefragmentResult, type RangeRequest, type RangeResponse } from '../mvcc/index.ts';
import { assert } from '../util/assert.ts';
import { snapshotInstallCrashPoint } from '../util/test-hooks.ts';
import { fsyncPath } from '../util/fsync.ts';
import { MemoryStorage } from '../raft/storage.ts';
import type { ConfChange, MsgSnap, NodeId, Role, Snapshot } from '../raft/types.ts';
import { Transport, type ClusterMembership } from '../transport/transport.ts';
import { fetchMembership } from '../transport/membership-query.ts';
import type tls from 'node:tls';
import { dialOptions, loadRoleTls, requireTlsFor, serverOptions, type TlsMaterial } from './tls.ts';
import { DiskLog, Wal, WalClusterMismatchError, loadNewest } from '../wal/index.ts';
import { readAlarms, type AlarmRecord } from './alarms.ts';
import { ApplyMachine, fromLeaseError, fromMvccError, type ApplyOutcome, type ApplyResponse } from './apply.ts';
import type { ServerConfig } from './config.ts';
import { checkInitialHashKV, CorruptionChecker, type CorruptionCheckHost } from './corruption.ts';
import { bootstrapWal, clusterIdentity, dataDirPaths as paths, type DataDirPaths as Paths } from './data-dir.ts';
import { serverError, ServerError, type ServerErrorCode } from './errors.ts';
import { memberId as deriveMemberId } from './ids.ts';
import { LinearizableReads } from './linearizable-reads.ts';
import { encodeMemberContext, isRemoved, readMembers, type MemberContext, type MemberRecord } from './members.ts';
import { checkAdd, checkPromote, checkRemove, checkUpdate, type LeaderView } from './reconfig.ts';
import { decodePeerHashKV, decodePeerRequest, encodePeerHashKV, encodePeerRequest } from './peer-requests.ts';
import { RaftDriver } from './raft-driver.ts';
import { encodeEnvelope, type InternalRequest } from './request-codec.ts';
import { Waiters } from './waiters.ts';
import { Lessor, minLeaseTtlSeconds, type LeaseId, type TimeToLive } from '../lease/index.ts';
import { bindLessor } from './leases.ts';
import { LeaseDuties, leaseClock } from './lease-duties.ts';
import { ServerAuth, tokenProvider, type TokenProvider } from './auth.ts';
import type { AuthInfo } from '../auth/index.ts';

export const MEMBER_LIMITS = {
  /** Proposals waiting to be applied before new ones are refused with "too many requests". */
  pendingProposalsMax: 10_000,
  /** Extra time a request may wait beyond the election timeout (etcd: 5 s + 2 election timeouts). */
  requestTimeoutBaseMs: 5_000,
  /** Retry interval for publishing this member's attributes until it succeeds. */
  publishRetryMs: 500,
  /** How long a backend size reading serves quota checks while far from the quota (see backendBytes). */
  quotaSizeMaxAgeMs: 100,
  /** Within this many bytes of the quota, every quota check reads the backend size afresh. */
  quotaSizeSlackBytes: 64 * 1024 * 1024,
  /** How long a member joining a running cluster keeps asking the peers for the membership. */
  joinDiscoveryMs: 10_000,
  /** Pause between rounds of asking every peer for the membership. */
  joinRetryMs: 500,
  /** How long (in election timeouts) a stopping leader waits for its successor to take over. */
  stopTransferElectionTimeouts: 2,
} as const;

export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export interface ResponseHeader {
  readonly clusterId: string;
  readonly memberId: string;
  readonly revision: number;
  readonly raftTerm: number;
}

export interface MemberStatus {
  readonly memberId: string;
  readonly leader: NodeId;
  readonly role: Role;
  readonly raftTerm: number;
  readonly raftIndex: number;
  readonly raftAppliedIndex: number;
  readonly isLearner: boolean;
}

function incomingDir(p: Paths, index: number): string {
  return `${p.db}.incoming-${index}`;
}

/** Moves the (closed) store aside and the store received for the snapshot at `index` into its place. */
async function swapInReceived(p: Paths, index: number): Promise<void> {
  const old = `${p.db}.old`;
  await rm(old, { recursive: true, force: true });
  if (existsSync(p.db)) await rename(p.db, old);
  await rename(incomingDir(p, index), p.db);
  await fsyncPath(dirname(p.db));
  await rm(old, { recursive: true, force: true });
}

/**
 * At startup: finishes the install of the snapshot at `index` (the last one the WAL holds) if a
 * crash cut it short after the WAL recorded it but before its received store was swapped in, as
 * etcd recovers its backend from the snapshot's db file; removes other received stores and a
 * store left aside.
 */
async function recoverInstall(p: Paths, index: number, log: Logger): Promise<void> {
  if (index > 0 && existsSync(incomingDir(p, index))) {
    await swapInReceived(p, index);
    log.warn(`finished installing the snapshot at index ${index}, which a restart had interrupted`);
  }
  const member = dirname(p.db);
  for (const leftover of readdirSync(member).filter((f) => f.startsWith(`${basename(p.db)}.incoming-`) || f === `${basename(p.db)}.old`)) {
    await rm(join(member, leftover), { recursive: true, force: true });
  }
}

/** What was recovered from disk (or bootstrapped) before the member starts. */
interface Durable {
  readonly wal: Wal;
  readonly storage: MemoryStorage;
  readonly memberId: string;
  readonly clusterId: string;
  /** Peers to reach before the store's member records say who they are (a new or joining member). */
  readonly initialPeers: ReadonlyMap<string, string>;
}

/**
 * Asks the peers named in --initial-cluster for the running cluster's membership (etcd does the
 * same over its peer HTTP API), retrying for a while: they may be starting too.
 */
async function discoverMembership(config: ServerConfig, dialTls: tls.ConnectionOptions, log: Logger): Promise<ClusterMembership> {
  const mine = new Set(config.initialAdvertisePeerUrls);
  const peers = [...config.initialCluster.values()].flat().filter((u) => !mine.has(u));
  if (peers.length === 0) throw new Error('--initial-cluster-state existing: --initial-cluster names no other member to join');
  const deadline = performance.now() + MEMBER_LIMITS.joinDiscoveryMs;
  const problems: string[] = [];
  for (;;) {
    for (const url of peers) {
      try {
        return await fetchMembership(url, dialTls);
      } catch (e) {
        problems.push(`${url}: ${(e as Error).message}`);
      }
    }
    if (performance.now() >= deadline) throw new Error(`could not get the cluster's membership from any peer in --initial-cluster (${problems.slice(-peers.length).join('; ')})`);
    log.warn(`no peer answered with the cluster's membership yet; retrying`);
    await new Promise((r) => setTimeout(r, MEMBER_LIMITS.joinRetryMs));
  }
}

/** Creates the data dir of a member joining a running cluster that added it (MemberAdd) already. */
async function joinExisting(config: ServerConfig, p: Paths, dialTls: tls.ConnectionOptions, log: Logger): Promise<Durable> {
  const membership = await discoverMembership(config, dialTls, log);
  const mine = new Set(config.initialAdvertisePeerUrls);
  const me = membership.members.find((m) => m.peerUrls.some((u) => mine.has(u)));
  if (me === undefined) {
    throw new Error(
      `--initial-cluster-state existing: no member of cluster ${membership.clusterId} has peer URLs ${config.initialAdvertisePeerUrls.join(',')}; ` +
        `add this member first (etcdctl member add ${config.name} --peer-urls=${config.initialAdvertisePeerUrls.join(',')})`,
    );
  }
  await mkdir(p.snap, { recursive: true });
  const wal = await Wal.create(p.wal, { memberId: me.id, clusterId: membership.clusterId });
  const peers = new Map(membership.members.filter((m) => m.id !== me.id && m.peerUrls.length > 0).map((m) => [m.id, m.peerUrls[0]!]));
  log.info(`joining cluster ${membership.clusterId} as member ${me.id} (${peers.size} peer(s)); the leader will send the log or a snapshot`);
  // Empty log and no configuration: the leader's appends (or snapshot) bring both.
  return { wal, storage: new MemoryStorage(), memberId: me.id, clusterId: membership.clusterId, initialPeers: peers };
}

async function openDurable(config: ServerConfig, p: Paths, dialTls: tls.ConnectionOptions, log: Logger): Promise<Durable> {
  const { memberId: expectedMember, clusterId: expectedCluster, memberIds: initialIds } = clusterIdentity(config);
  const storage = new MemoryStorage();

  if (existsSync(p.wal) && readdirSync(p.wal).length > 0) {
    const expect = config.initialClusterState === 'new' ? { memberId: expectedMember, clusterId: expectedCluster } : undefined;
    let recovered;
    try {
      recovered = await Wal.open(p.wal, expect === undefined ? {} : { expect });
    } catch (e) {
      if (e instanceof WalClusterMismatchError) {
        throw new Error(
          `data dir ${config.dataDir} belongs to another member or cluster (${e.message}); ` +
            'use the flags it was created with, or a fresh --data-dir',
          { cause: e },
        );
      }
      throw e;
    }
    if (recovered.repaired !== null) log.warn(`wal: cut a torn tail in ${recovered.repaired.file} at ${recovered.repaired.offset} (${recovered.repaired.reason})`);
    const marker = recovered.snapshot;
    if (marker !== null) {
      const loaded = await loadNewest(p.snap, { accept: (m) => m.index === marker.index && m.term === marker.term });
      for (const b of loaded.broken) log.warn(`snapshot file ${b.file} is broken: ${b.error.message}`);
      assert(loaded.snapshot !== null, `no snapshot file for the WAL's snapshot marker at index ${marker.index}`);
      storage.applySnapshot(loaded.snapshot);
    }
    storage.append(recovered.entries);
    storage.setHardState(recovered.hardState);
    log.info(`restarted member ${recovered.metadata.memberId} in cluster ${recovered.metadata.clusterId} at commit ${recovered.hardState.commit}`);
    return { wal: recovered.wal, storage, memberId: recovered.metadata.memberId, clusterId: recovered.metadata.clusterId, initialPeers: new Map() };
  }

  if (config.initialClusterState === 'existing') return joinExisting(config, p, dialTls, log);
  await mkdir(p.snap, { recursive: true });
  const wal = await bootstrapWal(p, config, storage);
  log.info(`bootstrapped member ${expectedMember} of new cluster ${expectedCluster} with ${initialIds.size} member(s)`);
  const initialPeers = new Map([...config.initialCluster].map(([name, urls]) => [initialIds.get(name)!, urls[0]!]));
  return { wal, storage, memberId: expectedMember, clusterId: expectedCluster, initialPeers };
}

/**
 * The member's store, with the request limits from its flags. A put naming a lease the applied
 * state does not hold fails with "requested lease not found" on every member alike.
 */
async function openStore(dir: string, config: ServerConfig, lessor: Lessor): Promise<MvccStore> {
  const store = await MvccStore.open(dir, {
    limits: { txnOpsMax: config.maxTxnOps, keyBytesMax: config.maxRequestBytes },
    leaseExists: (id) => lessor.has(id),
  });
  bindLessor(lessor, store);
  return store;
}

function randomLeaseId(): LeaseId {
  // Positive int64, as etcd's generated ids are (a negative id prints oddly in etcdctl).
  return BigInt.asUintN(63, randomBytes(8).readBigUInt64BE(0));
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => {};
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

export class Member {
  private store: MvccStore;
  /** Watchers of this member's applied state (every member serves watches itself). */
  private readonly watchHub: WatchHub;
  private readonly driver: RaftDriver;
  private readonly transport: Transport;
  private readonly waiters: Waiters<ApplyOutcome>;
  private readonly reads: LinearizableReads;
  private nextRequestId = 0;
  private lead: NodeId = '';
  private published = false;
  private readonly publishedNotify: { promise: Promise<void>; resolve: () => void } = deferred();
  private readonly removedNotify: { promise: Promise<void>; resolve: () => void } = deferred();
  private removed = false;
  private handingOver: Promise<void> | null = null;
  /** Whether this member is a learner, as its member record says (kept by updatePeers). */
  private learner = false;
  /** When each peer was last heard from (any message), for the reconfiguration checks. */
  private readonly lastHeard = new Map<string, number>();
  private publishTimer: NodeJS.Timeout | null = null;
  private stopping: Promise<void> | null = null;
  private readonly leaseDuties: LeaseDuties;
  /** Users, roles, permissions and tokens (see auth.ts). */
  readonly auth: ServerAuth;
  private sizeSeen: { store: MvccStore; at: number; bytes: number } | null = null;
  /** The defragmentation in progress; a second request joins it. */
  private defragmenting: Promise<DefragmentResult> | null = null;
  /** The leader's periodic consistency check (--experimental-corrupt-check-time), if enabled. */
  private readonly corruptionChecker: CorruptionChecker | null;
  readonly requestTimeoutMs: number;
  /** Counters for the metrics endpoint (etcd_server_*). */
  readonly counters = { leaderChanges: 0, proposalsFailed: 0 };

  private constructor(
    readonly config: ServerConfig,
    readonly id: string,
    readonly clusterId: string,
    private readonly wal: Wal,
    storage: MemoryStorage,
    store: MvccStore,
    private readonly paths: Paths,
    private readonly log: Logger,
    private readonly onFatal: (e: unknown) => void,
    private readonly lessor: Lessor,
    peerTls: TlsMaterial | null,
    tokens: TokenProvider,
  ) {
    this.store = store;
    this.watchHub = new WatchHub(store);
    this.requestTimeoutMs = MEMBER_LIMITS.requestTimeoutBaseMs + 2 * config.electionTimeout;
    this.waiters = new Waiters(MEMBER_LIMITS.pendingProposalsMax, this.requestTimeoutMs);
    const peer = new URL(config.listenPeerUrls[0]!);
    this.transport = new Transport({
      memberId: id,
      clusterId,
      listenHost: peer.hostname.replace(/^\[|\]$/g, ''),
      listenPort: Number(peer.port),
      tls: {
        server: peer.protocol === 'https:' && peerTls !== null ? serverOptions(peerTls) : undefined,
        dial: dialOptions(peerTls),
        ...(config.peerCertAllowedCn !== '' ? { allowedCommonName: config.peerCertAllowedCn } : {}),
      },
      handlers: {
        onMessage: (m) => {
          this.lastHeard.set(m.from, performance.now());
          this.driver.step(m);
        },
        onSnapshot: (m, body) => this.receiveSnapshot(m, body),
        snapshotBody: () => this.store.snapshot(),
        onUnreachable: (peerId) => this.driver.reportUnreachable(peerId),
        onSnapshotSent: (peerId, ok) => this.driver.reportSnapshot(peerId, ok),
        isRemoved: (peerId) => isRemoved(this.store.meta, peerId),
        onRemoved: () => this.onRemoved(),
        membership: () => ({ clusterId: this.clusterId, members: this.members().map((m) => ({ id: m.id, name: m.name, peerUrls: m.peerUrls })) }),
        onRequest: (_from, body) => this.servePeerRequest(body),
      },
      log: (level, msg) => log[level](msg),
    });
    this.auth = new ServerAuth(
      {
        meta: () => this.store.meta,
        applied: () => this.driver.applied(),
        linearizableBarrier: () => this.linearizableBarrier(),
        write: (request, as) => this.write(request, as),
        leaseKeys: (lease) => (this.lessor.has(lease) ? this.lessor.timeToLive(lease, performance.now(), true).keys : undefined),
        requestTimeoutMs: this.requestTimeoutMs,
      },
      tokens,
    );
    const machine = new ApplyMachine(() => this.store, id, {
      onResult: (requestId, outcome) => this.waiters.trigger(requestId, outcome),
      onConfChange: (cc) => this.onConfChange(cc),
      onMembersChanged: () => this.updatePeers(),
      installSnapshot: (s) => this.installSnapshot(s),
      onEmptyEntry: (e) => this.leaseDuties.onEmptyEntry(e.term),
    }, { lessor: () => this.lessor, now: leaseClock }, this.auth);
    // Raft restarts from the snapshot: it hands out the committed entries after it again, so it
    // rebuilds its membership from their configuration changes, while the store skips every
    // entry it already applied (its consistent index). The store must not be behind the
    // snapshot: the log before it is gone (the driver syncs the store before snapshotting).
    const applied = storage.snapshot().metadata.index;
    assert(store.consistentIndex() >= applied, `store at index ${store.consistentIndex()} is behind the snapshot at ${applied}`);
    this.driver = new RaftDriver({
      raft: {
        id,
        electionTick: Math.round(config.electionTimeout / config.heartbeatInterval),
        heartbeatTick: 1,
        random: Math.random,
        applied,
      },
      storage,
      durable: new DiskLog(wal, paths.snap),
      stateMachine: machine,
      outbox: this.transport,
      tickMs: config.heartbeatInterval,
      snapshotCount: config.snapshotCount,
      snapshotCatchUpEntries: config.snapshotCatchUpEntries,
      onSoftState: (s) => this.onLeader(s.lead),
      onReadStates: (r) => this.reads.onReadStates(r),
      onApplied: (index) => {
        this.reads.onApplied(index);
        this.auth.onApplied(index);
      },
      onFatal: (e) => this.onFatal(e),
    });
    this.reads = new LinearizableReads(this.driver, id, this.requestTimeoutMs);
    this.leaseDuties = new LeaseDuties(this.lessor, {
      isLeaderOfTerm: (term) => this.driver.status().role === 'leader' && this.driver.term() === term,
      electionTimeoutMs: config.electionTimeout,
      propose: (request, term) => this.write(request, null, term),
      log,
    });
    this.corruptionChecker = config.corruptCheckIntervalMs > 0 ? new CorruptionChecker(this.corruptionHost(), config.corruptCheckIntervalMs) : null;
  }

  /**
   * Starts the member. `peerTls` is the loaded peer TLS material (see loadServerTls); left out,
   * it is loaded from the configuration here.
   */
  static async start(config: ServerConfig, log: Logger, onFatal: (e: unknown) => void, peerTls?: TlsMaterial | null): Promise<Member> {
    const tls = peerTls !== undefined ? peerTls : await loadRoleTls('peer', config, log);
    requireTlsFor('peer', config.listenPeerUrls, tls);
    const p = paths(config.dataDir, config.walDir);
    await mkdir(p.snap, { recursive: true });
    const durable = await openDurable(config, p, dialOptions(tls), log);
    await recoverInstall(p, durable.storage.snapshot().metadata.index, log);
    const tokens = tokenProvider(config.authToken, config.authTokenTtl);
    const lessor = new Lessor({ ttlSecondsMin: minLeaseTtlSeconds(config.heartbeatInterval, config.electionTimeout) });
    const store = await openStore(p.db, config, lessor);
    const member = new Member(config, durable.memberId, durable.clusterId, durable.wal, durable.storage, store, p, log, onFatal, lessor, tls, tokens);
    await member.transport.start();
    member.updatePeers();
    // A new or joining member knows its peers from the flags (or from them) until the log says.
    if (readMembers(store.meta).length === 0) {
      for (const [id, url] of durable.initialPeers) member.transport.setPeer(id, url);
    }
    member.driver.start();
    member.schedulePublish();
    member.corruptionChecker?.start();
    return member;
  }

  // ---- requests --------------------------------------------------------------------------

  /**
   * Proposes a request and resolves with its outcome once applied here. `as`: the client's
   * credentials (checked again at apply), or null for the member's own requests. With
   * `leaderOfTerm`, only while this member leads in that term (RaftDriver.proposeBatched):
   * else PROPOSAL_DROPPED.
   */
  async propose(request: InternalRequest, as: AuthInfo | null, leaderOfTerm?: number): Promise<ApplyOutcome> {
    if (this.stopping !== null) throw serverError('STOPPED');
    const requestId = ++this.nextRequestId;
    const data = encodeEnvelope({ proposer: this.id, requestId, as, request });
    if (data.byteLength > this.config.maxRequestBytes) throw serverError('REQUEST_TOO_LARGE');
    const applied = this.waiters.register(requestId);
    // Batched with the other proposals of this turn of the event loop (one append for all).
    this.driver.proposeBatched(data, (outcome) => {
      if (!outcome.ok) this.waiters.fail(requestId, serverError(outcome.reason === 'noLeader' ? 'NO_LEADER' : 'PROPOSAL_DROPPED'));
    }, leaderOfTerm);
    return applied.catch((e: unknown) => {
      this.counters.proposalsFailed++;
      throw e;
    });
  }

  /** A write through Raft; throws the request's error if it failed. */
  async write(request: InternalRequest, as: AuthInfo | null, leaderOfTerm?: number): Promise<ApplyResponse | null> {
    const outcome = await this.propose(request, as, leaderOfTerm);
    if (!outcome.ok) throw outcome.error;
    return outcome.response;
  }

  async range(request: RangeRequest, serializable: boolean): Promise<RangeResponse> {
    if (!serializable) await this.linearizableBarrier();
    try {
      return this.store.range(request);
    } catch (e) {
      throw fromMvccError(e);
    }
  }

  /**
   * Resolves once this member's name and client URLs are applied in the cluster (etcd's
   * ReadyNotify): etcd serves clients only from then on, so a member listed to a client
   * always has its client URLs.
   */
  whenPublished(): Promise<void> {
    return this.publishedNotify.promise;
  }

  /** Waits until local state reflects every write committed before the call. */
  async linearizableBarrier(): Promise<void> {
    if (this.stopping !== null) throw serverError('STOPPED');
    await this.reads.wait();
  }

  /**
   * Refuses a write of about `costBytes` that would take the store past --quota-backend-bytes,
   * and raises the NOSPACE alarm through the log so the whole cluster stops growing (etcd's quota).
   * As in etcd, the alarm is applied before the refusal is answered, so a client that saw
   * "database space exceeded" finds it in the alarm list.
   */
  async checkQuota(costBytes: number): Promise<void> {
    if (this.backendBytes(costBytes) + costBytes <= this.config.quotaBackendBytes) return;
    if (!this.alarms().some((a) => a.alarm === 'NOSPACE' && a.memberId === this.id)) {
      this.log.warn(`backend size exceeds the quota of ${this.config.quotaBackendBytes} bytes; raising the NOSPACE alarm`);
      try {
        await this.write({ op: 'alarm', action: 'activate', memberId: this.id, alarm: 'NOSPACE' }, null);
      } catch (e) {
        // The write is refused either way; the next refused write tries the alarm again.
        if (!(e instanceof ServerError)) throw e;
        this.log.warn(`could not raise the NOSPACE alarm: ${e.message}`);
      }
    }
    throw serverError('NO_SPACE');
  }

  /**
   * The backend size for a quota check. Far below the quota a reading up to QUOTA_SIZE_MAX_AGE_MS
   * old will do (LMDB's getStats per request cost ~1% of a member under a put load); within
   * QUOTA_SIZE_SLACK_BYTES of it, every check reads the size afresh.
   */
  private backendBytes(costBytes: number): number {
    const now = performance.now();
    const seen = this.sizeSeen;
    if (seen !== null && seen.store === this.store && now - seen.at < MEMBER_LIMITS.quotaSizeMaxAgeMs && seen.bytes + costBytes + MEMBER_LIMITS.quotaSizeSlackBytes <= this.config.quotaBackendBytes) {
      return seen.bytes;
    }
    const bytes = this.store.dbBytes();
    this.sizeSeen = { store: this.store, at: now, bytes };
    return bytes;
  }

  alarms(): AlarmRecord[] {
    return readAlarms(this.store.meta);
  }

  /** Pending proposals of this member (waiting to be applied). */
  pendingProposals(): number {
    return this.waiters.size();
  }

  header(): ResponseHeader {
    return { clusterId: this.clusterId, memberId: this.id, revision: this.store.revision, raftTerm: this.driver.term() };
  }

  status(): MemberStatus {
    const s = this.driver.status();
    return {
      memberId: this.id,
      leader: s.lead,
      role: s.role,
      raftTerm: s.term,
      raftIndex: s.commit,
      raftAppliedIndex: this.driver.applied(),
      isLearner: s.confState.learners.includes(this.id),
    };
  }

  members(): MemberRecord[] {
    return readMembers(this.store.meta);
  }

  watches(): WatchHub {
    return this.watchHub;
  }

  mvcc(): MvccStore {
    return this.store;
  }

  peerPort(): number {
    return this.transport.port();
  }

  // ---- leases ----------------------------------------------------------------------------

  lessorView(): Lessor {
    return this.lessor;
  }

  /** Grants a lease; id 0 lets this member choose an unused one (positive, as etcd's are). */
  async leaseGrant(id: LeaseId, ttl: number, as: AuthInfo): Promise<{ id: LeaseId; ttl: number }> {
    let effective: number;
    try {
      effective = this.lessor.effectiveTtl(ttl);
    } catch (e) {
      throw fromLeaseError(e);
    }
    let chosen = id;
    while (chosen === 0n || (id === 0n && this.lessor.has(chosen))) chosen = randomLeaseId();
    if (this.lessor.has(chosen)) throw serverError('LEASE_EXISTS');
    const res = await this.write({ op: 'leaseGrant', id: chosen, ttl: effective }, as);
    if (res?.op !== 'leaseGrant') throw new Error('lease grant applied as something else');
    return { id: res.id, ttl: res.ttl };
  }

  async leaseRevoke(id: LeaseId, as: AuthInfo): Promise<void> {
    if (!this.lessor.has(id)) {
      // Not applied here yet, or gone: the log decides (etcd proposes without checking too).
      await this.linearizableBarrier();
      if (!this.lessor.has(id)) throw serverError('LEASE_NOT_FOUND');
    }
    await this.write({ op: 'leaseRevoke', id }, as);
  }

  /**
   * The leader's keep-alive: the new TTL, 0 when the lease does not exist (etcd's answer), or
   * undefined when this member turns out not to lead any more (the caller forwards it then).
   * A leader that was stopped or cut off may not know yet that it was deposed, and its lessor
   * then knows nothing of the leases the new leader renewed or revoked: so, as etcd does, it
   * first confirms its leadership with a ReadIndex round.
   */
  async leaseRenew(id: LeaseId): Promise<number | undefined> {
    await this.linearizableBarrier();
    if (!this.lessor.isPrimary) return undefined;
    try {
      const r = this.lessor.renew(id, leaseClock());
      if (r.clearCheckpoint) this.leaseDuties.clearCheckpoint(id);
      return r.ttl;
    } catch (e) {
      const err = fromLeaseError(e);
      if (err.code === 'LEASE_NOT_FOUND') return 0;
      throw err;
    }
  }

  /** TimeToLive from this member's lessor; remainingTtl is exact only on the promoted leader. */
  leaseTimeToLive(id: LeaseId, keys: boolean): TimeToLive | undefined {
    if (!this.lessor.has(id)) return undefined;
    return this.lessor.timeToLive(id, leaseClock(), keys);
  }

  /** Whether this member's lessor is the primary one (leader, promoted). */
  isLeasePrimary(): boolean {
    return this.lessor.isPrimary;
  }

  /** Client URL of the current leader, when known and not this member. */
  leaderClientUrl(): string | undefined {
    const lead = this.driver.status().lead;
    if (lead === '' || lead === this.id) return undefined;
    return this.members().find((m) => m.id === lead)?.clientUrls[0];
  }

  /** New peer certificate material (rotated files) for the peer connections accepted or dialed from now on. */
  reloadPeerTls(material: TlsMaterial): void {
    this.transport.reloadTls(serverOptions(material), dialOptions(material));
  }

  // ---- membership (the leader changes it; the API forwards from followers) ------------------

  /** A learner serves only serializable reads and Status (etcd 3.4's rule). */
  /** Whether this member currently knows a leader (it may be the leader). */
  hasLeader(): boolean {
    return this.lead !== '';
  }

  isLearner(): boolean {
    return this.learner;
  }

  isLeader(): boolean {
    return this.driver.status().role === 'leader';
  }

  /** Adds a member (not started yet: it joins with --initial-cluster-state existing). */
  async memberAdd(peerUrls: readonly string[], isLearner: boolean): Promise<MemberRecord> {
    this.refuse(checkAdd(this.leaderView(), peerUrls, isLearner));
    // As etcd, the id mixes in the time, so a member re-added with the same URLs gets a new one.
    const id = deriveMemberId(peerUrls, `${this.config.initialClusterToken}${Date.now()}`);
    if (this.members().some((m) => m.id === id)) throw serverError('MEMBER_EXISTS');
    await this.changeMembership({ type: isLearner ? 'addLearner' : 'addVoter', nodeId: id }, { name: '', peerUrls });
    const added = this.members().find((m) => m.id === id);
    assert(added !== undefined, `member ${id} was added but has no record`);
    return added;
  }

  /** Removes a member, this one (the leader) included: it steps down and stops once applied. */
  async memberRemove(id: string): Promise<void> {
    this.refuse(checkRemove(this.leaderView(), id));
    await this.changeMembership({ type: 'removeNode', nodeId: id }, { name: '', peerUrls: [] });
  }

  /** Makes a learner that has caught up a voter. */
  async memberPromote(id: string): Promise<void> {
    this.refuse(checkPromote(this.leaderView(), id));
    await this.changeMembership({ type: 'addVoter', nodeId: id }, { name: '', peerUrls: [] });
  }

  /** Changes a member's peer URLs (through the log; who votes does not change). */
  async memberUpdate(id: string, peerUrls: readonly string[]): Promise<void> {
    this.refuse(checkUpdate(this.leaderView(), id, peerUrls));
    await this.write({ op: 'memberUpdate', memberId: id, peerUrls }, null);
  }

  /** Resolves when this member applied its own removal; it should then stop. */
  whenRemoved(): Promise<void> {
    return this.removedNotify.promise;
  }

  private refuse(refusal: ServerErrorCode | null): void {
    if (!this.isLeader()) throw serverError('NOT_LEADER');
    if (refusal !== null) throw serverError(refusal);
  }

  /** The leader's view for the reconfiguration checks. */
  private leaderView(): LeaderView {
    const s = this.driver.status();
    const now = performance.now();
    return {
      self: this.id,
      members: this.members(),
      strict: this.config.strictReconfigCheck,
      active: (id) => id === this.id || now - (this.lastHeard.get(id) ?? -Infinity) < this.config.electionTimeout,
      match: (id) => (id === this.id ? s.lastIndex : (s.progress.get(id)?.match ?? 0)),
    };
  }

  /** Proposes one membership change and waits until this member applied it. */
  private async changeMembership(change: ConfChange['changes'][number], context: MemberContext): Promise<void> {
    if (this.stopping !== null) throw serverError('STOPPED');
    const requestId = ++this.nextRequestId;
    const applied = this.waiters.register(requestId);
    const outcome = this.driver.proposeConfChange({
      transition: 'auto',
      changes: [change],
      context: encodeMemberContext({ ...context, proposer: this.id, requestId }),
    });
    if (!outcome.ok) this.waiters.fail(requestId, serverError(outcome.reason === 'noLeader' ? 'NO_LEADER' : 'PROPOSAL_DROPPED'));
    const result = await applied;
    if (!result.ok) throw result.error;
  }

  // ---- maintenance -----------------------------------------------------------------------

  /**
   * etcd's Defragment on this member: the store's free pages go back to the file system (see
   * MvccStore.defragment). Applying pauses meanwhile while Raft goes on, so this member keeps
   * its place in the cluster; its writes and linearizable reads wait, serializable reads do not.
   */
  defragment(): Promise<DefragmentResult> {
    if (this.stopping !== null) return Promise.reject(serverError('STOPPED'));
    this.defragmenting ??= this.runDefragment().finally(() => {
      this.defragmenting = null;
    });
    return this.defragmenting;
  }

  private async runDefragment(): Promise<DefragmentResult> {
    const started = performance.now();
    await this.driver.pauseApply();
    try {
      // Read after the pause: a snapshot install may have replaced the store.
      const r = await this.store.defragment();
      this.log.info(`defragmented the store: ${r.beforeBytes} → ${r.afterBytes} bytes in ${Math.round(performance.now() - started)} ms`);
      return r;
    } finally {
      this.driver.resumeApply();
    }
  }

  /**
   * etcd's MoveLeader: hands leadership to `target` and waits, checking every heartbeat
   * interval, until it leads or timeoutMs passed. Only the leader can; the target must be a
   * voting member (this one: nothing to do).
   */
  async moveLeader(target: string, timeoutMs: number): Promise<void> {
    if (this.stopping !== null) throw serverError('STOPPED');
    if (this.driver.status().lead !== this.id) throw serverError('NOT_LEADER');
    const record = this.members().find((m) => m.id === target);
    if (record === undefined || record.isLearner) throw serverError('BAD_LEADER_TRANSFEREE');
    const end = performance.now() + timeoutMs;
    if (target !== this.id) this.log.info(`transferring leadership from ${this.id} to ${target}`);
    this.driver.transferLeadership(target);
    while (this.driver.status().lead !== target) {
      if (performance.now() >= end || this.stopping !== null) throw serverError('TIMEOUT_LEADER_TRANSFER');
      await new Promise((r) => setTimeout(r, this.config.heartbeatInterval));
    }
  }

  /**
   * etcd's initial corruption check (--experimental-initial-corrupt-check): this member's
   * key-space hash against the others' at its revision; throws if one differs at the same
   * compaction revision.
   */
  async checkInitialConsistency(): Promise<void> {
    const differing = await checkInitialHashKV(this.corruptionHost());
    if (differing.length > 0) throw new Error(`${this.id} found data inconsistency with peers (${differing.join(', ')})`);
    this.log.info('initial consistency check: no difference with the other members');
  }

  /** What the consistency checks need of this member. */
  private corruptionHost(): CorruptionCheckHost {
    return {
      memberId: this.id,
      isLeader: () => this.stopping === null && this.driver.status().role === 'leader',
      hashKV: (revision) => this.store.hashKV(revision),
      peers: () => this.members().map((m) => m.id).filter((id) => id !== this.id),
      peerHashKV: async (peer, revision) => decodePeerHashKV(await this.transport.request(peer, encodePeerRequest({ op: 'hashKV', revision }), this.requestTimeoutMs)),
      linearizableBarrier: () => this.linearizableBarrier(),
      raiseCorrupt: async (memberId) => {
        await this.write({ op: 'alarm', action: 'activate', memberId, alarm: 'CORRUPT' }, null);
      },
      log: this.log,
    };
  }

  /** Answers another member's request over the peer transport (see peer-requests.ts). */
  private async servePeerRequest(body: Uint8Array): Promise<Uint8Array> {
    if (this.stopping !== null) throw serverError('STOPPED');
    const request = decodePeerRequest(body);
    const h = await this.store.hashKV(request.revision);
    return encodePeerHashKV({ memberId: this.id, ...h });
  }

  // ---- lifecycle -------------------------------------------------------------------------

  /**
   * Stops the member. A leader first hands leadership to the most caught-up connected voter (as
   * etcd does on a graceful stop), so the cluster does not wait an election timeout for a new one.
   */
  async stop(): Promise<void> {
    if (this.stopping === null) await (this.handingOver ??= this.handOverLeadership());
    this.stopping ??= (async () => {
      if (this.publishTimer !== null) clearTimeout(this.publishTimer);
      this.corruptionChecker?.stop();
      this.leaseDuties.stop();
      await this.driver.stop();
      await this.transport.stop();
      this.waiters.failAll(serverError('STOPPED'));
      this.reads.failAll(serverError('STOPPED'));
      await this.wal.close();
      this.watchHub.close();
      await this.store.close();
      this.log.info(`member ${this.id} stopped`);
    })();
    return this.stopping;
  }

  private async handOverLeadership(): Promise<void> {
    const s = this.driver.status();
    if (s.role !== 'leader' || this.removed) return;
    const now = performance.now();
    const candidates = this.members()
      .filter((m) => !m.isLearner && m.id !== this.id && now - (this.lastHeard.get(m.id) ?? -Infinity) < this.config.electionTimeout)
      .map((m) => ({ id: m.id, match: s.progress.get(m.id)?.match ?? 0 }))
      .sort((a, b) => b.match - a.match);
    const target = candidates[0];
    if (target === undefined) return;
    try {
      await this.moveLeader(target.id, MEMBER_LIMITS.stopTransferElectionTimeouts * this.config.electionTimeout);
      this.log.info(`handed leadership to ${target.id} before stopping`);
    } catch (e) {
      if (!(e instanceof ServerError)) throw e;
      this.log.warn(`could not hand leadership to ${target.id} before stopping: ${e.message}`);
    }
  }

  // ---- internals -------------------------------------------------------------------------

  private onLeader(lead: NodeId): void {
    if (lead !== this.lead && lead !== '') this.counters.leaderChanges++;
    if (lead !== this.lead) this.log.info(lead === '' ? `member ${this.id} lost its leader` : `member ${this.id} elected leader ${lead} at term ${this.driver.status().term}`);
    if (lead !== this.lead) this.reads.onLeaderChanged();
    this.lead = lead;
    if (this.driver.status().role !== 'leader') this.leaseDuties.demote();
  }

  /** Publishes this member's name and client URLs through the log, retrying until applied. */
  private schedulePublish(): void {
    if (this.published || this.stopping !== null) return;
    this.publishTimer = setTimeout(() => {
      this.publishTimer = null;
      this.write({ op: 'memberAttributes', memberId: this.id, name: this.config.name, clientUrls: this.config.advertiseClientUrls }, null).then(
        () => {
          this.published = true;
          this.publishedNotify.resolve();
          this.log.info(`published ${this.config.name} ${this.config.advertiseClientUrls.join(',')} to cluster ${this.clusterId}`);
        },
        (e: unknown) => {
          if (!(e instanceof ServerError)) throw e;
          this.schedulePublish();
        },
      );
    }, this.lead === '' ? MEMBER_LIMITS.publishRetryMs : 0);
  }

  private onConfChange(cc: ConfChange): void {
    this.log.info(`applied membership change: ${cc.changes.map((c) => `${c.type} ${c.nodeId}`).join(', ')}`);
    this.updatePeers();
    if (cc.changes.some((c) => c.type === 'removeNode' && c.nodeId === this.id)) this.onRemoved();
  }

  /** This member was removed (it applied its removal, or a peer refused it as removed). */
  private onRemoved(): void {
    if (this.removed) return;
    this.removed = true;
    this.log.warn(`the member has been permanently removed from the cluster; its data dir ${this.config.dataDir} must be removed before it may join again`);
    // As a removed Raft leader does, stay one election timeout so the others learn the commit.
    setTimeout(() => this.removedNotify.resolve(), this.config.electionTimeout).unref();
  }

  /** Points the transport at every other member the store knows of. */
  private updatePeers(): void {
    const members = readMembers(this.store.meta);
    this.learner = members.find((m) => m.id === this.id)?.isLearner ?? false;
    const known = new Set<string>();
    for (const m of members) {
      known.add(m.id);
      if (m.id !== this.id && m.peerUrls.length > 0) this.transport.setPeer(m.id, m.peerUrls[0]!);
    }
    if (members.length === 0) return;
    for (const urls of this.config.initialCluster.values()) {
      const id = deriveMemberId(urls, this.config.initialClusterToken);
      if (!known.has(id)) this.transport.removePeer(id);
    }
  }

  /** Receives the leader's store into a side directory, then lets Raft install the snapshot. */
  private async receiveSnapshot(m: MsgSnap, body: AsyncIterable<Uint8Array>): Promise<void> {
    const dir = incomingDir(this.paths, m.snapshot.metadata.index);
    await rm(dir, { recursive: true, force: true });
    await MvccStore.restore(dir, body);
    this.log.info(`received snapshot at index ${m.snapshot.metadata.index} from ${m.from}`);
    this.driver.step(m);
  }

  /** Swaps in the store received for `snapshot` (called by the apply step, in log order). */
  private async installSnapshot(snapshot: Snapshot): Promise<void> {
    const dir = incomingDir(this.paths, snapshot.metadata.index);
    assert(existsSync(dir), `no received store for snapshot ${snapshot.metadata.index}`);
    await this.store.close();
    snapshotInstallCrashPoint();
    await swapInReceived(this.paths, snapshot.metadata.index);
    this.store = await openStore(this.paths.db, this.config, this.lessor);
    this.watchHub.replaceStore(this.store);
    this.auth.reload();
    assert(this.store.consistentIndex() >= snapshot.metadata.index, 'received store is older than its snapshot');
    this.updatePeers();
    this.log.info(`installed snapshot at index ${snapshot.metadata.index} (store at ${this.store.consistentIndex()})`);
  }
}
