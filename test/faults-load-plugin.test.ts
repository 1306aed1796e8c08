// kill -9 on the two paths that drive the store from outside: `overlay2 load` of an image archive
// (the CLI, a real process), and the Docker plugin (`overlay2 plugin`, a real process serving the
// GraphDriver protocol on a socket) during an ApplyDiff request stream and during a Diff response
// stream. After each kill a fresh driver (this process) re-inits on the same home: every layer is
// fully there (content compared with its source) or absent, .partial/.loads/staging are swept,
// cleanup leaves no mount, and the layers nobody touched are unchanged. Seeded (FAULT_SEED); the
// suite runs a few trials per kind, bench/faults.ts many (FAULT_TRIALS).
import { test as uvuTest } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { Overlay2Driver } from '../src/driver.js';
import { chainIds, hexOf } from '../src/image/digest.js';
import { readLayerRecord } from '../src/image/layer-record.js';
import { processStart } from '../src/mount/shared-refs.js';
import { mountTest, scratchRoot } from './support/env.js';
import { CLI_BIN } from './support/cli.js';
import { rng } from './support/rng.js';
import { buildOciLayout, type LayerSpec } from './image-fixtures.js';
import { dir, file, tarOf } from './apply-tar.js';
import { openCall, pluginCall } from './support/plugin-client.js';
import { contentDigest } from './support/snapshot.js';

const test = mountTest(uvuTest);
const SEED = Number(process.env.FAULT_SEED ?? 20261130);
const TRIALS = Number(process.env.FAULT_TRIALS ?? 4);
const CLI = CLI_BIN;
const scratch = scratchRoot('ovl2-faults-lp-');
const home = join(scratch.root, 'home');
const totals = { trials: 0, killedMidway: 0, finished: 0 };

function mountsUnderHome(): string[] {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '')
    .filter((p) => p.startsWith(home + '/'));
}

let untouched = '';
/** Re-init after a kill: the sweeps happened, every link resolves, the untouched layer is as it was. */
async function reopen(): Promise<Overlay2Driver> {
  const d = await Overlay2Driver.init(home);
  assert.equal(fs.readdirSync(join(home, '.partial')), [], '.partial swept');
  assert.equal(fs.existsSync(join(home, '.loads')) ? fs.readdirSync(join(home, '.loads')) : [], [], 'no load journal left');
  for (const id of await d.list()) {
    const left = fs.readdirSync(join(home, id)).filter((n) => n.startsWith('.staging-') || n === '.applying' || n === '.incomplete' || n.includes('.tmp-'));
    assert.equal(left, [], `${id}: no staging dir, marker or temp left`);
    const link = fs.readFileSync(join(home, id, 'link'), 'utf8');
    assert.is(fs.realpathSync(join(home, 'l', link)), fs.realpathSync(join(home, id, 'diff')), `${id}: its l/ link resolves`);
  }
  for (const name of fs.readdirSync(join(home, 'l'))) assert.ok(fs.existsSync(join(home, 'l', name)), `l/${name} is not dangling`);
  assert.is(contentDigest(join(home, 'base', 'diff')), untouched, 'base unchanged');
  return d;
}

async function settle(d: Overlay2Driver): Promise<void> {
  await d.cleanup();
  assert.equal(mountsUnderHome(), [], 'cleanup leaves no mount under the home');
}

interface Proc { child: ChildProcess; exited: Promise<string>; stderr(): string }
function startProc(args: string[]): Proc {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stdout!.resume();
  child.stderr!.on('data', (b: Buffer) => { err += b; });
  const exited = new Promise<string>((resolve) => child.once('exit', (code, signal) =>
    resolve(signal ?? (code === 0 ? 'done' : `exit ${code}: ${err.trim()}`))));
  return { child, exited, stderr: () => err };
}

/** Kills `p` after `ms` unless it ended first; returns 'SIGKILL' or 'done'. */
async function killAfter(p: Proc, ms: number): Promise<string> {
  await new Promise((r) => setTimeout(r, ms));
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  const how = await p.exited;
  assert.ok(how === 'SIGKILL' || how === 'done', `the process ended cleanly or was killed (${how})`);
  totals.trials++;
  if (how === 'SIGKILL') totals.killedMidway++; else totals.finished++;
  return how;
}

// ---- the image: 4 gzip layers of a few hundred files each, as an OCI archive file ----
const LAYERS = 4, FILES = 250;
const specs: LayerSpec[] = [...Array(LAYERS).keys()].map((l) => ({
  files: Object.fromEntries([
    [`l${l}/`, ''],
    ...[...Array(FILES).keys()].map((f) => [`l${l}/d${f % 10}/f${f}`, `layer ${l} file ${f}\n`.repeat(1 + (f % 23))]),
    ...(l > 0 ? [[`l${l - 1}/d0/f0`, `replaced by layer ${l}\n`]] : []),
  ]),
  compress: 'gzip' as const,
}));
let archive = '';
let layerIds: string[] = [];
let layerSources: string[] = [];

test.before(async () => {
  const d = await Overlay2Driver.init(home);
  await d.create('base');
  await d.applyDiff('base', null, Readable.from([tarOf(dir('etc/'), file('etc/os-release', 'ID=test\n'), file('etc/keep', 'k'))]));
  await d.create('mid', 'base');
  await d.applyDiff('mid', 'base', Readable.from([tarOf(file('mid-file', 'm'))]));
  untouched = contentDigest(join(home, 'base', 'diff'));
  const work = join(scratch.root, 'image');
  const image = buildOciLayout(work, join(work, 'layout'), specs);
  archive = join(scratch.root, 'image.tar');
  execFileSync('tar', ['-cf', archive, '-C', image.layout, '.']);
  layerIds = chainIds(image.diffIds).map(hexOf);
  layerSources = specs.map((_, i) => join(work, `layer-src-${i}`));
});
test.after(() => {
  console.error(`faults (load, plugin): ${totals.trials} kill trials (seed ${SEED}): ${totals.killedMidway} killed mid-operation, ${totals.finished} finished first; every one recovered`);
  scratch.remove();
});

/** The image's layers: a prefix of the chain is there, each recorded with its full content; the rest absent. */
async function checkImageLayers(d: Overlay2Driver): Promise<number> {
  let present = 0;
  for (let i = 0; i < LAYERS; i++) {
    const id = layerIds[i]!;
    if (!(await d.exists(id))) {
      for (let j = i + 1; j < LAYERS; j++) assert.not.ok(await d.exists(layerIds[j]!), `layer ${j} absent after a missing parent`);
      break;
    }
    assert.ok(readLayerRecord(join(home, id)), `layer ${i}: recorded (complete)`);
    assert.is(contentDigest(join(home, id, 'diff')), contentDigest(layerSources[i]!), `layer ${i}: every file, every byte`);
    assert.is(await d.parentOf(id), i === 0 ? '' : layerIds[i - 1], `layer ${i}: on its parent`);
    present++;
  }
  return present;
}

/** When the load process starts making layers (its journal appears: src/image/load-journal.ts). */
async function loadBegan(p: Proc): Promise<number> {
  const journal = join(home, '.loads');
  while (p.child.exitCode === null && !(fs.existsSync(journal) && fs.readdirSync(journal).length > 0)) {
    await new Promise((r) => setTimeout(r, 2));
  }
  return Date.now();
}

async function removeImage(d: Overlay2Driver): Promise<void> {
  for (const id of [...layerIds].reverse()) if (await d.exists(id)) await d.remove(id);
}

test(`kill -9 during \`overlay2 load\` of an image archive: each layer complete or absent (${TRIALS} trials)`, async () => {
  const r = rng(SEED + 10);
  // One load to the end first: how long the kills may wait, and the reference outcome.
  const full = startProc([CLI, '--home', home, 'load', archive]);
  const began = await loadBegan(full);
  assert.is(await full.exited, 'done', 'an uninterrupted load succeeds');
  const span = Date.now() - began;
  let d = await reopen();
  assert.is(await checkImageLayers(d), LAYERS);
  const outcomes = new Array(LAYERS + 1).fill(0) as number[];
  for (let t = 0; t < TRIALS; t++) {
    await removeImage(d);
    const p = startProc([CLI, '--home', home, 'load', archive]);
    await loadBegan(p);
    await killAfter(p, r() * span);
    d = await reopen();
    outcomes[await checkImageLayers(d)]!++;
    await settle(d);
  }
  console.error(`faults: load: layers present after the kill (0..${LAYERS}): ${outcomes.join(' / ')} (a full load took ${span} ms)`);
  // and the next load finishes what was killed
  const again = startProc([CLI, '--home', home, 'load', archive]);
  assert.is(await again.exited, 'done');
  d = await reopen();
  assert.is(await checkImageLayers(d), LAYERS);
  await removeImage(d);
});

// ---- the plugin ----
let pluginRun = 0;
async function startPlugin(): Promise<{ proc: Proc; socket: string }> {
  const socket = join(scratch.root, `plugin-${pluginRun++}.sock`);
  const proc = startProc([CLI, '--home', home, 'plugin', '--socket', socket]);
  for (let i = 0; !fs.existsSync(socket); i++) {
    if (proc.child.exitCode !== null || i > 3000) throw new Error(`the plugin did not start: ${proc.stderr()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  const init = await pluginCall(socket, '/GraphDriver.Init', { Home: home, Opts: [], UIDMaps: null, GIDMaps: null });
  assert.is(init.status, 200, init.text);
  return { proc, socket };
}

const DIRS = 4, PER_DIR = 40;
const expected = new Map<string, string>();
for (let d = 0; d < DIRS; d++) for (let f = 0; f < PER_DIR; f++) expected.set(`d${d}/f${f}`, `file ${d}/${f}\n`.repeat(1 + (f % 7)));
const bigTar = tarOf(...[...Array(DIRS).keys()].flatMap((d) => [
  dir(`d${d}/`), ...[...Array(PER_DIR).keys()].map((f) => file(`d${d}/f${f}`, expected.get(`d${d}/f${f}`)!)),
]));

/** diff/ holds nothing, or exactly the import (every file, every byte). */
function emptyOrComplete(diff: string, what: string): 'empty' | 'complete' {
  const names = fs.readdirSync(diff);
  if (names.length === 0) return 'empty';
  assert.is(names.length, DIRS, `${what}: top level`);
  for (let d = 0; d < DIRS; d++) {
    const entries = fs.readdirSync(join(diff, `d${d}`));
    assert.is(entries.length, PER_DIR, `${what}: d${d} has every file`);
    for (const f of entries) assert.is(fs.readFileSync(join(diff, `d${d}`, f), 'utf8'), expected.get(`d${d}/${f}`), `${what}: d${d}/${f}`);
  }
  return 'complete';
}

test(`kill -9 of the plugin during an ApplyDiff request stream: the layer is empty or complete (${TRIALS} trials)`, async () => {
  const r = rng(SEED + 11);
  const seen = { empty: 0, complete: 0 };
  for (let t = 0; t < TRIALS; t++) {
    const id = `pa${t}`;
    const { proc, socket } = await startPlugin();
    const created = await pluginCall(socket, '/GraphDriver.Create', { ID: id, Parent: 'mid' });
    assert.is(created.status, 200, created.text);
    const { req, reply } = openCall(socket, `/GraphDriver.ApplyDiff?id=${id}&parent=mid`);
    reply.catch(() => undefined); // the connection dies with the plugin
    req.on('error', () => undefined);
    const fraction = r();
    if (fraction > 0.6) req.end(bigTar);
    else req.write(bigTar.subarray(0, Math.floor(bigTar.length * fraction / 0.6)));
    await killAfter(proc, r() * 400);
    req.destroy();
    const d = await reopen();
    seen[emptyOrComplete(join(home, id, 'diff'), id)]++;
    await settle(d);
    await d.remove(id);
  }
  console.error(`faults: plugin ApplyDiff: ${seen.empty} left empty, ${seen.complete} complete`);
});

test(`kill -9 of the plugin during a Diff response stream: nothing changes, no mount left (${TRIALS} trials)`, async () => {
  const r = rng(SEED + 12);
  {
    const d = await Overlay2Driver.init(home);
    await d.create('big', 'mid');
    const many = [...Array(2000).keys()].map((i) => file(`big/d${i % 20}/f${i}`, `big ${i}\n`.repeat(1 + (i % 50))));
    await d.applyDiff('big', 'mid', Readable.from([tarOf(dir('big/'), ...[...Array(20).keys()].map((i) => dir(`big/d${i}/`)), ...many)]));
  }
  const before = contentDigest(join(home, 'big', 'diff'));
  const midBefore = contentDigest(join(home, 'mid', 'diff'));
  let midStream = 0;
  for (let t = 0; t < TRIALS; t++) {
    const { proc, socket } = await startPlugin();
    // the direct parent (the native export), or the grandparent (moby's naive path: through a mount)
    const parent = t % 2 === 0 ? 'mid' : 'base';
    const { req, reply } = openCall(socket, '/GraphDriver.Diff');
    req.on('error', () => undefined);
    let received = 0;
    req.once('response', (res) => {
      res.on('data', (b: Buffer) => { received += b.length; });
      res.on('error', () => undefined);
    });
    reply.catch(() => undefined);
    req.end(JSON.stringify({ ID: 'big', Parent: parent }));
    // wait for the stream to begin, then kill at a seeded point within it
    for (let i = 0; received === 0 && proc.child.exitCode === null && i < 3000; i++) await new Promise((res) => setTimeout(res, 5));
    const how = await killAfter(proc, r() * 60);
    if (how === 'SIGKILL') midStream++;
    req.destroy();
    const d = await reopen();
    assert.is(contentDigest(join(home, 'big', 'diff')), before, 'the exported layer is unchanged');
    assert.is(contentDigest(join(home, 'mid', 'diff')), midBefore, 'its parent is unchanged');
    await settle(d);
  }
  console.error(`faults: plugin Diff: ${midStream} of ${TRIALS} kills landed mid-stream`);
  const d = await Overlay2Driver.init(home);
  await d.remove('big');
});

test('init removes the unrecorded layers of a dead load, not those a running load journals', async () => {
  const d = await Overlay2Driver.init(home);
  await d.create('j-dead');
  await d.create('j-shared');
  await d.create('j-done');
  fs.writeFileSync(join(home, 'j-done', 'ovl2-layer.json'), JSON.stringify({ diffId: `sha256:${'0'.repeat(64)}`, tarSize: 0, tarSplit: false }));
  const gone = spawnSync('true').pid!;
  const loads = join(home, '.loads');
  fs.mkdirSync(loads, { recursive: true });
  fs.writeFileSync(join(loads, `${gone}.json`), JSON.stringify({ pid: gone, start: '1', ids: ['j-done', 'j-dead', 'j-shared'] }));
  fs.writeFileSync(join(loads, `${process.pid}.json`), JSON.stringify({ pid: process.pid, start: processStart(process.pid), ids: ['j-shared'] }));
  const again = await Overlay2Driver.init(home);
  assert.not.ok(await again.exists('j-dead'), 'the dead load\'s unrecorded layer is removed');
  assert.ok(await again.exists('j-shared'), 'a layer a running load journals is left to it');
  assert.ok(await again.exists('j-done'), 'a recorded (complete) layer stays');
  assert.equal(fs.readdirSync(loads), [`${process.pid}.json`], 'the dead load\'s journal is gone, the running one\'s kept');
  fs.rmSync(join(loads, `${process.pid}.json`));
  for (const id of ['j-shared', 'j-done']) await again.remove(id);
});

uvuTest.run();
