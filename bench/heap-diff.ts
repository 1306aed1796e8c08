// Two V8 heap snapshots of one process (bench/plugin-memory.ts writes them), compared: per
// constructor (node type and name), the count and self size in each, and — since a process's heap
// object ids are stable across its snapshots — the objects of the later one that the earlier one did
// not hold (allocated in between and still alive), grouped the same way. For the groups with the
// most such survivors, a retainer chain of a few of them (the first strong retainer at each step, up
// to a GC root): what keeps them alive, if anything should not.
//   node dist/bench/heap-diff.js EARLIER.heapsnapshot LATER.heapsnapshot [groups=25] [chains=4]
import { readFileSync } from 'node:fs';
import { table } from './lib/stats.js';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]]; edge_fields: string[]; edge_types: [string[], ...unknown[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

class Heap {
  readonly nodeWidth: number;
  readonly edgeWidth: number;
  readonly count: number;
  readonly types: string[];
  readonly edgeTypes: string[];
  private readonly firstEdge: Uint32Array;
  /** retainers[retainerStart[n] .. retainerStart[n+1]) : edge indexes (into edges/edgeWidth) that point at n */
  private retainerStart: Uint32Array | null = null;
  private retainerEdges: Uint32Array | null = null;
  private retainerFrom: Uint32Array | null = null;
  private readonly f: Record<string, number>;
  private readonly e: Record<string, number>;

  constructor(readonly s: Snapshot) {
    const m = s.snapshot.meta;
    this.nodeWidth = m.node_fields.length;
    this.edgeWidth = m.edge_fields.length;
    this.f = Object.fromEntries(m.node_fields.map((k, i) => [k, i]));
    this.e = Object.fromEntries(m.edge_fields.map((k, i) => [k, i]));
    this.types = m.node_types[0];
    this.edgeTypes = m.edge_types[0];
    this.count = s.nodes.length / this.nodeWidth;
    this.firstEdge = new Uint32Array(this.count + 1);
    for (let n = 0, e = 0; n < this.count; n++) {
      this.firstEdge[n] = e;
      e += s.nodes[n * this.nodeWidth + this.f.edge_count!]!;
      this.firstEdge[n + 1] = e;
    }
  }

  type(n: number): string { return this.types[this.s.nodes[n * this.nodeWidth + this.f.type!]!]!; }
  name(n: number): string { return this.s.strings[this.s.nodes[n * this.nodeWidth + this.f.name!]!]!; }
  id(n: number): number { return this.s.nodes[n * this.nodeWidth + this.f.id!]!; }
  selfSize(n: number): number { return this.s.nodes[n * this.nodeWidth + this.f.self_size!]!; }

  /** What the objects are grouped by: the constructor for objects, the type for the rest. */
  group(n: number): string {
    const t = this.type(n);
    if (t === 'object' || t === 'closure' || t === 'native') return `${t} ${this.name(n).slice(0, 60)}`;
    if (t === 'hidden' || t === 'code' || t === 'array' || t === 'object shape') return `${t} ${this.name(n).slice(0, 40)}`;
    return `(${t})`;
  }

  private buildRetainers(): void {
    const toField = this.e.to_node!;
    const edgeCount = this.s.edges.length / this.edgeWidth;
    const counts = new Uint32Array(this.count + 1);
    for (let i = 0; i < edgeCount; i++) counts[this.s.edges[i * this.edgeWidth + toField]! / this.nodeWidth]!++;
    this.retainerStart = new Uint32Array(this.count + 1);
    for (let n = 0; n < this.count; n++) this.retainerStart[n + 1] = this.retainerStart[n]! + counts[n]!;
    const fill = this.retainerStart.slice(0, this.count);
    this.retainerEdges = new Uint32Array(edgeCount);
    this.retainerFrom = new Uint32Array(edgeCount);
    for (let from = 0; from < this.count; from++) {
      for (let e = this.firstEdge[from]!; e < this.firstEdge[from + 1]!; e++) {
        const to = this.s.edges[e * this.edgeWidth + toField]! / this.nodeWidth;
        const at = fill[to]!++;
        this.retainerEdges[at] = e;
        this.retainerFrom[at] = from;
      }
    }
  }

  private edgeLabel(e: number): string {
    const type = this.edgeTypes[this.s.edges[e * this.edgeWidth + this.e.type!]!]!;
    const v = this.s.edges[e * this.edgeWidth + this.e.name_or_index!]!;
    const name = type === 'element' || type === 'hidden' ? `[${v}]` : `.${this.s.strings[v]}`;
    return `${type === 'weak' ? '(weak)' : ''}${name}`;
  }

  /** The first non-weak retainer at each step, up to 12 steps or a root. */
  chain(n: number): string {
    if (!this.retainerStart) this.buildRetainers();
    const steps: string[] = [];
    const seen = new Set<number>([n]);
    let at = n;
    for (let depth = 0; depth < 12; depth++) {
      let next = -1, label = '';
      for (let r = this.retainerStart![at]!; r < this.retainerStart![at + 1]!; r++) {
        const e = this.retainerEdges![r]!;
        const type = this.edgeTypes[this.s.edges[e * this.edgeWidth + this.e.type!]!]!;
        const from = this.retainerFrom![r]!;
        if (type === 'weak' || seen.has(from)) continue;
        next = from;
        label = this.edgeLabel(e);
        break;
      }
      if (next < 0) break;
      steps.push(`${label} ← ${this.group(next)}`);
      seen.add(next);
      at = next;
      if (this.type(next) === 'synthetic') break;
    }
    return `${this.group(n)} ${steps.join(' ')}`;
  }
}

function load(file: string): Heap {
  return new Heap(JSON.parse(readFileSync(file, 'utf8')) as Snapshot);
}

const [earlierFile, laterFile] = process.argv.slice(2, 4);
if (!earlierFile || !laterFile) {
  console.error('usage: heap-diff EARLIER.heapsnapshot LATER.heapsnapshot [groups] [chains]');
  process.exit(2);
}
const GROUPS = Number(process.argv[4] ?? 25);
const CHAINS = Number(process.argv[5] ?? 4);
const a = load(earlierFile), b = load(laterFile);

const tally = (h: Heap, pick: (n: number) => boolean = () => true) => {
  const t = new Map<string, { count: number; size: number; nodes: number[] }>();
  for (let n = 0; n < h.count; n++) {
    if (!pick(n)) continue;
    const g = h.group(n);
    let e = t.get(g);
    if (!e) t.set(g, e = { count: 0, size: 0, nodes: [] });
    e.count++;
    e.size += h.selfSize(n);
    if (e.nodes.length < 64) e.nodes.push(n);
  }
  return t;
};

const ta = tally(a), tb = tally(b);
const total = (t: ReturnType<typeof tally>) => [...t.values()].reduce((s, e) => ({ count: s.count + e.count, size: s.size + e.size }), { count: 0, size: 0 });
const A = total(ta), B = total(tb);
console.log(`${earlierFile}: ${A.count} objects, ${A.size} bytes; ${laterFile}: ${B.count} objects, ${B.size} bytes (${B.size - A.size >= 0 ? '+' : ''}${B.size - A.size})`);

const groups = [...new Set([...ta.keys(), ...tb.keys()])].map((g) => {
  const x = ta.get(g) ?? { count: 0, size: 0 }, y = tb.get(g) ?? { count: 0, size: 0 };
  return { g, countA: x.count, countB: y.count, sizeA: x.size, sizeB: y.size, dSize: y.size - x.size, dCount: y.count - x.count };
}).sort((p, q) => Math.abs(q.dSize) - Math.abs(p.dSize)).slice(0, GROUPS);
console.log('\nby group, the largest changes in self size:');
console.log(table(['group', 'count', 'Δ count', 'self bytes', 'Δ bytes'],
  groups.map((r) => [r.g, `${r.countA} → ${r.countB}`, r.dCount, `${r.sizeA} → ${r.sizeB}`, r.dSize])));

const idsA = new Set<number>();
for (let n = 0; n < a.count; n++) idsA.add(a.id(n));
const fresh = tally(b, (n) => !idsA.has(b.id(n)));
const F = total(fresh);
console.log(`\nin the later snapshot and not the earlier (allocated between them, alive): ${F.count} objects, ${F.size} bytes`);
const freshGroups = [...fresh.entries()].sort((p, q) => q[1].size - p[1].size).slice(0, GROUPS);
console.log(table(['group', 'count', 'self bytes'], freshGroups.map(([g, e]) => [g, e.count, e.size])));

console.log('\nretainer chains of some of them (first strong retainer each step):');
for (const [g, e] of freshGroups.slice(0, 8)) {
  console.log(`\n${g}:`);
  // spread over the group: the first and later ones may be held differently
  const step = Math.max(1, Math.floor(e.nodes.length / CHAINS));
  for (let i = 0; i < e.nodes.length && i / step < CHAINS; i += step) console.log(`  ${b.chain(e.nodes[i]!)}`);
}
