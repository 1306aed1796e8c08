// How the cost of each operation grows with the home around it (#24 part 1): the same calls in a
// home of 10, 1,000 and 10,000 layers — images of 1–20 layers, a container layer on each image —
// through the library, the CLI, the plugin's HTTP API and the snapshotter's gRPC API (a home of as
// many snapshots), with moby's driver (moby-ovl, on a copy of the same home) beside ours.
//   node dist/bench/home-scale.js [sizes=10,1000,10000] [rounds=15]
// An operation whose own work does not grow with the home should cost the same at every size;
// list/ls/List grow with it by nature. Medians of `rounds`, the calls of a round interleaved.
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import * as http from 'node:http';
import { performance } from 'node:perf_hooks';
import { Overlay2Driver } from '../src/driver.js';
import { startPluginProcess, type PluginProcess } from '../test/support/plugin-client.js';
import { SnapshotsClient, startSnapshotter } from '../test/support/snapshots-client.js';
import { ensurePeer, runPeer } from './lib/peers.js';
import { fmtMs, median, table } from './lib/stats.js';

const sizes = (process.argv[2] ?? '10,1000,10000').split(',').map(Number);
const rounds = Number(process.argv[3] ?? 15);
const CLI = join(process.cwd(), 'dist', 'cli', 'overlay2.cjs');
const moby = ensurePeer('moby-ovl');
const scratch = mkdtempSync('/tmp/ovl2-home-scale-');

type Samples = Map<string, number[]>;
const results = new Map<number, Samples>(); // size -> op -> ms

function add(size: number, op: string, ms: number): void {
  const bySize = results.get(size) ?? new Map<string, number[]>();
  results.set(size, bySize);
  bySize.set(op, [...(bySize.get(op) ?? []), ms]);
}

async function timed(fn: () => Promise<unknown> | unknown): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

/** A process's wall time, as a user's shell sees it. */
function spawnMs(argv: string[], expect = 0): number {
  const t = performance.now();
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  const ms = performance.now() - t;
  if (r.status !== expect) throw new Error(`${argv.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return ms;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
function post(socket: string, path: string, body: object): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: socket, path, method: 'POST', agent,
      headers: { 'Content-Type': 'application/vnd.docker.plugins.v1.2+json' } }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        const answer = JSON.parse(text) as Record<string, unknown>;
        if (res.statusCode !== 200 || answer.Err) reject(new Error(`${path}: ${res.statusCode} ${text}`));
        else resolve(answer);
      });
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

// ---- a home: images of 1–20 layers with a container on each; g1..g5 + g-c: the chain get/put mounts
async function growHome(d: Overlay2Driver, target: number): Promise<void> {
  let parent = '';
  for (const id of ['g1', 'g2', 'g3', 'g4', 'g5']) { await d.create(id, parent); parent = id; }
  await d.createReadWrite('g-c', 'g5');
  let made = 6;
  for (let image = 0; made < target; image++) {
    parent = '';
    for (let k = 0; k < 1 + (image % 20) && made < target; k++, made++) {
      const id = `i${image}-${k}`;
      await d.create(id, parent);
      parent = id;
    }
    if (made < target) { await d.createReadWrite(`i${image}-c`, parent); made++; }
  }
}

// ---- a snapshotter's home: committed chains of 1–20 snapshots, an active one on each
async function growSnapshots(client: SnapshotsClient, target: number): Promise<void> {
  await client.prepare('base-a', '');
  await client.commit('base', 'base-a');
  let made = 1;
  const oneChain = async (c: number, budget: number): Promise<number> => {
    let parent = '';
    let n = 0;
    for (let k = 0; k < 1 + (c % 20) && n < budget; k++, n++) {
      await client.prepare(`c${c}-${k}-a`, parent);
      await client.commit(`c${c}-${k}`, `c${c}-${k}-a`);
      parent = `c${c}-${k}`;
    }
    if (n < budget) { await client.prepare(`c${c}-active`, parent); n++; }
    return n;
  };
  for (let chain = 0; made < target;) {
    const batch = [chain++, chain++, chain++, chain++];
    const counts = await Promise.all(batch.map((c) => oneChain(c, Math.ceil((target - made) / batch.length))));
    made += counts.reduce((a, b) => a + b, 0);
  }
}

interface Home {
  size: number;
  dir: string;
  d: Overlay2Driver;
  plugin: PluginProcess;
  pluginSocket: string;
  snapshotter: Awaited<ReturnType<typeof startSnapshotter>>;
  client: SnapshotsClient;
  mobyHome: string;
}

async function makeHome(size: number): Promise<Home> {
  const t0 = performance.now();
  const dir = join(scratch, `home-${size}`);
  const d = await Overlay2Driver.init(dir);
  await growHome(d, size);
  const pluginSocket = join(scratch, `plugin-${size}.sock`);
  // its own process, as dockerd meets it: the bench's own heap (lists of 10,000 names) stays out of its calls
  const plugin = await startPluginProcess(dir, pluginSocket, CLI);
  const snapSocket = join(scratch, `snap-${size}.sock`);
  const snapshotter = await startSnapshotter(join(scratch, `snapshots-${size}`), snapSocket);
  const client = new SnapshotsClient(snapSocket);
  await growSnapshots(client, size);
  const mobyHome = join(scratch, `moby-${size}`);
  if (moby) cpSync(dir, mobyHome, { recursive: true, verbatimSymlinks: true });
  console.log(`${(await d.list()).length} layers, ${(await client.list()).infos.length} snapshots: made in ${((performance.now() - t0) / 1000).toFixed(1)} s; load ${loadavg()[0]!.toFixed(1)}`);
  return { size, dir, d, plugin, pluginSocket, snapshotter, client, mobyHome };
}

/** One round of every call on one home. */
async function round(h: Home, r: number, x: string): Promise<void> {
  const s = (op: string, ms: number) => { if (r >= 0) add(h.size, op, ms); };
  const { d, dir, pluginSocket, client } = h;
  s('init (read-write)', await timed(() => Overlay2Driver.init(dir)));
  s('init (read-only)', await timed(() => Overlay2Driver.init(dir, [], { readOnly: true })));
  s('exists', await timed(() => d.exists('g3')));
  s('create', await timed(() => d.create(x, 'g5')));
  s('createReadWrite', await timed(() => d.createReadWrite(`${x}-rw`, x)));
  s('get + put (5 lowers)', await timed(async () => { await d.get('g-c'); await d.put('g-c'); }));
  s('remove (container)', await timed(() => d.remove(`${x}-rw`)));
  s('remove', await timed(() => d.remove(x)));
  s('getMetadata', await timed(() => d.getMetadata('g5')));
  s('status', await timed(() => d.status()));
  s('cleanup', await timed(() => d.cleanup()));
  s('list (grows)', await timed(() => d.list()));
  s('CLI: overlay2 exists', spawnMs([process.execPath, CLI, '--home', dir, 'exists', 'g3']));
  s('CLI: overlay2 ls (grows)', spawnMs([process.execPath, CLI, '--home', dir, 'ls']));
  s('CLI: overlay2 create + remove', spawnMs([process.execPath, CLI, '--home', dir, 'create', `${x}-cli`, '--parent', 'g5'])
    + spawnMs([process.execPath, CLI, '--home', dir, 'remove', `${x}-cli`]));
  s('plugin: Exists', await timed(() => post(pluginSocket, '/GraphDriver.Exists', { ID: 'g3' })));
  s('plugin: Get + Put', await timed(async () => {
    await post(pluginSocket, '/GraphDriver.Get', { ID: 'g-c', MountLabel: '' });
    await post(pluginSocket, '/GraphDriver.Put', { ID: 'g-c' });
  }));
  s('plugin: CreateReadWrite + Remove', await timed(async () => {
    await post(pluginSocket, '/GraphDriver.CreateReadWrite', { ID: `${x}-p`, Parent: 'g5', MountLabel: '', StorageOpt: {} });
    await post(pluginSocket, '/GraphDriver.Remove', { ID: `${x}-p` });
  }));
  s('snapshotter: Prepare + Remove', await timed(async () => {
    await client.prepare(`${x}-s`, 'base');
    await client.remove(`${x}-s`);
  }));
  s('snapshotter: Stat', await timed(() => client.stat('base')));
  s('snapshotter: Mounts', await timed(() => client.mounts('c0-active')));
  s('snapshotter: List (grows)', await timed(() => client.list()));
  if (moby) {
    for (const [op, args] of [['exists', ['exists', 'g3']], ['create', ['create', x, 'g5']], ['remove', ['remove', x]],
      ['get + put (5 lowers)', ['getput', 'g-c', '1']], ['getMetadata', ['metadata', 'g5']], ['status', ['status']]] as const) {
      const p = runPeer(moby, h.mobyHome, [...args]);
      if (p.code !== 0) throw new Error(`moby-ovl ${args.join(' ')}: ${p.err}`);
      s(`moby: ${op}`, p.opMs);
      if (op === 'exists') s('moby: init', Number(/init=([0-9.]+)ms/.exec(p.err)?.[1] ?? NaN));
    }
  }
}

async function main(): Promise<void> {
  console.log(`load average at the start: ${loadavg().map((x) => x.toFixed(1)).join(' ')}; sizes ${sizes.join(', ')}; ${rounds} rounds${moby ? '' : '; moby-ovl not found (../shared/peers/build.sh): its columns are empty'}`);
  const homes: Home[] = [];
  try {
    for (const size of sizes) homes.push(await makeHome(size));
    // every round visits every home in turn: load that comes and goes hits all sizes alike
    for (let r = -1; r < rounds; r++) {                 // one warm-up round
      for (const h of homes) await round(h, r, `x${r + 1}`);
    }
  } finally {
    for (const h of homes) {
      h.client.close();
      await h.snapshotter.stop();
      await h.plugin.stop();
      await h.d.cleanup();
    }
  }

  const first = sizes[0]!;
  const last = sizes[sizes.length - 1]!;
  const ops = [...results.get(first)!.keys()];
  const rows = ops.map((op) => {
    const at = sizes.map((n) => median(results.get(n)!.get(op) ?? []));
    const growth = (at[at.length - 1]! - at[0]!) / (last - first) * 1000; // ms per layer × 1000 = µs per layer
    return [op, ...at.map(fmtMs), (at[at.length - 1]! / at[0]!).toFixed(2) + '×', `${growth.toFixed(2)} µs`];
  });
  console.log(`\n## ms, median of ${rounds} (${last.toLocaleString('en')} vs ${first}); growth: per layer added\n`);
  console.log(table(['operation', ...sizes.map((n) => `${n.toLocaleString('en')} layers`), `${last.toLocaleString('en')} ÷ ${first}`, 'growth per layer'], rows));
  console.log(`\nload average at the end: ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  rmSync(scratch, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
