/**
 * The write-ahead log: appends Raft Ready batches to segment files with one fdatasync per round
 * of writes (group commit), rolls segments, releases old ones, and recovers the log on open.
 * The format is specified in format.ts.
 *
 * How a save travels. `save` validates the batch, encodes its records at once (the crc chain and
 * each record's segment and offset are fixed there, in call order) and queues the bytes. One
 * writer drains the queue: everything queued when it wakes is written with one write per segment
 * and made durable with one sync, then every save in that round resolves. Saves made while a sync
 * is in flight wait for the next round and share its sync. If a write or sync fails, the WAL
 * stops: that round and everything after it rejects (see WalFailedError for why no retry).
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { AssertionError } from '../util/assert.ts';
import type { Entry, HardState, SnapshotMetadata } from '../raft/types.ts';
import {
  WalClosedError,
  WalClusterMismatchError,
  WalCorruptError,
  WalExistsError,
  WalFailedError,
  WalNotFoundError,
  WalQueueFullError,
  WalRecordTooLargeError,
  WalVersionError,
} from './errors.ts';
import {
  DecodeError,
  FORMAT_VERSION,
  HEADER_BYTES,
  PREPARING_SEGMENT_NAME,
  PayloadReader,
  RecordType,
  SEAL_PAYLOAD_BYTES,
  entryPayloadBytes,
  hardStatePayloadBytes,
  metadataPayloadBytes,
  parseSegmentName,
  readEntry,
  readHardState,
  readMetadata,
  readSnapshot,
  segmentName,
  snapshotPayloadBytes,
  writeEntryPayload,
  writeFrame,
  writeHardStatePayload,
  writeMetadataPayload,
  writeSnapshotPayload,
  type MetadataRecord,
  type WalMetadata,
} from './format.ts';
import { closeFd, defaultSync, ensureDir, fstatSize, ftruncateFd, openFd, syncDir, writeAll, writeAllSync, writeZeros, type SyncFn } from './fsutil.ts';
import { resolveLimits, type WalLimits, type WalOptions } from './limits.ts';
import { LogShape, type Batch } from './log-shape.ts';
import { Replay, ReplayError } from './replay.ts';
import { lastNonZeroEnd, scanSegment } from './scan.ts';

export type { WalMetadata } from './format.ts';

export interface OpenOptions extends WalOptions {
  /** Refuse the WAL (WAL_CLUSTER_MISMATCH) unless it was written for this member and cluster. */
  readonly expect?: WalMetadata;
}

/** A torn tail cut off during open: where, how many bytes were zeroed, and why it was judged torn. */
export interface TailRepair {
  readonly file: string;
  readonly offset: number;
  readonly bytesDropped: number;
  readonly reason: string;
}

export interface WalRecovery {
  readonly wal: Wal;
  readonly metadata: WalMetadata;
  /** The newest hard state ({term 0, vote '', commit 0} if none was ever saved). */
  readonly hardState: HardState;
  /** The newest snapshot marker, or null. */
  readonly snapshot: SnapshotMetadata | null;
  /** The log after the snapshot marker: contiguous from snapshot.index + 1. */
  readonly entries: Entry[];
  readonly repaired: TailRepair | null;
}

export interface WalStats {
  /** Save calls resolved. */
  readonly saves: number;
  /** Writer rounds: each ends in one sync of the active segment (more when a round rolls). */
  readonly rounds: number;
  /** Data syncs issued (segment files), including those of rolls. */
  readonly syncs: number;
  readonly bytesWritten: number;
}

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

type Item =
  | { readonly kind: 'write'; readonly seq: number; readonly offset: number; readonly buf: Buffer; readonly batch: Batch; readonly waiter: Waiter }
  | {
      readonly kind: 'roll';
      /** Seal for the segment being closed, or null when creating the first segment / after a sealed one. */
      readonly seal: { readonly offset: number; readonly buf: Buffer } | null;
      readonly seq: number;
      readonly name: string;
      readonly first: Buffer;
    };

interface Prepared {
  readonly fd: number;
}

interface Segment {
  readonly seq: number;
  readonly name: string;
}

export class Wal {
  private readonly sync: SyncFn;
  /** What `save` has accepted: validation and encoding run against it. */
  private readonly accepted: LogShape;
  /** What is durable: `releaseTo` decides with it. */
  private readonly durable: LogShape;
  /** Chain value, segment and offset where the next accepted record goes. */
  private crc: number;
  private seq: number;
  private offset: number;
  private segmentHasData: boolean;
  /** Segments on disk (named and directory-synced), oldest first. */
  private readonly segments: Segment[];
  private activeFd: number | null;

  private queue: Item[] = [];
  private queuedBytes = 0;
  private writer: Promise<void> | null = null;
  private failure: WalFailedError | null = null;
  private closed = false;
  private prepared: Promise<Prepared | { error: unknown }> | null = null;
  /** The newest segment on disk is sealed (a crash between sealing it and naming the next). */
  private tipSealed: boolean;
  private releasing: Promise<unknown> = Promise.resolve();
  private counters = { saves: 0, rounds: 0, syncs: 0, bytesWritten: 0 };

  private constructor(
    readonly dir: string,
    readonly metadata: WalMetadata,
    readonly limits: WalLimits,
    sync: SyncFn,
    shape: () => LogShape,
    tip: { crc: number; seq: number; offset: number; hasData: boolean; sealed: boolean; fd: number | null },
    segments: Segment[],
  ) {
    this.sync = sync;
    this.accepted = shape();
    this.durable = shape();
    this.crc = tip.crc;
    this.seq = tip.seq;
    this.offset = tip.offset;
    this.segmentHasData = tip.hasData;
    this.activeFd = tip.fd;
    this.tipSealed = tip.sealed;
    this.segments = segments;
  }

  // -------------------------------------------------------------------------------------------
  // Create and open

  /** Creates a WAL in `dir`, which must be empty or missing. */
  static async create(dir: string, metadata: WalMetadata, options?: WalOptions): Promise<Wal> {
    const limits = resolveLimits(options);
    const sync = options?.sync ?? defaultSync;
    checkId('memberId', metadata.memberId, limits);
    checkId('clusterId', metadata.clusterId, limits);
    await ensureDir(dir, sync);
    if ((await fs.promises.readdir(dir)).length > 0) throw new WalExistsError(dir);
    const meta = { memberId: metadata.memberId, clusterId: metadata.clusterId };
    const tip = { crc: 0, seq: -1, offset: 0, hasData: false, sealed: false, fd: null };
    const wal = new Wal(dir, meta, limits, sync, () => new LogShape(), tip, []);
    wal.enqueueRoll();
    await wal.barrier();
    return wal;
  }

  /** Opens the WAL in `dir` and recovers its log (see "Recovery" in format.ts). */
  static async open(dir: string, options?: OpenOptions): Promise<WalRecovery> {
    const limits = resolveLimits(options);
    const sync = options?.sync ?? defaultSync;
    let names: string[];
    try {
      names = await fs.promises.readdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new WalNotFoundError(dir);
      throw err;
    }
    if (names.includes(PREPARING_SEGMENT_NAME)) {
      // Debris of a segment that never got its name: nothing in it was acknowledged.
      await fs.promises.unlink(join(dir, PREPARING_SEGMENT_NAME));
      await syncDir(dir, sync);
    }
    const segments: Segment[] = [];
    for (const name of names) {
      const p = parseSegmentName(name);
      if (p !== null) segments.push({ seq: p.seq, name });
    }
    if (segments.length === 0) throw new WalNotFoundError(dir);
    segments.sort((a, b) => a.seq - b.seq);
    for (let i = 1; i < segments.length; i++) {
      if (segments[i]!.seq !== segments[i - 1]!.seq + 1) {
        throw new WalCorruptError(segments[i]!.name, 0, `segment ${segments[i - 1]!.seq + 1} is missing before it`);
      }
    }

    const replay = new Replay();
    let metadata: WalMetadata | null = options?.expect ?? null;
    let seed: number | null = null;
    let repaired: TailRepair | null = null;
    let tip = { crc: 0, offset: 0, hasData: false, sealed: false };
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i]!;
      const isLast = i === segments.length - 1;
      const path = join(dir, seg.name);
      const buf = await fs.promises.readFile(path);
      let records = 0;
      const scan = scanSegment(buf, seg.name, { isLast, seed }, (rec) => {
        records++;
        const r = new PayloadReader(rec.payload);
        try {
          switch (rec.type) {
            case RecordType.Metadata: {
              const m = readMetadata(r);
              if (m.version !== FORMAT_VERSION) throw new WalVersionError(seg.name, m.version, FORMAT_VERSION);
              if (m.seq !== seg.seq) throw new ReplayError(`metadata says segment ${m.seq}, file name says ${seg.seq}`);
              if (seed !== null && m.prevCrc !== seed) throw new ReplayError(`metadata continues the chain from ${m.prevCrc}, the previous segment ended at ${seed}`);
              const found = { memberId: m.memberId, clusterId: m.clusterId };
              if (metadata === null) metadata = found;
              else if (metadata.memberId !== found.memberId || metadata.clusterId !== found.clusterId) {
                throw new WalClusterMismatchError(seg.name, metadata, found);
              }
              if (m.hardState) replay.hard(m.hardState);
              if (m.snapshot) replay.marker({ metadata: m.snapshot, restart: false }, seg.seq);
              break;
            }
            case RecordType.Entry:
              replay.entry(readEntry(r), seg.seq);
              break;
            case RecordType.HardState:
              replay.hard(readHardState(r));
              r.end();
              break;
            case RecordType.Snapshot: {
              const s = readSnapshot(r);
              r.end();
              replay.marker(s, seg.seq);
              break;
            }
            case RecordType.Seal:
              break;
          }
        } catch (err) {
          if (err instanceof DecodeError || err instanceof ReplayError) throw new WalCorruptError(seg.name, rec.offset, err.message, { cause: err });
          throw err;
        }
      });
      seed = scan.crc;
      if (isLast) {
        tip = { crc: scan.crc, offset: scan.end, hasData: records > 1, sealed: scan.sealed };
        // Zeros after the last record are the normal, preallocated end; anything else was torn.
        const dirtyEnd = scan.torn === null ? scan.end : lastNonZeroEnd(buf, scan.torn.offset);
        if (scan.torn !== null && dirtyEnd > scan.torn.offset) {
          repaired = { file: seg.name, offset: scan.torn.offset, bytesDropped: dirtyEnd - scan.torn.offset, reason: scan.torn.reason };
        }
      }
    }
    let finished: ReturnType<Replay['finish']>;
    try {
      finished = replay.finish();
    } catch (err) {
      if (err instanceof ReplayError) throw new WalCorruptError(segments[0]!.name, 0, err.message, { cause: err });
      throw err;
    }
    const meta: WalMetadata = metadata ?? { memberId: '', clusterId: '' };

    const last = segments[segments.length - 1]!;
    let fd: number | null = null;
    if (!tip.sealed) {
      fd = await openFd(join(dir, last.name), 'r+');
      try {
        if (repaired !== null) {
          await writeZeros(fd, repaired.offset, repaired.offset + repaired.bytesDropped, limits.zeroChunkBytes);
          await sync(fd, 'data');
        }
        const size = await fstatSize(fd);
        if (limits.preallocate && size < limits.segmentBytes) {
          await writeZeros(fd, size, limits.segmentBytes, limits.zeroChunkBytes);
          await sync(fd, 'data');
        }
      } catch (err) {
        await closeFd(fd);
        throw err;
      }
    }
    const wal = new Wal(dir, meta, limits, sync, finished.shape, { ...tip, seq: last.seq, fd }, segments);
    if (tip.sealed) {
      // Crashed between sealing the newest segment and naming the next one: begin that one now.
      wal.enqueueRoll();
      await wal.barrier();
    }
    return { wal, metadata: meta, hardState: replay.hardState, snapshot: replay.snapshot, entries: finished.entries, repaired };
  }

  // -------------------------------------------------------------------------------------------
  // Writing

  /**
   * Persists one Ready batch: the snapshot marker (if any), then `entries` (replacing any stored
   * entries from entries[0].index on), then the hard state (if any). Resolves once all of it is
   * durable. Rejects with AssertionError for a batch that breaks the log's invariants (nothing is
   * written), WalRecordTooLargeError, WalQueueFullError, WalClosedError, or WalFailedError.
   */
  save(hardState: HardState | null, entries: readonly Entry[], snapshot?: SnapshotMetadata | null): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new WalClosedError());
    const snap = snapshot ?? null;
    const problem = this.accepted.check({ hardState, entries, snapshot: snap }) ?? this.checkIds(hardState, snap);
    if (problem !== null) return Promise.reject(new AssertionError(`wal: ${problem}`));

    let bytes = 0;
    let largest = 0;
    const add = (payload: number): void => {
      bytes += HEADER_BYTES + payload;
      largest = Math.max(largest, payload);
    };
    if (snap !== null) add(snapshotPayloadBytes(snap));
    for (const e of entries) add(entryPayloadBytes(e));
    if (hardState !== null) add(hardStatePayloadBytes(hardState));
    if (largest > this.limits.recordBytesMax) return Promise.reject(new WalRecordTooLargeError(largest, this.limits.recordBytesMax));
    if (this.queuedBytes > 0 && this.queuedBytes + bytes > this.limits.queueBytesMax) {
      return Promise.reject(new WalQueueFullError(this.queuedBytes, this.limits.queueBytesMax));
    }

    if (bytes > 0 && this.segmentHasData && this.offset + bytes > this.limits.segmentBytes) this.enqueueRoll();
    const batch: Batch = { hardState, entries, snapshot: snap, restart: snap !== null && this.accepted.restartFor(snap) };
    const buf = Buffer.allocUnsafe(bytes);
    let off = 0;
    let crc = this.crc;
    if (snap !== null) {
      const n = writeSnapshotPayload(buf, off + HEADER_BYTES, { metadata: snap, restart: batch.restart }) - off - HEADER_BYTES;
      crc = writeFrame(buf, off, RecordType.Snapshot, n, crc);
      off += HEADER_BYTES + n;
    }
    for (const e of entries) {
      const n = writeEntryPayload(buf, off + HEADER_BYTES, e) - off - HEADER_BYTES;
      crc = writeFrame(buf, off, RecordType.Entry, n, crc);
      off += HEADER_BYTES + n;
    }
    if (hardState !== null) {
      const n = writeHardStatePayload(buf, off + HEADER_BYTES, hardState) - off - HEADER_BYTES;
      crc = writeFrame(buf, off, RecordType.HardState, n, crc);
      off += HEADER_BYTES + n;
    }
    if (off !== bytes) throw new AssertionError(`wal: encoded ${off} bytes, sized ${bytes}`);

    const item = { kind: 'write' as const, seq: this.seq, offset: this.offset, buf, batch, waiter: null as unknown as Waiter };
    const done = new Promise<void>((resolve, reject) => {
      item.waiter = { resolve, reject };
    });
    this.accepted.apply(batch, this.seq);
    this.crc = crc;
    this.offset += bytes;
    if (bytes > 0) this.segmentHasData = true;
    this.queuedBytes += bytes;
    this.queue.push(item);
    this.kick();
    return done;
  }

  private checkIds(hs: HardState | null, snap: SnapshotMetadata | null): string | null {
    const max = this.limits.idBytesMax;
    const bad = (id: string): boolean => Buffer.byteLength(id, 'utf8') > max;
    if (hs !== null && bad(hs.vote)) return `vote id longer than idBytesMax ${max}`;
    if (snap !== null) {
      const cs = snap.confState;
      for (const ids of [cs.voters, cs.votersOutgoing, cs.learners, cs.learnersNext]) {
        if (ids.length > 0xffff) return `configuration list of ${ids.length} ids exceeds 65535`;
        if (ids.some(bad)) return `configuration id longer than idBytesMax ${max}`;
      }
    }
    return null;
  }

  /** Queues closing the current segment (if any) and beginning the next, at the current point of the chain. */
  private enqueueRoll(): void {
    let seal: { offset: number; buf: Buffer } | null = null;
    let crc = this.crc;
    if (this.seq >= 0 && !this.tipSealed) {
      const buf = Buffer.allocUnsafe(HEADER_BYTES + SEAL_PAYLOAD_BYTES);
      buf.writeUInt32LE(crc, HEADER_BYTES);
      crc = writeFrame(buf, 0, RecordType.Seal, SEAL_PAYLOAD_BYTES, crc);
      seal = { offset: this.offset, buf };
    }
    const seq = this.seq + 1;
    const hs = this.accepted.hardState;
    const m: MetadataRecord = {
      version: FORMAT_VERSION,
      prevCrc: crc,
      seq,
      memberId: this.metadata.memberId,
      clusterId: this.metadata.clusterId,
      hardState: hs.term === 0 && hs.commit === 0 && hs.vote === '' ? null : hs,
      snapshot: this.accepted.snapshot,
    };
    const n = metadataPayloadBytes(m);
    const first = Buffer.allocUnsafe(HEADER_BYTES + n);
    writeMetadataPayload(first, HEADER_BYTES, m);
    this.crc = writeFrame(first, 0, RecordType.Metadata, n, crc);
    this.accepted.noteRoll(seq);
    this.queue.push({ kind: 'roll', seal, seq, name: segmentName(seq, this.accepted.lastIndex + 1), first });
    this.seq = seq;
    this.offset = first.length;
    this.segmentHasData = false;
    this.tipSealed = false;
    this.kick();
  }

  /** Resolves once everything accepted so far is durable. */
  private barrier(): Promise<void> {
    return this.save(null, []);
  }

  private kick(): void {
    if (this.writer !== null || this.queue.length === 0 || this.failure !== null) return;
    this.writer = this.drain().finally(() => {
      this.writer = null;
      this.kick();
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0 && this.failure === null) {
      const items = this.queue;
      this.queue = [];
      try {
        await this.round(items);
      } catch (err) {
        this.fail(err, items);
        return;
      }
      for (const it of items) {
        if (it.kind !== 'write') continue;
        this.durable.apply(it.batch, it.seq);
        this.queuedBytes -= it.buf.length;
        this.counters.saves++;
        it.waiter.resolve();
      }
      // Let the callers just resolved run up to their next save (a few microtask hops, no I/O
      // wait) so it joins the next round instead of the round after: without this, callers
      // settle into two alternating half-full rounds.
      for (let hop = 0; hop < 4; hop++) await Promise.resolve();
    }
  }

  /** Writes a round's items in order; one sync at the end covers every write since the last roll. */
  private async round(items: readonly Item[]): Promise<void> {
    this.counters.rounds++;
    let pending: Buffer[] = [];
    let pendingAt = 0;
    let dirty = false;
    const flush = async (): Promise<void> => {
      if (pending.length === 0) return;
      const buf = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
      pending = [];
      writeAllSync(this.active(), buf, pendingAt);
      this.counters.bytesWritten += buf.length;
      dirty = true;
    };
    for (const it of items) {
      if (it.kind === 'write') {
        if (it.buf.length === 0) continue;
        if (pending.length === 0) pendingAt = it.offset;
        pending.push(it.buf);
      } else {
        await flush();
        await this.roll(it);
        dirty = false;
      }
    }
    await flush();
    if (dirty) {
      this.counters.syncs++;
      await this.sync(this.active(), 'data');
    }
  }

  private active(): number {
    if (this.activeFd === null) throw new AssertionError('wal: no active segment');
    return this.activeFd;
  }

  /**
   * Seals the current segment and names the next. Order matters for recovery: the old segment is
   * cut to size, sealed and synced before the new one exists under its name; the new one gets its
   * first record and a sync before the rename, and the rename is made durable with the directory.
   */
  private async roll(it: Extract<Item, { kind: 'roll' }>): Promise<void> {
    if (it.seal !== null) {
      const fd = this.active();
      await ftruncateFd(fd, it.seal.offset + it.seal.buf.length);
      await writeAll(fd, it.seal.buf, it.seal.offset);
      this.counters.syncs++;
      await this.sync(fd, 'data');
    }
    if (this.activeFd !== null) {
      const old = this.activeFd;
      this.activeFd = null;
      await closeFd(old);
    }
    const prepared = await this.takePrepared();
    this.activeFd = prepared.fd;
    await writeAll(prepared.fd, it.first, 0);
    this.counters.syncs++;
    await this.sync(prepared.fd, 'data');
    await fs.promises.rename(join(this.dir, PREPARING_SEGMENT_NAME), join(this.dir, it.name));
    await syncDir(this.dir, this.sync);
    this.segments.push({ seq: it.seq, name: it.name });
    this.durable.noteRoll(it.seq);
    this.prepareNext();
  }

  /** Starts building the next segment file in the background, so a roll rarely waits for zeros. */
  private prepareNext(): void {
    if (this.prepared !== null || this.closed) return;
    const path = join(this.dir, PREPARING_SEGMENT_NAME);
    const limits = this.limits;
    const sync = this.sync;
    this.prepared = (async (): Promise<Prepared> => {
      const fd = await openFd(path, 'w+');
      try {
        if (limits.preallocate) {
          await writeZeros(fd, 0, limits.segmentBytes, limits.zeroChunkBytes);
          await sync(fd, 'data');
        }
      } catch (err) {
        await closeFd(fd).catch(() => undefined);
        throw err;
      }
      return { fd };
    })().catch((error: unknown) => ({ error }));
  }

  private async takePrepared(): Promise<Prepared> {
    this.prepareNext();
    const p = await this.prepared!;
    this.prepared = null;
    if ('error' in p) throw p.error;
    return p;
  }

  private fail(err: unknown, items: readonly Item[]): void {
    const message = err instanceof Error ? err.message : String(err);
    this.failure = new WalFailedError(message, { cause: err });
    const rejectAll = (list: readonly Item[]): void => {
      for (const it of list) if (it.kind === 'write') it.waiter.reject(this.failure!);
    };
    rejectAll(items);
    rejectAll(this.queue);
    this.queue = [];
    this.queuedBytes = 0;
  }

  // -------------------------------------------------------------------------------------------
  // Releasing, inspecting, closing

  /**
   * Deletes the segments that are no longer needed once the log may start at the newest snapshot
   * marker at or below `index`: those before the segment holding that marker (or a copy of it)
   * and before any live entry after it. Only durable markers count. Deletes oldest first, so a
   * crash midway leaves a contiguous run of segments. Returns the names deleted.
   */
  releaseTo(index: number): Promise<string[]> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new WalClosedError());
    const run = async (): Promise<string[]> => {
      const keepFrom = this.durable.keepFrom(index);
      if (keepFrom === null) return [];
      const removed: string[] = [];
      try {
        while (this.segments.length > 1 && this.segments[0]!.seq < keepFrom) {
          const seg = this.segments[0]!;
          await fs.promises.unlink(join(this.dir, seg.name));
          this.segments.shift();
          removed.push(seg.name);
        }
      } finally {
        if (removed.length > 0) {
          this.durable.forgetBefore(keepFrom);
          await syncDir(this.dir, this.sync);
        }
      }
      return removed;
    };
    const p = this.releasing.then(run);
    this.releasing = p.catch(() => undefined);
    return p;
  }

  /** Segment file names on disk, oldest first. */
  segmentNames(): string[] {
    return this.segments.map((s) => s.name);
  }

  /** Last index accepted (entries or snapshot marker). */
  lastIndex(): number {
    return this.accepted.lastIndex;
  }

  stats(): WalStats {
    return { ...this.counters };
  }

  /** Waits for accepted saves to finish, then closes the files. Later saves reject with WalClosedError. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.writer !== null) await this.writer.catch(() => undefined);
    await this.releasing;
    if (this.prepared !== null) {
      const p = await this.prepared;
      this.prepared = null;
      if (!('error' in p)) {
        await closeFd(p.fd);
        await fs.promises.unlink(join(this.dir, PREPARING_SEGMENT_NAME)).catch(() => undefined);
      }
    }
    if (this.activeFd !== null) {
      const fd = this.activeFd;
      this.activeFd = null;
      await closeFd(fd);
    }
  }
}

function checkId(what: string, id: string, limits: WalLimits): void {
  const n = Buffer.byteLength(id, 'utf8');
  if (n > limits.idBytesMax) throw new AssertionError(`wal: ${what} of ${n} bytes exceeds idBytesMax ${limits.idBytesMax}`);
}
