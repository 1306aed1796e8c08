// Thin images through a real dockerd 20.10 on the plugin: a busybox image published with `thin make`
// (its tree under the thin root, a plain directory standing in for CVMFS), saved as a one-layer image
// whose layer is the manifest, `docker load`ed, `docker run` sees the repository's files, `docker
// commit` of a container on it makes an ordinary layer on top that runs and saves.
import * as assert from 'uvu/assert';
import { test as uvuTest } from 'uvu';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { Overlay2Driver } from '../src/driver.js';
import { makeThinImage } from '../src/thin/publish.js';
import { testIf, canMountOverlay, whyNotMount, scratchRoot } from './support/env.js';
import { CLI_BIN } from './support/cli.js';
import {
  whyNoDocker, startDockerd, startPluginProcess, uniquePluginName, writeBusyboxRoot,
  type PrivateDockerd, type PluginProcess,
} from '../bench/lib/dockerd.js';

const why = whyNotMount || whyNoDocker();
const test = testIf(canMountOverlay && why === '', 'thin images through dockerd', why, uvuTest);

let scratch: ReturnType<typeof scratchRoot>;
let plugin: PluginProcess;
let dockerd: PrivateDockerd;
let thinRoot = '';
let imageTar = '';
let thinLayerTar: Buffer;

test.before(async () => {
  scratch = scratchRoot('ovl2-thindk-');
  thinRoot = join(scratch.root, 'cvmfs');
  mkdirSync(thinRoot);
  // the image, built as ordinary layers in a work home, published as thin trees + a manifest
  const rootfs = join(scratch.root, 'rootfs');
  writeBusyboxRoot(rootfs, ['sh', 'cat', 'ls', 'echo']);
  writeFileSync(join(rootfs, 'etc', 'motd'), 'from the repository\n');
  const work = await Overlay2Driver.init(join(scratch.root, 'work'));
  const baseTar = join(scratch.root, 'base.tar');
  const t = spawnSync('tar', ['--numeric-owner', '-C', rootfs, '-cf', baseTar, '.'], { encoding: 'utf8' });
  if (t.status !== 0) throw new Error(`tar: ${t.stderr}`);
  await work.create('base');
  await work.applyDiff('base', null, baseTar);
  const made = await makeThinImage(work, 'base', { repo: 'images.example.org', root: thinRoot, origin: 'e2e/busybox' });
  thinLayerTar = made.tar;
  // a one-layer image whose layer is the manifest tar, written by our own save
  const pub = await Overlay2Driver.init(join(scratch.root, 'pub'), [`thin.root=${thinRoot}`]);
  await pub.create('thin');
  await pub.applyDiff('thin', null, made.tar);
  imageTar = join(scratch.root, 'thin-image.tar');
  await pub.save('thin', imageTar, { tags: ['thin:1'] });
  const name = uniquePluginName('ovl2-thin');
  plugin = await startPluginProcess(CLI_BIN, name);
  dockerd = await startDockerd(join(scratch.root, 'd'), name, { experimental: true, storageOpts: [`thin.root=${thinRoot}`] });
});

test.after(async () => {
  await dockerd?.stop();
  await plugin?.stop();
  scratch?.remove();
});

test('docker load of a thin image; docker run sees the repository\'s files', async () => {
  const loaded = (await dockerd.docker(['load', '-i', imageTar])).out;
  const ref = /Loaded image(?: ID)?: (\S+)/.exec(loaded)?.[1];
  assert.ok(ref, loaded);
  await dockerd.docker(['tag', ref!, 'thin:1']);
  const out = (await dockerd.docker(['run', '--rm', 'thin:1', 'cat', '/etc/motd'])).out;
  assert.is(out, 'from the repository\n');
  // the image's only layer is the manifest: its diffID is the thin tar's digest
  const inspect = JSON.parse((await dockerd.docker(['image', 'inspect', 'thin:1'])).out)[0];
  assert.equal(inspect.RootFS.Layers, [`sha256:${createHash('sha256').update(thinLayerTar).digest('hex')}`]);
});

test('docker commit of a container on the thin image: an ordinary layer on top, it runs and saves', async () => {
  await dockerd.docker(['run', '--name', 'c1', 'thin:1', 'sh', '-c', 'echo changed > /etc/motd && echo new > /new-file']);
  const diff = (await dockerd.docker(['diff', 'c1'])).out;
  assert.match(diff, /C \/etc\/motd/);
  assert.match(diff, /A \/new-file/);
  await dockerd.docker(['commit', 'c1', 'thin:2']);
  assert.is((await dockerd.docker(['run', '--rm', 'thin:2', 'cat', '/etc/motd', '/new-file'])).out, 'changed\nnew\n');
  const saved = join(dockerd.root, 'thin-2.tar');
  await dockerd.docker(['save', 'thin:2', '-o', saved]);
  const dir = `${saved}.d`;
  mkdirSync(dir);
  spawnSync('tar', ['-C', dir, '-xf', saved]);
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Array<{ Layers: string[] }>;
  assert.is(manifest[0].Layers.length, 2);
  assert.ok(readFileSync(join(dir, manifest[0].Layers[0])).equals(thinLayerTar), 'the thin layer saves as the bytes it was loaded from');
  await dockerd.docker(['rm', 'c1']);
  await dockerd.docker(['rmi', 'thin:2', 'thin:1']);
  // nothing of the thin image left in l/ (its links went with it), the repository untouched
  assert.equal(readdirSync(join(dockerd.dataRoot, plugin.name, 'l')), []);
  assert.ok(readdirSync(join(thinRoot, 'images.example.org', 'layers')).length === 1);
});

test.run();
