#!/usr/bin/env node
// Checks the import graph of src/: no cycles (type-only imports count: a cycle of types is still a
// knot to untie), and no arrow from a lower room (the WASM core's host side, the scanner, the shim's
// wrapper, the tar codec) up into the rooms built on them. Exit 1 with each finding on its own line.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src');

// Rooms that others build on, and the rooms they must never import from.
const LOWER = ['core', 'scan', 'native', 'tar', 'util'];
const UPPER = ['apply', 'export', 'changes', 'size', 'tar-split', 'layout', 'mount', 'image', 'plugin', 'snapshotter', 'service', 'cli', 'thin',
  'driver.ts', 'features.ts', 'index.ts'];

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\b[^'"`;]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
const graph = new Map();
for (const file of files(src)) {
  const text = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const deps = new Set();
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2];
    if (!spec.startsWith('.')) continue;
    deps.add(resolve(dirname(file), spec).replace(/\.js$/, '.ts'));
  }
  graph.set(file, deps);
}

const room = (file) => relative(src, file).split('/')[0];
const findings = [];

for (const [file, deps] of graph) {
  if (!LOWER.includes(room(file))) continue;
  for (const dep of deps) {
    if (UPPER.includes(room(dep))) findings.push(`upward import: ${relative(root, file)} → ${relative(root, dep)}`);
  }
}

// Tarjan's strongly connected components: every component of more than one file is a cycle.
let index = 0;
const idx = new Map(), low = new Map(), stack = [], onStack = new Set();
function connect(v) {
  idx.set(v, index); low.set(v, index); index++;
  stack.push(v); onStack.add(v);
  for (const w of graph.get(v) ?? []) {
    if (!graph.has(w)) continue;
    if (!idx.has(w)) { connect(w); low.set(v, Math.min(low.get(v), low.get(w))); }
    else if (onStack.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
  }
  if (low.get(v) === idx.get(v)) {
    const scc = [];
    let w;
    do { w = stack.pop(); onStack.delete(w); scc.push(w); } while (w !== v);
    if (scc.length > 1 || graph.get(v)?.has(v)) findings.push(`import cycle: ${scc.map((f) => relative(root, f)).sort().join(' ↔ ')}`);
  }
}
for (const v of graph.keys()) if (!idx.has(v)) connect(v);

for (const f of findings) console.log(f);
console.log(`${graph.size} modules, ${findings.length} finding(s)`);
process.exit(findings.length === 0 ? 0 : 1);
