// Thin layers end to end on real mounts: the root as a plain directory (the fork's default
// <home>/cvmfs), the fork's files on disk, containers above init layers, diff/changes/remove of the
// thin layer, hostile trees and manifests, crash recovery of a thin apply.
import * as assert from 'uvu/assert';
import { test as uvuTest } from 'uvu';
import { existsSync, mkdirSync, readFileSync, readlinkSync, readdirSync, symlinkSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { Overlay2Driver } from '../src/driver.js';
import { mountTest, tempDir, removeTree, isMounted, rejectsWithCode } from './support/env.js';
import { STANDARD_TREES, STANDARD_VIEW, digestOf, publishTrees, snapshot, thinTarOf, writeTree } from './thin-fixtures.js';
import { THIN_PENDING_FILE } from '../src/thin/apply.js';
import { serializeManifest } from '../src/thin/manifest.js';
import { recordDeadUser } from './support/dead-user.js';

/** path and kind of each change (the API's pathBytes is covered by test/byte-names). */
const pathsAndKinds = (list: { path: string; kind: string }[]) => list.map(({ path, kind }) => ({ path, kind }));

const test = mountTest(uvuTest);
let base = '';
let home = '';
let root = '';
let driver: Overlay2Driver;

test.before(async () => {
  base = tempDir('ovl2-thin-');
  home = join(base, 'overlay2');
  driver = await Overlay2Driver.init(home);
  root = join(home, 'cvmfs');
});
test.after(async () => {
  await driver?.cleanup();
  removeTree(base);
});

const lowerOf = (id: string) => readFileSync(join(home, id, 'lower'), 'utf8').split(':');

test('a one-file thin.json tar makes a thin layer with the fork\'s files; a container above an init layer sees the trees', async () => {
  const refs = publishTrees(root, 'repo.example.org', STANDARD_TREES);
  const tar = thinTarOf(refs, 'test:standard');
  await driver.create('thin1');
  const size = await driver.applyDiff('thin1', null, tar);
  assert.is(size, serializeManifest({ layers: refs, origin: 'test:standard' }).length);
  // the fork's layout: lower = l/<link> per tree, top first; each link "../cvmfs/<repo>/<path>"
  const lower = lowerOf('thin1');
  assert.is(lower.length, 3);
  assert.equal(lower.map((e) => readlinkSync(join(home, e))),
    [...refs].reverse().map((r) => `../cvmfs/repo.example.org/${r.path}`));
  assert.is(existsSync(join(home, 'thin1', THIN_PENDING_FILE)), false);
  // get of the thin layer: its diff dir, nothing mounted
  assert.is(await driver.get('thin1'), join(home, 'thin1', 'diff'));
  assert.is(isMounted(join(home, 'thin1', 'merged')), false);
  await driver.put('thin1');
  // diff is the applied bytes; changes and size are the manifest alone
  assert.ok(Buffer.from(await text(await driver.diff('thin1')), 'latin1').length > 0);
  const chunks: Buffer[] = [];
  for await (const c of await driver.diff('thin1', null)) chunks.push(c as Buffer);
  assert.ok(Buffer.concat(chunks).equals(tar));
  assert.equal(pathsAndKinds(await driver.changes('thin1')), [{ path: '/thin.json', kind: 'A' }]);
  assert.is(await driver.diffSize('thin1'), size);

  await driver.create('thin1-init', 'thin1');
  assert.is(readFileSync(join(home, 'thin1-init', 'thin_parent'), 'utf8'), 'thin1');
  assert.equal(lowerOf('thin1-init'), lower);
  await driver.createReadWrite('c1', 'thin1-init');
  assert.is(existsSync(join(home, 'c1', 'thin_parent')), false);
  assert.is(await driver.parentOf('thin1-init'), 'thin1');
  assert.is(await driver.parentOf('c1'), 'thin1-init');
  assert.is(await driver.isParent('thin1-init', 'thin1'), true);
  const merged = await driver.get('c1');
  assert.equal(snapshot(merged), STANDARD_VIEW);
  writeFileSync(join(merged, 'etc', 'added'), 'new\n');
  rmSync(join(merged, 'etc', 'motd'));
  await driver.put('c1');
  assert.equal(pathsAndKinds(await driver.changes('c1', 'thin1-init')), [
    { path: '/etc', kind: 'C' }, { path: '/etc/added', kind: 'A' }, { path: '/etc/motd', kind: 'D' }]);
  assert.is(await driver.diffSize('c1', 'thin1-init'), 4);
  // the thin layer cannot go while layers stand on it
  await rejectsWithCode(() => driver.remove('thin1'), 'ERR_LAYER_HAS_CHILDREN');
  await driver.remove('c1');
  await driver.remove('thin1-init');
  const before = snapshot(root);
  await driver.remove('thin1');
  for (const e of lower) assert.is(existsSync(join(home, e)), false, e);
  assert.equal(snapshot(root), before); // nothing under the root touched
});

test('a thin layer on an ordinary parent: trees first, then the parent chain; a digest listed twice mounts once', async () => {
  await driver.create('p1');
  writeTree(join(home, 'p1', 'diff'), { 'parent-file': 'p\n', 'etc/os-release': 'parent\n' });
  const refs = publishTrees(root, 'r2', [['only', { 'from-tree': 't\n' }], ['other', { 'etc/other': 'o\n' }]]);
  await driver.create('thin2', 'p1');
  await driver.applyDiff('thin2', 'p1', thinTarOf([refs[0], refs[1], refs[0]]));
  const lower = lowerOf('thin2');
  assert.is(lower.length, 3); // two trees (the repeat dropped) + p1
  assert.is(await driver.parentOf('thin2'), 'p1');
  assert.is(await driver.isParent('thin2', 'p1'), true);
  await driver.createReadWrite('c2', 'thin2');
  const view = snapshot(await driver.get('c2'));
  assert.is(view['/parent-file'], 'p\n');
  assert.is(view['/from-tree'], 't\n');
  assert.is(view['/etc/os-release'], 'parent\n');
  assert.is(view['/thin.json'], undefined);
  await driver.put('c2');
});

test('a tar that ships thin.json among other files is an ordinary layer', async () => {
  const { tarOf, file } = await import('./apply-tar.js');
  await driver.create('notthin');
  const refs = publishTrees(root, 'r3', [['x', { f: '1' }]]);
  await driver.applyDiff('notthin', null, tarOf(file('thin.json', serializeManifest({ layers: refs })), file('other', 'o')));
  assert.is(existsSync(join(home, 'notthin', 'lower')), false);
  await driver.createReadWrite('c3', 'notthin');
  const view = snapshot(await driver.get('c3'));
  assert.ok(view['/thin.json'] !== undefined && view['/other'] === 'o');
  await driver.put('c3');
  // nor a thin.json that is a symlink, a directory, or one file in a subdirectory
  const { symlink, dir } = await import('./apply-tar.js');
  for (const [i, tar] of [
    tarOf(symlink('thin.json', '/etc/passwd')),
    tarOf(dir('thin.json/')),
    tarOf(dir('sub/'), file('sub/thin.json', serializeManifest({ layers: refs }))),
  ].entries()) {
    await driver.create(`notthin${i}`);
    await driver.applyDiff(`notthin${i}`, null, tar);
    assert.is(existsSync(join(home, `notthin${i}`, 'lower')), false);
    assert.equal(pathsAndKinds(await driver.changes(`notthin${i}`)), i === 2 ? [{ path: '/sub', kind: 'A' }, { path: '/sub/thin.json', kind: 'A' }] : [{ path: '/thin.json', kind: 'A' }]);
  }
});

test('hostile manifests: refused at apply with their code, the layer left empty, no links made', async () => {
  const links = () => readdirSync(join(home, 'l')).length;
  const cases: Array<[string, string]> = [
    [JSON.stringify({ version: '1.0', layers: [{ digest: `sha256:${digestOf('a')}`, url: 'cvmfs://r/../../../etc' }] }), 'ERR_THIN_UNSAFE_PATH'],
    [JSON.stringify({ version: '1.0', layers: [{ digest: `sha256:${digestOf('a')}`, url: 'cvmfs://$(reboot)/x' }] }), 'ERR_THIN_UNSAFE_PATH'],
    [JSON.stringify({ version: '1.0', layers: [{ digest: `sha256:${digestOf('a')}`, url: 'https://r/x' }] }), 'ERR_THIN_MANIFEST'],
    [JSON.stringify({ version: '1.0', min_version: '9.0', layers: [{ digest: `sha256:${digestOf('a')}`, url: 'cvmfs://r/x' }] }), 'ERR_THIN_VERSION'],
    ['not json', 'ERR_THIN_MANIFEST'],
  ];
  const { manifestTar } = await import('../src/thin/manifest-tar.js');
  for (const [i, [json, codeWanted]] of cases.entries()) {
    const id = `hostile${i}`;
    await driver.create(id);
    const n = links();
    await rejectsWithCode(() => driver.applyDiff(id, null, manifestTar(Buffer.from(json))), codeWanted);
    assert.equal(readdirSync(join(home, id, 'diff')), [], id);
    assert.is(existsSync(join(home, id, 'lower')), false);
    assert.is(existsSync(join(home, id, THIN_PENDING_FILE)), false);
    assert.is(links(), n);
    await driver.remove(id);
  }
});

test('the fork\'s earlier .thin form: {digest, repo} entries, top first, resolve to REPO/layers/DIGEST', async () => {
  const refs = publishTrees(root, 'old.example.org', STANDARD_TREES);
  const { manifestTar } = await import('../src/thin/manifest-tar.js');
  const dotThin = JSON.stringify({ version: '0.1', layers: [...refs].reverse().map((r) => ({ digest: r.digest.slice(7), repo: r.repo, location: 'layers' })) });
  await driver.create('old-thin');
  await driver.applyDiff('old-thin', null, manifestTar(Buffer.from(dotThin), '.thin'));
  assert.equal(lowerOf('old-thin').map((e) => readlinkSync(join(home, e))),
    [...refs].reverse().map((r) => `../cvmfs/old.example.org/${r.path}`));
  assert.equal(pathsAndKinds(await driver.changes('old-thin')), [{ path: '/.thin', kind: 'A' }]);
  await driver.createReadWrite('c-old', 'old-thin');
  assert.equal(snapshot(await driver.get('c-old')), STANDARD_VIEW);
  await driver.put('c-old');
});

test('a manifest listing more trees than a mount can take is ERR_MAX_DEPTH, the layer left empty', async () => {
  const layers = Array.from({ length: driver.maxDepth + 1 }, (_, i) => {
    const hex = i.toString(16).padStart(64, '0');
    return { digest: `sha256:${hex}`, repo: 'many', path: `layers/${hex}` };
  });
  await driver.create('too-deep');
  await rejectsWithCode(() => driver.applyDiff('too-deep', null, thinTarOf(layers)), 'ERR_MAX_DEPTH');
  assert.equal(readdirSync(join(home, 'too-deep', 'diff')), []);
  await driver.remove('too-deep');
});

test('trees that are missing, or symlinks out of the repository: clear errors at mount, nothing mounted', async () => {
  mkdirSync(join(root, 'evil', 'layers'), { recursive: true });
  symlinkSync('/etc', join(root, 'evil', 'layers', 'abs'));
  symlinkSync('../../../../..', join(root, 'evil', 'layers', 'climb'));
  mkdirSync(join(root, 'evil', 'inside'), { recursive: true });
  symlinkSync('../inside', join(root, 'evil', 'layers', 'fine'));
  symlinkSync(join(root, 'evil'), join(root, 'linkedrepo'));
  const d = (n: string) => `sha256:${digestOf(n)}`;
  const cases: Array<[string, string, string]> = [
    ['abs', 'cvmfs://evil/layers/abs', 'ERR_THIN_UNSAFE_PATH'],
    ['climb', 'cvmfs://evil/layers/climb', 'ERR_THIN_UNSAFE_PATH'],
    ['missing', 'cvmfs://evil/layers/none', 'ERR_THIN_LAYER_MISSING'],
    ['norepo', 'cvmfs://not-mounted/layers/x', 'ERR_THIN_ROOT_NOT_MOUNTED'],
    ['linkedrepo', 'cvmfs://linkedrepo/inside', 'ERR_THIN_UNSAFE_PATH'],
  ];
  const { manifestTar } = await import('../src/thin/manifest-tar.js');
  for (const [name, url, want] of cases) {
    await driver.create(`t-${name}`);
    await driver.applyDiff(`t-${name}`, null, manifestTar(Buffer.from(JSON.stringify({ version: '1.0', layers: [{ digest: d(name), url }] }))));
    await driver.createReadWrite(`c-${name}`, `t-${name}`);
    const err = await rejectsWithCode(() => driver.get(`c-${name}`), want);
    assert.ok(err.message.includes(`c-${name}`), err.message);
    assert.is(isMounted(join(home, `c-${name}`, 'merged')), false);
  }
  // a symlink that stays inside the repository is followed
  await driver.create('t-fine');
  await driver.applyDiff('t-fine', null, manifestTar(Buffer.from(JSON.stringify({ version: '1.0', layers: [{ digest: d('fine'), url: 'cvmfs://evil/layers/fine' }] }))));
  await driver.createReadWrite('c-fine', 't-fine');
  await driver.get('c-fine');
  await driver.put('c-fine');
});

test('an apply that died between its swap and its lower is finished by the next init', async () => {
  const refs = publishTrees(root, 'r4', [['crash', { 'crash-file': 'c\n' }]]);
  await driver.create('crashy');
  await driver.applyDiff('crashy', null, thinTarOf(refs));
  const lower = lowerOf('crashy');
  // put it back to the moment after the swap: manifest in diff/, the plan written, no links, no lower
  const { readFileSync: rf } = await import('node:fs');
  const linkIds = lower.map((e) => e.slice(2));
  const plan = { links: linkIds.map((linkId, i) => ({ linkId, target: readlinkSync(join(home, lower[i])) })), parentLower: [] };
  for (const e of lower) rmSync(join(home, e));
  rmSync(join(home, 'crashy', 'lower'));
  writeFileSync(join(home, 'crashy', THIN_PENDING_FILE), JSON.stringify(plan));
  recordDeadUser(home);
  void rf;
  const again = await Overlay2Driver.init(home);
  assert.equal(lowerOf('crashy'), lower);
  assert.is(existsSync(join(home, 'crashy', THIN_PENDING_FILE)), false);
  await again.createReadWrite('c-crashy', 'crashy');
  assert.is(snapshot(await again.get('c-crashy'))['/crash-file'], 'c\n');
  await again.put('c-crashy');
});

test('init keeps links into the root while a repository is not mounted (it does drop dangling layer links)', async () => {
  const refs = publishTrees(root, 'r5', [['gone', { g: '1' }]]);
  await driver.create('t-gone');
  await driver.applyDiff('t-gone', null, thinTarOf(refs));
  const lower = lowerOf('t-gone');
  rmSync(join(root, 'r5'), { recursive: true });
  symlinkSync('../nolayer/diff', join(home, 'l', 'DANGLINGDANGLINGDANGLING00'));
  recordDeadUser(home);
  await Overlay2Driver.init(home);
  assert.is(readlinkSync(join(home, lower[0])).startsWith('../cvmfs/r5/'), true);
  assert.is(existsSync(join(home, 'l', 'DANGLINGDANGLINGDANGLING00')), false);
  await driver.createReadWrite('c-gone', 't-gone');
  await rejectsWithCode(() => driver.get('c-gone'), 'ERR_THIN_ROOT_NOT_MOUNTED');
});

test('a home laid out by the fork opens and mounts: links as it writes them, thin_parent one level only', async () => {
  const forkHome = join(base, 'forkhome');
  const forkRoot = join(forkHome, 'cvmfs');
  const refs = publishTrees(forkRoot, 'docker2cvmfs-ci.cern.ch', STANDARD_TREES);
  mkdirSync(join(forkHome, 'l'), { recursive: true, mode: 0o700 });
  const layer = (id: string, link: string, lower: string[] | null, files: Record<string, string> = {}) => {
    mkdirSync(join(forkHome, id, 'diff'), { recursive: true });
    for (const [n, c] of Object.entries(files)) writeFileSync(join(forkHome, id, 'diff', n), c);
    writeFileSync(join(forkHome, id, 'link'), link);
    symlinkSync(`../${id}/diff`, join(forkHome, 'l', link));
    if (lower) {
      mkdirSync(join(forkHome, id, 'work'));
      writeFileSync(join(forkHome, id, 'lower'), lower.join(':'));
    }
  };
  // the fork's ApplyDiff: one random link per listed layer, "../cvmfs/<repo>/<folder>", reverse order
  const thinLinks = [...refs].reverse().map((r, i) => {
    const lid = `FORKTHINLINK${i}AAAAAAAAAAAAAA`.slice(0, 26);
    symlinkSync(`../cvmfs/${r.repo}/${r.path}`, join(forkHome, 'l', lid));
    return `l/${lid}`;
  });
  const thinJson = JSON.stringify({ version: '1.0', min_version: '1.0', layers: refs.map((r) => ({ digest: r.digest, url: `cvmfs://${r.repo}/${r.path}` })) });
  layer('forkthin', 'FORKTHINSELFAAAAAAAAAAAAAA', thinLinks, { 'thin.json': thinJson });
  layer('forkinit', 'FORKINITAAAAAAAAAAAAAAAAAA', thinLinks, { '.dockerenv': '' });
  writeFileSync(join(forkHome, 'forkinit', 'thin_parent'), 'forkthin');
  layer('forkctr', 'FORKCTRAAAAAAAAAAAAAAAAAAA', ['l/FORKINITAAAAAAAAAAAAAAAAAA', ...thinLinks]);
  const fd = await Overlay2Driver.init(forkHome, ['cvmfsMountMethod=external']);
  try {
    assert.is(await fd.get('forkthin'), join(forkHome, 'forkthin', 'diff'));
    await fd.put('forkthin');
    assert.is(await fd.parentOf('forkinit'), 'forkthin');
    assert.is(await fd.parentOf('forkctr'), 'forkinit');
    const view = snapshot(await fd.get('forkctr'));
    assert.equal(view, { ...STANDARD_VIEW, '/.dockerenv': '' });
    await fd.put('forkctr');
    assert.is(fd.thinLayers.nearestThin('forkctr'), 'forkthin');
  } finally {
    await fd.cleanup();
  }
});

test.run();
