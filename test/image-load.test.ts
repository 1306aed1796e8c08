// driver.load on images made by real tools: an OCI layout (GNU tar layers, gzip/zstd/plain), the
// same image as skopeo's docker-archive and oci-archive, a umoci-repacked image. The top layer,
// mounted, must equal the tree the layers describe; chain IDs as Docker computes them; a second
// load (or an image sharing layers) reuses layers; a bad digest or an abort leaves nothing behind.
import * as assert from 'uvu/assert';
import { test as uvuTest } from 'uvu';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { Overlay2Driver } from '../src/driver.js';
import { Overlay2Error } from '../src/errors.js';
import { chainIds } from '../src/image/digest.js';
import { mountTest, testIf, tempDir, removeTree } from './support/env.js';
import { buildOciLayout, goArch, describeTree, expectedTree, hasSkopeo, hasUmoci, hasZstd, sha256, skopeo, type LayerSpec, type BuiltImage } from './image-fixtures.js';

const test = mountTest(uvuTest);
const withSkopeo = testIf(hasSkopeo, 'skopeo image tests', 'no skopeo (apt-get install skopeo)', test);
const withUmoci = testIf(hasUmoci, 'umoci image tests', 'no umoci (apt-get install umoci)', test);

const SPECS: LayerSpec[] = [
  { files: { 'etc/': '', 'etc/hostname': 'base\n', 'bin/sh': '#!/bin/true\n', 'lib/': '', 'lib/a': 'a'.repeat(5000), 'tmp/gone': 'x' }, compress: 'gzip' },
  { files: { 'etc/hostname': 'second\n', 'usr/share/doc/readme': 'docs', 'bin/link': '->sh' }, remove: ['tmp/gone'], compress: hasZstd ? 'zstd' : 'gzip' },
  { files: { 'srv/data.bin': 'z'.repeat(70000) }, compress: 'none', format: 'posix' },
];

let base = '';
let img: BuiltImage;
let expected = '';

test.before(() => {
  base = tempDir('ovl2-image-load-');
  img = buildOciLayout(join(base, 'scratch'), join(base, 'oci'), SPECS);
  expected = join(base, 'expected');
  expectedTree(expected, SPECS);
});

test.after(() => removeTree(base));

async function freshDriver(name: string): Promise<Overlay2Driver> {
  return Overlay2Driver.init(join(base, name));
}

async function assertTopMatches(d: Overlay2Driver, top: string): Promise<void> {
  const root = await d.get(top);
  try {
    assert.equal(describeTree(root), describeTree(expected));
  } finally {
    await d.put(top);
  }
}

test('an OCI layout directory loads: chain IDs, config digest, and the mounted top equals the source tree', async () => {
  const d = await freshDriver('home-oci');
  const [r] = await d.load(img.layout);
  const want = chainIds(img.diffIds).map((c) => c.slice(7));
  assert.equal(r.layers, want);
  assert.is(r.top, want[2]);
  assert.is(r.configDigest, img.configDigest);
  assert.equal(r.diffIds, img.diffIds);
  assert.is(r.reused, 0);
  assert.equal(r.names, ['t']);
  // chain ID by hand: sha256("<chain0> <diff1>")
  assert.is(want[1], sha256(Buffer.from(`${img.diffIds[0]} ${img.diffIds[1]}`)).slice(7));
  assert.is(await d.parentOf(want[2]), want[1]);
  await assertTopMatches(d, r.top);

  // again: every layer reused, untouched
  const inode = fs.statSync(join(d.home, want[0], 'diff')).ino;
  const [again] = await d.load(img.layout);
  assert.is(again.reused, 3);
  assert.is(fs.statSync(join(d.home, want[0], 'diff')).ino, inode);
  await assertTopMatches(d, again.top);
});

test('an image sharing the base layers reuses them; a half-loaded layer is replaced', async () => {
  const d = await freshDriver('home-share');
  await d.load(img.layout);
  const other = buildOciLayout(join(base, 'scratch2'), join(base, 'oci2'), [SPECS[0], SPECS[1], { files: { 'other/file': 'other' }, compress: 'gzip' }]);
  const [r] = await d.load(other.layout);
  assert.is(r.reused, 2);
  assert.is(r.layers[0], chainIds(img.diffIds)[0].slice(7));

  // a layer dir with no record (a load interrupted mid-layer) is not trusted
  const top = chainIds(img.diffIds)[2].slice(7);
  fs.rmSync(join(d.home, top, 'ovl2-layer.json'));
  const [r2] = await d.load(img.layout);
  assert.is(r2.reused, 2);
  await assertTopMatches(d, r2.top);
});

withSkopeo('skopeo docker-archive and oci-archive of the same image load to the same layers', async () => {
  // docker images cannot carry zstd layers: this image is gzip and plain only
  const img = buildOciLayout(join(base, 'scratch-gz'), join(base, 'oci-gz'), SPECS.map((s) => ({ ...s, compress: s.compress === 'zstd' ? 'gzip' : s.compress })));
  const dockerTar = join(base, 'img-docker.tar');
  const ociTar = join(base, 'img-oci.tar');
  skopeo('copy', `oci:${img.layout}:t`, `docker-archive:${dockerTar}:example/img:1`);
  skopeo('copy', `oci:${img.layout}:t`, `oci-archive:${ociTar}:t`);
  for (const [name, file] of [['docker', dockerTar], ['oci', ociTar]]) {
    const d = await freshDriver(`home-skopeo-${name}`);
    const [r] = await d.load(file);
    assert.equal(r.diffIds, img.diffIds, name);
    assert.is(r.top, chainIds(img.diffIds)[2].slice(7), name);
    if (name === 'docker') assert.equal(r.names, ['docker.io/example/img:1']);
    await assertTopMatches(d, r.top);
  }
  // a gzip-compressed archive (docker save | gzip) and a stream
  const gz = join(base, 'img-docker.tar.gz');
  fs.writeFileSync(gz, execFileSync('gzip', ['-c', dockerTar], { maxBuffer: 1 << 28 }));
  const d = await freshDriver('home-skopeo-gz');
  const [r] = await d.load(gz);
  assert.is(r.top, chainIds(img.diffIds)[2].slice(7));
  const [s] = await d.load(fs.createReadStream(dockerTar));
  assert.is(s.reused, 3);
  assert.equal(fs.readdirSync(join(d.home, '.partial')).filter((n) => n.startsWith('load-')), []);
});

withUmoci('an image repacked by umoci loads and mounts as umoci unpacks it', async () => {
  const layout = join(base, 'umoci');
  execFileSync('umoci', ['init', '--layout', layout]);
  execFileSync('umoci', ['new', '--image', `${layout}:u`]);
  const bundle = join(base, 'umoci-bundle');
  execFileSync('umoci', ['unpack', '--image', `${layout}:u`, bundle]);
  fs.mkdirSync(join(bundle, 'rootfs/opt/app'), { recursive: true });
  fs.writeFileSync(join(bundle, 'rootfs/opt/app/run'), 'run\n');
  fs.symlinkSync('run', join(bundle, 'rootfs/opt/app/start'));
  execFileSync('umoci', ['repack', '--image', `${layout}:u`, bundle]);
  const d = await freshDriver('home-umoci');
  const [r] = await d.load(layout);
  const root = await d.get(r.top);
  try {
    assert.equal(describeTree(join(root, 'opt')), describeTree(join(bundle, 'rootfs/opt')));
  } finally {
    await d.put(r.top);
  }
});

test('Docker 25+ save layout (manifest.json naming blobs/sha256/ beside index.json) and a multi-platform index', async () => {
  // docker save of Docker 25+: an OCI layout plus manifest.json whose Config/Layers are blob paths
  const d25 = join(base, 'docker25');
  fs.cpSync(img.layout, d25, { recursive: true });
  const idx = JSON.parse(fs.readFileSync(join(d25, 'index.json'), 'utf8'));
  const man = JSON.parse(fs.readFileSync(join(d25, 'blobs/sha256', idx.manifests[0].digest.slice(7)), 'utf8'));
  fs.writeFileSync(join(d25, 'manifest.json'), JSON.stringify([{
    Config: `blobs/sha256/${man.config.digest.slice(7)}`, RepoTags: ['d25:latest'],
    Layers: man.layers.map((l: { digest: string }) => `blobs/sha256/${l.digest.slice(7)}`),
  }]));
  const tarFile = join(base, 'docker25.tar');
  // blobs first, manifest.json last, as Docker writes it
  execFileSync('tar', ['-C', d25, '-cf', tarFile, 'blobs', 'oci-layout', 'index.json', 'manifest.json']);
  const d = await freshDriver('home-d25');
  const [r] = await d.load(tarFile);
  assert.equal(r.names, ['d25:latest']);
  assert.is(r.configDigest, img.configDigest);
  await assertTopMatches(d, r.top);

  // a nested index: this machine's platform is picked among others
  const multi = join(base, 'multi');
  fs.cpSync(img.layout, multi, { recursive: true });
  const inner = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      { ...idx.manifests[0], digest: sha256(Buffer.from('elsewhere')), annotations: undefined, platform: { os: 'linux', architecture: 'elsewhere' } },
      { ...idx.manifests[0], annotations: undefined, platform: { os: 'linux', architecture: goArch() } },
    ],
  }));
  const innerDigest = sha256(inner);
  fs.writeFileSync(join(multi, 'blobs/sha256', innerDigest.slice(7)), inner);
  fs.writeFileSync(join(multi, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{
    mediaType: 'application/vnd.oci.image.index.v1+json', digest: innerDigest, size: inner.length,
    annotations: { 'org.opencontainers.image.ref.name': 'm' } }] }));
  const [m] = await d.load(multi);
  assert.is(m.top, r.top);
  assert.is(m.reused, 3);
  assert.equal(m.names, ['m']);
});

async function assertNothingNew(d: Overlay2Driver, before: string[]): Promise<void> {
  assert.equal(await d.list(), before);
  for (const id of before) assert.equal(fs.readdirSync(join(d.home, id)).filter((n) => n.startsWith('.staging') || n.includes('.tmp-')), []);
}

test('a corrupt blob, a wrong diff_id or a wrong config digest: ERR_DIGEST_MISMATCH, no layer left', async () => {
  const d = await freshDriver('home-bad');
  // a layer that is already here stays
  await d.create('keep');
  const before = await d.list();

  // 1. one byte of the second layer's blob changed (its name still says the old digest)
  const bad1 = join(base, 'bad1');
  fs.cpSync(img.layout, bad1, { recursive: true });
  const blob = join(bad1, 'blobs/sha256', img.layers[2].digest.slice(7));
  const bytes = fs.readFileSync(blob);
  bytes[bytes.length - 700] ^= 1; // inside a file's content: the tar still parses
  fs.writeFileSync(blob, bytes);
  const e1 = await d.load(bad1).catch((e: unknown) => e);
  assert.instance(e1, Overlay2Error);
  assert.is((e1 as Overlay2Error).code, 'ERR_DIGEST_MISMATCH');
  assert.ok(!(e1 as Error).message.includes('\n'));
  await assertNothingNew(d, before);

  // 2. a config whose diff_ids do not match the layers (digests of config/manifest made right)
  const other = buildOciLayout(join(base, 'scratch-bad2'), join(base, 'bad2'), SPECS);
  const cfgPath = join(other.layout, 'blobs/sha256', other.configDigest.slice(7));
  const cfg = JSON.parse(fs.readFileSync(cfgPath, 'utf8'));
  cfg.rootfs.diff_ids[1] = sha256(Buffer.from('not it'));
  const cfgBytes = Buffer.from(JSON.stringify(cfg));
  const cfgDigest = sha256(cfgBytes);
  fs.writeFileSync(join(other.layout, 'blobs/sha256', cfgDigest.slice(7)), cfgBytes);
  const idx = JSON.parse(fs.readFileSync(join(other.layout, 'index.json'), 'utf8'));
  const manPath = join(other.layout, 'blobs/sha256', idx.manifests[0].digest.slice(7));
  const man = JSON.parse(fs.readFileSync(manPath, 'utf8'));
  man.config = { ...man.config, digest: cfgDigest, size: cfgBytes.length };
  const manBytes = Buffer.from(JSON.stringify(man));
  const manDigest = sha256(manBytes);
  fs.writeFileSync(join(other.layout, 'blobs/sha256', manDigest.slice(7)), manBytes);
  idx.manifests[0] = { ...idx.manifests[0], digest: manDigest, size: manBytes.length };
  fs.writeFileSync(join(other.layout, 'index.json'), JSON.stringify(idx));
  const e2 = await d.load(other.layout).catch((e: unknown) => e);
  assert.is((e2 as Overlay2Error).code, 'ERR_DIGEST_MISMATCH');
  assert.match((e2 as Error).message, /diff_ids/);
  await assertNothingNew(d, before);

  // 3. a config blob that is not its digest
  fs.writeFileSync(cfgPath, Buffer.concat([fs.readFileSync(cfgPath), Buffer.from(' ')]));
  const bad3 = buildOciLayout(join(base, 'scratch-bad3'), join(base, 'bad3'), SPECS);
  const cfg3 = join(bad3.layout, 'blobs/sha256', bad3.configDigest.slice(7));
  fs.writeFileSync(cfg3, Buffer.concat([fs.readFileSync(cfg3), Buffer.from(' ')]));
  const e3 = await d.load(bad3.layout).catch((e: unknown) => e);
  assert.is((e3 as Overlay2Error).code, 'ERR_DIGEST_MISMATCH');
  await assertNothingNew(d, before);
});

test('not an image: ERR_BAD_IMAGE; an aborted load leaves no new layer', async () => {
  const d = await freshDriver('home-abort');
  const empty = join(base, 'not-an-image');
  fs.mkdirSync(empty);
  const e = await d.load(empty).catch((x: unknown) => x);
  assert.is((e as Overlay2Error).code, 'ERR_BAD_IMAGE');

  const ac = new AbortController();
  let calls = 0;
  const e2 = await d.load(img.layout, {
    signal: ac.signal,
    onProgress: (p) => { if (++calls === 1 || p.bytes > img.layers[0].blob.length) ac.abort(); },
  }).catch((x: unknown) => x);
  assert.is((e2 as Error).name, 'AbortError');
  assert.equal(await d.list(), []);
});

test.run();
