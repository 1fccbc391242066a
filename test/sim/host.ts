/** What members, the network and the workload need from the simulation that owns them. */
import type { Checker } from './checker.ts';
import type { EventQueue } from './events.ts';
import type { SimMember } from './member.ts';
import type { Network } from './network.ts';
import type { Trace } from './trace.ts';
import type { NodeId } from '../../src/raft/types.ts';

/** Interesting moments to crash at: right after a vote or new entries were persisted and announced, or a leader's commit advanced. */
export type CrashPoint = 'vote' | 'append' | 'commit';

export interface SimHost {
  readonly queue: EventQueue;
  readonly trace: Trace;
  readonly checker: Checker;
  readonly net: Network;
  /** Harness-side mutation: persist hard state without the vote (proves the checker notices). */
  readonly forgetVote: boolean;
  member(id: NodeId): SimMember | undefined;
  /** Member `m` applied entries (or a snapshot): clients and the admin look for their results. */
  applied(m: SimMember): void;
  /** A read was served to `client`. */
  readDone(client: number, ctx: string): void;
  fail(invariant: string, detail: string): never;
  /** A crash at an interesting point of `m`'s pipeline (the fault injector decides whether it may). */
  crashPoint(m: SimMember, point: CrashPoint): void;
}
