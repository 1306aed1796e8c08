// Issue #24 part 3, the crash: kill -9 of a service at a random point of a daemon's load, TRIALS times
// per service on one home, each followed by a restart (the installed bin again) that must serve every
// layer whole or absent and answer the next calls. The load, 3 workers at once:
//   plugin:      CreateReadWrite + Get + a file written + Put + Remove; Create + Diff of `src` piped into
//                ApplyDiff (the layer is kept: after the kill its diff must be src's, or empty); Get/Put of src.
//   snapshotter: Prepare + 300 files written into its upperdir + Commit (kept: after the kill a committed
//                snapshot must hold exactly those files); Prepare + Remove; Usage.
// After each restart: every kept layer is checked (plugin: diff == src or empty; snapshotter: every
// committed snapshot's files, through a View's bind mount), every listed snapshot Stats, every layer
// dir holds its record (as test/snapshotter.test.ts checks), no staging dir or .partial entry is left,
// and a fresh create/get/put/remove succeeds. At the end: the service stopped, 0 mounts under the home.
// The kill points are seeded (test/support/rng.ts, as bench/faults.ts's tests).
//   npm run build:ts && node dist/bench/services-kill.js [trials=50] [seed=20261207] [which=both|plugin|snapshotter]
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { rng } from '../test/support/rng.js';
import { contentDigest } from '../test/support/snapshot.js';
import { table } from './lib/stats.js';
import {
  loadAverage, mountsUnder, PluginClient, startPlugin, startSnapshotter, SnapshotsClient, upperOf, type RunningPlugin,
} from './lib/services.js';

const TRIALS = Number(process.argv[2] ?? 50);
const SEED = Number(process.argv[3] ?? 20261207);
const which = process.argv[4] ?? 'both';
const scratch = mkdtempSync('/var/tmp/ovl2-kill-');
const rows: string[][] = [];

/** 300 small files in 3 dirs: what every kept layer must hold whole. */
function writeFiles(dir: string): void {
  for (let d = 0; d < 3; d++) {
    mkdirSync(join(dir, `d${d}`), { recursive: true });
    for (let f = 0; f < 100; f++) writeFileSync(join(dir, `d${d}`, `f${f}`), `kill ${d}/${f}\n`.repeat(1 + (f % 40)));
  }
}
const reference = join(scratch, 'reference');
writeFiles(reference);
const expected = contentDigest(reference);

/** Loops of `steps` until `stop()`; each failure is the kill's doing (the connection dies), not counted. */
function workers(steps: ((w: number, i: number) => Promise<void>)[], stopped: () => boolean): Promise<void> {
  return Promise.all(steps.map(async (step, w) => {
    for (let i = 0; !stopped(); i++) {
      try { await step(w, i); } catch { return; }
    }
  })).then(() => undefined);
}

/** Nothing of an interrupted step is left where a layer is read from. */
function leftovers(home: string): string[] {
  const found: string[] = [];
  for (const id of readdirSync(home)) {
    if (id.startsWith('.') || id === 'l') continue;
    let names: string[] = [];
    try { names = readdirSync(join(home, id)); } catch { continue; }
    for (const n of names) if (n.startsWith('.staging-') || n === '.applying' || n === '.incomplete') found.push(`${id}/${n}`);
  }
  if (existsSync(join(home, '.partial'))) for (const n of readdirSync(join(home, '.partial'))) found.push(`.partial/${n}`);
  return found;
}

interface Tally { trials: number; killedMidCall: number; kept: number; whole: number; empty: number; bad: string[]; nextCallsFailed: number }

async function killPlugin(): Promise<void> {
  const home = join(scratch, 'plugin-home');
  const r = rng(SEED);
  const t: Tally = { trials: 0, killedMidCall: 0, kept: 0, whole: 0, empty: 0, bad: [], nextCallsFailed: 0 };
  let run = 0;
  const start = () => startPlugin(home, join(scratch, `plugin-${run++}.sock`));
  let p: RunningPlugin = await start();
  await p.client.ok('GraphDriver.Create', { ID: 'base', Parent: '' });
  await p.client.ok('GraphDriver.CreateReadWrite', { ID: 'src', Parent: 'base' });
  writeFiles((await p.client.ok('GraphDriver.Get', { ID: 'src' })).Dir as string);
  await p.client.ok('GraphDriver.Put', { ID: 'src' });
  const kept: string[] = [];
  for (let trial = 0; trial < TRIALS; trial++) {
    let stop = false;
    let inFlight = 0;
    const c = new PluginClient(p.client.socket);
    const counted = async <T>(fn: () => Promise<T>): Promise<T> => { inFlight++; try { return await fn(); } finally { inFlight--; } };
    const load = workers([
      (w, i) => counted(async () => {
        const id = `t${trial}-c${i}`;
        await c.ok('GraphDriver.CreateReadWrite', { ID: id, Parent: 'base' });
        writeFileSync(join((await c.ok('GraphDriver.Get', { ID: id })).Dir as string, 'f'), 'x'.repeat(1 << 16));
        await c.ok('GraphDriver.Put', { ID: id });
        await c.ok('GraphDriver.Remove', { ID: id });
      }),
      (w, i) => counted(async () => {
        const id = `t${trial}-s${i}`;
        await c.ok('GraphDriver.Create', { ID: id, Parent: 'base' });
        kept.push(id);
        await c.copyLayer('src', 'base', id);
      }),
      () => counted(async () => {
        await c.ok('GraphDriver.Get', { ID: 'src' });
        await c.ok('GraphDriver.Put', { ID: 'src' });
      }),
    ], () => stop);
    await new Promise((res) => setTimeout(res, 50 + r() * 2500));
    if (inFlight > 0) t.killedMidCall++;
    await p.stop('SIGKILL');
    stop = true;
    c.close();
    await load;
    t.trials++;
    p = await start();
    try {
      // the next calls dockerd would make: every layer it knows of, and a new container layer
      for (const id of kept.splice(0)) {
        const e = await p.client.ok('GraphDriver.Exists', { ID: id });
        if (e.Exists !== true) continue; // absent is allowed: its Create never finished
        t.kept++;
        const diff = join(home, id, 'diff');
        const names = readdirSync(diff);
        if (names.length === 0) t.empty++;
        else if (contentDigest(diff) === expected) t.whole++;
        else t.bad.push(`trial ${trial}: ${id} is neither empty nor src`);
        await p.client.ok('GraphDriver.Get', { ID: id });
        await p.client.ok('GraphDriver.Put', { ID: id });
        await p.client.ok('GraphDriver.Remove', { ID: id });
      }
      if (contentDigest(join(home, 'src', 'diff')) !== expected) t.bad.push(`trial ${trial}: src changed`);
      const fresh = `t${trial}-next`;
      await p.client.ok('GraphDriver.CreateReadWrite', { ID: fresh, Parent: 'src' });
      await p.client.ok('GraphDriver.Get', { ID: fresh });
      await p.client.ok('GraphDriver.Put', { ID: fresh });
      await p.client.ok('GraphDriver.Remove', { ID: fresh });
      const left = leftovers(home);
      if (left.length) t.bad.push(`trial ${trial}: left after the restart: ${left.slice(0, 3).join(' ')}`);
    } catch (e) {
      t.nextCallsFailed++;
      t.bad.push(`trial ${trial}: ${(e as Error).message}`);
    }
  }
  // the layers of killed cycles (created, maybe mounted by the dead process) go as dockerd's GC would
  for (const id of readdirSync(home).filter((n) => /^t\d+-/.test(n))) await p.client.call('GraphDriver.Remove', { ID: id });
  await p.stop();
  addRow('plugin', t, mountsUnder(home).length);
}

async function killSnapshotter(): Promise<void> {
  const home = join(scratch, 'snap-home');
  const socket = join(scratch, 'snap.sock');
  const r = rng(SEED + 1);
  const t: Tally = { trials: 0, killedMidCall: 0, kept: 0, whole: 0, empty: 0, bad: [], nextCallsFailed: 0 };
  let svc = await startSnapshotter(home, socket);
  let admin = new SnapshotsClient(socket);
  const m = await admin.prepare('base-a', '');
  writeFileSync(join(upperOf(m), 'base-file'), 'base\n');
  await admin.commit('base', 'base-a');
  for (let trial = 0; trial < TRIALS; trial++) {
    let stop = false;
    let inFlight = 0;
    const c = new SnapshotsClient(socket);
    const counted = async <T>(fn: () => Promise<T>): Promise<T> => { inFlight++; try { return await fn(); } finally { inFlight--; } };
    const load = workers([
      (w, i) => counted(async () => {
        const key = `t${trial}-x${i}`;
        writeFiles(upperOf(await c.prepare(key, 'base')));
        await c.commit(`t${trial}-c${i}`, key);
      }),
      (w, i) => counted(async () => {
        await c.prepare(`t${trial}-r${i}`, 'base');
        await c.remove(`t${trial}-r${i}`);
      }),
      () => counted(async () => { await c.usage('base'); }),
    ], () => stop);
    await new Promise((res) => setTimeout(res, 50 + r() * 2500));
    if (inFlight > 0) t.killedMidCall++;
    admin.close();
    await svc.stop('SIGKILL');
    stop = true;
    c.close();
    await load;
    t.trials++;
    svc = await startSnapshotter(home, socket);
    admin = new SnapshotsClient(socket);
    try {
      const listed = (await admin.list()).infos;
      for (const info of listed) {
        await admin.stat(info.name);
        if (info.kind === 'ACTIVE') await admin.mounts(info.name);
        if (info.kind !== 'COMMITTED' || info.name === 'base') continue;
        t.kept++;
        const view = await admin.view(`v-${info.name}`, info.name);
        // a View binds its parent's dir when it is the only layer, else its topmost lowerdir is it
        const top = view[0]!.type === 'bind' ? view[0]!.source
          : view[0]!.options.find((o) => o.startsWith('lowerdir='))!.slice('lowerdir='.length).split(':')[0]!;
        const got = contentDigest(top);
        if (got === expected) t.whole++;
        else t.bad.push(`trial ${trial}: committed ${info.name} does not hold what was written`);
        await admin.remove(`v-${info.name}`);
      }
      // what containerd's GC does next: everything of the trial goes
      for (const info of listed) if (info.kind !== 'COMMITTED' && info.name.startsWith('t')) await admin.remove(info.name);
      for (const info of listed) if (info.kind === 'COMMITTED' && info.name.startsWith('t')) await admin.remove(info.name);
      const layerDirs = readdirSync(home).filter((n) => /^[0-9a-f]{64}$/.test(n));
      const unrecorded = layerDirs.filter((n) => !existsSync(join(home, n, 'ovl2-snapshot.json')));
      if (unrecorded.length) t.bad.push(`trial ${trial}: layer dirs without a record: ${unrecorded.length}`);
      const key = `t${trial}-next`;
      await admin.prepare(key, 'base');
      await admin.mounts(key);
      await admin.remove(key);
      const left = leftovers(home);
      if (left.length) t.bad.push(`trial ${trial}: left after the restart: ${left.slice(0, 3).join(' ')}`);
    } catch (e) {
      t.nextCallsFailed++;
      t.bad.push(`trial ${trial}: ${(e as Error).message}`);
    }
  }
  admin.close();
  await svc.stop();
  addRow('snapshotter', t, mountsUnder(home).length);
}

function addRow(service: string, t: Tally, mountsLeft: number): void {
  rows.push([service, String(t.trials), String(t.killedMidCall), String(t.kept), String(t.whole), String(t.empty),
    String(t.bad.length), String(t.nextCallsFailed), String(mountsLeft)]);
  for (const b of t.bad.slice(0, 10)) console.log(`${service}: ${b}`);
}

try {
  console.log(`kill -9 trials: ${TRIALS} per service, seed ${SEED}; load average ${loadAverage()}`);
  const started = Date.now();
  if (which === 'both' || which === 'plugin') await killPlugin();
  if (which === 'both' || which === 'snapshotter') await killSnapshotter();
  console.log(`\nload average ${loadAverage()}; ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
  console.log(table(['service', 'kills', 'with calls in flight', 'kept layers after restart', 'whole', 'empty (apply never began/finished)',
    'bad', 'next calls failed', 'mounts left at the end'], rows));
} finally {
  spawnSync('sh', ['-c', `grep ' ${scratch}' /proc/self/mounts | cut -d' ' -f2 | sort -r | xargs -r -n1 umount -l`]);
  rmSync(scratch, { recursive: true, force: true });
}
