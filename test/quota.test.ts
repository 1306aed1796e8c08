// overlay2.size / --storage-opt size on real file systems (loop devices), the same tests on XFS
// (prjquota) and ext4 (-O quota,project, prjquota): with project quotas the limit holds, ids survive
// restarts and removal frees the project; without them the option is refused with the reason.
import * as assert from 'uvu/assert';
import { test as uvuTest } from 'uvu';
import { execFileSync } from 'node:child_process';
import { writeFileSync, existsSync, mkdirSync, openSync, closeSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { Overlay2Driver } from '../src/driver.js';
import { loadShim } from '../src/native/shim.js';
import { mountTest, tempDir, removeTree, rejectsWithCode, canMountOverlay, testIf, have } from './support/env.js';

interface QuotaFs {
  name: 'xfs' | 'ext4';
  backingFs: string;
  tool: string;
  mkfs(img: string, withQuota: boolean): void;
}

const FILESYSTEMS: QuotaFs[] = [
  {
    name: 'xfs', backingFs: 'xfs', tool: 'mkfs.xfs',
    mkfs: (img) => execFileSync('mkfs.xfs', ['-q', '-f', '-n', 'ftype=1', img], { stdio: 'pipe' }),
  },
  {
    name: 'ext4', backingFs: 'extfs', tool: 'mkfs.ext4',
    mkfs: (img, withQuota) => execFileSync('mkfs.ext4', ['-q', '-F', ...(withQuota ? ['-O', 'quota,project'] : []), img], { stdio: 'pipe' }),
  },
];

/** Makes an image and loop-mounts it; returns false when the kernel refuses the file system or options. */
function mountImage(fs: QuotaFs, img: string, dir: string, withQuota: boolean): boolean {
  try {
    mkdirSync(dirname(img), { recursive: true });
    execFileSync('truncate', ['-s', '320M', img]);
    fs.mkfs(img, withQuota);
    mkdirSync(dir, { recursive: true });
    execFileSync('mount', ['-o', `loop${withQuota ? ',prjquota' : ''}`, img, dir], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

const base = tempDir();
const shim = loadShim();
const canLoop = canMountOverlay && existsSync('/dev/loop-control');

function projectOf(dir: string): number {
  const fd = openSync(dir, 'r');
  try { return shim.fsxattrGet(fd).projid; } finally { closeSync(fd); }
}

/** A project's record; XFS answers ENOENT for a project with no limit and no usage. */
function project(device: string, projid: number): { limitBytes: number; usedBytes: number } {
  try {
    return shim.xfsQuotaGet(device, projid);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { limitBytes: 0, usedBytes: 0 };
    throw e;
  }
}

uvuTest.after(() => {
  for (const fs of FILESYSTEMS) {
    for (const d of ['quota', 'plain']) {
      try { execFileSync('umount', ['-R', '-l', join(base, fs.name, d)], { stdio: 'pipe' }); } catch { /* not mounted */ }
    }
  }
  removeTree(base);
});

for (const fs of FILESYSTEMS) {
  const dir = join(base, fs.name);
  const usable = canLoop && have(fs.tool);
  const plainMounted = usable && mountImage(fs, join(dir, 'plain.img'), join(dir, 'plain'), false);
  const quotaMounted = plainMounted && mountImage(fs, join(dir, 'quota.img'), join(dir, 'quota'), true);
  const withFs = mountTest(testIf(plainMounted, `the ${fs.name} quota tests`,
    `needs root, ${fs.tool}, loop devices and ${fs.name} in the kernel`));
  const withQuota = mountTest(testIf(quotaMounted, `the ${fs.name} project-quota tests`,
    plainMounted ? `this kernel mounts ${fs.name} but refuses prjquota (built without ${fs.name} project-quota support)` : `no ${fs.name} here`));
  const mnt = join(dir, 'quota');

  withFs(`${fs.name} without project quotas: overlay2.size and --storage-opt size are refused with the reason`, async () => {
    const home = join(dir, 'plain', 'home');
    const e = await rejectsWithCode(() => Overlay2Driver.init(home, ['overlay2.size=1G']), 'ERR_NOT_SUPPORTED');
    assert.match(e.message, /prjquota/);
    const driver = await Overlay2Driver.init(home);
    assert.is(driver.features.backingFs, fs.backingFs);
    assert.not.ok(driver.features.projectQuota);
    await driver.create('img');
    const e2 = await rejectsWithCode(() => driver.createReadWrite('c', 'img', { storageOpt: { size: '8M' } }), 'ERR_NOT_SUPPORTED');
    assert.match(e2.message, /--storage-opt size is supported only for overlay over xfs with 'pquota' mount option/, "moby's text");
    assert.is(await driver.exists('c'), false);
  });

  withQuota(`${fs.name}: a read-write layer with --storage-opt size cannot grow past its limit (EDQUOT)`, async () => {
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
      // ext4 answers EDQUOT; XFS answers ENOSPC for a full project (it reports the project's limit as
      // the file system's size, as df inside the container shows).
      // (Node 20's libuv has no name for EDQUOT: its code reads UNKNOWN, its errno is -122.)
      const expected = fs.name === 'ext4' ? -122 /* EDQUOT */ : -28 /* ENOSPC */;
      assert.is(err?.errno, expected, `write past the quota fails with errno ${expected} (${err?.code}: ${err?.message})`);
      const used = (await driver.getQuota('ctr'))?.usedBytes ?? 0;
      assert.ok(used >= 4 * 1024 * 1024 && used <= 8 * 1024 * 1024, `usage ${used} within the limit`);
    } finally {
      await driver.put('ctr');
    }
    assert.is(await driver.getQuota('base'), null);
    await driver.cleanup();
  });

  withQuota(`${fs.name}: overlay2.size is the default for read-write layers; project ids stay unique across restarts`, async () => {
    const home = join(mnt, 'home2');
    const d1 = await Overlay2Driver.init(home, ['overlay2.size=16M']);
    await d1.create('img');
    await d1.createReadWrite('c1', 'img');
    assert.equal((await d1.getQuota('c1'))?.limitBytes, 16 * 1024 * 1024);
    assert.is(await d1.getQuota('img'), null, 'image layers get no quota');
    const d2 = await Overlay2Driver.init(home, ['overlay2.size=16M']);
    assert.equal((await d2.getQuota('c1'))?.limitBytes, 16 * 1024 * 1024, 're-init keeps c1\'s limit');
    await d2.createReadWrite('c2', 'img', { storageOpt: { size: '4M' } });
    assert.equal((await d2.getQuota('c2'))?.limitBytes, 4 * 1024 * 1024);
    assert.equal((await d2.getQuota('c1'))?.limitBytes, 16 * 1024 * 1024, 'c1 keeps its own project');
    const p1 = projectOf(join(home, 'c1')), p2 = projectOf(join(home, 'c2'));
    assert.ok(p1 > 0 && p2 > 0 && p1 !== p2, `distinct project ids (${p1}, ${p2})`);
    assert.is(projectOf(join(home, 'c1', 'diff')), p1, 'diff/ inherits the project');
    const d3 = await Overlay2Driver.init(home, ['overlay2.size=16M']);
    await d3.createReadWrite('c3', 'img');
    const p3 = projectOf(join(home, 'c3'));
    assert.ok(p3 !== p1 && p3 !== p2, `a third run picks a fresh id (${p3})`);
    assert.equal((await d3.getQuota('c2'))?.limitBytes, 4 * 1024 * 1024);
    assert.ok(existsSync(join(home, 'backingFsBlockDev')));
  });

  withQuota(`${fs.name}: removing a layer frees its project's space`, async () => {
    const home = join(mnt, 'home3');
    const driver = await Overlay2Driver.init(home);
    await driver.create('img');
    await driver.createReadWrite('c', 'img', { storageOpt: { size: '16M' } });
    const projid = projectOf(join(home, 'c'));
    const others = [join(mnt, 'home', 'ctr'), join(mnt, 'home2', 'c1'), join(mnt, 'home2', 'c2'), join(mnt, 'home2', 'c3')]
      .filter((p) => existsSync(p)).map(projectOf);
    assert.not.ok(others.includes(projid), `homes on one file system never share a project id (${projid} vs ${others.join(', ')})`);
    const root = await driver.get('c');
    try { writeFileSync(join(root, 'data'), Buffer.alloc(6 * 1024 * 1024)); } finally { await driver.put('c'); }
    const device = join(home, 'backingFsBlockDev');
    assert.ok(project(device, projid).usedBytes >= 6 * 1024 * 1024, 'the project holds the data');
    await driver.remove('c');
    assert.is(project(device, projid).limitBytes, 0, 'the limit is cleared');
    // Freed blocks reach the quota once the inodes are evicted (XFS defers that to a worker): poll.
    const seen: number[] = [];
    for (let i = 0; i < 50; i++) {
      execFileSync('sync');
      seen.push(project(device, projid).usedBytes);
      if (seen.at(-1) === 0) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.is(seen.at(-1), 0, `nothing is charged to the project after remove (usage seen: ${[...new Set(seen)].join(', ')})`);
    // the store is usable and a new limited layer gets its limit
    await driver.createReadWrite('c', 'img', { storageOpt: { size: '8M' } });
    assert.equal((await driver.getQuota('c'))?.limitBytes, 8 * 1024 * 1024);
  });
}

uvuTest.run();
