// Remote layers through the snapshotter as containerd reaches it (the installed bin, gRPC with the
// package's .proto): the remote-snapshot handshake on CVMFS/DUCC's `.layers/<xx>/<hex>/layerfs` layout
// (a plain directory and a read-only erofs image of it) and on `thin make`'s `layers/<hex>`, containers
// on remote lowers, a root that goes away, hostile trees and labels, and that nothing under a root is
// ever written or deleted. The same with a real containerd and CRI: test/containerd-cri.test.ts.
import * as assert from 'uvu/assert';
import { test as uvuTest } from 'uvu';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mountTest, tempDir, removeTree, testIf } from './support/env.js';
import { CLI_BIN } from './support/cli.js';
import { treeLines } from './support/tree-digest.js';
import { mountImage } from './thin-fixtures.js';
import { SnapshotsClient, failure, startSnapshotter, type RunningSnapshotter } from './support/snapshots-client.js';

const test = mountTest(uvuTest);
const REF = 'containerd.io/snapshot.ref';
const DIGEST = 'containerd.io/snapshot/cri.layer-digest';
const DIFF_ID = 'containerd.io/snapshot/diff-id';
const sha = (s: string) => 'sha256:' + createHash('sha256').update(s).digest('hex');

let dir = '';
let home = '';
let socket = '';
let cvmfs = '';
let thinRepo = '';
let running: RunningSnapshotter;
let client: SnapshotsClient;
const base = { blob: sha('base-blob'), chain: sha('base-chain') };
const next = { blob: sha('next-blob'), chain: sha('next-chain') };

const cli = (...args: string[]) => spawnSync(process.execPath, [CLI_BIN, '--home', home, ...args], { encoding: 'utf8' });
const optionOf = (opts: string[], name: string) => opts.find((o) => o.startsWith(`${name}=`))?.slice(name.length + 1);
const layerfs = (root: string, blob: string) => join(root, '.layers', blob.slice(7, 9), blob.slice(7), 'layerfs');
const treeDigest = (path: string) => createHash('sha256').update(treeLines(path).join('\n')).digest('hex');

/** Prepare as containerd's unpacker sends it for a remote candidate: must answer ALREADY_EXISTS. */
async function prepareRemote(key: string, parent: string, ref: string, labels: Record<string, string>): Promise<void> {
  const e = await failure(client.prepare(key, parent, { [REF]: ref, ...labels }));
  assert.is(e.code, 'ALREADY_EXISTS', e.details);
}

/** What containerd's metadata snapshotter then sends to find it. */
async function findByRef(ref: string, parent: string) {
  return (await client.list([`labels."${REF}"==${ref},parent==${JSON.stringify(parent)}`])).infos;
}

function mountOverlay(options: string[]): string {
  const t = join(dir, 'mnt');
  mkdirSync(t, { recursive: true });
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', options.join(','), t]);
  return t;
}

test.before(async () => {
  dir = tempDir('ovl2-remote-');
  home = join(dir, 'home');
  socket = join(dir, 'snap.sock');
  cvmfs = join(dir, 'cvmfs', 'unpacked.example.org');
  thinRepo = join(dir, 'thin', 'repo');
  // a base layer and a layer on it, as DUCC unpacks them (whiteouts as overlay's char 0/0 devices)
  const b = layerfs(cvmfs, base.blob);
  mkdirSync(join(b, 'etc'), { recursive: true });
  mkdirSync(join(b, 'bin'), { recursive: true });
  writeFileSync(join(b, 'etc', 'os-release'), 'NAME=remote\n');
  writeFileSync(join(b, 'etc', 'gone'), 'x');
  symlinkSync('../etc/os-release', join(b, 'bin', 'link'));
  execFileSync('setfattr', ['-n', 'user.origin', '-v', 'cvmfs', join(b, 'etc', 'os-release')]);
  const n = layerfs(cvmfs, next.blob);
  mkdirSync(join(n, 'etc'), { recursive: true });
  execFileSync('mknod', [join(n, 'etc', 'gone'), 'c', '0', '0']);
  writeFileSync(join(n, 'etc', 'added'), 'added\n');
  // thin make's layout: <repo>/layers/<diffID hex>
  mkdirSync(join(thinRepo, 'layers', sha('thin-diff').slice(7), 'opt'), { recursive: true });
  writeFileSync(join(thinRepo, 'layers', sha('thin-diff').slice(7), 'opt', 'tool'), 'tool\n');
  running = await startSnapshotter(home, socket, ['--remote-layers', cvmfs, '--remote-layers', thinRepo, '--log-level', 'debug']);
  client = new SnapshotsClient(socket);
});
test.after(async () => {
  client?.close();
  await running?.stop();
  removeTree(dir);
});

test('a layer the tree holds: committed under its target on the tree itself, ALREADY_EXISTS, found as containerd looks', async () => {
  const before = treeDigest(join(cvmfs, '.layers'));
  await prepareRemote('ns/1/extract-a', '', base.chain, { [DIGEST]: base.blob });
  const found = await findByRef(base.chain, '');
  assert.is(found.length, 1);
  assert.is(found[0]!.name, base.chain);
  assert.is(found[0]!.kind, 'COMMITTED');
  assert.is(found[0]!.labels[DIGEST], base.blob);
  assert.is((await client.stat(base.chain)).kind, 'COMMITTED');
  // the key containerd asked for was never made
  assert.is((await failure(client.stat('ns/1/extract-a'))).code, 'NOT_FOUND');
  // the second layer, on the first
  await prepareRemote('ns/1/extract-b', base.chain, next.chain, { [DIGEST]: next.blob });
  assert.equal((await findByRef(next.chain, base.chain)).map((i) => i.name), [next.chain]);
  // a second pull (another namespace) of the same layer: the same snapshot, ALREADY_EXISTS again
  await prepareRemote('ns2/1/extract-a', '', base.chain, { [DIGEST]: base.blob });
  assert.is((await client.list([`labels."${REF}"==${base.chain}`])).infos.length, 1);
  // nothing copied: the layers' diff dirs are symlinks to the trees; nothing under the root changed
  const ls = JSON.parse(cli('ls', '--json').stdout) as { id: string }[];
  const targets = ls.map((r) => lstatSync(join(home, r.id, 'diff')).isSymbolicLink() ? readlinkSync(join(home, r.id, 'diff')) : null);
  assert.equal(targets.sort(), [layerfs(cvmfs, base.blob), layerfs(cvmfs, next.blob)].sort());
  assert.is(treeDigest(join(cvmfs, '.layers')), before);
  assert.match(running.stderr(), /served from .*layerfs/);
});

test('a container on remote lowers: the overlay shows the image, changes and diffsize work as on ordinary lowers', async () => {
  const m = await client.prepare('ns/2/ctr', next.chain);
  assert.is(m[0]!.type, 'overlay');
  assert.is(optionOf(m[0]!.options, 'lowerdir')!.split(':').length, 2);
  const root = mountOverlay(m[0]!.options);
  try {
    assert.is(readFileSync(join(root, 'etc', 'os-release'), 'utf8'), 'NAME=remote\n');
    assert.is(readFileSync(join(root, 'etc', 'added'), 'utf8'), 'added\n');
    assert.not.ok(existsSync(join(root, 'etc', 'gone')));
    assert.is(execFileSync('getfattr', ['--only-values', '-n', 'user.origin', join(root, 'etc', 'os-release')], { encoding: 'utf8' }), 'cvmfs');
    writeFileSync(join(root, 'etc', 'os-release'), 'NAME=changed\n');
    writeFileSync(join(root, 'new'), 'n');
  } finally {
    execFileSync('umount', [root]);
  }
  const upper = optionOf(m[0]!.options, 'upperdir')!;
  const layer = upper.split('/').slice(-2)[0]!;
  const changes = cli('changes', layer);
  assert.is(changes.status, 0, changes.stderr);
  assert.equal(changes.stdout.trim().split('\n').sort(), ['A /new', 'C /etc', 'C /etc/os-release']);
  // the remote layers' own changes and size: their trees
  const remoteLayer = (JSON.parse(cli('ls', '--json').stdout) as { id: string; parent: string }[]).find((r) => readlinkSafe(join(home, r.id, 'diff')) === layerfs(cvmfs, next.blob))!;
  const own = cli('changes', remoteLayer.id);
  assert.is(own.status, 0, own.stderr);
  assert.equal(own.stdout.trim().split('\n').sort(), ['A /etc/added', 'C /etc', 'D /etc/gone']);
  assert.is(cli('diffsize', remoteLayer.id).stdout.trim(), '6');
});

test('a remote layer is read-only to the store: apply into it is refused in one line, the tree untouched', () => {
  const before = treeDigest(join(cvmfs, '.layers'));
  const remoteLayer = (JSON.parse(cli('ls', '--json').stdout) as { id: string }[]).find((r) => readlinkSafe(join(home, r.id, 'diff')) === layerfs(cvmfs, base.blob))!;
  const tar = join(dir, 'one.tar');
  mkdirSync(join(dir, 'src'), { recursive: true });
  writeFileSync(join(dir, 'src', 'evil'), 'x');
  execFileSync('tar', ['-C', join(dir, 'src'), '-cf', tar, 'evil']);
  const r = cli('apply', remoteLayer.id, '-i', tar);
  assert.is(r.status, 1);
  assert.match(r.stderr, /remote layer.*read-only/);
  assert.is(treeDigest(join(cvmfs, '.layers')), before);
});

test('a layer the trees do not hold, a hostile tree, a label that is no digest: an ordinary Prepare', async () => {
  const missing = await client.prepare('ns/3/extract-missing', '', { [REF]: sha('missing-chain'), [DIGEST]: sha('missing-blob') });
  assert.is(missing[0]!.type, 'bind');
  // a layerfs that is a symlink out of the root
  const evil = sha('evil-blob');
  mkdirSync(join(cvmfs, '.layers', evil.slice(7, 9), evil.slice(7)), { recursive: true });
  symlinkSync('/etc', layerfs(cvmfs, evil));
  const hostile = await client.prepare('ns/3/extract-evil', '', { [REF]: sha('evil-chain'), [DIGEST]: evil });
  assert.is(hostile[0]!.type, 'bind');
  assert.match(running.stderr(), /remote tree refused.*leads outside/);
  // ".." in a label never becomes a path
  const dots = await client.prepare('ns/3/extract-dots', '', { [REF]: sha('dots-chain'), [DIGEST]: 'sha256:../../../etc' });
  assert.is(dots[0]!.type, 'bind');
  assert.match(running.stderr(), /not a remote layer: .*is not sha256:<64 hex>/);
  for (const k of ['ns/3/extract-missing', 'ns/3/extract-evil', 'ns/3/extract-dots']) await client.remove(k);
});

test('thin make\'s layout, by diffID: the same handshake; without a diff-id label: an ordinary Prepare', async () => {
  await prepareRemote('ns/4/extract-t', '', sha('thin-chain'), { [DIFF_ID]: sha('thin-diff') });
  const v = await client.view('ns/4/view', sha('thin-chain'));
  assert.is(v[0]!.type, 'bind');
  assert.match(v[0]!.source, new RegExp(`^${home}/[0-9a-f]{64}/diff$`));
  assert.is(readlinkSync(v[0]!.source), join(thinRepo, 'layers', sha('thin-diff').slice(7)));
  assert.ok(existsSync(join(v[0]!.source, 'opt', 'tool')));
  await client.remove('ns/4/view');
  const plain = await client.prepare('ns/4/extract-plain', '', { [REF]: sha('thin-chain-2') });
  assert.is(plain[0]!.type, 'bind');
  await client.remove('ns/4/extract-plain');
});

test('the root goes away: Mounts and Prepare on its layers fail with FAILED_PRECONDITION naming the tree, never an empty rootfs', async () => {
  const moved = cvmfs + '.away';
  renameSync(cvmfs, moved);
  try {
    const e = await failure(client.mounts('ns/2/ctr'));
    assert.is(e.code, 'FAILED_PRECONDITION');
    assert.match(e.details, /remote layer tree .*layerfs is not there/);
    const p = await failure(client.prepare('ns/5/ctr2', next.chain));
    assert.is(p.code, 'FAILED_PRECONDITION');
    assert.is((await failure(client.stat('ns/5/ctr2'))).code, 'NOT_FOUND');
    // a restart while it is away keeps every snapshot (the store's links into missing trees stay)
    client.close();
    await running.stop();
    running = await startSnapshotter(home, socket, ['--remote-layers', cvmfs, '--remote-layers', thinRepo]);
    client = new SnapshotsClient(socket);
    assert.is((await client.stat(next.chain)).kind, 'COMMITTED');
  } finally {
    renameSync(moved, cvmfs);
  }
  assert.is((await client.mounts('ns/2/ctr'))[0]!.type, 'overlay');
});

test('Remove and Cleanup drop only the store\'s own records and links: every file under the roots stays', async () => {
  const before = treeDigest(join(dir, 'cvmfs'));
  const thinBefore = treeDigest(thinRepo);
  await client.remove('ns/2/ctr');
  await client.remove(next.chain);
  await client.remove(base.chain);
  await client.remove(sha('thin-chain'));
  await client.cleanup();
  assert.is(treeDigest(join(dir, 'cvmfs')), before);
  assert.is(treeDigest(thinRepo), thinBefore);
  assert.equal(JSON.parse(cli('ls', '--json').stdout), []);
});

const filesystems = existsSync('/proc/filesystems') ? readFileSync('/proc/filesystems', 'utf8') : '';
const canErofs = spawnSync('sh', ['-c', 'command -v mkfs.erofs'], { stdio: 'ignore' }).status === 0
  && filesystems.includes('\terofs\n') && existsSync('/dev/loop-control');
testIf(canErofs, 'remote layers on erofs', 'needs mkfs.erofs (erofs-utils), erofs in /proc/filesystems and loop devices', test)(
  'a read-only erofs image of the tree, loop-mounted: the handshake and a container on it', async () => {
    const mnt = join(dir, 'erofs-root');
    mountImage('erofs', join(dir, 'cvmfs', 'unpacked.example.org'), join(dir, 'layers.erofs'), mnt);
    try {
      client.close();
      await running.stop();
      running = await startSnapshotter(home, socket, ['--remote-layers', mnt]);
      client = new SnapshotsClient(socket);
      await prepareRemote('ns/6/extract-a', '', base.chain, { [DIGEST]: base.blob });
      assert.match(running.stderr(), new RegExp(`served from ${mnt}/`));
      const m = await client.prepare('ns/6/ctr', base.chain);
      assert.is(m[0]!.type, 'overlay');
      const root = mountOverlay(m[0]!.options);
      try {
        assert.is(readFileSync(join(root, 'etc', 'os-release'), 'utf8'), 'NAME=remote\n');
      } finally {
        execFileSync('umount', [root]);
      }
      await client.remove('ns/6/ctr');
      await client.remove(base.chain);
    } finally {
      client.close();
      await running.stop();
      execFileSync('umount', [mnt]);
      running = await startSnapshotter(home, socket);
      client = new SnapshotsClient(socket);
    }
  });

function readlinkSafe(path: string): string | null {
  try { return readlinkSync(path); } catch { return null; }
}

test.run();
