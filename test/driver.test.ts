// The driver end to end on real overlay mounts: layers, mounts, refcounts, the on-disk layout.
import * as assert from 'uvu/assert';
import { test as uvuTest } from 'uvu';
import { promises as fsp, readFileSync, readlinkSync, statSync, existsSync, writeFileSync, mkdirSync, symlinkSync, lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Overlay2Driver } from '../src/driver.js';
import { mountTest, tempDir, removeTree, isMounted, rejectsWithCode } from './support/env.js';
import { recordDeadUser } from './support/dead-user.js';

const test = mountTest(uvuTest);
let base = '';
let home = '';
let driver: Overlay2Driver;

test.before(async () => {
  base = tempDir();
  home = join(base, 'overlay2');
  driver = await Overlay2Driver.init(home);
});
test.after(async () => {
  await driver?.cleanup();
  removeTree(base);
});

test('init creates the home and l/ with moby modes and detects features', async () => {
  assert.is(statSync(home).mode & 0o7777, 0o710);
  assert.is(statSync(join(home, 'l')).mode & 0o7777, 0o700);
  const status = Object.fromEntries(driver.status());
  assert.is(status['Backing Filesystem'].length > 0, true);
  assert.is(status['Supports d_type'], 'true');
  assert.is(status['Native Overlay Diff'], 'true');
  assert.is(status['userxattr'], 'false');
  assert.ok('Using metacopy' in status);
});

test('create of a base layer: Docker layout, empty 0755 diff, no lower/work', async () => {
  await driver.create('base1');
  const dir = join(home, 'base1');
  assert.is(statSync(dir).mode & 0o7777, 0o710);
  assert.is(statSync(join(dir, 'diff')).mode & 0o7777, 0o755);
  assert.equal(await fsp.readdir(join(dir, 'diff')), []);
  const link = readFileSync(join(dir, 'link'), 'utf8');
  assert.match(link, /^[A-Z2-7]{26}$/);
  assert.is(readlinkSync(join(home, 'l', link)), '../base1/diff');
  assert.is(existsSync(join(dir, 'lower')), false);
  assert.is(existsSync(join(dir, 'work')), false);
  assert.is(await driver.exists('base1'), true);
  // a base layer "mounts" as its diff dir
  assert.is(await driver.get('base1'), join(dir, 'diff'));
  await driver.put('base1');
});

test('base content with files, dirs, symlinks and modes reads back through a child mount', async () => {
  await driver.create('base2');
  const d = join(home, 'base2', 'diff');
  mkdirSync(join(d, 'etc'), { mode: 0o750 });
  writeFileSync(join(d, 'etc', 'hostname'), 'layer-host\n', { mode: 0o640 });
  writeFileSync(join(d, 'run.sh'), '#!/bin/sh\n', { mode: 0o755 });
  await fsp.chmod(join(d, 'run.sh'), 0o4755);
  await fsp.chmod(join(d, 'etc'), 0o750);
  symlinkSync('etc/hostname', join(d, 'link'));
  await fsp.chown(join(d, 'etc', 'hostname'), 1234, 5678);
  await driver.create('snap2', 'base2');
  const lower = readFileSync(join(home, 'snap2', 'lower'), 'utf8');
  assert.is(lower, 'l/' + readFileSync(join(home, 'base2', 'link'), 'utf8'));
  assert.is(existsSync(join(home, 'base2', 'committed')), true);
  assert.is(statSync(join(home, 'snap2', 'work')).mode & 0o7777, 0o700);
  const root = await driver.get('snap2');
  try {
    assert.is(root, join(home, 'snap2', 'merged'));
    assert.ok(isMounted(root));
    assert.is(readFileSync(join(root, 'etc', 'hostname'), 'utf8'), 'layer-host\n');
    assert.is(statSync(join(root, 'etc', 'hostname')).mode & 0o7777, 0o640);
    assert.is(statSync(join(root, 'etc', 'hostname')).uid, 1234);
    assert.is(statSync(join(root, 'etc')).mode & 0o7777, 0o750);
    assert.is(statSync(join(root, 'run.sh')).mode & 0o7777, 0o4755);
    assert.is(readlinkSync(join(root, 'link')), 'etc/hostname');
    assert.is(readFileSync(join(root, 'link'), 'utf8'), 'layer-host\n');
  } finally {
    await driver.put('snap2');
  }
  assert.is(isMounted(join(home, 'snap2', 'merged')), false);
  assert.is(existsSync(join(home, 'snap2', 'merged')), false, 'put removes merged/');
});

test('a write in a read-write layer lands in its upper dir, not in the parent', async () => {
  await driver.create('base3');
  writeFileSync(join(home, 'base3', 'diff', 'a'), 'from base');
  await driver.createReadWrite('rw3', 'base3');
  const root = await driver.get('rw3');
  try {
    writeFileSync(join(root, 'a'), 'from container');
    writeFileSync(join(root, 'new'), 'new file');
  } finally {
    await driver.put('rw3');
  }
  assert.is(readFileSync(join(home, 'rw3', 'diff', 'a'), 'utf8'), 'from container');
  assert.is(readFileSync(join(home, 'rw3', 'diff', 'new'), 'utf8'), 'new file');
  assert.is(readFileSync(join(home, 'base3', 'diff', 'a'), 'utf8'), 'from base');
  const meta = await driver.getMetadata('rw3');
  assert.is(meta.UpperDir, join(home, 'rw3', 'diff'));
  assert.is(meta.LowerDir, join(home, 'base3', 'diff'));
  assert.is(meta.WorkDir, join(home, 'rw3', 'work'));
  assert.is(meta.MergedDir, join(home, 'rw3', 'merged'));
});

test('a layer whose child exists (committed) mounts read-only with its diff as a lower', async () => {
  await driver.create('c-base');
  await driver.create('c-mid', 'c-base');
  writeFileSync(join(home, 'c-mid', 'diff', 'mid'), 'mid');
  await driver.create('c-top', 'c-mid');
  assert.ok(existsSync(join(home, 'c-mid', 'committed')));
  const root = await driver.get('c-mid');
  try {
    assert.is(readFileSync(join(root, 'mid'), 'utf8'), 'mid');
    let err: NodeJS.ErrnoException | undefined;
    try { writeFileSync(join(root, 'x'), 'x'); } catch (e) { err = e as NodeJS.ErrnoException; }
    assert.is(err?.code, 'EROFS');
  } finally {
    await driver.put('c-mid');
  }
});

test('get twice, put once: still mounted; the second put unmounts', async () => {
  await driver.create('r-base');
  await driver.create('r1', 'r-base');
  const a = await driver.get('r1');
  const b = await driver.get('r1');
  assert.is(a, b);
  await driver.put('r1');
  assert.ok(isMounted(a), 'still mounted after one put');
  await driver.put('r1');
  assert.not.ok(isMounted(a));
});

test('parallel get/put on one id never double-mounts or leaks', async () => {
  await driver.create('p-base');
  await driver.create('p1', 'p-base');
  const merged = join(home, 'p1', 'merged');
  const rounds = Array.from({ length: 40 }, async (_, i) => {
    const root = await driver.get('p1');
    assert.is(root, merged);
    assert.ok(isMounted(merged), `mounted while held (${i})`);
    await new Promise((r) => setTimeout(r, i % 3));
    await driver.put('p1');
  });
  await Promise.all(rounds);
  assert.not.ok(isMounted(merged));
  const count = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4] === merged).length;
  assert.is(count, 0);
});

test('remove drops the layer and its l/ link, unmounting it first', async () => {
  await driver.create('x-base');
  await driver.create('x1', 'x-base');
  const link = readFileSync(join(home, 'x1', 'link'), 'utf8');
  const root = await driver.get('x1');
  await driver.remove('x1');
  assert.not.ok(isMounted(root));
  assert.is(existsSync(join(home, 'x1')), false);
  assert.throws(() => lstatSync(join(home, 'l', link)));
  assert.is(await driver.exists('x1'), false);
  assert.equal(await fsp.readdir(join(home, '.partial')).catch(() => []), []);
});

test('cleanup unmounts every mount of the home', async () => {
  await driver.create('k-base');
  await driver.create('k1', 'k-base');
  await driver.create('k2', 'k-base');
  const a = await driver.get('k1');
  const b = await driver.get('k2');
  await driver.cleanup();
  assert.not.ok(isMounted(a));
  assert.not.ok(isMounted(b));
  // usable again after cleanup
  const again = await driver.get('k1');
  assert.ok(isMounted(again));
  await driver.put('k1');
});

test('two drivers on two homes in one process do not interfere', async () => {
  const other = await Overlay2Driver.init(join(base, 'second'));
  await other.create('shared-name');
  await driver.create('shared-name');
  await other.create('child', 'shared-name');
  writeFileSync(join(base, 'second', 'shared-name', 'diff', 'who'), 'second');
  writeFileSync(join(home, 'shared-name', 'diff', 'who'), 'first');
  const root = await other.get('child');
  assert.is(readFileSync(join(root, 'who'), 'utf8'), 'second');
  assert.is(await driver.exists('child'), false);
  await other.put('child');
  await other.cleanup();
});

test('list and parentOf read the layer graph back', async () => {
  await driver.create('g-base');
  await driver.create('g-child', 'g-base');
  const ids = await driver.list();
  assert.ok(ids.includes('g-base') && ids.includes('g-child'));
  assert.not.ok(ids.includes('l'));
  assert.is(await driver.parentOf('g-child'), 'g-base');
  assert.is(await driver.parentOf('g-base'), '');
});

test('init clears what an interrupted create or applyDiff left behind', async () => {
  await driver.create('s-base');
  mkdirSync(join(home, 's-base', '.staging-diff-123-abc', 'half'), { recursive: true });
  mkdirSync(join(home, '.partial', 'half-made.xyz', 'diff'), { recursive: true });
  symlinkSync('../gone/diff', join(home, 'l', 'AAAAAAAAAAAAAAAAAAAAAAAAAA'));
  recordDeadUser(home);
  await Overlay2Driver.init(home);
  assert.is(existsSync(join(home, 's-base', '.staging-diff-123-abc')), false);
  assert.is(existsSync(join(home, '.partial', 'half-made.xyz')), false);
  assert.throws(() => lstatSync(join(home, 'l', 'AAAAAAAAAAAAAAAAAAAAAAAAAA')));
  assert.ok(await driver.exists('s-base'));
});

test('a mount label is accepted (context= only where SELinux is on)', async () => {
  await driver.create('lbl-base');
  await driver.create('lbl', 'lbl-base');
  const root = await driver.get('lbl', 'system_u:object_r:container_file_t:s0:c1,c2');
  assert.ok(isMounted(root));
  await driver.put('lbl');
});

test('errors: invalid ids', async () => {
  for (const bad of ['', '.', '..', 'a/b', 'a\0b', 'x'.repeat(256), 'l', '.hidden']) {
    await rejectsWithCode(() => driver.create(bad), 'ERR_INVALID_ID');
    await rejectsWithCode(() => driver.get(bad), 'ERR_INVALID_ID');
    await rejectsWithCode(() => driver.remove(bad), 'ERR_INVALID_ID');
  }
  await rejectsWithCode(() => driver.create('ok-id', '../escape'), 'ERR_INVALID_ID');
});

test('hostile: an id, a lower file or a label cannot rewrite the mount options (victim outside the home untouched)', async () => {
  const victim = join(base, 'victim');
  mkdirSync(victim, { recursive: true });
  writeFileSync(join(victim, 'keep'), 'precious\n');
  const before = JSON.stringify(readdirTree(victim));
  await driver.create('inj-base');
  // The id that once became "upperdir=../work" in the mount data.
  for (const bad of ['q,upperdir=..', `q,upperdir=${victim}`, 'q:l', 'q\\,upperdir=..', 'q\nupperdir=..']) {
    await rejectsWithCode(() => driver.create(bad, 'inj-base'), 'ERR_INVALID_ID');
    await rejectsWithCode(() => driver.createReadWrite(bad, 'inj-base'), 'ERR_INVALID_ID');
  }
  // A tampered lower file (a foreign or damaged store) is refused before it reaches mount data.
  await driver.create('inj', 'inj-base');
  const lowerFile = join(home, 'inj', 'lower');
  const good = readFileSync(lowerFile, 'utf8');
  writeFileSync(lowerFile, `${good},upperdir=${victim}`);
  await rejectsWithCode(() => driver.get('inj'), 'ERR_INVALID_ID');
  writeFileSync(lowerFile, `l/../../${victim}`);
  await rejectsWithCode(() => driver.get('inj'), 'ERR_INVALID_ID');
  writeFileSync(lowerFile, good);
  // A label that could leave its quotes.
  await rejectsWithCode(() => driver.get('inj', `x",upperdir=${victim},context="y`), 'ERR_BAD_OPTION');
  await rejectsWithCode(() => driver.get('inj', 'x\\'), 'ERR_BAD_OPTION');
  const root = await driver.get('inj');
  writeFileSync(join(root, 'written-through-mount'), 'x');
  await driver.put('inj');
  assert.ok(existsSync(join(home, 'inj', 'diff', 'written-through-mount')), 'the write landed in the layer');
  assert.is(JSON.stringify(readdirTree(victim)), before, 'the victim outside the home is untouched');
});

function readdirTree(dir: string): Array<[string, number, number]> {
  return readdirSync(dir).sort().map((n) => { const st = lstatSync(join(dir, n)); return [n, st.ino, st.mtimeMs] as [string, number, number]; });
}

test('errors: missing layers and parents, duplicates', async () => {
  const e = await rejectsWithCode(() => driver.create('orphan', 'no-such-parent'), 'ERR_LAYER_NOT_FOUND');
  assert.match(e.message, /no-such-parent/);
  assert.is(existsSync(join(home, 'orphan')), false, 'nothing created');
  await rejectsWithCode(() => driver.get('no-such'), 'ERR_LAYER_NOT_FOUND');
  await rejectsWithCode(() => driver.put('no-such'), 'ERR_LAYER_NOT_FOUND');
  await rejectsWithCode(() => driver.remove('no-such'), 'ERR_LAYER_NOT_FOUND');
  await rejectsWithCode(() => driver.getMetadata('no-such'), 'ERR_LAYER_NOT_FOUND');
  await driver.create('dup');
  await rejectsWithCode(() => driver.create('dup'), 'ERR_LAYER_EXISTS');
});

test('errors: options', async () => {
  await rejectsWithCode(() => Overlay2Driver.init(join(base, 'o1'), ['overlay2.bogus=1']), 'ERR_BAD_OPTION');
  await rejectsWithCode(() => Overlay2Driver.init(join(base, 'o2'), ['overlay2.override_kernel_check=maybe']), 'ERR_BAD_OPTION');
  await rejectsWithCode(() => Overlay2Driver.init(join(base, 'o3'), ['novalue']), 'ERR_BAD_OPTION');
  await rejectsWithCode(() => Overlay2Driver.init(join(base, 'o4'), ['overlay2.size=12zz']), 'ERR_BAD_OPTION');
  await rejectsWithCode(() => Overlay2Driver.init('relative/home'), 'ERR_BAD_OPTION');
  await rejectsWithCode(() => Overlay2Driver.init(join(base, 'a:b')), 'ERR_BAD_OPTION');
  const ok = await Overlay2Driver.init(join(base, 'o5'), ['overlay2.override_kernel_check=true']);
  assert.is(ok.options.overrideKernelCheck, true);
  await driver.create('q-base');
  await rejectsWithCode(() => driver.create('q1', 'q-base', { storageOpt: { size: '1G' } }), 'ERR_BAD_OPTION');
  await rejectsWithCode(() => driver.createReadWrite('q2', 'q-base', { storageOpt: { bogus: '1' } }), 'ERR_BAD_OPTION');
});

test('errors: overlay2.size without XFS project quotas is refused clearly', async () => {
  if (driver.features.projectQuota) return; // covered by the quota test on xfs
  const e = await rejectsWithCode(() => Overlay2Driver.init(join(base, 'qs'), ['overlay2.size=10G']), 'ERR_NOT_SUPPORTED');
  assert.match(e.message, /overlay2\.size/);
  const e2 = await rejectsWithCode(() => driver.createReadWrite('q3', 'q-base', { storageOpt: { size: '1G' } }), 'ERR_NOT_SUPPORTED');
  assert.match(e2.message, /xfs/);
  assert.is(existsSync(join(home, 'q3')), false);
});

test('errors: a home on an overlay mount is an incompatible backing filesystem', async () => {
  await driver.create('inc-base');
  await driver.create('inc', 'inc-base');
  const root = await driver.get('inc');
  try {
    const e = await rejectsWithCode(() => Overlay2Driver.init(join(root, 'nested-home')), 'ERR_INCOMPATIBLE_FS');
    assert.match(e.message, /overlay/);
  } finally {
    await driver.put('inc');
  }
});

test.run();
