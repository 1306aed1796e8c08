// Remote layers as a site uses them: a 3-layer image in a private docker-registry on 127.0.0.1, its base
// layer published unpacked in a CVMFS/DUCC-style tree (`.layers/<xx>/<hex>/layerfs`), and containerd's
// CRI pulling the image onto our snapshotter (`--remote-layers`): the registry never serves the base
// blob, the container sees the same tree as on the built-in overlayfs, and the edges — the layer not
// published, the tree gone after the pull, a hostile tree, a `thin make` tree a containerd 1.6 cannot
// key — each end as the README says.
import * as assert from 'uvu/assert';
import { test as uvuTest } from 'uvu';
import { mkdirSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { testIf, canMountOverlay, whyNotMount, scratchRoot } from './support/env.js';
import { CLI_BIN } from './support/cli.js';
import { writeBaseRootTar, APPLETS } from './support/test-image.js';
import { whyNoContainerd, startContainerd, uniqueName, ctrTable, sleep, run, type PrivateContainerd } from './support/containerd.js';
import { startSnapshotter, type RunningSnapshotter } from './support/snapshots-client.js';
import { whyNoRegistry, startRegistry, SKOPEO, type PrivateRegistry } from './support/registry.js';
import { CriImageClient } from './support/cri-client.js';
import { criToml, servedBlobs } from './support/cri-setup.js';

const why = whyNotMount || whyNoContainerd() || whyNoRegistry();
const test = testIf(canMountOverlay && why === '', 'containerd remote-layer tests', why, uvuTest);
const OURS = 'ovl2';
const K8S = 'k8s.io';

let scratch: ReturnType<typeof scratchRoot>;
let registry: PrivateRegistry;
let snap: RunningSnapshotter;
let ctd: PrivateContainerd;
let cri: CriImageClient;
let home = '';
let socket = '';
let cvmfs = '';
let ref = '';
/** The image's layers' blob digests as the registry serves them, base first. */
let blobs: string[] = [];
/** The base layer unpacked, in overlay's format (a layer of a scratch store). */
let baseTree = '';

const cli = (h: string, ...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI_BIN, '--home', h, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`overlay2 ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};
const layerfs = (root: string, blob: string) => join(root, '.layers', blob.slice(7, 9), blob.slice(7), 'layerfs');
/** The blobs the registry served since `mark` (its access log). */
const fetched = (since: number) => new Set(servedBlobs(registry.log().slice(since)).keys());
const LISTING = 'find / -xdev \\( -path /proc -o -path /sys -o -path /dev \\) -prune -o -print | sort | while read f; do stat -c "%n %A %u:%g %s" "$f"; done';

async function pull(): Promise<void> {
  await cri.pull(ref).catch((e: Error) => {
    throw new Error(`${e.message}\n--- snapshotter ---\n${snap.stderr().slice(-3000)}\n--- containerd ---\n${ctd.log().slice(-3000)}`);
  });
}

async function removeImage(): Promise<void> {
  await cri.remove(ref);
  for (let i = 0; i < 40 && layersInHome().length > 0; i++) await sleep(250);
}

function layersInHome(): string[] {
  return readdirSync(home).filter((n) => n !== 'l' && !n.startsWith('.') && statSync(join(home, n)).isDirectory());
}

async function listing(snapshotter: string, namespace = K8S): Promise<string> {
  return (await ctd.ctr(['run', '--rm', '--snapshotter', snapshotter, ref, uniqueName('ls'), 'sh', '-c', LISTING], { namespace })).out;
}

test.before(async () => {
  try {
    await setUp();
  } catch (e) {
    // uvu counts a failed before hook as every test failing but prints nothing of why
    console.error('!! containerd remote-layer set-up failed:', e);
    throw e;
  }
});

async function setUp(): Promise<void> {
  scratch = scratchRoot('ovl2-remote-cri-');
  // the image: busybox base, a layer that adds and deletes, a layer that adds more
  const img = join(scratch.root, 'img');
  const store = join(img, 'home');
  mkdirSync(img, { recursive: true });
  cli(store, 'create', 'base');
  cli(store, 'apply', 'base', '-i', writeBaseRootTar(img, APPLETS));
  baseTree = join(store, 'base', 'diff');
  const layer = (name: string, fill: (d: string) => void) => {
    const d = join(img, name);
    mkdirSync(d, { recursive: true });
    fill(d);
    spawnSync('tar', ['-C', d, '-cf', `${d}.tar`, '.']);
    return `${d}.tar`;
  };
  cli(store, 'create', 'mid', '--parent', 'base');
  cli(store, 'apply', 'mid', '-i', layer('mid', (d) => {
    mkdirSync(join(d, 'app'));
    writeFileSync(join(d, 'app', 'config'), 'mid\n');
    mkdirSync(join(d, 'etc'));
    writeFileSync(join(d, 'etc', '.wh.motd'), '');
  }));
  cli(store, 'create', 'top', '--parent', 'mid');
  cli(store, 'apply', 'top', '-i', layer('top', (d) => {
    mkdirSync(join(d, 'app'));
    writeFileSync(join(d, 'app', 'data'), 'top\n');
  }));
  const archive = join(img, 'image.tar');
  cli(store, 'save', 'top', '-o', archive, '--tag', 'remote/test:1');
  registry = await startRegistry(join(scratch.root, 'registry'));
  ref = `${registry.host}/remote/test:${uniqueName('t')}`;
  // compressed, as registries serve layers: the digests CRI sends are the gzip blobs'
  await run(SKOPEO, ['copy', '--insecure-policy', '--dest-tls-verify=false', '--dest-compress',
    `docker-archive:${archive}:remote/test:1`, `docker://${ref}`], { what: 'skopeo' });
  const manifest = JSON.parse((await run(SKOPEO, ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])).out) as { layers: { digest: string }[] };
  blobs = manifest.layers.map((l) => l.digest);
  assert.is(blobs.length, 3);
  // DUCC's layout: the base layer published unpacked
  cvmfs = join(scratch.root, 'cvmfs', 'unpacked.example.org');
  mkdirSync(layerfs(cvmfs, blobs[0]!), { recursive: true });
  await run('cp', ['-a', `${baseTree}/.`, layerfs(cvmfs, blobs[0]!)]);
  home = join(scratch.root, 'home');
  socket = join(scratch.root, 'ovl2.sock');
  snap = await startSnapshotter(home, socket, ['--remote-layers', cvmfs, '--log-level', 'debug']);
  const dir = join(scratch.root, 'ctd');
  ctd = await startContainerd(dir, { cri: true, snapshotters: { [OURS]: socket }, toml: criToml(dir, OURS, registry.host) });
  cri = new CriImageClient(ctd.address);
}

test.after(async () => {
  cri?.close();
  await ctd?.stop();
  await snap?.stop();
  await registry?.stop();
  scratch?.remove();
});

test('CRI pull: the published base layer is never fetched, the others are; the container sees the image', async () => {
  const mark = registry.log().length;
  await pull();
  const got = fetched(mark);
  assert.not.ok(got.has(blobs[0]!), `the base blob was fetched: ${[...got].join(' ')}`);
  assert.ok(got.has(blobs[1]!) && got.has(blobs[2]!), `fetched: ${[...got].join(' ')}\n${registry.log().slice(mark).slice(-2000)}`);
  assert.match(snap.stderr(), /served from .*layerfs/);
  const snaps = ctrTable((await ctd.ctr(['snapshots', '--snapshotter', OURS, 'ls'], { namespace: K8S })).out);
  assert.is(snaps.length, 3, JSON.stringify(snaps));
  const out = (await ctd.ctr(['run', '--rm', '--snapshotter', OURS, ref, uniqueName('r'), 'sh', '-c',
    'cat /app/config /app/data; test ! -e /etc/motd && echo no-motd; ls /bin/sh'], { namespace: K8S })).out;
  assert.is(out, 'mid\ntop\nno-motd\n/bin/sh\n');
});

test('the same tree as the built-in overlayfs shows for the same image', async () => {
  await ctd.ctr(['images', 'pull', '--plain-http', '--snapshotter', 'overlayfs', ref], { namespace: K8S });
  const builtin = await listing('overlayfs');
  const ours = await listing(OURS);
  assert.ok(builtin.split('\n').length > 20, builtin);
  assert.fixture(ours, builtin);
});

test('the tree gone after the pull (CVMFS unmounted): a clear error naming it, never an empty rootfs', async () => {
  const away = `${cvmfs}.away`;
  renameSync(cvmfs, away);
  try {
    const r = await ctd.ctr(['run', '--rm', '--snapshotter', OURS, ref, uniqueName('gone'), 'true'], { namespace: K8S, allowFail: true });
    assert.is.not(r.code, 0);
    assert.match(r.err, /remote layer tree .*layerfs is not there/);
  } finally {
    renameSync(away, cvmfs);
  }
  const back = await ctd.ctr(['run', '--rm', '--snapshotter', OURS, ref, uniqueName('back'), 'cat', '/app/data'], { namespace: K8S });
  assert.is(back.out, 'top\n');
});

test('after RemoveImage and GC: no layer in HOME, every file of the tree still there', async () => {
  const before = spawnSync('sh', ['-c', `cd ${cvmfs} && find . | sort | xargs -d '\\n' stat -c '%n %s %Y'`], { encoding: 'utf8' }).stdout;
  // every name CRI and the overlayfs pull gave the image (tag, digest, id)
  const names = (await ctd.ctr(['images', 'ls', '-q'], { namespace: K8S })).out.split('\n').filter(Boolean);
  await ctd.ctr(['images', 'rm', '--sync', ...names], { namespace: K8S });
  for (let i = 0; i < 40 && layersInHome().length > 0; i++) await sleep(250);
  const left = async (what: string[]) => (await ctd.ctr(what, { namespace: K8S, allowFail: true })).out;
  assert.equal(layersInHome(), [], `${await left(['containers', 'ls'])}${await left(['snapshots', '--snapshotter', OURS, 'ls'])}${await left(['images', 'ls'])}${await left(['leases', 'ls'])}`);
  assert.is(spawnSync('sh', ['-c', `cd ${cvmfs} && find . | sort | xargs -d '\\n' stat -c '%n %s %Y'`], { encoding: 'utf8' }).stdout, before);
});

test('the layer not published, then a hostile tree: an ordinary pull (the base blob fetched), the same container', async () => {
  const published = layerfs(cvmfs, blobs[0]!);
  const hidden = join(scratch.root, 'hidden');
  renameSync(published, hidden);
  try {
    let mark = registry.log().length;
    await pull();
    assert.ok(fetched(mark).has(blobs[0]!));
    assert.is((await ctd.ctr(['run', '--rm', '--snapshotter', OURS, ref, uniqueName('p'), 'cat', '/app/config'], { namespace: K8S })).out, 'mid\n');
    await removeImage();
    assert.equal(layersInHome(), []);
    // layerfs a symlink out of the root: refused, pulled instead
    symlinkSync(hidden, published);
    mark = registry.log().length;
    await pull();
    assert.ok(fetched(mark).has(blobs[0]!));
    assert.match(snap.stderr(), /remote tree refused.*leads outside/);
    await removeImage();
    rmSync(published);
  } finally {
    renameSync(hidden, published);
  }
});

test('a thin make tree (keyed by diffID): containerd 1.6 sends no diff-id label, so the layer is pulled as usual', async () => {
  const thinRoot = join(scratch.root, 'thin');
  const store = join(scratch.root, 'img', 'home');
  cli(store, '-o', `thin.root=${thinRoot}`, 'thin', 'make', 'top', '--repo', 'repo', '-o', join(scratch.root, 'thin.tar'));
  assert.ok(readdirSync(join(thinRoot, 'repo', 'layers')).length === 3);
  await snap.stop();
  snap = await startSnapshotter(home, socket, ['--remote-layers', join(thinRoot, 'repo'), '--log-level', 'debug']);
  await sleep(3500); // containerd reconnects to a proxy within ~3 s
  const mark = registry.log().length;
  await pull();
  assert.ok(fetched(mark).has(blobs[0]!));
  assert.is((await ctd.ctr(['run', '--rm', '--snapshotter', OURS, ref, uniqueName('t'), 'cat', '/app/data'], { namespace: K8S })).out, 'top\n');
  await removeImage();
});

test.run();
