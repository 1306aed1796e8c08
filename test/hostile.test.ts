// Hostile archives: every case runs against a real layer dir with a victim file and a victim dir
// OUTSIDE the layer. Each must be refused with its code, leave the victims byte-identical and
// untouched (same inode, size, mode, times, link count), leave diff/ exactly as it was and no
// staging dir behind. Cases are our own, after the ideas of go-archive's and containerd's
// breakout tests.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { applyLayer } from '../src/apply/apply.js';
import { IdMappings } from '../src/idmap.js';
import { isRoot, tempDir, testIf } from './support/env.js';
import { dir, file, gnuLong, hardlink, member, pax, symlink, tarOf } from './apply-tar.js';
import { snapshot } from './support/snapshot.js';

const maybe = testIf(isRoot, 'hostile archive tests', 'not running as root (they create device nodes and chown)');

interface Scene {
  root: string;
  victim: string;     // a file outside the layer
  victimDir: string;  // a dir outside the layer, with a file in it
  layer: string;
  diff: string;
}

function makeScene(): Scene {
  const root = tempDir('ovl2-hostile-');
  const victim = join(root, 'victim');
  fs.writeFileSync(victim, 'precious\n', { mode: 0o644 });
  const victimDir = join(root, 'victimdir');
  fs.mkdirSync(victimDir);
  fs.writeFileSync(join(victimDir, 'inside'), 'also precious\n');
  const layer = join(root, 'layer');
  fs.mkdirSync(join(layer, 'diff'), { recursive: true });
  fs.utimesSync(victim, 1000, 1000);
  fs.utimesSync(victimDir, 2000, 2000);
  return { root, victim, victimDir, layer, diff: join(layer, 'diff') };
}

interface Case {
  name: string;
  code: 'ERR_UNSAFE_ARCHIVE' | 'ERR_BAD_ARCHIVE';
  tar: (s: Scene) => Buffer;
  /** Content put in diff/ before the import (then it is applied in place, not staged). */
  before?: (s: Scene) => void;
}

const rel = (s: Scene, p: string): string => {
  // a name that, joined to diff/, reaches p
  const depth = s.diff.split('/').length - 1;
  return '../'.repeat(depth) + p.slice(1);
};

const filler = Array.from({ length: 50 }, (_, i) => file(`fill/f${i}`, randomBytes(700)));

const cases: Case[] = [
  // names
  { name: '../ name', code: 'ERR_UNSAFE_ARCHIVE', tar: () => tarOf(file('../victim', 'pwned')) },
  { name: 'deep ../ to the victim', code: 'ERR_UNSAFE_ARCHIVE', tar: (s) => tarOf(file(rel(s, s.victim), 'pwned')) },
  { name: 'a/../../x', code: 'ERR_UNSAFE_ARCHIVE', tar: () => tarOf(dir('a/'), file('a/../../victim', 'pwned')) },
  { name: '/../x (absolute, climbing)', code: 'ERR_UNSAFE_ARCHIVE', tar: () => tarOf(file('/../victim', 'pwned')) },
  { name: 'bare ..', code: 'ERR_UNSAFE_ARCHIVE', tar: () => tarOf(dir('..')) },
  { name: 'good entries, then ../', code: 'ERR_UNSAFE_ARCHIVE', tar: () => tarOf(...filler, file('../../victim', 'pwned')) },
  { name: 'the root replaced by a file', code: 'ERR_UNSAFE_ARCHIVE', tar: () => tarOf(file('./', 'x')) },
  { name: 'the root replaced by a symlink', code: 'ERR_UNSAFE_ARCHIVE', tar: (s) => tarOf(symlink('.', s.victimDir)) },
  // symlinks
  { name: 'symlink to outside (absolute), then a file through it', code: 'ERR_UNSAFE_ARCHIVE',
    tar: (s) => tarOf(symlink('escape', s.victimDir), file('escape/inside', 'pwned')) },
  { name: 'symlink to outside (absolute), then a dir through it', code: 'ERR_UNSAFE_ARCHIVE',
    tar: (s) => tarOf(symlink('escape', s.victimDir), dir('escape/newdir/')) },
  { name: 'symlink to outside (absolute), then a symlink through it', code: 'ERR_UNSAFE_ARCHIVE',
    tar: (s) => tarOf(symlink('escape', s.victimDir), symlink('escape/inside', '/etc/passwd')) },
  { name: 'relative symlink climbing out', code: 'ERR_UNSAFE_ARCHIVE', tar: () => tarOf(symlink('up', '../../../../../../..')) },
  { name: 'relative symlink climbing out from a subdir', code: 'ERR_UNSAFE_ARCHIVE',
    tar: () => tarOf(dir('a/'), dir('a/b/'), symlink('a/b/up', '../../../victim')) },
  { name: 'symlink to a dir inside, then a file through it', code: 'ERR_UNSAFE_ARCHIVE',
    tar: () => tarOf(dir('d/'), symlink('l', 'd'), file('l/x', 'data')) },
  { name: 'symlink loop, then a file through it', code: 'ERR_UNSAFE_ARCHIVE',
    tar: () => tarOf(symlink('loop', 'loop'), file('loop/x', 'data')) },
  { name: 'symlink already on disk, then a file through it', code: 'ERR_UNSAFE_ARCHIVE',
    before: (s) => fs.symlinkSync(s.victimDir, join(s.diff, 'onDisk')),
    tar: () => tarOf(file('onDisk/inside', 'pwned')) },
  { name: 'symlink already on disk, then a whiteout through it', code: 'ERR_UNSAFE_ARCHIVE',
    before: (s) => fs.symlinkSync(s.victimDir, join(s.diff, 'onDisk')),
    tar: () => tarOf(file('onDisk/.wh.inside')) },
  { name: 'symlink already on disk, then an opaque marker through it', code: 'ERR_UNSAFE_ARCHIVE',
    before: (s) => fs.symlinkSync(s.victimDir, join(s.diff, 'onDisk')),
    tar: () => tarOf(file('onDisk/.wh..wh..opq')) },
  // hardlinks
  { name: 'symlink climbing out, then a hardlink to it', code: 'ERR_UNSAFE_ARCHIVE',
    tar: () => tarOf(symlink('loophole', '../victim'), hardlink('link', 'loophole')) },
  { name: 'absolute symlink, then a file through a hardlink of it', code: 'ERR_UNSAFE_ARCHIVE',
    tar: (s) => tarOf(symlink('loophole', s.victimDir), hardlink('link', 'loophole'), file('link/inside', 'pwned')) },
  { name: 'hardlink whose target goes through a symlink', code: 'ERR_UNSAFE_ARCHIVE',
    tar: (s) => tarOf(symlink('loophole', s.victimDir), hardlink('link', 'loophole/inside')) },
  { name: 'hardlink to ../victim', code: 'ERR_UNSAFE_ARCHIVE', tar: () => tarOf(hardlink('link', '../victim')) },
  { name: 'hardlink to a deep ../ path of the victim', code: 'ERR_UNSAFE_ARCHIVE', tar: (s) => tarOf(hardlink('link', rel(s, s.victim))) },
  { name: 'hardlink to the victim by absolute path (resolved inside: missing)', code: 'ERR_BAD_ARCHIVE',
    tar: (s) => tarOf(hardlink('link', s.victim)) },
  { name: 'hardlink to /etc/passwd (resolved inside: missing)', code: 'ERR_BAD_ARCHIVE', tar: () => tarOf(hardlink('passwd', '/etc/passwd')) },
  { name: 'hardlink to a missing entry', code: 'ERR_BAD_ARCHIVE', tar: () => tarOf(file('a', 'x'), hardlink('link', 'nothere')) },
  { name: 'hardlink to a directory', code: 'ERR_UNSAFE_ARCHIVE', tar: () => tarOf(dir('d/'), hardlink('link', 'd')) },
  { name: 'hardlink to the root', code: 'ERR_UNSAFE_ARCHIVE', tar: () => tarOf(hardlink('link', '.')) },
  // whiteouts
  { name: 'whiteout .wh..', code: 'ERR_UNSAFE_ARCHIVE', tar: () => tarOf(file('.wh..')) },
  { name: 'whiteout .wh... (deletes "..")', code: 'ERR_UNSAFE_ARCHIVE', tar: () => tarOf(file('.wh...')) },
  { name: 'whiteout .wh. alone', code: 'ERR_UNSAFE_ARCHIVE', tar: () => tarOf(file('.wh.')) },
  { name: 'whiteout .wh../x', code: 'ERR_UNSAFE_ARCHIVE', tar: () => tarOf(file('.wh../x')) },
  { name: 'whiteout a/.wh..', code: 'ERR_UNSAFE_ARCHIVE', tar: () => tarOf(dir('a/'), file('a/.wh..')) },
  { name: 'entry below a whiteout', code: 'ERR_UNSAFE_ARCHIVE', tar: () => tarOf(dir('.wh.gone/'), file('.wh.gone/x')) },
  // malformed archives
  { name: 'NUL in a PAX path', code: 'ERR_BAD_ARCHIVE', tar: () => tarOf(pax([['path', Buffer.from('a\0b')]]), file('placeholder', 'x')) },
  { name: 'NUL in a PAX linkpath', code: 'ERR_BAD_ARCHIVE', tar: () => tarOf(pax([['linkpath', Buffer.from('../\0x')]]), symlink('l', 'x')) },
  { name: 'NUL in a GNU long name', code: 'ERR_BAD_ARCHIVE', tar: () => tarOf(gnuLong('L', Buffer.from('good\0../victim')), file('placeholder', 'x')) },
  { name: 'truncated inside file data', code: 'ERR_BAD_ARCHIVE', tar: () => tarOf(...filler, file('big', randomBytes(5000))).subarray(0, 50 * 1536 + 512 + 3000) },
  { name: 'truncated inside a header', code: 'ERR_BAD_ARCHIVE', tar: () => Buffer.concat([...filler, file('x', 'y').subarray(0, 300)]) },
  { name: 'truncated inside the padding', code: 'ERR_BAD_ARCHIVE', tar: () => file('x', 'abc').subarray(0, 600) },
  { name: 'random bytes', code: 'ERR_BAD_ARCHIVE', tar: () => randomBytes(64 * 1024) },
  { name: 'random bytes after good entries', code: 'ERR_BAD_ARCHIVE', tar: () => Buffer.concat([...filler, randomBytes(4096)]) },
  { name: 'text file, not a tar', code: 'ERR_BAD_ARCHIVE', tar: () => Buffer.from('hello, this is not a tar archive\n'.repeat(40)) },
  { name: 'bad checksum', code: 'ERR_BAD_ARCHIVE', tar: () => tarOf(member({ name: 'x', data: 'y', checksum: 1234 })) },
  { name: 'PAX header over 1 MiB', code: 'ERR_BAD_ARCHIVE', tar: () => tarOf(pax([['comment', Buffer.alloc((1 << 20) + 10, 0x41)]]), file('x')) },
  { name: 'GNU long name over 1 MiB', code: 'ERR_BAD_ARCHIVE', tar: () => tarOf(gnuLong('L', Buffer.alloc((1 << 20) + 10, 0x41)), file('x')) },
  { name: 'PAX record with a lying length', code: 'ERR_BAD_ARCHIVE',
    tar: () => tarOf(member({ name: 'p', type: 'x', data: '999 path=x\n' }), file('x')) },
  { name: 'PAX size that overflows', code: 'ERR_BAD_ARCHIVE', tar: () => tarOf(pax([['size', '99999999999999999999']]), file('x')) },
  { name: 'base-256 size that overflows', code: 'ERR_BAD_ARCHIVE',
    tar: () => tarOf(member({ name: 'x', patch: (b) => { b.fill(0xff, 124, 136); b[124] = 0x80; } })) },
  { name: 'negative base-256 size', code: 'ERR_BAD_ARCHIVE',
    tar: () => tarOf(member({ name: 'x', patch: (b) => { b.fill(0xff, 124, 136); } })) },
  { name: 'size field with garbage', code: 'ERR_BAD_ARCHIVE',
    tar: () => tarOf(member({ name: 'x', patch: (b) => { b.write('12x4\0', 124, 'latin1'); } })) },
  { name: 'huge size, no data', code: 'ERR_BAD_ARCHIVE',
    tar: () => tarOf(member({ name: 'x', patch: (b) => { b.write('77777777777\0', 124, 'latin1'); } })) },
  { name: 'GNU sparse member', code: 'ERR_BAD_ARCHIVE', tar: () => tarOf(member({ name: 'sparse', type: 'S', data: 'x' })) },
  { name: 'PAX sparse member', code: 'ERR_BAD_ARCHIVE', tar: () => tarOf(pax([['GNU.sparse.major', '1'], ['GNU.sparse.minor', '0']]), file('sparse', 'x')) },
  { name: 'unknown entry type', code: 'ERR_BAD_ARCHIVE', tar: () => tarOf(member({ name: 'vol', type: 'V' })) },
  { name: 'data after an end-of-archive block', code: 'ERR_BAD_ARCHIVE', tar: () => Buffer.concat([Buffer.alloc(512), file('x', 'y')]) },
];

for (const c of cases) {
  maybe(`refuses: ${c.name}`, async () => {
    const s = makeScene();
    try {
      c.before?.(s);
      const victimBefore = snapshot(s.victim);
      const victimDirBefore = snapshot(s.victimDir);
      const diffBefore = snapshot(s.diff);
      const tar = c.tar(s);
      let err: (Error & { code?: string }) | undefined;
      try {
        await applyLayer(s.layer, Readable.from([tar]), { userxattr: false, idMappings: new IdMappings() });
      } catch (e) {
        err = e as Error & { code?: string };
      }
      assert.ok(err, 'the import must fail');
      assert.is(err!.code, c.code, err!.message);
      assert.ok(/entry|archive/.test(err!.message), `the error names the entry: ${err!.message}`);
      assert.is(snapshot(s.victim), victimBefore, 'victim file untouched');
      assert.is(snapshot(s.victimDir), victimDirBefore, 'victim dir untouched');
      assert.equal(fs.readdirSync(s.layer), ['diff'], 'no staging dir remains');
      assert.is(snapshot(s.diff), diffBefore, 'diff/ exactly as before');
    } finally {
      fs.rmSync(s.root, { recursive: true, force: true });
    }
  });
}

maybe('absolute names land inside the layer (moby joins them under the root)', async () => {
  const s = makeScene();
  try {
    const victimBefore = snapshot(s.victim);
    await applyLayer(s.layer, Readable.from([tarOf(file(s.victim, 'inside now'))]), { userxattr: false, idMappings: new IdMappings() });
    assert.is(fs.readFileSync(join(s.diff, s.victim), 'utf8'), 'inside now');
    assert.is(snapshot(s.victim), victimBefore);
    assert.equal(fs.readdirSync(s.layer), ['diff']);
  } finally {
    fs.rmSync(s.root, { recursive: true, force: true });
  }
});

maybe('an absolute symlink is stored as it is and never followed', async () => {
  const s = makeScene();
  try {
    const before = snapshot(s.victimDir);
    await applyLayer(s.layer, Readable.from([tarOf(symlink('toVictim', s.victimDir), hardlink('alias', 'toVictim'))]),
      { userxattr: false, idMappings: new IdMappings() });
    assert.is(fs.readlinkSync(join(s.diff, 'toVictim')), s.victimDir);
    assert.is(fs.lstatSync(join(s.diff, 'alias')).ino, fs.lstatSync(join(s.diff, 'toVictim')).ino);
    assert.is(snapshot(s.victimDir), before);
  } finally {
    fs.rmSync(s.root, { recursive: true, force: true });
  }
});

test.run();
