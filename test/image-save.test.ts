// driver.save: a loaded image goes out with exactly its layers' original bytes (GNU and POSIX tars
// from GNU tar, byte for byte, so the same diffIDs and config digest), in archives skopeo and umoci
// read; a layer changed since fails loudly and leaves no file; a layer made here goes out as the
// driver's diff with its diffID computed then.
import * as assert from 'uvu/assert';
import { test as uvuTest } from 'uvu';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { Overlay2Driver } from '../src/driver.js';
import { Overlay2Error } from '../src/errors.js';
import { mountTest, testIf, tempDir, removeTree } from './support/env.js';
import { buildOciLayout, buildLayer, describeTree, expectedTree, hasSkopeo, hasUmoci, sha256, skopeo, type LayerSpec, type BuiltImage } from './image-fixtures.js';

const test = mountTest(uvuTest);
const withSkopeo = testIf(hasSkopeo, 'skopeo save tests', 'no skopeo (apt-get install skopeo)', test);
// A reachable Docker daemon (DOCKER_HOST or the default socket; the tests load only tagged images
// under ovl-test/ and remove them).
const hasDocker = spawnSync('docker', ['info'], { stdio: 'ignore', timeout: 10000 }).status === 0;
const withDocker = testIf(hasDocker, 'docker load tests', 'no reachable Docker daemon (set DOCKER_HOST to a private dockerd)', test);
const withUmoci = testIf(hasUmoci && hasSkopeo, 'umoci save tests', 'no umoci/skopeo (apt-get install umoci skopeo)', test);

const SPECS: LayerSpec[] = [
  // GNU format: long names (././@LongLink), a hard link, sparse-free big file
  { files: { 'etc/': '', 'etc/os-release': 'ID=test\n', [`deep/${'n'.repeat(120)}/file`]: 'long name', 'big': 'b'.repeat(300000), 'empty': '' }, format: 'gnu', compress: 'gzip' },
  // POSIX (pax) format, uncompressed, with a whiteout
  { files: { 'etc/os-release': 'ID=second\n', 'srv/x': 'x', [`p/${'q'.repeat(150)}`]: 'pax name' }, remove: ['empty'], format: 'posix', compress: 'none' },
];

let base = '';
let img: BuiltImage;
let driver: Overlay2Driver;
let top = '';

test.before(async () => {
  base = tempDir('ovl2-image-save-');
  img = buildOciLayout(join(base, 'scratch'), join(base, 'oci'), SPECS);
  driver = await Overlay2Driver.init(join(base, 'home'));
  [{ top }] = await driver.load(img.layout);
});

test.after(() => removeTree(base));

function untar(file: string, dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  execFileSync('tar', ['-xf', file, '-C', dir]);
}

test('docker format: each layer.tar is byte-identical to the tar GNU tar wrote; config digest kept', async () => {
  const out = join(base, 'saved-docker.tar');
  const r = await driver.save(top, out, { tags: ['ovl/test:1'] });
  assert.equal(r.diffIds, img.diffIds);
  assert.is(r.configDigest, img.configDigest);
  const dir = join(base, 'saved-docker');
  untar(out, dir);
  const manifest = JSON.parse(fs.readFileSync(join(dir, 'manifest.json'), 'utf8'));
  assert.equal(manifest[0].RepoTags, ['ovl/test:1']);
  assert.is(sha256(fs.readFileSync(join(dir, manifest[0].Config))), img.configDigest);
  manifest[0].Layers.forEach((name: string, i: number) => {
    const bytes = fs.readFileSync(join(dir, name));
    assert.ok(bytes.equals(img.layers[i].tar), `layer ${i} byte-identical`);
  });
  // and it loads back into another home to the same layers
  const d2 = await Overlay2Driver.init(join(base, 'home2'));
  const [again] = await d2.load(out);
  assert.is(again.top, top);
  assert.is(again.configDigest, img.configDigest);
});

withSkopeo('skopeo reads both formats: docker-archive layers and oci-archive layers are the diffIDs', async () => {
  const dockerOut = join(base, 'skopeo-docker.tar');
  const ociOut = join(base, 'skopeo-oci.tar');
  await driver.save(top, dockerOut, { tags: ['ovl/test:1'] });
  await driver.save(top, ociOut, { format: 'oci', tags: ['t1'] });
  const d = JSON.parse(skopeo('inspect', `docker-archive:${dockerOut}`));
  assert.equal(d.Layers, img.diffIds);
  const o = JSON.parse(skopeo('inspect', `oci-archive:${ociOut}:t1`));
  assert.equal(o.Layers, img.diffIds);
  const cfg = JSON.parse(skopeo('inspect', '--config', `oci-archive:${ociOut}:t1`));
  assert.equal(cfg.rootfs.diff_ids, img.diffIds);
  // skopeo copies it into a layout and checks every digest on the way
  skopeo('copy', `docker-archive:${dockerOut}`, `oci:${join(base, 'skopeo-copied')}:c`);
});

withUmoci('umoci unpacks the oci format to the tree the layers describe', async () => {
  const out = join(base, 'umoci-src.tar');
  await driver.save(top, out, { format: 'oci', tags: ['u'] });
  const layout = join(base, 'umoci-layout');
  untar(out, layout);
  const bundle = join(base, 'umoci-bundle');
  execFileSync('umoci', ['unpack', '--image', `${layout}:u`, bundle]);
  const expected = join(base, 'expected');
  expectedTree(expected, SPECS);
  assert.equal(describeTree(join(bundle, 'rootfs')), describeTree(expected));
});

test('a layer changed since it was applied: ERR_LAYER_CHANGED, no output file', async () => {
  const d = await Overlay2Driver.init(join(base, 'home-changed'));
  const [r] = await d.load(img.layout);
  const out = join(base, 'changed.tar');
  // same size, other bytes
  const f = join(d.home, r.layers[0], 'diff', 'etc/os-release');
  fs.writeFileSync(f, 'ID=TEST\n');
  const e = await d.save(r.top, out).catch((x: unknown) => x);
  assert.instance(e, Overlay2Error);
  assert.is((e as Overlay2Error).code, 'ERR_LAYER_CHANGED');
  assert.not.ok(fs.existsSync(out));
  assert.equal(fs.readdirSync(base).filter((n) => n.includes('.tmp-')), []);
  // other size
  fs.writeFileSync(f, 'ID=test, longer\n');
  const e2 = await d.save(r.top, out).catch((x: unknown) => x);
  assert.is((e2 as Overlay2Error).code, 'ERR_LAYER_CHANGED');
  assert.match((e2 as Error).message, /etc\/os-release/);
  assert.not.ok(fs.existsSync(out));
});

withSkopeo('a layer made here (no tar-split) goes out as the driver diff, with its diffID', async () => {
  const d = await Overlay2Driver.init(join(base, 'home-local'));
  await d.create('local-base');
  fs.writeFileSync(join(d.home, 'local-base', 'diff', 'hello'), 'hello\n');
  await d.create('local-top', 'local-base');
  fs.mkdirSync(join(d.home, 'local-top', 'diff', 'dir'));
  fs.writeFileSync(join(d.home, 'local-top', 'diff', 'dir', 'f'), 'f\n');
  const out = join(base, 'local.tar');
  const r = await d.save('local-top', out, { format: 'oci', tags: ['l'] });
  const want = [];
  for (const [id, parent] of [['local-base', null], ['local-top', 'local-base']] as const) {
    const chunks: Buffer[] = [];
    for await (const c of await d.diff(id, parent)) chunks.push(c as Buffer);
    want.push(sha256(Buffer.concat(chunks)));
  }
  assert.equal(r.diffIds, want);
  const o = JSON.parse(skopeo('inspect', `oci-archive:${out}:l`));
  assert.equal(o.Layers, want);
  // loaded back: the same content
  const d2 = await Overlay2Driver.init(join(base, 'home-local2'));
  const [back] = await d2.load(out);
  const root = await d2.get(back.top);
  try {
    assert.is(fs.readFileSync(join(root, 'hello'), 'utf8'), 'hello\n');
    assert.is(fs.readFileSync(join(root, 'dir/f'), 'utf8'), 'f\n');
  } finally {
    await d2.put(back.top);
  }
});

test('applyDiff of a GNU and a POSIX tar records both byte for byte: save gives them back', async () => {
  const d = await Overlay2Driver.init(join(base, 'home-apply'));
  for (const [i, fmt] of (['gnu', 'posix'] as const).entries()) {
    const id = `l${i}`;
    await d.create(id);
    await d.applyDiff(id, null, img.layers[fmt === 'gnu' ? 0 : 1].blob);
    const out = join(base, `apply-${fmt}.tar`);
    const r = await d.save(id, out);
    const dir = join(base, `apply-${fmt}`);
    untar(out, dir);
    const manifest = JSON.parse(fs.readFileSync(join(dir, 'manifest.json'), 'utf8'));
    assert.ok(fs.readFileSync(join(dir, manifest[0].Layers[0])).equals(img.layers[fmt === 'gnu' ? 0 : 1].tar), fmt);
    assert.equal(r.diffIds, [img.diffIds[fmt === 'gnu' ? 0 : 1]]);
  }
});

test('applyDiff with layerRecord: false keeps no tar-split or record; save exports that layer from diff/', async () => {
  const home = join(base, 'home-norecord');
  const d = await Overlay2Driver.init(home);
  await d.create('n');
  await d.applyDiff('n', null, img.layers[0].blob, { layerRecord: false });
  assert.equal(fs.readdirSync(join(home, 'n')).filter((f) => f.startsWith('ovl2-')), []);
  assert.is(fs.readFileSync(join(home, 'n', 'diff', 'etc', 'os-release'), 'utf8'), 'ID=test\n');
  const out = join(base, 'norecord.tar');
  const r = await d.save('n', out);
  const dir = join(base, 'norecord');
  untar(out, dir);
  const manifest = JSON.parse(fs.readFileSync(join(dir, 'manifest.json'), 'utf8'));
  const layer = fs.readFileSync(join(dir, manifest[0].Layers[0]));
  assert.equal(r.diffIds, [sha256(layer)]);
  untar(join(dir, manifest[0].Layers[0]), join(dir, 'rootfs'));
  assert.is(fs.readFileSync(join(dir, 'rootfs', 'big'), 'utf8'), 'b'.repeat(300000));
});

test('a layer of 3000 files (a tar-split of several gzip members, records split across chunks) round-trips', async () => {
  const files: Record<string, string> = {};
  for (let i = 0; i < 3000; i++) files[`d${i % 30}/${'f'.repeat(i % 90)}${i}`] = 'c'.repeat(i % 700);
  const layer = buildLayer(join(base, 'many'), { files, format: 'posix', compress: 'none' });
  const d = await Overlay2Driver.init(join(base, 'home-many'));
  await d.create('many');
  await d.applyDiff('many', null, layer.tar);
  assert.ok(fs.statSync(join(d.home, 'many', 'ovl2-tar-split.gz')).size > 0);
  const out = join(base, 'many.tar');
  const r = await d.save('many', out);
  assert.equal(r.diffIds, [layer.diffId]);
  const dir = join(base, 'many-out');
  untar(out, dir);
  assert.ok(fs.readFileSync(join(dir, `${layer.diffId.slice(7)}/layer.tar`)).equals(layer.tar));
});

withDocker('docker load takes our docker-format save: same image ID, same diffIDs', async () => {
  const out = join(base, 'for-docker.tar');
  const tag = `ovl-test/save:${process.pid}`;
  const r = await driver.save(top, out, { tags: [tag] });
  execFileSync('docker', ['load', '-i', out], { stdio: 'ignore' });
  try {
    const [id, layers] = execFileSync('docker', ['image', 'inspect', tag, '--format', '{{.Id}} {{json .RootFS.Layers}}'], { encoding: 'utf8' }).trim().split(' ');
    assert.is(id, r.configDigest);
    assert.equal(JSON.parse(layers), img.diffIds);
  } finally {
    spawnSync('docker', ['rmi', tag], { stdio: 'ignore' });
  }
});

test.run();
