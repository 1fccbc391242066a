/**
 * Linearizability search over one partition: Wing & Gong's backtracking search with Lowe's
 * memoization, in the style Porcupine popularised, plus two prunings for indeterminate ops.
 *
 * The history becomes a doubly linked list of call and return events ordered by time. At any
 * point the operations that may be linearized next are exactly the calls that come before the
 * first return still in the list (everything that had to happen before them has been
 * linearized). Linearizing one "lifts" its call and return out of the list; backtracking
 * "unlifts" them (they remember their neighbours, so both are O(1)). The explicit stack holds
 * one frame per linearized operation, so there is no recursion depth limit.
 *
 * Lowe's memoization: a configuration is (set of linearized ops, model state). Two paths
 * reaching the same configuration have the same future, so the second is cut. The set is a
 * bitset; the cache key combines an incremental (Zobrist) hash of the bitset with the state hash,
 * and buckets are compared exactly, so hash collisions only cost time.
 *
 * Indeterminate operations (return at +infinity, output unconstrained) are what make real
 * fault-injection histories hard: each stays pending for the rest of the history and, in plain
 * Wing & Gong, the search tries every subset of them at every point. Three things tame that:
 *  1. Determinate candidates are tried before indeterminate ones (two passes over the
 *     candidates), so an indeterminate op is only linearized when nothing else explains the
 *     next observation, and a valid history usually linearizes them all at the very end.
 *  2. Dominance: with the same determinate ops linearized and the same state, having linearized
 *     FEWER indeterminate ops is never worse (the extra ones can always go later or at the end,
 *     since they never precede anything in real time and always step ok). So a configuration is
 *     cut when a fully explored (failed) configuration differs only by a subset of its
 *     indeterminate ops. The cache key therefore hashes only the determinate bitset.
 *  3. No-ops: an indeterminate op that leaves the state as it is (a read, a failing
 *     compare-and-set) is never linearized there: whatever can follow it can follow its parent
 *     configuration, with the op moved to the end.
 *  4. Deferral: right after linearizing indeterminate x from configuration P, linearizing
 *     indeterminate y is pointless if P+y reaches the same state as P+x+y (y overwrote x's
 *     effect): P+y is a sibling the search also explores, and anything P+x+y can do, P+y can do
 *     by linearizing x later. This keeps runs of blind writes from multiplying.
 *  5. Symmetry: indeterminate ops with equal inputs (the model's `inputKey`) are
 *     interchangeable once called, so they are linearized in call order only: any linearization
 *     using a later-called one while an earlier one is unused can swap the two.
 * And once no determinate op is left, the remaining indeterminate ones linearize at the end.
 *
 * Rules 2-4 matter: on a failing 2,000-op history with ~50 pending indeterminate ops, the
 * plain search did not finish in 20 s; with them it takes well under a second.
 */
import { bitsEqual, bitsetWords, clearBit, isSubset, setBit } from './bitset.ts';
import { determinateOutput, effectiveReturn, isIndeterminate, type Operation } from './history.ts';
import type { Model } from './model.ts';

export interface SearchLimits {
  /** Absolute time (Date.now()) after which the search gives up. */
  readonly deadline: number;
  /** Bound on memoized configurations, so a hard history cannot exhaust memory. */
  readonly cacheEntriesMax: number;
}

export interface SearchStats {
  readonly steps: number;
  readonly cacheEntries: number;
}

export type SearchOutcome<State> =
  | {
      readonly kind: 'linearizable';
      /**
       * Op indices in linearization order. Indeterminate ops not listed go last (or never):
       * nothing needed them.
       */
      readonly linearization: readonly number[];
      readonly stats: SearchStats;
    }
  | {
      readonly kind: 'illegal';
      /** Op indices of the longest partial linearization found, in linearization order. */
      readonly longest: readonly number[];
      /** Model state after that partial linearization. */
      readonly longestState: State;
      readonly stats: SearchStats;
    }
  | { readonly kind: 'gaveUp'; readonly reason: 'timeout' | 'cacheLimit'; readonly stats: SearchStats };

class Event {
  prev: Event | null = null;
  next: Event | null = null;
  /** For a call: its return event. */
  match: Event | null = null;
  constructor(
    readonly isCall: boolean,
    readonly id: number,
    readonly time: number,
  ) {}
}

interface CacheEntry<State> {
  readonly det: Uint32Array;
  readonly indet: Uint32Array;
  readonly state: State;
  /** Set once the configuration's subtree is fully explored (and so failed). */
  done: boolean;
}

interface Frame<State> {
  readonly event: Event;
  /** State before this frame's operation, restored on backtrack. */
  readonly prevState: State;
  /** Which candidate pass chose this operation, to resume scanning in it. */
  readonly pass: 0 | 1;
  readonly cached: CacheEntry<State>;
}

/** Builds the time-ordered event list behind a sentinel head. */
function buildEvents<I, O>(ops: readonly Operation<I, O>[]): Event {
  const events: Event[] = [];
  ops.forEach((op, id) => {
    const call = new Event(true, id, op.call);
    const ret = new Event(false, id, effectiveReturn(op));
    call.match = ret;
    events.push(call, ret);
  });
  // At equal times calls sort before returns: operations that merely touch are concurrent
  // (clients' clocks cannot order them), which errs towards accepting.
  events.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? a.id - b.id : a.isCall ? -1 : 1));
  const head = new Event(false, -1, Number.NEGATIVE_INFINITY);
  let prev = head;
  for (const e of events) {
    prev.next = e;
    e.prev = prev;
    prev = e;
  }
  return head;
}

function lift(call: Event): void {
  // A call always has its return after it, so call.next is never null here.
  call.prev!.next = call.next;
  call.next!.prev = call.prev;
  const ret = call.match!;
  ret.prev!.next = ret.next;
  if (ret.next !== null) ret.next.prev = ret.prev;
}

function unlift(call: Event): void {
  // Exact reverse of lift, so the neighbours recorded in the lifted events are still valid.
  const ret = call.match!;
  ret.prev!.next = ret;
  if (ret.next !== null) ret.next.prev = ret;
  call.prev!.next = call;
  call.next!.prev = call;
}

/** Deterministic per-op random words for the Zobrist hash (reproducible runs). */
function zobristWords(n: number): Int32Array {
  const out = new Int32Array(n);
  let x = 0x9e3779b9 | 0;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x;
  }
  return out;
}

class Cache<State> {
  private readonly buckets = new Map<number, CacheEntry<State>[]>();
  size = 0;
  constructor(private readonly model: Model<State, unknown, unknown>) {}

  /** 53-bit key: 21 bits of the determinate-set hash, 32 of the state hash. */
  static key(zobrist: number, stateHash: number): number {
    return (zobrist & 0x1fffff) * 4294967296 + (stateHash >>> 0);
  }

  /** Whether the configuration was seen, or is dominated by a failed one (see the header). */
  covers(key: number, det: Uint32Array, indet: Uint32Array, state: State): boolean {
    const bucket = this.buckets.get(key);
    if (bucket === undefined) return false;
    for (const e of bucket) {
      if (!bitsEqual(e.det, det) || !this.model.equal(e.state, state)) continue;
      if (e.done ? isSubset(e.indet, indet) : bitsEqual(e.indet, indet)) return true;
    }
    return false;
  }

  add(key: number, det: Uint32Array, indet: Uint32Array, state: State): CacheEntry<State> {
    const entry: CacheEntry<State> = { det: det.slice(), indet: indet.slice(), state, done: false };
    const bucket = this.buckets.get(key);
    if (bucket === undefined) this.buckets.set(key, [entry]);
    else bucket.push(entry);
    this.size++;
    return entry;
  }
}

export function searchPartition<State, Input, Output>(
  model: Model<State, Input, Output>,
  ops: readonly Operation<Input, Output>[],
  limits: SearchLimits,
): SearchOutcome<State> {
  const n = ops.length;
  const indeterminate = ops.map((op) => isIndeterminate(op));
  const outputs = ops.map((op) => determinateOutput(op));
  // Determinate and indeterminate ops get separate bitsets (slot = index within their kind),
  // because dominance compares the determinate part exactly and the other by inclusion.
  const slot = new Int32Array(n);
  let detTotal = 0;
  let indetTotal = 0;
  for (let i = 0; i < n; i++) slot[i] = indeterminate[i] ? indetTotal++ : detTotal++;
  const det = new Uint32Array(bitsetWords(detTotal));
  const indet = new Uint32Array(bitsetWords(indetTotal));
  const zobrist = zobristWords(n);
  let detHash = 0;

  // Symmetry classes (rule 5): rank = position among the class's ops by call time.
  const symClass = new Int32Array(n).fill(-1);
  const symRank = new Int32Array(n);
  const classes = new Map<string, number>();
  const classSizes: number[] = [];
  if (model.inputKey !== undefined) {
    const byCall = [...ops.keys()].filter((i) => indeterminate[i]).sort((a, b) => ops[a].call - ops[b].call || a - b);
    for (const i of byCall) {
      const key = model.inputKey(ops[i].input);
      let c = classes.get(key);
      if (c === undefined) {
        c = classSizes.length;
        classes.set(key, c);
        classSizes.push(0);
      }
      symClass[i] = c;
      symRank[i] = classSizes[c]++;
    }
  }
  const classUsed = new Int32Array(classSizes.length);

  const head = buildEvents(ops);
  const cache = new Cache<State>(model as Model<State, unknown, unknown>);
  const stack: Frame<State>[] = [];
  let state = model.init();
  let detLeft = detTotal;
  let indetLeft = indetTotal;
  let event: Event | null = head.next;
  let pass: 0 | 1 = 0;
  let steps = 0;

  // Longest partial linearization, counted in determinate ops (indeterminate ones linearized
  // in desperation say little). Copied lazily on the next backtrack: until then the stack
  // below `maxLength` is unchanged.
  let maxDepth = 0;
  let maxLength = 0;
  let maxState = state;
  let longest: number[] = [];
  let longestState = state;
  let longestStale = false;

  const stats = (): SearchStats => ({ steps, cacheEntries: cache.size });

  for (;;) {
    // Every remaining op is indeterminate: linearize them after everything else.
    if (detLeft === 0) return { kind: 'linearizable', linearization: stack.map((f) => f.event.id), stats: stats() };
    if ((++steps & 0x3ff) === 0) {
      if (Date.now() > limits.deadline) return { kind: 'gaveUp', reason: 'timeout', stats: stats() };
      if (cache.size > limits.cacheEntriesMax) return { kind: 'gaveUp', reason: 'cacheLimit', stats: stats() };
    }

    if (event === null || !event.isCall) {
      // End of the candidates for this pass.
      if (pass === 0 && indetLeft > 0) {
        pass = 1;
        event = head.next;
        continue;
      }
      if (longestStale) {
        longest = stack.slice(0, maxLength).map((f) => f.event.id);
        longestState = maxState;
        longestStale = false;
      }
      const frame = stack.pop();
      if (frame === undefined) return { kind: 'illegal', longest, longestState, stats: stats() };
      frame.cached.done = true;
      const id = frame.event.id;
      if (indeterminate[id]) {
        clearBit(indet, slot[id]);
        indetLeft++;
        if (symClass[id] >= 0) classUsed[symClass[id]]--;
      } else {
        clearBit(det, slot[id]);
        detHash ^= zobrist[id];
        detLeft++;
      }
      state = frame.prevState;
      unlift(frame.event);
      event = frame.event.next;
      pass = frame.pass;
      continue;
    }

    const id = event.id;
    const isIndet = indeterminate[id];
    if (isIndet !== (pass === 1)) {
      event = event.next;
      continue;
    }
    if (isIndet && symClass[id] >= 0 && classUsed[symClass[id]] !== symRank[id]) {
      event = event.next;
      continue;
    }
    const input = ops[id].input;
    const result = model.step(state, input, outputs[id]);
    if (!result.ok) {
      event = event.next;
      continue;
    }
    // Indeterminate moves that cannot matter now: rules 3 and 4 in the header.
    if (isIndet && model.equal(result.state, state)) {
      event = event.next;
      continue;
    }
    if (isIndet && stack.length > 0) {
      const parent = stack[stack.length - 1];
      if (indeterminate[parent.event.id]) {
        const alone = model.step(parent.prevState, input, undefined);
        if (model.equal(alone.state, result.state)) {
          event = event.next;
          continue;
        }
      }
    }

    let hash = detHash;
    if (isIndet) setBit(indet, slot[id]);
    else {
      setBit(det, slot[id]);
      hash ^= zobrist[id];
    }
    const key = Cache.key(hash, model.hash(result.state));
    if (cache.covers(key, det, indet, result.state)) {
      if (isIndet) clearBit(indet, slot[id]);
      else clearBit(det, slot[id]);
      event = event.next;
      continue;
    }
    const cached = cache.add(key, det, indet, result.state);
    stack.push({ event, prevState: state, pass, cached });
    if (isIndet) {
      indetLeft--;
      if (symClass[id] >= 0) classUsed[symClass[id]]++;
    } else {
      detHash = hash;
      detLeft--;
    }
    state = result.state;
    lift(event);
    if (detTotal - detLeft > maxDepth) {
      maxDepth = detTotal - detLeft;
      maxLength = stack.length;
      maxState = state;
      longestStale = true;
    }
    event = head.next;
    pass = 0;
  }
}
