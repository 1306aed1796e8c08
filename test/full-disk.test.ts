// A full disk must not lock the store: on a small loop-mounted ext4 filled up (blocks, and
// separately inodes), init works, remove frees space, and then everything works again; an apply
// that runs out of space fails with ERR_NO_SPACE naming the layer and leaves no half layer.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Overlay2Driver } from '../src/driver.js';
import { FEATURE_CACHE_FILE } from '../src/feature-cache.js';
import { canMountOverlay, tempDir, testIf, whyNotMount } from './support/env.js';
import { dir, file, tarOf } from './apply-tar.js';

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const can = canMountOverlay && have('mkfs.ext4') && have('losetup');
const maybe = testIf(can, 'full-disk tests', whyNotMount || 'needs mkfs.ext4 and losetup (e2fsprogs, mount)');

interface Disk { root: string; mnt: string; home: string }

function makeDisk(sizeMiB: number, inodes: number): Disk {
  const root = tempDir('ovl2-full-');
  const img = join(root, 'disk.img');
  const mnt = join(root, 'mnt');
  fs.mkdirSync(mnt);
  execFileSync('truncate', ['-s', `${sizeMiB}M`, img]);
  execFileSync('mkfs.ext4', ['-q', '-F', '-N', String(inodes), '-m', '0', img]);
  execFileSync('mount', ['-o', 'loop', img, mnt]);
  return { root, mnt, home: join(mnt, 'home') };
}

function dropDisk(d: Disk): void {
  // Our own mounts only: overlay mounts under the home first, then the loop fs.
  const mine = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean)
    .map((l) => l.split(' ')[4]).filter((p) => p.startsWith(d.mnt + '/')).sort((a, b) => b.length - a.length);
  for (const p of mine) spawnSync('umount', ['-l', p]);
  spawnSync('umount', [d.mnt]);
  fs.rmSync(d.root, { recursive: true, force: true });
}

/** Fills the filesystem's blocks with one file until ENOSPC. */
function fillBlocks(path: string): void {
  const fd = fs.openSync(path, 'w');
  const chunk = Buffer.alloc(1 << 20, 1);
  try {
    for (;;) fs.writeSync(fd, chunk);
  } catch (e) {
    assert.is((e as NodeJS.ErrnoException).code, 'ENOSPC');
  } finally {
    fs.closeSync(fd);
  }
  // the last partial megabyte
  const small = Buffer.alloc(1024, 1);
  const fd2 = fs.openSync(path, 'a');
  try { for (;;) fs.writeSync(fd2, small); } catch { /* full */ } finally { fs.closeSync(fd2); }
}

/** Uses up every free inode with empty files in `dir`. */
function fillInodes(dirPath: string): void {
  fs.mkdirSync(dirPath);
  for (let i = 0; ; i++) {
    try {
      fs.writeFileSync(join(dirPath, String(i)), '');
    } catch (e) {
      assert.is((e as NodeJS.ErrnoException).code, 'ENOSPC');
      return;
    }
  }
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
}

const manyFiles = (n: number, size: number) => tarOf(dir('d/'), ...Array.from({ length: n }, (_, i) => file(`d/f${i}`, randomBytes(size))));

async function fullDiskScenario(fill: (d: Disk) => void, layerTar: Buffer): Promise<void> {
  const d = makeDisk(24, 512);
  try {
    let drv = await Overlay2Driver.init(d.home);
    await drv.create('big');
    await drv.applyDiff('big', '', Readable.from([layerTar]));
    fill(d);
    // No cache: init has to cope with probes that cannot run.
    fs.rmSync(join(d.home, FEATURE_CACHE_FILE), { force: true });
    fill(d); // what deleting the cache freed
    drv = await Overlay2Driver.init(d.home);
    assert.equal(await drv.list(), ['big']);
    assert.ok(drv.status().some(([k, v]) => k === 'Features' && v.startsWith('unknown')), 'status says the features are unknown');
    assert.is(await code(drv.create('nope')), 'ERR_NO_SPACE');
    await drv.remove('big'); // frees space
    assert.equal(await drv.list(), []);
    // Everything works again, without a new init.
    await drv.create('after');
    await drv.create('child', 'after');
    await drv.applyDiff('child', 'after', Readable.from([tarOf(file('hello', 'world'))]));
    const root = await drv.get('child');
    assert.is(fs.readFileSync(join(root, 'hello'), 'utf8'), 'world');
    await drv.put('child');
    assert.ok(!drv.status().some(([k]) => k === 'Features'));
    assert.ok(fs.existsSync(join(d.home, FEATURE_CACHE_FILE)), 'the probed features are cached');
  } finally {
    dropDisk(d);
  }
}

maybe('no free block: init works, remove frees space, then create/apply/get work again', async () => {
  await fullDiskScenario((d) => fillBlocks(join(d.mnt, `filler-${randomBytes(3).toString('hex')}`)), manyFiles(8, 1 << 20));
});

maybe('no free inode: init works, remove frees inodes, then create/apply/get work again', async () => {
  await fullDiskScenario((d) => fillInodes(join(d.mnt, `inodes-${randomBytes(3).toString('hex')}`)), manyFiles(60, 10));
});

maybe('an apply that runs out of space is ERR_NO_SPACE naming the layer, leaves no half layer, and the store works after', async () => {
  const d = makeDisk(24, 512);
  try {
    const drv = await Overlay2Driver.init(d.home);
    await drv.create('base');
    await drv.create('l1', 'base');
    const filler = join(d.mnt, 'filler');
    fs.writeFileSync(filler, Buffer.alloc(14 << 20, 1));
    type Failure = Error & { code?: string; id?: string; cause?: unknown };
    const err = await drv.applyDiff('l1', 'base', Readable.from([manyFiles(12, 1 << 20)])).then(() => null, (e: Failure) => e) as Failure | null;
    assert.ok(err, 'the apply fails');
    assert.is(err!.code, 'ERR_NO_SPACE', err!.message);
    assert.is(err!.id, 'l1');
    assert.ok(err!.message.includes('layer l1') && /entry "d\/f\d+"/.test(err!.message), err!.message);
    assert.is((err!.cause as { code?: string }).code, 'ENOSPC');
    // No half layer: diff/ is as it was (empty), no staging dir.
    assert.equal(fs.readdirSync(join(d.home, 'l1', 'diff')), []);
    assert.equal(fs.readdirSync(join(d.home, 'l1')).filter((n) => n.startsWith('.staging')), []);
    fs.rmSync(filler);
    assert.is(await drv.applyDiff('l1', 'base', Readable.from([manyFiles(12, 1 << 20)])), 12 << 20);
    assert.is(fs.readdirSync(join(d.home, 'l1', 'diff', 'd')).length, 12);
  } finally {
    dropDisk(d);
  }
});

test.run();
