/**
 * The apply step: committed entries become changes to the store, exactly once, in log order.
 * A request's outcome goes back to the member that proposed it (its waiter), and every member
 * computes the same outcome, because every input is in the entry or in the replicated state.
 *
 * Membership changes update the member records in the same store transaction that records
 * the entry's index, so a restart never sees one without the other.
 */
import { decodeConfChange } from '../raft/confchange.ts';
import { EntryKind, type ConfChange, type Entry, type Snapshot } from '../raft/types.ts';
import { MvccError, type MvccRequest, type MvccResponse, type MvccStore } from '../mvcc/index.ts';
import type { StateMachine } from './raft-driver.ts';
import { decodeEnvelope, type InternalRequest } from './request-codec.ts';
import { serverError, type ServerErrorCode } from './errors.ts';
import { decodeMemberContext, deleteMember, markRemoved, readMember, writeMember } from './members.ts';
import { clearAlarm, storeGrowth, raiseAlarm, readAlarms, type AlarmRecord, type AlarmResponse } from './alarms.ts';
import type { AlarmRequest, LeaseRequest } from './request-codec.ts';
import { LeaseError, type LeaseErrorCode, type Lessor } from '../lease/index.ts';
import { deleteLease, writeLease } from './leases.ts';
import { isAuthRequest, putsWithLease, type AuthInfo, type AuthRequest } from '../auth/index.ts';
import { ServerError } from './errors.ts';
import type { AuthResponse, ServerAuth } from './auth.ts';

/** What an applied lease request answers (a grant: the lease's id and TTL as granted). */
export type LeaseResponse =
  | { readonly op: 'leaseGrant'; readonly id: bigint; readonly ttl: number }
  | { readonly op: 'leaseRevoke'; readonly revision: number }
  | { readonly op: 'leaseCheckpoint' };

export type ApplyResponse = MvccResponse | AlarmResponse | LeaseResponse | AuthResponse;

export type ApplyOutcome =
  | { readonly ok: true; readonly response: ApplyResponse | null }
  | { readonly ok: false; readonly error: ServerError };

const MVCC_TO_SERVER: Record<string, ServerErrorCode> = {
  MVCC_COMPACTED: 'COMPACTED',
  MVCC_FUTURE_REVISION: 'FUTURE_REVISION',
  MVCC_KEY_NOT_FOUND: 'KEY_NOT_FOUND',
  MVCC_DUPLICATE_KEY: 'DUPLICATE_KEY',
  MVCC_TOO_MANY_OPS: 'TOO_MANY_OPS',
  MVCC_EMPTY_KEY: 'KEY_EMPTY',
  MVCC_VALUE_PROVIDED: 'VALUE_PROVIDED',
  MVCC_LEASE_PROVIDED: 'LEASE_PROVIDED',
  MVCC_LEASE_NOT_FOUND: 'LEASE_NOT_FOUND',
  MVCC_KEY_TOO_LARGE: 'REQUEST_TOO_LARGE',
  MVCC_VALUE_TOO_LARGE: 'REQUEST_TOO_LARGE',
};

const LEASE_TO_SERVER: Record<LeaseErrorCode, ServerErrorCode> = {
  LEASE_NOT_FOUND: 'LEASE_NOT_FOUND',
  LEASE_EXISTS: 'LEASE_EXISTS',
  LEASE_TTL_TOO_LARGE: 'LEASE_TTL_TOO_LARGE',
  NOT_PRIMARY: 'NOT_LEADER',
  // etcd's keep-alive waits for the pending revoke and then answers "not found".
  LEASE_EXPIRED: 'LEASE_NOT_FOUND',
  LEASE_LIMIT: 'TOO_MANY_REQUESTS',
  LEASE_INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  LEASE_STATE_CORRUPT: 'CORRUPT',
};

/** An expected lessor failure as the server's condition; anything else is a bug and rethrown. */
export function fromLeaseError(e: unknown): ServerError {
  if (!(e instanceof LeaseError)) throw e;
  return serverError(LEASE_TO_SERVER[e.code], undefined, e);
}

/** An expected store failure as the server's condition; anything else is a bug and rethrown. */
export function fromMvccError(e: unknown): ServerError {
  if (!(e instanceof MvccError)) throw e;
  return serverError(MVCC_TO_SERVER[e.code] ?? 'INVALID_ARGUMENT', undefined, e);
}

interface BatchedRequest {
  readonly index: number;
  readonly request: MvccRequest;
  readonly proposer: string;
  readonly requestId: number;
}

export interface ApplyHooks {
  /** A request this member proposed was applied. */
  onResult(requestId: number, outcome: ApplyOutcome): void;
  /** A membership change was applied (after the member records were updated). */
  onConfChange(cc: ConfChange): void;
  /** A member's peer URLs changed (MemberUpdate). */
  onMembersChanged(): void;
  /** Replace the store with the snapshot received for `snapshot` (see Member). */
  installSnapshot(snapshot: Snapshot): Promise<void>;
  /** An empty entry was applied (a new leader's first entry of its term). */
  onEmptyEntry(entry: Entry): void;
}

/** The member's lessor and its clock (used only to start a leader's countdown on grant). */
export interface LeaseContext {
  readonly lessor: () => Lessor;
  readonly now: () => number;
}

/** Requests the store applies by itself, batched into runs. */
function isStoreRequest(r: InternalRequest): r is MvccRequest {
  return r.op === 'range' || r.op === 'put' || r.op === 'deleteRange' || r.op === 'txn' || r.op === 'compact';
}

/**
 * What a raised CORRUPT alarm refuses (etcd's corrupt applier): every store request, lease
 * grants and revokes. Alarms, member attributes and lease checkpoints still apply, and reads
 * served locally (ranges, read-only txns) are not refused either, as in etcd.
 */
function refusedWhenCorrupt(r: InternalRequest): boolean {
  return isStoreRequest(r) || r.op === 'leaseGrant' || r.op === 'leaseRevoke';
}

export class ApplyMachine implements StateMachine {
  /** Whether NOSPACE is raised, cached per store instance (a snapshot install swaps the store). */
  private noSpace: { store: MvccStore; raised: boolean } | null = null;
  /** Whether CORRUPT is raised, cached likewise. */
  private corrupt: { store: MvccStore; raised: boolean } | null = null;

  constructor(
    private readonly store: () => MvccStore,
    private readonly memberId: string,
    private readonly hooks: ApplyHooks,
    private readonly leases: LeaseContext,
    private readonly auth: ServerAuth,
  ) {}

  installSnapshot(snapshot: Snapshot): Promise<void> {
    return this.hooks.installSnapshot(snapshot);
  }

  sync(): Promise<void> {
    return this.store().sync();
  }

  apply(entries: readonly Entry[]): void {
    // Runs of plain store requests go to the store together (one LMDB transaction per run);
    // anything else (membership, alarms, refusals under NOSPACE or CORRUPT) ends the run and applies alone.
    let run: BatchedRequest[] = [];
    for (const e of entries) {
      if (e.kind === EntryKind.ConfChange) {
        this.applyRun(run);
        run = [];
        this.applyConfChange(e);
        continue;
      }
      if (e.data.byteLength === 0) {
        this.applyRun(run);
        run = [];
        this.hooks.onEmptyEntry(e);
        continue;
      }
      const envelope = decodeEnvelope(e.data);
      const request = envelope.request;
      if (isStoreRequest(request)) {
        // Checked as of this entry: auth changes end runs, so the state is that of the log so far.
        if (envelope.as !== null && this.auth.state().enabled) {
          // A put with a lease is checked against the lease's keys, which the run has not attached yet.
          if (putsWithLease(request)) {
            this.applyRun(run);
            run = [];
          }
          const refusal = this.auth.refusal(envelope.as, request);
          if (refusal !== null) {
            this.applyRun(run);
            run = [];
            this.answer(envelope.proposer, envelope.requestId, this.refuse(this.store(), e.index, refusal));
            continue;
          }
        }
        if (!(storeGrowth(request) !== null && this.noSpaceRaised(this.store())) && !this.corruptRaised(this.store())) {
          run.push({ index: e.index, request, proposer: envelope.proposer, requestId: envelope.requestId });
          continue;
        }
      }
      this.applyRun(run);
      run = [];
      this.answer(envelope.proposer, envelope.requestId, this.execute(e.index, request, envelope.as));
    }
    this.applyRun(run);
  }

  /** Applies a run of store requests with the store's applyBatch; outcomes as execute() gives them. */
  private applyRun(run: readonly BatchedRequest[]): void {
    if (run.length === 0) return;
    const results = this.store().applyBatch(run);
    for (let i = 0; i < run.length; i++) {
      const r = results[i]!;
      const { proposer, requestId } = run[i]!;
      if (r.status === 'skipped' || proposer !== this.memberId) continue;
      this.hooks.onResult(requestId, r.status === 'applied' ? { ok: true, response: r.response } : { ok: false, error: fromMvccError(r.error) });
    }
  }

  private answer(proposer: string, requestId: number, outcome: ApplyOutcome | null): void {
    if (outcome !== null && proposer === this.memberId) this.hooks.onResult(requestId, outcome);
  }

  /** Records the entry as applied without applying it, and answers `error`. */
  private refuse(store: MvccStore, index: number, error: ServerError): ApplyOutcome | null {
    const r = store.write(index, () => {});
    return r.status === 'skipped' ? null : { ok: false, error };
  }

  /** Runs one request; null when the entry was applied before (a replay after restart). */
  private execute(index: number, request: InternalRequest, as: AuthInfo | null): ApplyOutcome | null {
    const store = this.store();
    if (isAuthRequest(request)) return this.applyAuth(store, index, request, as);
    if (request.op === 'leaseRevoke' && as !== null) {
      const refusal = this.auth.revokeRefusal(as, request.id);
      if (refusal !== null) return this.refuse(store, index, refusal);
    }
    if (request.op === 'memberAttributes') {
      const r = store.write(index, (tx) => {
        const m = readMember(tx.meta, request.memberId);
        if (m !== undefined) writeMember(tx.meta, { ...m, name: request.name, clientUrls: request.clientUrls });
      });
      return r.status === 'skipped' ? null : { ok: true, response: null };
    }
    if (request.op === 'memberUpdate') {
      const r = store.write(index, (tx) => {
        const m = readMember(tx.meta, request.memberId);
        if (m !== undefined) writeMember(tx.meta, { ...m, peerUrls: request.peerUrls });
      });
      if (r.status === 'skipped') return null;
      this.hooks.onMembersChanged();
      return { ok: true, response: null };
    }
    if (request.op === 'alarm') return this.applyAlarm(store, index, request);
    // Refused before NOSPACE is looked at: etcd's corrupt applier wraps its capped one.
    if (refusedWhenCorrupt(request) && this.corruptRaised(store)) {
      const r = store.write(index, () => {});
      return r.status === 'skipped' ? null : { ok: false, error: serverError('CORRUPT') };
    }
    if (request.op === 'leaseGrant' || request.op === 'leaseRevoke' || request.op === 'leaseCheckpoint') return this.applyLease(store, index, request);
    // Refused, but the entry still counts as applied so a replay skips it.
    if (this.noSpaceRaised(store) && storeGrowth(request) !== null) return this.refuse(store, index, serverError('NO_SPACE'));
    const r = store.apply(index, request);
    switch (r.status) {
      case 'skipped':
        return null;
      case 'applied':
        return { ok: true, response: r.response };
      case 'failed':
        return { ok: false, error: fromMvccError(r.error) };
    }
  }

  private noSpaceRaised(store: MvccStore): boolean {
    if (this.noSpace?.store !== store) this.noSpace = { store, raised: readAlarms(store.meta).some((a) => a.alarm === 'NOSPACE') };
    return this.noSpace.raised;
  }

  private corruptRaised(store: MvccStore): boolean {
    if (this.corrupt?.store !== store) this.corrupt = { store, raised: readAlarms(store.meta).some((a) => a.alarm === 'CORRUPT') };
    return this.corrupt.raised;
  }

  /**
   * Raises or clears one member's alarm, answering with the alarm raised or cleared as etcd's
   * alarm store does: type NONE matches nothing, clearing an alarm not raised answers nothing.
   */
  private applyAlarm(store: MvccStore, index: number, request: AlarmRequest): ApplyOutcome | null {
    let alarms: AlarmRecord[] = [];
    const r = store.write(index, (tx) => {
      if (request.alarm === 'NONE') return;
      const alarm: AlarmRecord = { memberId: request.memberId, alarm: request.alarm };
      const raised = readAlarms(tx.meta).some((a) => a.memberId === alarm.memberId && a.alarm === alarm.alarm);
      if (request.action === 'activate') {
        if (!raised) raiseAlarm(tx.meta, alarm);
        alarms = [alarm];
      } else if (raised) {
        clearAlarm(tx.meta, alarm);
        alarms = [alarm];
      }
    });
    this.noSpace = null;
    this.corrupt = null;
    return r.status === 'skipped' ? null : { ok: true, response: { op: 'alarm', alarms } };
  }

  /**
   * Grant, revoke or checkpoint on the lessor, with the lease records (and a revoke's key
   * deletions, all in one revision) in the same store write as the entry's index. A refused
   * request still records the index, so a replay skips it.
   */
  private applyLease(store: MvccStore, index: number, request: LeaseRequest): ApplyOutcome | null {
    const lessor = this.leases.lessor();
    let outcome: ApplyOutcome = { ok: true, response: { op: 'leaseCheckpoint' } };
    const r = store.write(index, (tx) => {
      try {
        switch (request.op) {
          case 'leaseGrant': {
            // etcd's capped applier: no new leases while the NOSPACE alarm is raised.
            if (this.noSpaceRaised(store)) {
              outcome = { ok: false, error: serverError('NO_SPACE') };
              return;
            }
            const info = lessor.grant(request.id, request.ttl, this.leases.now());
            writeLease(tx.meta, info);
            outcome = { ok: true, response: { op: 'leaseGrant', id: info.id, ttl: info.grantedTtl } };
            return;
          }
          case 'leaseRevoke': {
            const keys = lessor.revoke(request.id);
            for (const key of keys) tx.deleteRange({ key });
            deleteLease(tx.meta, request.id);
            outcome = { ok: true, response: { op: 'leaseRevoke', revision: tx.revision } };
            return;
          }
          case 'leaseCheckpoint':
            for (const c of request.checkpoints) {
              if (!lessor.checkpoint(c.id, c.remainingTtl)) continue;
              writeLease(tx.meta, lessor.get(c.id)!);
            }
            return;
        }
      } catch (e) {
        outcome = { ok: false, error: fromLeaseError(e) };
      }
    });
    return r.status === 'skipped' ? null : outcome;
  }

  /**
   * An auth change or Authenticate, in one store write with the entry's index. A refused one
   * writes nothing but the index.
   */
  private applyAuth(store: MvccStore, index: number, request: AuthRequest, as: AuthInfo | null): ApplyOutcome | null {
    let outcome: ApplyOutcome = { ok: true, response: null };
    const r = store.write(index, (tx) => {
      try {
        outcome = { ok: true, response: this.auth.apply(tx.meta, index, request, as) };
      } catch (e) {
        if (!(e instanceof ServerError)) throw e;
        outcome = { ok: false, error: e };
      }
    });
    return r.status === 'skipped' ? null : outcome;
  }

  private applyConfChange(e: Entry): void {
    const cc = decodeConfChange(e.data);
    const context = decodeMemberContext(cc.context);
    const r = this.store().write(e.index, (tx) => {
      for (const change of cc.changes) {
        const existing = readMember(tx.meta, change.nodeId);
        if (change.type === 'removeNode') {
          deleteMember(tx.meta, change.nodeId);
          markRemoved(tx.meta, change.nodeId);
          continue;
        }
        // One member per change carries its context (peer URLs); the rest keep what they had.
        const peerUrls = context.peerUrls.length > 0 && cc.changes.length === 1 ? context.peerUrls : (existing?.peerUrls ?? []);
        const name = context.name !== '' && cc.changes.length === 1 ? context.name : (existing?.name ?? '');
        writeMember(tx.meta, {
          id: change.nodeId,
          name,
          peerUrls,
          clientUrls: existing?.clientUrls ?? [],
          isLearner: change.type === 'addLearner',
        });
      }
    });
    if (r.status !== 'applied') return;
    this.hooks.onConfChange(cc);
    if (context.proposer === this.memberId && context.requestId !== undefined) this.hooks.onResult(context.requestId, { ok: true, response: null });
  }
}
