// Publishing thin images: make -> apply -> mount gives the same tree as the original chain (deletions
// stay deleted: the trees hold overlay whiteouts, not .wh. files), the tar is reproducible, commit puts
// the change on top; and the `thin` CLI (make, commit, show, check) around it.
import * as assert from 'uvu/assert';
import { test as uvuTest } from 'uvu';
import { existsSync, lstatSync, readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { Overlay2Driver } from '../src/driver.js';
import { loadShim } from '../src/native/shim.js';
import { makeThinImage, commitThinLayer } from '../src/thin/publish.js';
import { parseManifest } from '../src/thin/manifest.js';
import { mountTest, tempDir, removeTree } from './support/env.js';
import { CLI_BIN } from './support/cli.js';
import { dir, file, symlink, tarOf } from './apply-tar.js';
import { snapshot } from './thin-fixtures.js';

const test = mountTest(uvuTest);
const cli = CLI_BIN;
let base = '';
let homeA = '';
let homeB = '';
let root = '';
let a: Overlay2Driver;
let b: Overlay2Driver;

test.before(async () => {
  base = tempDir('ovl2-thinpub-');
  homeA = join(base, 'a');
  homeB = join(base, 'b');
  root = join(base, 'cvmfs-root');
  mkdirSync(root);
  a = await Overlay2Driver.init(homeA);
  b = await Overlay2Driver.init(homeB, [`thin.root=${root}`]);
  // a three-layer image with Docker's (AUFS) whiteouts and an opaque dir
  await a.create('L1');
  await a.applyDiff('L1', null, tarOf(dir('etc/'), file('etc/os-release', 'one\n'), file('etc/passwd', 'root\n'),
    dir('var/'), dir('var/cache/'), file('var/cache/a', 'a\n'), file('var/cache/b', 'b\n'), file('bin/sh', 'sh', { mode: 0o755 })));
  await a.create('L2', 'L1');
  await a.applyDiff('L2', 'L1', tarOf(file('etc/.wh.passwd'), dir('var/cache/'), file('var/cache/.wh..wh..opq'), file('var/cache/c', 'c\n')));
  await a.create('L3', 'L2');
  await a.applyDiff('L3', 'L2', tarOf(file('etc/os-release', 'three\n'), symlink('bin/bash', 'sh')));
});
test.after(async () => {
  await a?.cleanup();
  await b?.cleanup();
  removeTree(base);
});

async function view(d: Overlay2Driver, parent: string, id: string): Promise<Record<string, string>> {
  await d.createReadWrite(id, parent);
  try {
    return snapshot(await d.get(id));
  } finally {
    await d.put(id);
    await d.remove(id);
  }
}

test('make -> apply -> mount: the same tree as the chain; whiteouts stored as overlay reads them', async () => {
  const r = await makeThinImage(a, 'L3', { repo: 'images.example.org', root, origin: 'test/L3' });
  assert.is(r.layers.length, 3);
  assert.is(r.written.length, 3);
  const m = parseManifest(r.manifest, 'thin.json', 'made');
  assert.equal(m.layers, r.layers);
  // L2's tree: passwd deleted as a 0/0 char device, cache opaque, no .wh. names
  const l2 = join(root, r.layers[1].repo, r.layers[1].path);
  assert.ok(lstatSync(join(l2, 'etc', 'passwd')).isCharacterDevice());
  assert.is(lstatSync(join(l2, 'etc', 'passwd')).rdev, 0);
  assert.is(loadShim().lgetxattr(join(l2, 'var', 'cache'), 'trusted.overlay.opaque')?.toString(), 'y');
  assert.equal(readdirSync(l2, { recursive: true }).filter((n) => String(n).includes('.wh.')), []);
  // the tree names are the layers' diffIDs (recorded at apply)
  const { readLayerRecord } = await import('../src/image/layer-record.js');
  assert.is(r.layers[0].digest, readLayerRecord(a.layerDir('L1'))!.diffId);

  const original = await view(a, 'L3', 'orig-view');
  assert.is(original['/etc/passwd'], undefined);
  assert.is(original['/var/cache/a'], undefined);
  await b.create('thinL3');
  await b.applyDiff('thinL3', null, r.tar);
  assert.equal(await view(b, 'thinL3', 'thin-view'), original);
});

test('make is reproducible: the same bytes again, every tree reused', async () => {
  const one = await makeThinImage(a, 'L3', { repo: 'images.example.org', root, origin: 'test/L3' });
  const two = await makeThinImage(a, 'L3', { repo: 'images.example.org', root, origin: 'test/L3' });
  assert.ok(one.tar.equals(two.tar));
  assert.equal(two.written, []);
  assert.is(readdirSync(join(root, 'images.example.org', 'layers')).filter((n) => n.startsWith('.')).length, 0);
});

test('commit puts the container\'s change on top of the thin image (the fork buried it at the bottom)', async () => {
  await b.createReadWrite('ctr', 'thinL3');
  const merged = await b.get('ctr');
  writeFileSync(join(merged, 'etc', 'os-release'), 'committed\n');
  rmSync(join(merged, 'bin', 'sh'));
  writeFileSync(join(merged, 'new-file'), 'n\n');
  await b.put('ctr');
  const r = await commitThinLayer(b, 'ctr', 'thinL3', { repo: 'images.example.org' });
  assert.is(r.layers.length, 4);
  await b.create('thin-committed');
  await b.applyDiff('thin-committed', null, r.tar);
  const v = await view(b, 'thin-committed', 'committed-view');
  assert.is(v['/etc/os-release'], 'committed\n');
  assert.is(v['/bin/sh'], undefined);
  assert.is(v['/new-file'], 'n\n');
  assert.is(v['/bin/bash'], '-> sh');
});

function run(home: string, ...args: string[]) {
  return spawnSync(process.execPath, [cli, '--home', home, ...args], { encoding: 'utf8' });
}

test('CLI: thin make writes the tar, thin show/check describe it, bad use is a usage error', async () => {
  const out = join(base, 'cli-thin.tar');
  const made = run(homeA, 'thin', 'make', 'L2', '--repo', 'cli.example.org', '--root', root, '-o', out);
  assert.is(made.status, 0, made.stderr);
  assert.is(parseManifest(made.stdout, 'thin.json', 'stdout').layers.length, 2);
  assert.ok(readFileSync(out).length % 512 === 0);
  await b.create('cli-thin');
  await b.applyDiff('cli-thin', null, out);
  await b.create('cli-init', 'cli-thin');
  const show = run(homeB, '-o', `thin.root=${root}`, 'thin', 'show', 'cli-init', '--json');
  assert.is(show.status, 0, show.stderr);
  const info = JSON.parse(show.stdout);
  assert.is(info.thinLayer, 'cli-thin');
  assert.is(info.layers.length, 2);
  const check = run(homeB, '-o', `thin.root=${root}`, 'thin', 'check', 'cli-init');
  assert.is(check.status, 0, check.stderr);
  assert.is(check.stdout.trim().split('\n').length, 2);
  // the home recorded its root at the thin apply: a call without thin.root checks against it too
  assert.is(readFileSync(join(homeB, '.thin-root'), 'utf8').trim(), root);
  const recorded = run(homeB, 'thin', 'check', 'cli-init', '--json');
  assert.is(recorded.status, 0, recorded.stderr);
  assert.is(JSON.parse(recorded.stdout).length, 2);
  // a tree gone: check names it and fails
  const m = parseManifest(made.stdout, 'thin.json', 'stdout');
  const tree = join(root, m.layers[0].repo, m.layers[0].path);
  renameSync(tree, tree + '.away');
  try {
    const bad = run(homeB, '-o', `thin.root=${root}`, 'thin', 'check', 'cli-init');
    assert.is(bad.status, 1);
    assert.match(bad.stdout, /FAIL .*ERR_THIN_LAYER_MISSING/);
  } finally {
    renameSync(tree + '.away', tree);
  }
  assert.is(run(homeB, 'thin', 'frobnicate', 'x').status, 2);
  assert.is(run(homeA, 'thin', 'make', 'L2', '-o', out).status, 2); // no --repo
  const notThin = run(homeA, 'thin', 'show', 'L1');
  assert.is(notThin.status, 1);
  assert.match(notThin.stderr, /not a thin layer/);
  assert.is(existsSync(join(homeA, 'cvmfs')), false);
});

test.run();
