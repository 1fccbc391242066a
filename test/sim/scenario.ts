/**
 * Everything a run varies, drawn from its seed: cluster size, Raft options, clock skew, disk
 * and apply latency, snapshot cadence, network behaviour, fault rates, membership changes.
 */
import { RAFT_DEFAULTS, type RaftMutation } from '../../src/raft/raft.ts';
import type { ClientParams } from './clients.ts';
import type { FaultParams } from './faults.ts';
import type { MemberParams } from './member.ts';
import type { NetworkPolicy } from './network.ts';
import { Prng } from './prng.ts';

/** Sim time units in one nominal Raft tick; liveness bounds are counted in these ticks. */
export const BASE_TICK = 10;
export const ELECTION_TICK = 10;

export interface ScenarioOptions {
  readonly members?: 3 | 5;
  readonly mutations?: ReadonlySet<RaftMutation>;
  /** Harness mutation: the simulated disk drops the vote from every hard state it persists. */
  readonly forgetVote?: boolean;
  /** Force the read mode (lease-based reads also force CheckQuorum on). */
  readonly readOnly?: 'safe' | 'leaseBased';
  /** Force the profile: 'mixed' (the usual draw) or 'storm' (elections, crashes and one-entry messages all the time). */
  readonly profile?: 'mixed' | 'storm';
  /** Force PreVote on or off. */
  readonly preVote?: boolean;
  /** Force the clock skew between members. */
  readonly skew?: 'none' | 'mild' | 'wild';
}

export interface Scenario {
  readonly seed: number;
  readonly members: number;
  readonly raft: MemberParams['raft'];
  readonly mutations: ReadonlySet<RaftMutation>;
  readonly forgetVote: boolean;
  /** Tick period range (clock skew between members). */
  readonly tickMin: number;
  readonly tickMax: number;
  readonly persistDelayMax: number;
  readonly applyDelayMax: number;
  readonly snapshotEvery: number;
  readonly compactKeep: number;
  readonly faultNet: NetworkPolicy;
  readonly healthyNet: NetworkPolicy;
  readonly faults: FaultParams;
  readonly clients: ClientParams;
  /** Mean time between membership changes (0: none). */
  readonly adminEvery: number;
  /** Length of the faulty phase, in time units. */
  readonly faultPhase: number;
  readonly profile: 'mixed' | 'storm';
}

export function makeScenario(seed: number, opts: ScenarioOptions = {}): Scenario {
  const p = new Prng(seed, 'scenario');
  const members = opts.members ?? (p.chance(0.5) ? 3 : 5);
  const cq = p.chance(0.8);
  const drawnPreVote = p.chance(0.85);
  const preVote = opts.preVote ?? drawnPreVote;
  const lease = p.chance(0.25);
  const readOnly = opts.readOnly ?? (cq && lease ? 'leaseBased' : 'safe');
  const checkQuorum = cq || readOnly === 'leaseBased';
  let raft: MemberParams['raft'] = {
    electionTick: ELECTION_TICK,
    heartbeatTick: p.pick([1, 1, 2, 3]),
    checkQuorum,
    preVote,
    readOnly,
    maxSizePerMsg: p.pick([RAFT_DEFAULTS.maxSizePerMsg, 1, 16, 64, 256]),
    maxInflightMsgs: p.pick([RAFT_DEFAULTS.maxInflightMsgs, 1, 2, 8]),
    maxCommittedSizePerReady: p.pick([RAFT_DEFAULTS.maxCommittedSizePerReady, RAFT_DEFAULTS.maxCommittedSizePerReady, 8, 64]),
    maxUncommittedEntriesSize: p.chance(0.15) ? 64 : RAFT_DEFAULTS.maxUncommittedEntriesSize,
    disableProposalForwarding: p.chance(0.1),
  };
  const drawnSkew = p.pick(['none', 'mild', 'wild'] as const);
  // Lease-based reads assume clocks that drift apart by much less than an election timeout
  // (RaftConfig.readOnly); wild skew breaks that assumption by design (try --read leaseBased --skew wild).
  // Without PreVote, a lagging member whose clock runs fast keeps calling elections it cannot
  // win and every vote request resets the others' timers: under skew that can starve elections
  // indefinitely (try --prevote off --skew wild). So PreVote-off runs keep the clocks in step.
  const skew = opts.skew ?? (!preVote ? 'none' : readOnly === 'leaseBased' && drawnSkew === 'wild' ? 'mild' : drawnSkew);
  const [tickMin, tickMax] = skew === 'none' ? [BASE_TICK, BASE_TICK] : skew === 'mild' ? [9, 11] : [6, 16];
  const delayMax = p.pick([3, 10, 30]);
  let faultNet: NetworkPolicy = {
    loss: p.pick([0, 0.02, 0.1, 0.25]),
    duplicate: p.pick([0, 0.02, 0.1]),
    delayMin: 1,
    delayMax,
    spike: p.pick([0, 0.01, 0.05]),
    spikeMax: 100,
  };
  const healthyNet: NetworkPolicy = { loss: 0, duplicate: 0, delayMin: 1, delayMax: Math.min(delayMax, 10), spike: 0, spikeMax: 0 };
  let faults: FaultParams = {
    partitionEvery: p.pick([0, 300, 800]),
    partitionMax: p.pick([200, 1000]),
    crashEvery: p.pick([0, 150, 400, 1000]),
    downMin: 20,
    downMax: p.pick([60, 200, 800]),
    campaignEvery: p.pick([0, 0, 500]),
    crashAfterVote: p.pick([0, 0, 0.1, 0.4]),
    crashAfterAppend: p.pick([0, 0, 0.01, 0.05]),
    crashAfterCommit: p.pick([0, 0, 0.02, 0.1]),
    transferEvery: p.pick([0, 0, 600]),
  };
  let clients: ClientParams = {
    count: p.int(2, 5),
    thinkMin: 2,
    thinkMax: p.pick([10, 30, 60]),
    writeTimeout: 30 * BASE_TICK,
    readTimeout: 30 * BASE_TICK,
    readRatio: 0.3,
  };
  // One run in four is a storm: leaders come and go all the time, crash right after voting,
  // appending or committing, and replicate one entry per message — the ground where subtle
  // commit-rule mistakes (the paper's Figure 8) become visible.
  const profile = opts.profile ?? (p.chance(0.25) ? 'storm' : 'mixed');
  if (profile === 'storm') {
    raft = { ...raft, maxSizePerMsg: 1, maxInflightMsgs: p.pick([1, 2, 256]) };
    faultNet = { ...faultNet, loss: 0.05, delayMax: 10 };
    faults = {
      ...faults,
      partitionEvery: 150,
      partitionMax: 300,
      crashEvery: 120,
      downMax: 200,
      campaignEvery: 200,
      crashAfterVote: 0.2,
      crashAfterAppend: 0.1,
      crashAfterCommit: 0.3,
    };
    clients = { ...clients, count: 5, thinkMax: 10 };
  }
  return {
    profile,
    seed,
    members,
    raft,
    mutations: opts.mutations ?? new Set(),
    forgetVote: opts.forgetVote ?? false,
    tickMin,
    tickMax,
    persistDelayMax: p.pick([0, 5, 20, 60]),
    applyDelayMax: p.pick([0, 0, 5, 30]),
    snapshotEvery: p.pick([0, 5, 13, 40]),
    compactKeep: p.pick([0, 2, 10]),
    faultNet,
    healthyNet,
    faults,
    clients,
    adminEvery: p.chance(0.5) ? p.pick([150, 400]) : 0,
    faultPhase: p.int(4000, 12000),
  };
}

export function describeScenario(s: Scenario): string {
  const r = s.raft;
  const parts = [
    `${s.profile} members=${s.members}`,
    `cq=${r.checkQuorum ? 1 : 0} pv=${r.preVote ? 1 : 0} read=${r.readOnly} hb=${r.heartbeatTick}`,
    `msg=${r.maxSizePerMsg === RAFT_DEFAULTS.maxSizePerMsg ? 'dflt' : r.maxSizePerMsg} infl=${r.maxInflightMsgs}`,
    `tick=${s.tickMin}..${s.tickMax} persist≤${s.persistDelayMax} apply≤${s.applyDelayMax}`,
    `snap=${s.snapshotEvery}/${s.compactKeep}`,
    `net: loss=${s.faultNet.loss} dup=${s.faultNet.duplicate} delay≤${s.faultNet.delayMax}`,
    `faults: part=${s.faults.partitionEvery} crash=${s.faults.crashEvery}/${s.faults.crashAfterVote}/${s.faults.crashAfterAppend}/${s.faults.crashAfterCommit} campaign=${s.faults.campaignEvery} transfer=${s.faults.transferEvery}`,
    `admin=${s.adminEvery} clients=${s.clients.count} phase=${s.faultPhase}`,
  ];
  if (s.mutations.size > 0) parts.push(`mutations=${[...s.mutations].join(',')}`);
  if (s.forgetVote) parts.push('forgetVote');
  return parts.join(' | ');
}
