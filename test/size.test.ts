// diffSize end to end: directorySize (moby's directory.Size) against arithmetic computed here
// independently and against du; changesSize (moby's ChangesSize) on a real overlay layer.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { directorySize } from '../src/size/directory-size.js';
import { changesSize } from '../src/size/changes-size.js';
import { tempDir, removeTree, mountTest } from './support/env.js';
import { Stack } from './changes-fixtures.js';

/** Σ st_size of non-directories, each (dev, ino) counted once — written without the core. */
function independentSize(root: string): { size: number; dirBytes: number } {
  let size = 0, dirBytes = 0;
  const seen = new Set<string>();
  const walk = (p: string) => {
    for (const name of fs.readdirSync(p)) {
      const q = join(p, name);
      const st = fs.lstatSync(q, { bigint: true });
      if (st.isDirectory()) {
        dirBytes += Number(st.size);
        walk(q);
        continue;
      }
      const key = `${st.dev}:${st.ino}`;
      if (seen.has(key)) continue;
      seen.add(key);
      size += Number(st.size);
    }
  };
  walk(root);
  return { size, dirBytes: dirBytes + Number(fs.lstatSync(root).size) };
}

test('100 files + 100 hardlinks to them: each inode counted once', async () => {
  const dir = tempDir('ovl2-size-');
  try {
    fs.mkdirSync(join(dir, 'files'));
    fs.mkdirSync(join(dir, 'links'));
    let want = 0;
    for (let i = 0; i < 100; i++) {
      const body = 'x'.repeat(100 + i);
      fs.writeFileSync(join(dir, 'files', `f${i}`), body);
      fs.linkSync(join(dir, 'files', `f${i}`), join(dir, 'links', `l${i}`));
      want += body.length;
    }
    assert.is(want, 100 * 100 + 4950);
    const got = await directorySize(dir);
    assert.is(got, 14950);
    const ind = independentSize(dir);
    assert.is(got, ind.size);
    // GNU du counts each hardlinked inode once too, plus the directories' own sizes
    const du = Number(execFileSync('du', ['-sb', dir]).toString().split('\t')[0]);
    assert.is(got, du - ind.dirBytes);
  } finally {
    removeTree(dir);
  }
});

test('a mixed tree: symlinks count, empty files and directories do not, sizes add up', async () => {
  const dir = tempDir('ovl2-size-mixed-');
  try {
    for (let d = 0; d < 30; d++) {
      fs.mkdirSync(join(dir, `d${d}`, 'sub'), { recursive: true });
      for (let i = 0; i < 40; i++) fs.writeFileSync(join(dir, `d${d}`, 'sub', `f${i}`), 'y'.repeat((d * 7 + i) % 500));
      fs.symlinkSync(`sub/f${d}`, join(dir, `d${d}`, 'lnk'));
      fs.writeFileSync(join(dir, `d${d}`, 'empty'), '');
    }
    fs.linkSync(join(dir, 'd1', 'sub', 'f3'), join(dir, 'hl'));
    assert.is(await directorySize(dir), independentSize(dir).size);
  } finally {
    removeTree(dir);
  }
});

test('a directory name that is not UTF-8 (the split scan reopens it by its bytes)', async () => {
  const dir = tempDir('ovl2-size-bytes-');
  try {
    const odd = Buffer.concat([Buffer.from(dir + '/'), Buffer.from([0x6e, 0xff, 0xfe])]);
    fs.mkdirSync(odd);
    fs.writeFileSync(Buffer.concat([odd, Buffer.from('/inside')]), 'q'.repeat(77));
    fs.mkdirSync(join(dir, 'plain'));
    fs.writeFileSync(join(dir, 'plain', 'f'), 'p'.repeat(5));
    assert.is(await directorySize(dir), 82);
  } finally {
    removeTree(dir);
  }
});

test('concurrent sizes each get a core of their own', async () => {
  const dir = tempDir('ovl2-size-conc-');
  try {
    const dirs = [0, 1, 2, 3].map((k) => {
      const d = join(dir, `t${k}`);
      fs.mkdirSync(join(d, 'a', 'b'), { recursive: true });
      for (let i = 0; i < 20; i++) fs.writeFileSync(join(d, 'a', i % 2 ? 'b' : '', `f${i}`), 'w'.repeat(k * 100 + i));
      return d;
    });
    const alone = [];
    for (const d of dirs) alone.push(await directorySize(d));
    const together = await Promise.all([...dirs, ...dirs].map((d) => directorySize(d)));
    assert.equal(together, [...alone, ...alone]);
    assert.equal(alone, dirs.map((d) => independentSize(d).size));
  } finally {
    removeTree(dir);
  }
});

test('a missing directory is an error (ENOENT)', async () => {
  let code = '';
  try {
    await directorySize('/nonexistent/ovl2-size');
  } catch (e) {
    code = (e as { code?: string }).code ?? '';
  }
  assert.is(code, 'ENOENT');
});

mountTest(test)("an upper dir with kernel whiteouts (one shared inode) and copy-ups; changesSize of its changes", async () => {
  const dir = tempDir('ovl2-size-ovl-');
  try {
    const stack = new Stack(dir);
    stack.base((b) => {
      for (let i = 0; i < 10; i++) fs.writeFileSync(join(b, `f${i}`), 'z'.repeat(1000));
    });
    const upper = await stack.layer((m) => {
      for (let i = 0; i < 5; i++) fs.rmSync(join(m, `f${i}`));
      fs.appendFileSync(join(m, 'f5'), '12345');
      fs.writeFileSync(join(m, 'new'), 'abc');
      fs.linkSync(join(m, 'new'), join(m, 'new2'));
    });
    const wh = fs.lstatSync(join(upper, 'f0'));
    assert.ok(wh.isCharacterDevice() && wh.rdev === 0, 'f0 is a whiteout');
    assert.is(await directorySize(upper), 1005 + 3);
    const { native } = await stack.compare();
    // the layer's view: A/C entries are stat'ed there, like moby's ChangesSize on the mounted layer
    const view = join(dir, 'view');
    fs.mkdirSync(view);
    const { mountOverlay, unmount } = await import('./changes-fixtures.js');
    mountOverlay(view, { lowers: [upper, ...stack.lowersOfTop] });
    try {
      assert.is(await changesSize(view, native), 1005 + 3);
    } finally {
      unmount(view);
    }
  } finally {
    removeTree(dir);
  }
});

test.run();
