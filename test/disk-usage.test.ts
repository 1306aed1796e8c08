// diskUsage (containerd's fs.DiskUsage, for a snapshotter's Usage) against GNU du on real trees:
// `du -s -B1` for the size, `du -s --inodes` for the inode count — both count each inode once and
// include directories and the root. Every tree is measured through the shim's scan and through the
// fast-glob fallback.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { diskUsage } from '../src/size/disk-usage.js';
import { tryLoadShim } from '../src/native/shim.js';
import { AT_FDCWD } from '../src/native/constants.js';
import { tempDir, removeTree, isRoot, testIf, mountTest } from './support/env.js';
import { Stack } from './changes-fixtures.js';

const shim = tryLoadShim();
const asRoot = testIf(isRoot && !!shim, 'whiteout (mknod 0/0) trees', isRoot ? 'the shim is not built' : 'not running as root');

function du(dir: string): { size: number; inodes: number } {
  const first = (args: string[]) => Number(execFileSync('du', [...args, dir]).toString().split('\t')[0]);
  return { size: first(['-s', '-B1']), inodes: first(['-s', '--inodes']) };
}

/** diskUsage through the shim (when built) and through the fallback, each checked against du. */
async function checkAgainstDu(dir: string): Promise<{ size: number; inodes: number }> {
  const want = du(dir);
  if (shim) assert.equal(await diskUsage(dir), want, 'shim scan vs du');
  assert.equal(await diskUsage(dir, { fallback: true }), want, 'fallback scan vs du');
  return want;
}

function whiteout(path: string): void {
  shim!.mknodat(AT_FDCWD, path, fs.constants.S_IFCHR, 0, 0);
}

test('files of several sizes, nested and empty directories, symlinks', async () => {
  const dir = tempDir('ovl2-du-');
  try {
    const sizes = [0, 1, 511, 512, 4095, 4096, 4097, 65536, 1_000_000];
    for (let d = 0; d < 6; d++) {
      const sub = join(dir, `d${d}`, 'a', 'b');
      fs.mkdirSync(sub, { recursive: true });
      sizes.forEach((n, i) => fs.writeFileSync(join(d % 2 ? sub : join(dir, `d${d}`), `f${i}`), Buffer.alloc(n, d + 1)));
      fs.symlinkSync(`a/b/f${d}`, join(dir, `d${d}`, 'link'));
      fs.symlinkSync('x'.repeat(200), join(dir, `d${d}`, 'long-link')); // a target too long to be inline on some filesystems
      fs.mkdirSync(join(dir, `d${d}`, 'empty'));
    }
    fs.mkdirSync(join(dir, 'deep', ...Array.from({ length: 30 }, (_, i) => `l${i}`)), { recursive: true });
    const got = await checkAgainstDu(dir);
    assert.ok(got.inodes === 1 + 6 * (3 + sizes.length + 2 + 1) + 30 + 1, `inodes ${got.inodes}`);
  } finally {
    removeTree(dir);
  }
});

test('sparse files count the blocks they hold, not their length', async () => {
  const dir = tempDir('ovl2-du-sparse-');
  try {
    execFileSync('truncate', ['-s', '1G', join(dir, 'hole')]);
    const fd = fs.openSync(join(dir, 'mostly-hole'), 'w');
    fs.writeSync(fd, Buffer.alloc(8192, 1), 0, 8192, 100 * 2 ** 20);
    fs.closeSync(fd);
    const got = await checkAgainstDu(dir);
    assert.ok(got.size < 2 ** 20, `size ${got.size} is far below the files' length`);
    assert.is(got.inodes, 3);
  } finally {
    removeTree(dir);
  }
});

test('hardlinks inside the tree: each inode once, wherever its links are', async () => {
  const dir = tempDir('ovl2-du-links-');
  try {
    fs.mkdirSync(join(dir, 'files'));
    fs.mkdirSync(join(dir, 'links', 'deeper'), { recursive: true });
    for (let i = 0; i < 100; i++) {
      fs.writeFileSync(join(dir, 'files', `f${i}`), Buffer.alloc(1000 * i, 7));
      fs.linkSync(join(dir, 'files', `f${i}`), join(dir, 'links', `l${i}`));
      if (i % 3 === 0) fs.linkSync(join(dir, 'files', `f${i}`), join(dir, 'links', 'deeper', `m${i}`));
    }
    fs.symlinkSync('files/f1', join(dir, 'sym'));
    fs.linkSync(join(dir, 'sym'), join(dir, 'sym-hardlink')); // a hardlinked symlink
    const got = await checkAgainstDu(dir);
    assert.is(got.inodes, 4 + 100 + 1);
  } finally {
    removeTree(dir);
  }
});

asRoot('whiteouts (char 0/0), one hardlinked like the kernel\'s shared whiteout inode, and a device', async () => {
  const dir = tempDir('ovl2-du-wh-');
  try {
    fs.mkdirSync(join(dir, 'sub'));
    whiteout(join(dir, 'gone'));
    whiteout(join(dir, 'sub', 'gone-too'));
    whiteout(join(dir, 'shared'));
    fs.linkSync(join(dir, 'shared'), join(dir, 'sub', 'shared-link'));
    shim!.mknodat(AT_FDCWD, join(dir, 'null'), fs.constants.S_IFCHR | 0o666, 1, 3);
    fs.writeFileSync(join(dir, 'sub', 'file'), Buffer.alloc(10_000, 1));
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    const got = await checkAgainstDu(dir);
    assert.is(got.inodes, 1 + 1 + 2 + 1 + 1 + 1 + 1); // root, sub, gone(s), shared once, null, file, fifo
  } finally {
    removeTree(dir);
  }
});

test('an empty directory is its own inode and blocks; a missing one is ENOENT', async () => {
  const dir = tempDir('ovl2-du-empty-');
  try {
    const got = await checkAgainstDu(dir);
    assert.is(got.inodes, 1);
    let code = '';
    try {
      await diskUsage(join(dir, 'missing'));
    } catch (e) {
      code = (e as { code?: string }).code ?? '';
    }
    assert.is(code, 'ENOENT');
  } finally {
    removeTree(dir);
  }
});

test('a root that is not a directory is measured alone (as du and continuity do)', async () => {
  const dir = tempDir('ovl2-du-file-');
  try {
    fs.writeFileSync(join(dir, 'f'), Buffer.alloc(20_000, 1));
    assert.equal(await diskUsage(join(dir, 'f')), du(join(dir, 'f')));
  } finally {
    removeTree(dir);
  }
});

test('concurrent usages each get a core of their own', async () => {
  const dir = tempDir('ovl2-du-conc-');
  try {
    const dirs = [0, 1, 2, 3].map((k) => {
      const d = join(dir, `t${k}`);
      fs.mkdirSync(join(d, 'a', 'b'), { recursive: true });
      for (let i = 0; i < 20 * (k + 1); i++) fs.writeFileSync(join(d, 'a', i % 2 ? 'b' : '', `f${i}`), Buffer.alloc(k * 5000 + i));
      fs.linkSync(join(d, 'a', 'f0'), join(d, 'hl'));
      return d;
    });
    const together = await Promise.all([...dirs, ...dirs].map((d) => diskUsage(d)));
    assert.equal(together, [...dirs, ...dirs].map(du));
  } finally {
    removeTree(dir);
  }
});

mountTest(test)('a real overlay upper dir: kernel whiteouts, copy-ups, an opaque dir, hardlinks', async () => {
  const dir = tempDir('ovl2-du-ovl-');
  try {
    const stack = new Stack(dir);
    stack.base((b) => {
      fs.mkdirSync(join(b, 'dir'));
      for (let i = 0; i < 10; i++) fs.writeFileSync(join(b, i < 5 ? `f${i}` : join('dir', `f${i}`)), 'z'.repeat(1000));
    });
    const upper = await stack.layer((m) => {
      for (let i = 0; i < 5; i++) fs.rmSync(join(m, `f${i}`));
      fs.rmSync(join(m, 'dir'), { recursive: true });
      fs.mkdirSync(join(m, 'dir'));
      fs.appendFileSync(join(m, 'dir', 'again'), '12345');
      fs.writeFileSync(join(m, 'new'), Buffer.alloc(50_000, 3));
      fs.linkSync(join(m, 'new'), join(m, 'new2'));
    });
    assert.ok(fs.lstatSync(join(upper, 'f0')).isCharacterDevice(), 'f0 is a whiteout');
    await checkAgainstDu(upper);
  } finally {
    removeTree(dir);
  }
});

test.run();
