// End to end through containerd's CRI plugin, as kubelet reaches storage: a private containerd 1.6 whose
// CRI uses ours (`snapshotter = "ovl2"`, snapshot annotations on), a private docker-registry on 127.0.0.1
// holding the test image (pushed with skopeo), and CRI's ImageService called over containerd's socket —
// PullImage unpacks into our snapshotter with the labels CRI adds; a container runs on the pulled image;
// RemoveImage (which waits for containerd's GC) leaves no layer in HOME.
import * as assert from 'uvu/assert';
import { test as uvuTest } from 'uvu';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { testIf, canMountOverlay, whyNotMount, scratchRoot, mountsBelow } from './support/env.js';
import { buildTestImages, APPLETS, type TestImages } from './support/test-image.js';
import { whyNoContainerd, startContainerd, uniqueName, ctrTable, sleep, type PrivateContainerd } from './support/containerd.js';
import { startSnapshotter, SnapshotsClient, type RunningSnapshotter } from './support/snapshots-client.js';
import { whyNoRegistry, startRegistry, type PrivateRegistry } from './support/registry.js';
import { CriImageClient } from './support/cri-client.js';
import { criToml } from './support/cri-setup.js';
import { whyNoDocker } from '../bench/lib/dockerd.js';

const why = whyNotMount || whyNoContainerd() || whyNoRegistry() || whyNoDocker();
const test = testIf(canMountOverlay && why === '', 'containerd CRI end-to-end tests', why, uvuTest);

const OURS = 'ovl2';
/** The namespace CRI keeps its images in. */
const K8S = 'k8s.io';

let scratch: ReturnType<typeof scratchRoot>;
let images: TestImages;
let registry: PrivateRegistry;
let snap: RunningSnapshotter;
let ctd: PrivateContainerd;
let cri: CriImageClient;
let home = '';
let socket = '';
/** The image as kubelet would name it: HOST/ovl2-e2e/changed:TAG. */
let ref = '';

test.before(async () => {
  try {
    await setUp();
  } catch (e) {
    // uvu counts a failed before hook as every test failing but prints nothing of why.
    console.error('!! containerd CRI end-to-end set-up failed:', e);
    throw e;
  }
});

async function setUp(): Promise<void> {
  scratch = scratchRoot('ovl2-cri-');
  images = await buildTestImages(join(scratch.root, 'img'), APPLETS, { big: false });
  registry = await startRegistry(join(scratch.root, 'registry'));
  ref = `${registry.host}/ovl2-e2e/changed:${uniqueName('t')}`;
  await registry.push(`docker-archive:${images.archive}:${images.changed}`, ref.slice(registry.host.length + 1));
  home = join(scratch.root, 'home');
  socket = join(scratch.root, 'ovl2.sock');
  snap = await startSnapshotter(home, socket, ['--log-level', 'debug']);
  const dir = join(scratch.root, 'ctd');
  ctd = await startContainerd(dir, { cri: true, snapshotters: { [OURS]: socket }, toml: criToml(dir, OURS, registry.host) });
  cri = new CriImageClient(ctd.address);
}

test.after(async () => {
  cri?.close();
  await ctd?.stop();
  if (snap) await Promise.race([snap.stop(), sleep(15_000).then(() => snap.stop('SIGKILL'))]);
  await registry?.stop();
  scratch?.remove();
});

function layersInHome(): string[] {
  return readdirSync(home).filter((n) => n !== 'l' && !n.startsWith('.') && statSync(join(home, n)).isDirectory()).sort();
}

function logTail(): string {
  return `\n--- overlay2 snapshotter stderr (tail) ---\n${snap.stderr().slice(-4000)}\n--- containerd log (tail) ---\n${ctd.log().slice(-3000)}`;
}

test('CRI PullImage from the registry unpacks into ovl2, with the labels CRI adds', async () => {
  const imageRef = await cri.pull(ref).catch((e: Error) => { throw new Error(`${e.message}${logTail()}`); });
  assert.match(imageRef, /^sha256:[0-9a-f]{64}$/);
  const status = await cri.status(ref);
  assert.ok(status, `ImageStatus ${ref}: none`);
  assert.ok(status!.repoTags.includes(ref), JSON.stringify(status));
  assert.is(status!.id, imageRef);
  // Two layers, both committed in ours, named by chainID in CRI's namespace.
  const snaps = ctrTable((await ctd.ctr(['snapshots', '--snapshotter', OURS, 'ls'], { namespace: K8S })).out);
  assert.is(snaps.length, 2, JSON.stringify(snaps));
  assert.ok(snaps.every((s) => s.KIND === 'Committed' && /^sha256:/.test(s.KEY)), JSON.stringify(snaps));
  assert.is(layersInHome().length, 2);
  // What ours was sent and kept (asked on its own socket, not containerd's copy): CRI's labels on the
  // committed snapshots it unpacked.
  const client = new SnapshotsClient(socket);
  try {
    const { infos } = await client.list();
    assert.is(infos.length, 2, JSON.stringify(infos));
    const layerDigests = new Set<string>();
    for (const info of infos) {
      assert.is(info.kind, 'COMMITTED');
      assert.ok(info.name.startsWith(`${K8S}/`), info.name);
      const l = info.labels;
      assert.is(l['containerd.io/snapshot/cri.image-ref'], ref, JSON.stringify(info));
      assert.ok(info.name.endsWith(`/${l['containerd.io/snapshot.ref']}`), JSON.stringify(info));
      assert.match(l['containerd.io/snapshot/cri.layer-digest'] ?? '', /^sha256:[0-9a-f]{64}$/);
      assert.ok(l['containerd.io/snapshot/cri.manifest-digest']?.startsWith('sha256:'), JSON.stringify(info));
      layerDigests.add(l['containerd.io/snapshot/cri.layer-digest']);
    }
    assert.is(layerDigests.size, 2);
    const top = infos.find((i) => i.parent !== '');
    assert.ok(top && infos.some((i) => i.name === top.parent && i.parent === ''), JSON.stringify(infos));
  } finally {
    client.close();
  }
  assert.match(snap.stderr(), /Prepare key=k8s\.io\/\d+\/extract-/);
});

test('a container on the pulled image runs through ctr run --snapshotter ovl2', async () => {
  const id = uniqueName('cri-run');
  const out = (await ctd.ctr(['run', '--rm', '--snapshotter', OURS, ref, id, 'sh', '-c',
    'cat /d/sub/g /d/n2 /etc/motd; ls /d/sub; stat -c "%a %u:%g" /bin/tool /d/renamed; test ! -e /d/keep && echo no-keep'],
  { namespace: K8S })).out;
  assert.is(out, 'new\ntwo\nhello\nmore\ng\n4711 0:0\n700 0:0\nno-keep\n');
  assert.equal(ctrTable((await ctd.ctr(['snapshots', '--snapshotter', OURS, 'ls'], { namespace: K8S })).out).length, 2);
});

test('CRI RemoveImage: containerd GCs the snapshots; HOME holds no layer, nothing mounted', async () => {
  await cri.remove(ref);
  assert.is(await cri.status(ref), null);
  // RemoveImage deletes with a synchronous GC; a snapshot removal still in flight gets a moment.
  for (let i = 0; i < 40 && layersInHome().length > 0; i++) await sleep(250);
  assert.equal(ctrTable((await ctd.ctr(['snapshots', '--snapshotter', OURS, 'ls'], { namespace: K8S })).out), []);
  assert.equal(layersInHome(), [], logTail());
  assert.equal(readdirSync(join(home, 'l')), []);
  assert.equal(mountsBelow(home), []);
});

test('SIGTERM: the snapshotter exits 0 and removes its socket; nothing of the run left mounted', async () => {
  cri.close();
  await ctd.stop();
  const code = await snap.stop();
  assert.equal([code, snap.child.signalCode], [0, null], snap.stderr().slice(-3000));
  assert.equal(mountsBelow(scratch.root), []);
});

test.run();
