/**
 * Checks a list-append history for transactional anomalies, after Elle (Kingsbury & Alvaro):
 * every key holds a list, transactions read whole lists and append unique elements, so a read
 * reveals the order of every append before it, and the version order of each key is known.
 *
 * What is checked, exactly:
 *   1. duplicate elements: a list that holds an element twice;
 *   2. garbage read: an element that no transaction appended;
 *   3. aborted read (G1a): an element appended by a transaction known not to have committed;
 *   4. incompatible order: two reads of a key neither of which is a prefix of the other (the
 *      key's versions do not form one order: a lost, reordered or rewritten append);
 *   5. lost append: an append acknowledged to its client and missing from the key's final list
 *      (read after every fault healed);
 *   6. non-atomic transaction: some but not all appends of a transaction are in the final lists;
 *   7. read-your-writes / monotonic reads, per client: a read that misses an element the same
 *      client appended (acknowledged) earlier, or is shorter than a list it read before;
 *   8. dependency cycles among committed transactions, with edges
 *        ww  T1 appended the element just before T2's in some key's order,
 *        wr  T2 read a list whose last element T1 appended,
 *        rw  T1 read a list, and T2 appended the element that follows it in the key's order,
 *        rt  T1 completed before T2 was invoked (real time, for strict serializability),
 *      reported as the weakest class that has a cycle: G0 (ww only), G1c (ww+wr), G2 (with rw:
 *      "G-single" when the cycle has exactly one rw edge), or a strict-serializability violation
 *      (a cycle only real-time order closes: a stale read, a lost acknowledged write).
 *
 * Committed transactions are the acknowledged ones plus the indeterminate ones whose appends
 * are visible; an indeterminate transaction's reads are unknown and add no edges.
 */

export type Element = number;

export type MicroOp =
  | { readonly f: 'r'; readonly key: string; readonly value: readonly Element[] | null }
  | { readonly f: 'append'; readonly key: string; readonly value: Element };

export interface Txn {
  readonly id: number;
  /** The client (worker) that ran it, for per-client checks and messages. */
  readonly process: number;
  readonly call: number;
  /** Completion time, null when the outcome is unknown. */
  readonly ret: number | null;
  /** ok: committed, reads as observed; fail: certainly did not commit; info: unknown. */
  readonly status: 'ok' | 'fail' | 'info';
  readonly mops: readonly MicroOp[];
}

export interface AppendAnomaly {
  readonly kind: string;
  readonly details: string;
}

export const APPEND_CHECK_LIMITS = {
  /** Anomalies of one kind listed before the rest are only counted. */
  perKindMax: 5,
} as const;

type EdgeType = 'ww' | 'wr' | 'rw' | 'rt';

interface Edge {
  readonly to: number;
  readonly type: EdgeType;
  readonly key?: string;
}

export function showTxn(t: Txn): string {
  const mops = t.mops.map((m) => (m.f === 'append' ? `append(${m.key}, ${m.value})` : `r(${m.key}) → ${m.value === null ? '?' : `[${m.value.join(' ')}]`}`)).join(', ');
  const ret = t.ret === null ? '…' : t.ret.toFixed(1);
  return `T${t.id} (client ${t.process}, ${t.status}, ${t.call.toFixed(1)}..${ret} ms): ${mops}`;
}

function isPrefix(a: readonly Element[], b: readonly Element[]): boolean {
  if (a.length > b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

class Findings {
  private readonly byKind = new Map<string, string[]>();
  private readonly counts = new Map<string, number>();

  add(kind: string, details: string): void {
    const n = (this.counts.get(kind) ?? 0) + 1;
    this.counts.set(kind, n);
    if (n <= APPEND_CHECK_LIMITS.perKindMax) {
      const list = this.byKind.get(kind) ?? [];
      list.push(details);
      this.byKind.set(kind, list);
    }
  }

  list(): AppendAnomaly[] {
    return [...this.byKind].map(([kind, details]) => {
      const more = this.counts.get(kind)! - details.length;
      return { kind, details: details.join('\n') + (more > 0 ? `\n… and ${more} more` : '') };
    });
  }
}

/**
 * @param txns every transaction attempted
 * @param finalLists each key's list as read after the heal (keys never written may be absent)
 */
export function checkAppendHistory(txns: readonly Txn[], finalLists: ReadonlyMap<string, readonly Element[]>): AppendAnomaly[] {
  const found = new Findings();
  const byId = new Map(txns.map((t) => [t.id, t]));
  const writer = new Map<Element, Txn>();
  for (const t of txns) {
    for (const m of t.mops) {
      if (m.f !== 'append') continue;
      if (writer.has(m.value)) throw new Error(`element ${m.value} appended twice by the workload (T${writer.get(m.value)!.id}, T${t.id})`);
      writer.set(m.value, t);
    }
  }

  // Every observed list: ok reads and the final lists.
  const observations: { key: string; list: readonly Element[]; by: string }[] = [];
  for (const t of txns) {
    if (t.status !== 'ok') continue;
    for (const m of t.mops) if (m.f === 'r' && m.value !== null) observations.push({ key: m.key, list: m.value, by: showTxn(t) });
  }
  for (const [key, list] of finalLists) observations.push({ key, list, by: `the final read of ${key}` });

  // 1–3: what a list may contain.
  for (const o of observations) {
    const seen = new Set<Element>();
    for (const e of o.list) {
      if (seen.has(e)) found.add('duplicate elements', `${o.key}: ${e} twice in [${o.list.join(' ')}], read by ${o.by}`);
      seen.add(e);
      const w = writer.get(e);
      if (w === undefined) found.add('garbage read', `${o.key}: ${e} was never appended, read by ${o.by}`);
      else if (w.status === 'fail') found.add('aborted read (G1a)', `${o.key}: ${e} from a transaction that did not commit, ${showTxn(w)}; read by ${o.by}`);
    }
  }

  // 4: one version order per key, the longest list observed.
  const order = new Map<string, readonly Element[]>();
  for (const o of observations) {
    const cur = order.get(o.key);
    if (cur === undefined || o.list.length > cur.length) order.set(o.key, o.list);
  }
  for (const o of observations) {
    const longest = order.get(o.key)!;
    if (!isPrefix(o.list, longest)) found.add('incompatible order', `${o.key}: [${o.list.join(' ')}] read by ${o.by} is not a prefix of [${longest.join(' ')}]`);
  }
  const position = new Map<Element, { key: string; index: number }>();
  for (const [key, list] of order) list.forEach((e, index) => position.set(e, { key, index }));

  // 5–6: acknowledged appends survive, transactions are all or nothing.
  const committed = new Set<number>();
  for (const t of txns) {
    const appends = t.mops.filter((m): m is Extract<MicroOp, { f: 'append' }> => m.f === 'append');
    const visible = appends.filter((m) => (finalLists.get(m.key) ?? []).includes(m.value));
    if (t.status === 'ok') {
      committed.add(t.id);
      for (const m of appends) if (!visible.includes(m)) found.add('lost append', `${m.key}: ${m.value} acknowledged but missing from the final list, ${showTxn(t)}`);
    } else if (t.status === 'info' && visible.length > 0) {
      committed.add(t.id);
      if (visible.length < appends.length) found.add('non-atomic transaction', `only ${visible.map((m) => `${m.key}:${m.value}`).join(' ')} of ${showTxn(t)} are in the final lists`);
    }
  }

  // 7: per client, in the order it ran its transactions.
  checkSessions(txns, found);

  // 8: dependency cycles.
  const edges = new Map<number, Edge[]>();
  const addEdge = (from: number, to: number, type: EdgeType, key?: string): void => {
    if (from === to || !committed.has(from) || !committed.has(to)) return;
    let list = edges.get(from);
    if (list === undefined) edges.set(from, (list = []));
    list.push({ to, type, key });
  };
  for (const [key, list] of order) {
    for (let i = 1; i < list.length; i++) addEdge(writer.get(list[i - 1]!)?.id ?? -1, writer.get(list[i]!)?.id ?? -1, 'ww', key);
  }
  for (const t of txns) {
    if (t.status !== 'ok') continue;
    for (const m of t.mops) {
      if (m.f !== 'r' || m.value === null) continue;
      const last = m.value.at(-1);
      if (last !== undefined) addEdge(writer.get(last)?.id ?? -1, t.id, 'wr', m.key);
      const next = order.get(m.key)?.[m.value.length];
      if (next !== undefined) addEdge(t.id, writer.get(next)?.id ?? -1, 'rw', m.key);
    }
  }
  for (const [from, to] of realTimeEdges(txns.filter((t) => committed.has(t.id)))) addEdge(from, to, 'rt');

  const classes: { name: string; types: ReadonlySet<EdgeType> }[] = [
    { name: 'G0 (write cycle)', types: new Set(['ww']) },
    { name: 'G1c (circular information flow)', types: new Set(['ww', 'wr']) },
    { name: 'G2 (anti-dependency cycle)', types: new Set(['ww', 'wr', 'rw']) },
    { name: 'strict serializability (real-time cycle)', types: new Set(['ww', 'wr', 'rw', 'rt']) },
  ];
  for (const c of classes) {
    const cycle = findCycle(edges, c.types);
    if (cycle === undefined) continue;
    const rw = cycle.filter((e) => e.edge.type === 'rw').length;
    const name = c.name.startsWith('G2') && rw === 1 ? 'G-single (read skew: one anti-dependency)' : c.name;
    const lines = cycle.map((e) => `  ${showTxn(byId.get(e.from)!)}\n    -${e.edge.type}${e.edge.key === undefined ? '' : `(${e.edge.key})`}->`);
    found.add(name, `${lines.join('\n')}\n  T${cycle[0]!.from} (the cycle closes)`);
    break;
  }
  return found.list();
}

function checkSessions(txns: readonly Txn[], found: Findings): void {
  const byProcess = new Map<number, Txn[]>();
  for (const t of txns) {
    if (t.status !== 'ok') continue;
    const list = byProcess.get(t.process) ?? [];
    list.push(t);
    byProcess.set(t.process, list);
  }
  for (const list of byProcess.values()) {
    list.sort((a, b) => a.call - b.call);
    const mine = new Map<string, { e: Element; t: Txn }[]>();
    const lastRead = new Map<string, { list: readonly Element[]; t: Txn }>();
    for (const t of list) {
      for (const m of t.mops) {
        if (m.f !== 'r' || m.value === null) continue;
        for (const w of mine.get(m.key) ?? []) {
          if (!m.value.includes(w.e)) found.add('read-your-writes', `${m.key}: ${showTxn(t)} misses ${w.e}, appended by the same client in ${showTxn(w.t)}`);
        }
        const before = lastRead.get(m.key);
        if (before !== undefined && m.value.length < before.list.length) {
          found.add('non-monotonic reads', `${m.key}: ${showTxn(t)} reads fewer elements than the same client's earlier ${showTxn(before.t)}`);
        }
        lastRead.set(m.key, { list: m.value, t });
      }
      for (const m of t.mops) {
        if (m.f !== 'append') continue;
        const l = mine.get(m.key) ?? [];
        l.push({ e: m.value, t });
        mine.set(m.key, l);
      }
    }
  }
}

/**
 * T1 → T2 whenever T1 completed before T2 was invoked, transitively reduced as Elle does: each
 * transaction gets edges from the "frontier" of completed transactions at its invocation, and a
 * completion replaces in the frontier the transactions it already follows.
 */
export function realTimeEdges(txns: readonly Txn[]): [number, number][] {
  type Event = { at: number; kind: 0 | 1; t: Txn };
  const events: Event[] = [];
  for (const t of txns) {
    events.push({ at: t.call, kind: 0, t });
    if (t.ret !== null) events.push({ at: t.ret, kind: 1, t });
  }
  // At equal times invocations go first: only a completion strictly before an invocation orders.
  events.sort((a, b) => a.at - b.at || a.kind - b.kind);
  const frontier = new Set<number>();
  const preds = new Map<number, number[]>();
  const out: [number, number][] = [];
  for (const e of events) {
    if (e.kind === 0) {
      const p = [...frontier];
      preds.set(e.t.id, p);
      for (const from of p) out.push([from, e.t.id]);
    } else {
      for (const p of preds.get(e.t.id) ?? []) frontier.delete(p);
      frontier.add(e.t.id);
    }
  }
  return out;
}

/** A shortest cycle through the first strongly connected component that has one (edges of `types`). */
function findCycle(edges: ReadonlyMap<number, readonly Edge[]>, types: ReadonlySet<EdgeType>): { from: number; edge: Edge }[] | undefined {
  const succ = (v: number): Edge[] => (edges.get(v) ?? []).filter((e) => types.has(e.type));
  for (const component of stronglyConnected(edges, succ)) {
    if (component.length < 2) continue;
    const inside = new Set(component);
    const start = component[0]!;
    // Breadth-first from start back to start, inside the component.
    const via = new Map<number, { from: number; edge: Edge }>();
    const queue = [start];
    for (let i = 0; i < queue.length; i++) {
      const v = queue[i]!;
      for (const e of succ(v)) {
        if (!inside.has(e.to)) continue;
        if (e.to === start) {
          const path = [{ from: v, edge: e }];
          for (let u = v; u !== start; ) {
            const step = via.get(u)!;
            path.push(step);
            u = step.from;
          }
          return path.reverse();
        }
        if (!via.has(e.to)) {
          via.set(e.to, { from: v, edge: e });
          queue.push(e.to);
        }
      }
    }
  }
  return undefined;
}

/** Tarjan's algorithm, iterative (histories have tens of thousands of transactions). */
function stronglyConnected(edges: ReadonlyMap<number, readonly Edge[]>, succ: (v: number) => Edge[]): number[][] {
  const nodes = new Set<number>();
  for (const [from, list] of edges) {
    nodes.add(from);
    for (const e of list) nodes.add(e.to);
  }
  const index = new Map<number, number>();
  const low = new Map<number, number>();
  const onStack = new Set<number>();
  const stack: number[] = [];
  const components: number[][] = [];
  let next = 0;
  for (const root of nodes) {
    if (index.has(root)) continue;
    const work: { v: number; out: Edge[]; i: number }[] = [];
    const visit = (v: number): void => {
      index.set(v, next);
      low.set(v, next);
      next++;
      stack.push(v);
      onStack.add(v);
      work.push({ v, out: succ(v), i: 0 });
    };
    visit(root);
    while (work.length > 0) {
      const frame = work.at(-1)!;
      if (frame.i < frame.out.length) {
        const w = frame.out[frame.i++]!.to;
        if (!index.has(w)) visit(w);
        else if (onStack.has(w)) low.set(frame.v, Math.min(low.get(frame.v)!, index.get(w)!));
        continue;
      }
      work.pop();
      const parent = work.at(-1);
      if (parent !== undefined) low.set(parent.v, Math.min(low.get(parent.v)!, low.get(frame.v)!));
      if (low.get(frame.v) === index.get(frame.v)) {
        const component: number[] = [];
        for (;;) {
          const w = stack.pop()!;
          onStack.delete(w);
          component.push(w);
          if (w === frame.v) break;
        }
        components.push(component);
      }
    }
  }
  return components;
}
