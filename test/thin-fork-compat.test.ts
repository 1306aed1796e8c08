// Thin layers as the fork's tools and DUCC write them, reached the way a user does (the installed
// bin): a thin.json with bare-hex digests applies and mounts; a new home that holds only the
// repositories mounted at the default root (<home>/cvmfs) initializes; `thin make` publishes every
// xattr and all metadata of a layer, so the thin image's mount is the original chain's tree.
import * as assert from 'uvu/assert';
import { test as uvuTest } from 'uvu';
import { spawnSync, execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { CLI_BIN } from './support/cli.js';
import { mountTest, tempDir, removeTree } from './support/env.js';
import { treeLines } from './support/tree-digest.js';
import { STANDARD_TREES, STANDARD_VIEW, digestOf, publishTrees, snapshot } from './thin-fixtures.js';
import { manifestTar } from '../src/thin/manifest-tar.js';
import { dir, file, hardlink, member, pax, symlink, tarOf } from './apply-tar.js';

const test = mountTest(uvuTest);
let base = '';
let root = '';

function cli(home: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [CLI_BIN, '--home', home, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
const oneLine = (s: string) => s.trim().length > 0 && !s.trim().includes('\n');

/** thin.json as the fork's docker2cvmfs and DUCC write it: bare hex digests. */
function forkManifest(repo: string, hexes: string[]): Buffer {
  return Buffer.from(JSON.stringify({
    version: '1.0', min_version: '1.0', origin: 'docker.io/library/busybox:latest',
    layers: hexes.map((h) => ({ digest: h, url: `cvmfs://${repo}/layers/${h}` })),
  }));
}

test.before(() => {
  base = tempDir('ovl2-thinfork-');
  root = join(base, 'repos');
  publishTrees(root, 'unpacked.cern.ch', STANDARD_TREES);
});
test.after(() => removeTree(base));

/** Applies a thin tar as a new layer, puts a container layer on it, mounts it: the merged view. */
function mountThin(home: string, opts: string[], tar: string, name: string): Record<string, string> {
  let r = cli(home, ...opts, 'create', name);
  assert.is(r.code, 0, r.err);
  r = cli(home, ...opts, 'apply', name, '-i', tar);
  assert.is(r.code, 0, r.err);
  r = cli(home, ...opts, 'create', `${name}-ctr`, '--parent', name, '--rw');
  assert.is(r.code, 0, r.err);
  r = cli(home, ...opts, 'mount', `${name}-ctr`);
  assert.is(r.code, 0, r.err);
  try {
    return snapshot(r.out.trim());
  } finally {
    assert.is(cli(home, ...opts, 'unmount', `${name}-ctr`).code, 0);
  }
}

test('a thin.json with bare-hex digests (the fork\'s tools, DUCC) applies and mounts', () => {
  const ordered = STANDARD_TREES.map(([n]) => digestOf(n)); // base first
  const tar = join(base, 'bare.tar');
  writeFileSync(tar, manifestTar(forkManifest('unpacked.cern.ch', ordered)));
  const home = join(base, 'bare-home');
  assert.equal(mountThin(home, ['-o', `thin.root=${root}`], tar, 'bare'), STANDARD_VIEW);
  const show = cli(home, '-o', `thin.root=${root}`, 'thin', 'show', 'bare', '--json');
  assert.is(show.code, 0, show.err);
  assert.equal(JSON.parse(show.out).layers.map((l: { digest: string }) => l.digest), ordered.map((h) => `sha256:${h}`));

  // prefixed and bare mixed in one manifest: the same image
  const mixed = join(base, 'mixed.tar');
  writeFileSync(mixed, manifestTar(Buffer.from(JSON.stringify({ version: '1.0', layers: ordered.map((h, i) => ({
    digest: i % 2 ? h : `sha256:${h}`, url: `cvmfs://unpacked.cern.ch/layers/${h}` })) }))));
  assert.equal(mountThin(home, ['-o', `thin.root=${root}`], mixed, 'mixed'), STANDARD_VIEW);

  // anything else is still refused, in one line naming what a digest may be
  for (const bad of [`sha512:${ordered[0]}`, ordered[0]!.slice(1), ordered[0]!.toUpperCase(), `sha256:${ordered[0]!.slice(2)}`]) {
    const t = join(base, 'bad.tar');
    writeFileSync(t, manifestTar(forkManifest('unpacked.cern.ch', [bad])));
    assert.is(cli(home, 'create', 'bad-digest').code, 0);
    const r = cli(home, '-o', `thin.root=${root}`, 'apply', 'bad-digest', '-i', t);
    assert.is(r.code, 1, bad);
    assert.ok(oneLine(r.err), r.err);
    assert.match(r.err, /digest .* is neither sha256:<64 hex> nor <64 hex>/);
    assert.is(cli(home, 'remove', 'bad-digest').code, 0);
  }
});

test('a new home holding only the repositories mounted at <home>/cvmfs initializes', () => {
  const hexes = STANDARD_TREES.map(([n]) => digestOf(n));
  const tar = join(base, 'default-root.tar');
  writeFileSync(tar, manifestTar(forkManifest('unpacked.cern.ch', hexes)));
  // the natural order: make the home, mount the repositories at its default thin root, then the first command
  const home = join(base, 'cvmfs-first');
  mkdirSync(join(home, 'cvmfs'), { recursive: true });
  execFileSync('mount', ['--bind', '-o', 'ro', root, join(home, 'cvmfs')]);
  try {
    // a read-only command first: not a home yet, said as such (not "someone else's directory")
    const ls = cli(home, 'ls');
    assert.is(ls.code, 1);
    assert.match(ls.err, /is empty, not a driver home yet/);
    assert.equal(mountThin(home, [], tar, 'img'), STANDARD_VIEW);
    assert.ok(existsSync(join(home, 'l')));
  } finally {
    execFileSync('umount', [join(home, 'cvmfs')]);
  }

  // still refused: anything else beside it, or a cvmfs that is not a directory
  const other = join(base, 'cvmfs-and-more');
  mkdirSync(join(other, 'cvmfs'), { recursive: true });
  writeFileSync(join(other, 'notes.txt'), 'mine\n');
  const r = cli(other, 'create', 'x');
  assert.is(r.code, 1);
  assert.match(r.err, /is not empty and is not an overlay2 store .*found "notes.txt"/);
  const asFile = join(base, 'cvmfs-file');
  mkdirSync(asFile);
  writeFileSync(join(asFile, 'cvmfs'), 'a file\n');
  assert.match(cli(asFile, 'create', 'x').err, /found "cvmfs"/);
  // a thin.root elsewhere: <home>/cvmfs is the user's own directory again
  const elsewhere = join(base, 'cvmfs-not-root');
  mkdirSync(join(elsewhere, 'cvmfs'), { recursive: true });
  assert.match(cli(elsewhere, '-o', `thin.root=${root}`, 'create', 'x').err, /found "cvmfs"/);
  // a thin.root named inside the home counts as the default one does
  const named = join(base, 'named-root');
  mkdirSync(join(named, 'repos'), { recursive: true });
  const made = cli(named, '-o', `thin.root=${join(named, 'repos')}`, 'create', 'x');
  assert.is(made.code, 0, made.err);
});

/** A layer tar with xattrs of every namespace a layer can hold, and all kinds of metadata. */
function xattrLayer(): Buffer {
  const x = (pairs: Array<[string, string]>) => pax(pairs.map(([k, v]) => [`SCHILY.xattr.${k}`, v]));
  // security.capability as Docker stores it (revision 2: cap_net_bind_service)
  const caps = Buffer.from('0000000200040000000000000000000000000000', 'hex');
  return tarOf(
    x([['user.dir-note', 'kept on a directory']]), dir('srv/', { mode: 0o2750, uid: 1000, gid: 1001, mtime: 1_500_000_000 }),
    x([['user.mime_type', 'text/plain'], ['user.empty', ''], ['trusted.origin', 'build-42']]),
    file('srv/data.txt', 'data\n', { mode: 0o640, uid: 1000, gid: 1001, mtime: 1_500_000_001 }),
    pax([['SCHILY.xattr.security.capability', caps]]), file('srv/bind', 'ELF', { mode: 0o4755, mtime: 1_500_000_002 }),
    hardlink('srv/data-link', 'srv/data.txt'),
    symlink('srv/latest', 'data.txt', { uid: 1000, gid: 1001, mtime: 1_500_000_003 }),
    member({ name: 'srv/fifo', type: '6', mode: 0o600, mtime: 1_500_000_004 }),
    member({ name: 'srv/null', type: '3', mode: 0o666, devmajor: 1, devminor: 3, mtime: 1_500_000_005 }),
  );
}

test('thin make publishes every xattr and all metadata: the thin image mounts as the original chain', () => {
  const homeA = join(base, 'orig');
  const tars = join(base, 'tars');
  mkdirSync(tars);
  writeFileSync(join(tars, 'l1.tar'), xattrLayer());
  // a second layer changes an xattr, adds one on a copied-up dir, deletes a file
  writeFileSync(join(tars, 'l2.tar'), tarOf(
    pax([['SCHILY.xattr.user.dir-note', 'changed above'], ['SCHILY.xattr.user.second', '2']]), dir('srv/', { mode: 0o2750, uid: 1000, gid: 1001, mtime: 1_600_000_000 }),
    file('srv/.wh.fifo'),
    pax([['SCHILY.xattr.user.top', 'on top']]), file('srv/top.txt', 'top\n', { mtime: 1_600_000_001 }),
  ));
  for (const [id, parent] of [['x1', ''], ['x2', 'x1']] as const) {
    assert.is(cli(homeA, 'create', id, ...(parent ? ['--parent', parent] : [])).code, 0);
    const r = cli(homeA, 'apply', id, '-i', join(tars, `${id.replace('x', 'l')}.tar`));
    assert.is(r.code, 0, r.err);
  }
  const publishRoot = join(base, 'published');
  const thinTar = join(base, 'x2-thin.tar');
  const made = cli(homeA, 'thin', 'make', 'x2', '--repo', 'xattrs.example.org', '--root', publishRoot, '-o', thinTar);
  assert.is(made.code, 0, made.err);

  // the original chain's mount, and the thin image's mount in another home reading the published trees
  assert.is(cli(homeA, 'create', 'orig-ctr', '--parent', 'x2', '--rw').code, 0);
  const origMount = cli(homeA, 'mount', 'orig-ctr').out.trim();
  const homeB = join(base, 'thin-side');
  const opts = ['-o', `thin.root=${publishRoot}`];
  for (const args of [['create', 'thin'], ['apply', 'thin', '-i', thinTar], ['create', 'thin-ctr', '--parent', 'thin', '--rw']]) {
    const r = cli(homeB, ...opts, ...args);
    assert.is(r.code, 0, r.err);
  }
  const thinMount = cli(homeB, ...opts, 'mount', 'thin-ctr').out.trim();
  try {
    const want = treeLines(origMount);
    // the layer's own xattrs are there to compare (the test would be empty without them)
    assert.ok(want.some((l) => l.startsWith('./srv/data.txt ') && l.includes('user.mime_type=') && l.includes('trusted.origin=')), want.join('\n'));
    assert.ok(want.some((l) => l.startsWith('./srv ') && l.includes(`user.dir-note=${Buffer.from('changed above').toString('hex')}`)), want.join('\n'));
    assert.ok(want.some((l) => l.startsWith('./srv/bind ') && l.includes('security.capability=')), want.join('\n'));
    // the root dir's own mtime is the container layer's (made at create), not the image's
    const body = (lines: string[]) => lines.filter((l) => !l.startsWith('. '));
    assert.equal(body(treeLines(thinMount)), body(want));
  } finally {
    cli(homeA, 'unmount', 'orig-ctr');
    cli(homeB, ...opts, 'unmount', 'thin-ctr');
  }
});

test.run();
