// The managed plugin end to end, as a Debian user switches a daemon to it: `overlay2 plugin bundle`
// (the installed bin), `docker plugin create`, `docker plugin set`, `docker plugin enable` on a private
// dockerd 20.10 (--experimental), then the same daemon restarted with `--storage-driver NAME:latest` —
// a name whose ':' dockerd puts into the Init home. Beside it a private dockerd on the built-in
// overlay2 goes through the same steps: `docker load` of a real `docker save` archive, `docker run`,
// `docker diff`, `docker commit`, `docker save`, whose outputs must agree (the comparisons of
// test/plugin-docker.test.ts). Then a thin image runs through the plugin (its repository under the
// THIN_ROOT setting, inside the propagated mount), and `docker plugin disable` / `rm` leave no mount
// and no plugin directory behind.
import * as assert from 'uvu/assert';
import { test as uvuTest } from 'uvu';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { Overlay2Driver } from '../src/driver.js';
import { makeThinImage } from '../src/thin/publish.js';
import { homeDirName, MANAGED_PROPAGATED_MOUNT } from '../src/plugin/index.js';
import { testIf, canMountOverlay, whyNotMount, scratchRoot } from './support/env.js';
import { CLI_BIN } from './support/cli.js';
import {
  whyNoDocker, startDockerd, startManagedDockerd, uniquePluginName, writeBusyboxRoot, mountsUnder,
  type ManagedDockerd, type PrivateDockerd,
} from '../bench/lib/dockerd.js';
import { CHANGES, LONG, SHOW_COMMITTED, savedLayers, sortedLines, writeBaseImage } from './support/docker-scenario.js';

const why = whyNotMount || whyNoDocker();
const test = testIf(canMountOverlay && why === '', 'managed Docker plugin tests', why, uvuTest);

/** The THIN_ROOT setting: a directory inside the propagated mount, filled from this side. */
const THIN_ROOT = `${MANAGED_PROPAGATED_MOUNT}/thin`;
const REPO = 'images.example.org';

let scratch: ReturnType<typeof scratchRoot>;
let name = '';
let bundle = '';
let ours: ManagedDockerd;
let builtin: PrivateDockerd;
let baseTar = '';
let capFile = '';

test.before(async () => {
  scratch = scratchRoot('ovl2-mdk-');
  name = uniquePluginName('ovl2-m');
  bundle = join(scratch.root, 'bundle');
  const made = spawnSync(process.execPath, [CLI_BIN, 'plugin', 'bundle', '-o', bundle, '--name', name], { encoding: 'utf8' });
  if (made.status !== 0) throw new Error(`overlay2 plugin bundle: ${made.stderr}`);
  [ours, builtin] = await Promise.all([
    startManagedDockerd(join(scratch.root, 'm'), bundle, name, {
      settings: [`THIN_ROOT=${THIN_ROOT}`, 'DRIVER_OPTS=overlay2.override_kernel_check=true', 'args=--grace 10'],
    }),
    startDockerd(join(scratch.root, 'b'), 'overlay2'),
  ]);
  ({ baseTar, capFile } = writeBaseImage(scratch.root));
});

test.after(async () => {
  await Promise.allSettled([ours?.stop(), builtin?.stop()]);
  scratch?.remove();
});

/** Runs the same docker command on both daemons; returns [ours, built-in]. */
async function both(args: string[], opts: { input?: Buffer | string } = {}): Promise<[string, string]> {
  const [a, b] = await Promise.all([ours.docker(args, opts), builtin.docker(args, opts)]);
  return [a.out, b.out];
}

test('the bundle: config.json asks for CAP_SYS_ADMIN only; rootfs holds node, its libraries and the package', () => {
  const config = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
  assert.equal(config.interface.types, ['docker.graphdriver/1.0']);
  assert.equal(config.linux.capabilities, ['CAP_SYS_ADMIN']);
  assert.is(config.linux.allowAllDevices, false);
  assert.equal(config.mounts, []);
  assert.is(config.propagatedMount, MANAGED_PROPAGATED_MOUNT);
  assert.ok(config.env.some((e: { name: string }) => e.name === 'THIN_ROOT'));
  // the soak's flat RSS came with this allocator setting (bench/RESULTS.md)
  assert.ok(config.env.some((e: { name: string; value: string }) => e.name === 'MALLOC_MMAP_THRESHOLD_' && e.value === '131072'));
  const rootfs = join(bundle, 'rootfs');
  for (const f of [config.entrypoint[0], config.entrypoint[1], '/lib64/ld-linux-x86-64.so.2', '/opt/overlay2/build/core.wasm',
    '/opt/overlay2/package.json', '/opt/overlay2/node_modules/tar-stream/package.json']) {
    assert.ok(existsSync(join(rootfs, f)), f);
  }
  assert.equal(readdirSync(join(rootfs, 'run/docker/plugins')), []);
});

test('docker info on NAME:latest: the plugin serves a home named for it inside the propagated mount', async () => {
  const info = (await ours.docker(['info'])).out;
  assert.match(info, `Storage Driver: ${name}:latest`);
  assert.match(info, /Native Overlay Diff: true/);
  // Docker asked for <propagatedMount>/NAME:latest; the ':' cannot be in a home, so it is %3A
  assert.ok(existsSync(join(ours.propagated, homeDirName(`${name}:latest`), 'l')), readdirSync(ours.propagated).join(' '));
  assert.not.ok(existsSync(join(ours.propagated, `${name}:latest`)));
  // the plugin's stderr is in dockerd's log; the args setting reached its command line
  assert.match(ours.log(), /overlay2 plugin: serving on \/run\/docker\/plugins\/overlay2\.sock as a managed plugin/);
  const settings = JSON.parse((await ours.docker(['plugin', 'inspect', '--format', '{{json .Settings}}', `${name}:latest`])).out);
  assert.equal(settings.Args, ['--grace', '10']);
  assert.ok(settings.Env.includes(`THIN_ROOT=${THIN_ROOT}`), settings.Env.join(' '));
});

test('docker load of a docker save archive, run, change: docker diff equals built-in overlay2', async () => {
  // the image as the built-in daemon saves it, loaded into both
  await builtin.docker(['import', baseTar, 'e2e:1']);
  const archive = join(scratch.root, 'e2e-1.tar');
  await builtin.docker(['save', '-o', archive, 'e2e:1']);
  await builtin.docker(['rmi', 'e2e:1']);
  const [loadedA, loadedB] = await both(['load', '-i', archive]);
  assert.is(loadedA, loadedB);
  const [catA, catB] = await both(['run', '--rm', 'e2e:1', 'cat', '/d/sub/f', '/etc/motd', '/d/a2']);
  assert.is(catA, 'old f\nhello\nhardlinked\n');
  assert.is(catA, catB);
  await both(['run', '--name', 'c1', 'e2e:1', 'sh', '-c', CHANGES]);
  await both(['cp', capFile, 'c1:/d/capfile']);
  const [diffA, diffB] = await both(['diff', 'c1']);
  assert.ok(diffA.includes('D /d/keep') && diffA.includes('A /d/capfile'), diffA);
  assert.equal(sortedLines(diffA), sortedLines(diffB));
});

test('docker commit, run the committed image, docker save: layers equal built-in overlay2 entry by entry', async () => {
  await both(['commit', 'c1', 'e2e:2']);
  const [runA, runB] = await both(['run', '--rm', 'e2e:2', 'sh', '-c', SHOW_COMMITTED]);
  assert.match(runA, /^new\ntwo\nhardlinked\nhello\nmore\n/);
  assert.is(runA, runB);
  const [savedA, savedB] = await Promise.all([ours, builtin].map(async (d) => {
    const file = join(d.root, 'e2e-2.tar');
    await d.docker(['save', 'e2e:2', '-o', file]);
    return savedLayers(file);
  }));
  assert.is(savedA.length, 2);
  for (let i = 0; i < savedA.length; i++) assert.equal(savedA[i], savedB[i], `layer ${i}`);
  const committed = new Map(savedA[1].map((e) => [e.name, e]));
  assert.is(committed.get('d/sub/.wh..wh..opq')?.type, 'file');
  assert.is(committed.get('d/null')?.type, 'character-device');
  assert.equal(committed.get('d/capfile')?.xattrs, { 'security.capability': 'AQAAAgAgAAAAAAAAAAAAAAAAAAA=' });
  assert.is(committed.get(`d/${LONG}/deep/file`)?.size, 5);
  await both(['rm', 'c1']);
});

test('a thin image through the managed plugin: loads, runs from the THIN_ROOT setting, commits on top', async () => {
  // the repository's trees under THIN_ROOT, written from this side of the propagated mount
  const thinRoot = join(ours.propagated, THIN_ROOT.slice(MANAGED_PROPAGATED_MOUNT.length + 1));
  mkdirSync(thinRoot, { recursive: true });
  const rootfs = join(scratch.root, 'thin-rootfs');
  writeBusyboxRoot(rootfs, ['sh', 'cat', 'echo']);
  writeFileSync(join(rootfs, 'etc', 'motd'), 'from the repository\n');
  const tar = join(scratch.root, 'thin-base.tar');
  const t = spawnSync('tar', ['--numeric-owner', '-C', rootfs, '-cf', tar, '.'], { encoding: 'utf8' });
  if (t.status !== 0) throw new Error(`tar: ${t.stderr}`);
  const work = await Overlay2Driver.init(join(scratch.root, 'work'));
  await work.create('base');
  await work.applyDiff('base', null, tar);
  const made = await makeThinImage(work, 'base', { repo: REPO, root: thinRoot, origin: 'e2e/busybox' });
  const pub = await Overlay2Driver.init(join(scratch.root, 'pub'), [`thin.root=${thinRoot}`]);
  await pub.create('thin');
  await pub.applyDiff('thin', null, made.tar);
  const imageTar = join(scratch.root, 'thin-image.tar');
  await pub.save('thin', imageTar, { tags: ['thin:1'] });

  const loaded = (await ours.docker(['load', '-i', imageTar])).out;
  const ref = /Loaded image(?: ID)?: (\S+)/.exec(loaded)?.[1];
  assert.ok(ref, loaded);
  await ours.docker(['tag', ref!, 'thin:1']);
  const inspect = JSON.parse((await ours.docker(['image', 'inspect', 'thin:1'])).out)[0];
  assert.equal(inspect.RootFS.Layers, [`sha256:${createHash('sha256').update(made.tar).digest('hex')}`]);
  assert.is((await ours.docker(['run', '--rm', 'thin:1', 'cat', '/etc/motd'])).out, 'from the repository\n');
  await ours.docker(['run', '--name', 't1', 'thin:1', 'sh', '-c', 'echo changed > /etc/motd']);
  await ours.docker(['commit', 't1', 'thin:2']);
  assert.is((await ours.docker(['run', '--rm', 'thin:2', 'cat', '/etc/motd'])).out, 'changed\n');
  await ours.docker(['rm', 't1']);
  await ours.docker(['rmi', 'thin:2', 'thin:1']);
  assert.equal(readdirSync(join(thinRoot, REPO, 'layers')).length, 1, 'the repository is untouched');
});

test('docker plugin disable and rm (the daemon back on built-in overlay2): no mount, no plugin left', async () => {
  await ours.stop();
  const { pluginId, root } = ours;
  const pluginDir = join(ours.dataRoot, 'plugins', pluginId);
  // the plugin's own mounts and its layers' went with it when dockerd stopped it
  assert.equal(mountsUnder(ours.propagated).filter((m) => m !== ours.propagated), []);
  // the daemon must leave the plugin driver before the plugin can be disabled
  const back = await startDockerd(root, 'overlay2', { experimental: true });
  try {
    await back.docker(['plugin', 'disable', `${name}:latest`]);
    await back.docker(['plugin', 'rm', `${name}:latest`]);
    assert.is((await back.docker(['plugin', 'ls', '--quiet'])).out, '');
  } finally {
    await back.stop();
  }
  assert.not.ok(existsSync(pluginDir), 'docker plugin rm deletes the plugin directory, its propagated mount included');
  assert.equal(mountsUnder(root), []);
});

test.run();
