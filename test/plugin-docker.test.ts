// End to end with a real, unmodified dockerd 20.10 (Debian's docker.io): one private daemon runs on
// our plugin (`overlay2 plugin`, the CLI as a user runs it), a second on Docker's built-in overlay2,
// and both go through the same steps — import, run, change, diff, commit, save, export, load, rm,
// rmi — whose outputs must agree: `docker diff` line for line (as sets: dockerd prints Go map order), saved layers and exports entry by
// entry (names, types, modes, owners, sizes, link targets, devices, xattrs, contents; not mtimes).
import * as assert from 'uvu/assert';
import { test as uvuTest } from 'uvu';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { testIf, canMountOverlay, whyNotMount, scratchRoot } from './support/env.js';
import { CLI_BIN } from './support/cli.js';
import {
  whyNoDocker, startDockerd, startPluginProcess, uniquePluginName, type PrivateDockerd, type PluginProcess,
} from '../bench/lib/dockerd.js';
import { CHANGES, LONG, SHOW_COMMITTED, fileEntries, savedLayers, sortedLines, writeBaseImage } from './support/docker-scenario.js';

const why = whyNotMount || whyNoDocker();
const test = testIf(canMountOverlay && why === '', 'Docker end-to-end tests', why, uvuTest);

let scratch: ReturnType<typeof scratchRoot>;
let plugin: PluginProcess;
let ours: PrivateDockerd;
let builtin: PrivateDockerd;
let baseTar = '';
let capFile = '';

test.before(async () => {
  scratch = scratchRoot('ovl2-dk-');
  const name = uniquePluginName();
  plugin = await startPluginProcess(CLI_BIN, name);
  [ours, builtin] = await Promise.all([
    startDockerd(join(scratch.root, 'p'), name, { experimental: true }),
    startDockerd(join(scratch.root, 'b'), 'overlay2'),
  ]);
  ({ baseTar, capFile } = writeBaseImage(scratch.root));
});

test.after(async () => {
  await Promise.allSettled([ours?.stop(), builtin?.stop()]);
  await plugin?.stop();
  scratch?.remove();
});

/** Runs the same docker command on both daemons; returns [ours, built-in]. */
async function both(args: string[], opts: { input?: Buffer | string } = {}): Promise<[string, string]> {
  const [a, b] = await Promise.all([ours.docker(args, opts), builtin.docker(args, opts)]);
  return [a.out, b.out];
}

test('docker info shows the plugin as the storage driver, with its status', async () => {
  const info = (await ours.docker(['info'])).out;
  assert.match(info, new RegExp(`Storage Driver: ${plugin.name}`));
  assert.match(info, /Native Overlay Diff: true/);
  assert.match(info, /Mount API: /);
  assert.match((await builtin.docker(['info'])).out, /Storage Driver: overlay2/);
});

test('import, run, change a container: docker diff equals built-in overlay2 line for line (in any order)', async () => {
  await both(['import', baseTar, 'e2e:1']);
  const [catA, catB] = await both(['run', '--rm', 'e2e:1', 'cat', '/d/sub/f', '/etc/motd', '/d/a2']);
  assert.is(catA, 'old f\nhello\nhardlinked\n');
  assert.is(catA, catB);
  await both(['run', '--name', 'c1', 'e2e:1', 'sh', '-c', CHANGES]);
  await both(['cp', capFile, 'c1:/d/capfile']);
  const [diffA, diffB] = await both(['diff', 'c1']);
  assert.ok(diffA.includes('D /d/keep') && diffA.includes('A /d/sub/g') && diffA.includes('A /d/capfile'), diffA);
  // dockerd prints changes in Go map order (built-in overlay2: random from run to run), so as sets.
  assert.equal(sortedLines(diffA), sortedLines(diffB));
});

test('commit, run the committed image, save: layers equal built-in overlay2 entry by entry', async () => {
  await both(['commit', 'c1', 'e2e:2']);
  const show = ['run', '--rm', 'e2e:2', 'sh', '-c', SHOW_COMMITTED];
  const [runA, runB] = await both(show);
  assert.match(runA, /^new\ntwo\nhardlinked\nhello\nmore\n/);
  assert.match(runA, /n1 regular file 644 0:0 4 2/);
  assert.is(runA, runB);
  const [savedA, savedB] = await Promise.all([ours, builtin].map(async (d) => {
    const file = join(d.root, 'e2e-2.tar');
    await d.docker(['save', 'e2e:2', '-o', file]);
    return savedLayers(file);
  }));
  assert.is(savedA.length, 2);
  assert.is(savedA.length, savedB.length);
  for (let i = 0; i < savedA.length; i++) assert.equal(savedA[i], savedB[i], `layer ${i}`);
  const committed = new Map(savedA[1].map((e) => [e.name, e]));
  assert.is(committed.get('d/.wh.keep')?.type, 'file');
  assert.is(committed.get('d/sub/.wh..wh..opq')?.type, 'file');
  assert.is(committed.get('d/null')?.type, 'character-device');
  assert.is(committed.get('d/n2')?.type, 'link');
  assert.equal(committed.get('d/capfile')?.xattrs, { 'security.capability': 'AQAAAgAgAAAAAAAAAAAAAAAAAAA=' });
  assert.is(committed.get(`d/${LONG}/deep/file`)?.size, 5);
});

test('docker export of the container equals built-in overlay2 entry by entry', async () => {
  const [expA, expB] = await Promise.all([ours, builtin].map(async (d) => {
    const file = join(d.root, 'c1-export.tar');
    await d.docker(['export', '-o', file, 'c1']);
    return fileEntries(file);
  }));
  assert.ok(expA.some((e) => e.name === 'd/sub/g'));
  assert.not.ok(expA.some((e) => e.name === 'd/keep' || e.name.includes('.wh.')));
  assert.equal(expA, expB);
});

test('rm, rmi, load, run, rmi: the plugin home holds no layer afterwards', async () => {
  await both(['rm', 'c1']);
  await both(['rmi', 'e2e:2', 'e2e:1']);
  await Promise.all([ours, builtin].map((d) => d.docker(['load', '-i', join(d.root, 'e2e-2.tar')])));
  const [catA, catB] = await both(['run', '--rm', 'e2e:2', 'cat', '/d/sub/g', '/d/renamed/y']);
  assert.is(catA, 'new\ny\n');
  assert.is(catA, catB);
  await both(['rmi', 'e2e:2']);
  const home = join(ours.dataRoot, plugin.name);
  // Nothing but l/ and the driver's own dot-named bookkeeping: empty dirs (.partial, .loads; .refs
  // holds only its lock and the record of processes using the home; .children only the stamp of
  // its child index) and the feature cache file.
  assert.equal(readdirSync(home).filter((n) => n !== 'l' && !n.startsWith('.')), []);
  for (const n of readdirSync(home).filter((x) => x.startsWith('.') && statSync(join(home, x)).isDirectory())) {
    assert.equal(readdirSync(join(home, n)).filter((x) => x !== 'lock' && x !== '.users' && x !== '.stamp'), [], n);
  }
  assert.equal(readdirSync(join(home, 'l')), []);
});

test('both daemons stop, the plugin exits 0 on SIGTERM, nothing left mounted, socket removed', async () => {
  await Promise.all([ours.stop(), builtin.stop()]);
  const r = await plugin.stop();
  assert.equal([r.code, r.signal], [0, null], r.stderr);
  assert.not.ok(existsSync(plugin.socket));
  const prefix = scratch.root + '/';
  const left = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((p) => p.startsWith(prefix));
  assert.equal(left, []);
  // The plugin reported no failed calls along the way.
  assert.not.match(r.stderr, /GraphDriver\./);
});

test.run();
