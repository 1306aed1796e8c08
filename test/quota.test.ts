// overlay2.size / --storage-opt size on real XFS filesystems (loop devices): with project quotas the
// limit holds; without them the option is refused with the reason.
import * as assert from 'uvu/assert';
import { test as uvuTest } from 'uvu';
import { execFileSync } from 'node:child_process';
import { writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Overlay2Driver } from '../src/driver.js';
import { mountTest, tempDir, removeTree, rejectsWithCode, canMountOverlay, testIf } from './support/env.js';

function have(cmd: string): boolean {
  try { execFileSync('sh', ['-c', `command -v ${cmd}`]); return true; } catch { return false; }
}

/** Makes an XFS image and mounts it; returns false when the kernel refuses the options. */
function mountXfs(img: string, dir: string, options: string): boolean {
  execFileSync('truncate', ['-s', '320M', img]);
  execFileSync('mkfs.xfs', ['-q', '-f', '-n', 'ftype=1', img]);
  mkdirSync(dir, { recursive: true });
  try {
    execFileSync('mount', ['-o', `loop${options ? ',' + options : ''}`, img, dir], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

const base = tempDir();
const canXfs = canMountOverlay && have('mkfs.xfs') && existsSync('/dev/loop-control');
const plainMounted = canXfs && mountXfs(join(base, 'plain.img'), join(base, 'plain'), '');
const quotaMounted = plainMounted && mountXfs(join(base, 'quota.img'), join(base, 'quota'), 'prjquota');
const withXfs = mountTest(testIf(plainMounted, 'the xfs quota tests', 'needs root, mkfs.xfs (xfsprogs), loop devices and xfs'));
const withQuota = mountTest(testIf(quotaMounted, 'the project-quota limit tests',
  plainMounted ? 'this kernel mounts xfs but refuses prjquota (built without XFS quota support)' : 'no xfs here'));
const mnt = join(base, 'quota');

uvuTest.after(() => {
  for (const d of ['quota', 'plain']) {
    try { execFileSync('umount', ['-R', '-l', join(base, d)], { stdio: 'pipe' }); } catch { /* not mounted */ }
  }
  removeTree(base);
});

withXfs('xfs without project quotas: overlay2.size and --storage-opt size are refused with the reason', async () => {
  const home = join(base, 'plain', 'home');
  const e = await rejectsWithCode(() => Overlay2Driver.init(home, ['overlay2.size=1G']), 'ERR_NOT_SUPPORTED');
  assert.match(e.message, /prjquota/);
  const driver = await Overlay2Driver.init(home);
  assert.is(driver.features.backingFs, 'xfs');
  assert.not.ok(driver.features.projectQuota);
  await driver.create('img');
  await rejectsWithCode(() => driver.createReadWrite('c', 'img', { storageOpt: { size: '8M' } }), 'ERR_NOT_SUPPORTED');
  assert.is(await driver.exists('c'), false);
});

withQuota('a read-write layer with --storage-opt size cannot grow past its limit', async () => {
  const driver = await Overlay2Driver.init(join(mnt, 'home'));
  assert.ok(driver.features.projectQuota);
  await driver.create('base');
  await driver.createReadWrite('ctr', 'base', { storageOpt: { size: '8M' } });
  assert.equal((await driver.getQuota('ctr'))?.limitBytes, 8 * 1024 * 1024);
  const root = await driver.get('ctr');
  try {
    writeFileSync(join(root, 'small'), Buffer.alloc(4 * 1024 * 1024));
    let err: NodeJS.ErrnoException | undefined;
    try { writeFileSync(join(root, 'big'), Buffer.alloc(8 * 1024 * 1024)); } catch (e) { err = e as NodeJS.ErrnoException; }
    assert.ok(err && ['EDQUOT', 'ENOSPC'].includes(err.code ?? ''), `write past the quota fails (${err?.code})`);
  } finally {
    await driver.put('ctr');
  }
  assert.is(await driver.getQuota('base'), null);
  await driver.cleanup();
});

withQuota('overlay2.size is the default for read-write layers; project ids stay unique across restarts', async () => {
  const home = join(mnt, 'home2');
  const d1 = await Overlay2Driver.init(home, ['overlay2.size=16M']);
  await d1.create('img');
  await d1.createReadWrite('c1', 'img');
  assert.equal((await d1.getQuota('c1'))?.limitBytes, 16 * 1024 * 1024);
  assert.is(await d1.getQuota('img'), null, 'image layers get no quota');
  const d2 = await Overlay2Driver.init(home, ['overlay2.size=16M']);
  await d2.createReadWrite('c2', 'img', { storageOpt: { size: '4M' } });
  assert.equal((await d2.getQuota('c2'))?.limitBytes, 4 * 1024 * 1024);
  assert.equal((await d2.getQuota('c1'))?.limitBytes, 16 * 1024 * 1024, 'c1 keeps its own project');
  assert.ok(existsSync(join(home, 'backingFsBlockDev')));
});

uvuTest.run();
