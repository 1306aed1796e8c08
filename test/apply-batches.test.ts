// Small files are created in batches on two threads (src/apply/file-batches.ts): the tree must be
// the one the archive describes, in archive order, whatever runs where. Checked against GNU tar on
// generated trees, and on hand-made archives whose later entries depend on earlier ones.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { execFileSync } from 'node:child_process';
import { applyLayer, type ApplyOptions } from '../src/apply/apply.js';
import { IdMappings } from '../src/idmap.js';
import { Overlay2Error } from '../src/errors.js';
import { BATCHED_FILE_MAX } from '../src/apply/file-batches.js';
import { isRoot, tempDir, testIf } from './support/env.js';
import { treeLines } from './support/tree-digest.js';
import { dir, file, hardlink, pax, symlink, tarOf } from './apply-tar.js';

const maybe = testIf(isRoot, 'batched apply tests', 'not running as root (they chown and compare owners with GNU tar)');
const plain = (): ApplyOptions => ({ userxattr: false, idMappings: new IdMappings() });

let roots: string[] = [];
test.after.each(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
  roots = [];
});

function newRoot(): string {
  const root = tempDir('ovl2-batches-');
  roots.push(root);
  return root;
}

function newLayer(root = newRoot()): { layer: string; diff: string } {
  const layer = join(root, 'layer');
  fs.mkdirSync(join(layer, 'diff'), { recursive: true });
  return { layer, diff: join(layer, 'diff') };
}

/** The tar in `chunk`-byte pieces (0: one piece), as a stream would bring it. */
function pieces(tar: Buffer, chunk = 0): Readable {
  const parts: Buffer[] = [];
  if (chunk > 0) for (let i = 0; i < tar.length; i += chunk) parts.push(tar.subarray(i, i + chunk));
  else parts.push(tar);
  return Readable.from(parts);
}

/** A seeded generator, so a failure can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32;
}

/** A tree of `dirs` directories (some setgid, some nested) of `files` small files each, with
 *  assorted modes, owners, sizes (0 to past BATCHED_FILE_MAX) and mtimes, plus a few symlinks and
 *  hardlinks between the files. */
function makeTree(root: string, dirs: number, files: number, seed: number): void {
  const r = rng(seed);
  const block = Buffer.alloc(BATCHED_FILE_MAX + 4096);
  for (let i = 0; i < block.length; i++) block[i] = (r() * 256) | 0;
  for (let d = 0; d < dirs; d++) {
    const sub = join(root, d % 7 === 3 ? `n${d - 1}/inner${d}` : `n${d}`);
    fs.mkdirSync(sub, { recursive: true });
    for (let f = 0; f < files; f++) {
      const p = join(sub, `f${f}`);
      const size = f % 97 === 5 ? BATCHED_FILE_MAX + 1 + ((r() * 4000) | 0) : f % 13 === 0 ? 0 : (r() * 5000) | 0;
      fs.writeFileSync(p, block.subarray(0, size));
      fs.chmodSync(p, [0o644, 0o600, 0o755, 0o4755, 0o640, 0o2711][(r() * 6) | 0]);
      fs.chownSync(p, (r() * 3) | 0, (r() * 3) | 0);
      fs.utimesSync(p, 1_500_000_000 + ((r() * 1e6) | 0), 1_500_000_000 + ((r() * 1e6) | 0));
    }
    if (d % 5 === 1) fs.symlinkSync('f1', join(sub, 'link'));
    if (d % 5 === 2 && files > 3) fs.linkSync(join(sub, 'f2'), join(sub, 'hard'));
    fs.chownSync(sub, d % 3, (d * 7) % 5);
    fs.chmodSync(sub, d % 4 === 0 ? 0o2775 : 0o755);
  }
}

/** GNU tar's archive of `src` (its default format, numeric owners: what docker save writes). */
function tarTree(src: string, out: string): void {
  execFileSync('tar', ['--numeric-owner', '-C', src, '-cf', out, '.']);
}

for (const [title, dirs, files, chunk] of [
  ['200 dirs (past the dir fd cache) of 5 files, one chunk', 200, 5, 0],
  ['4 dirs of 400 files, 1000-byte chunks', 4, 400, 1000],
  ['12 dirs of 120 files, 64 KiB chunks', 12, 120, 65536],
] as const) {
  maybe(`${title}: the tree GNU tar extracts`, async () => {
    const root = newRoot();
    const src = join(root, 'src');
    fs.mkdirSync(src);
    makeTree(src, dirs, files, dirs * 1000 + files);
    const tar = join(root, 'l.tar');
    tarTree(src, tar);
    const peer = join(root, 'peer');
    fs.mkdirSync(peer);
    execFileSync('tar', ['-xf', tar, '-C', peer]);
    const { layer, diff } = newLayer(root);
    await applyLayer(layer, pieces(fs.readFileSync(tar), chunk), plain());
    assert.equal(treeLines(diff), treeLines(peer));
  });
}

maybe('a file given twice: the later one wins, whether both sit in one batch or not', async () => {
  const many = Array.from({ length: 400 }, (_, i) => file(`d/f${i}`, `first ${i}`, { mode: 0o600 }));
  const tar = tarOf(dir('d/'), ...many,
    file('d/f0', 'second 0', { mode: 0o640, mtime: 1_700_000_000 }),
    file('d/f399', 'second 399', { mode: 0o644 }));
  const { layer, diff } = newLayer();
  const size = await applyLayer(layer, pieces(tar), plain());
  assert.is(fs.readFileSync(join(diff, 'd/f0'), 'utf8'), 'second 0');
  assert.is(fs.statSync(join(diff, 'd/f0')).mode & 0o7777, 0o640);
  assert.is(fs.statSync(join(diff, 'd/f0')).mtimeMs, 1_700_000_000_000);
  assert.is(fs.readFileSync(join(diff, 'd/f399'), 'utf8'), 'second 399');
  assert.is(fs.readFileSync(join(diff, 'd/f1'), 'utf8'), 'first 1');
  const expected = Array.from({ length: 400 }, (_, i) => `first ${i}`.length).reduce((a, b) => a + b) -
    'first 0'.length - 'first 399'.length + 'second 0'.length + 'second 399'.length;
  assert.is(size, expected, 'the replaced files count once');
});

maybe('entries that depend on batched files: a dir over a file, a hardlink to one, a symlink beside them', async () => {
  const filler = Array.from({ length: 300 }, (_, i) => file(`fill/x${i}`, 'x'.repeat(i)));
  const tar = tarOf(
    file('c', 'a file first'),
    file('h/f', 'linked'),
    ...filler,
    dir('c/'),
    file('c/z', 'inside'),
    hardlink('h/g', 'h/f'),
    symlink('h/s', 'f'),
  );
  const { layer, diff } = newLayer();
  await applyLayer(layer, pieces(tar), plain());
  assert.ok(fs.lstatSync(join(diff, 'c')).isDirectory());
  assert.is(fs.readFileSync(join(diff, 'c/z'), 'utf8'), 'inside');
  assert.is(fs.statSync(join(diff, 'h/g')).ino, fs.statSync(join(diff, 'h/f')).ino);
  assert.is(fs.statSync(join(diff, 'h/f')).nlink, 2);
  assert.is(fs.readlinkSync(join(diff, 'h/s')), 'f');
  assert.is(fs.readdirSync(join(diff, 'fill')).length, 300);
});

maybe('a file that replaces a directory, then a child of that path: refused as before (not a directory)', async () => {
  const filler = Array.from({ length: 300 }, (_, i) => file(`b/x${i}`, 'x'));
  const tar = tarOf(dir('a/'), file('a/x', 'x'), ...filler, file('a', 'now a file'), file('a/y', 'y'));
  const { layer } = newLayer();
  const err = await applyLayer(layer, pieces(tar), plain()).then(() => null, (e: unknown) => e);
  assert.ok(err instanceof Overlay2Error, String(err));
  assert.is(err.code, 'ERR_BAD_ARCHIVE');
  assert.match(err.message, /"a\/y"/);
  assert.equal(fs.readdirSync(layer), ['diff'], 'no staging dir left');
  assert.equal(fs.readdirSync(join(layer, 'diff')), [], 'diff untouched');
});

maybe('in place over a non-empty diff: batched files replace what is there (a file, a dir with children)', async () => {
  const { layer, diff } = newLayer();
  fs.mkdirSync(join(diff, 'a/deep'), { recursive: true });
  fs.writeFileSync(join(diff, 'a/deep/old'), 'old');
  fs.writeFileSync(join(diff, 'f5'), 'old f5');
  const many = Array.from({ length: 300 }, (_, i) => file(`f${i}`, `new ${i}`));
  const tar = tarOf(...many, file('a', 'a is a file now'));
  await applyLayer(layer, pieces(tar), plain());
  assert.is(fs.readFileSync(join(diff, 'f5'), 'utf8'), 'new 5');
  assert.is(fs.readFileSync(join(diff, 'a'), 'utf8'), 'a is a file now');
  assert.is(fs.readFileSync(join(diff, 'f299'), 'utf8'), 'new 299');
});

maybe('a batched create the kernel refuses names its entry; the staging dir goes', async () => {
  for (const before of [0, 600]) {
    const long = `d/${'n'.repeat(300)}`; // > 255 bytes: ENAMETOOLONG from openat2
    const filler = Array.from({ length: before }, (_, i) => file(`d/f${i}`, 'x'.repeat(100)));
    const tar = tarOf(dir('d/'), ...filler, pax([['path', long]]), file('placeholder', 'data'), file('d/after', 'a'));
    const { layer } = newLayer();
    const err = await applyLayer(layer, pieces(tar), plain()).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof Overlay2Error, String(err));
    assert.is(err.code, 'ERR_BAD_ARCHIVE', err.message);
    assert.ok(err.message.includes(long), err.message);
    assert.equal(fs.readdirSync(layer), ['diff'], `no staging dir left (${before} files before)`);
  }
});

test.run();
