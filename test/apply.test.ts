// Correct imports: what applyLayer leaves on disk for each kind of entry, checked on real files.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { execFileSync, spawnSync } from 'node:child_process';
import { applyLayer, removeStaleStaging, type ApplyOptions } from '../src/apply/apply.js';
import { IdMappings } from '../src/idmap.js';
import { loadShim } from '../src/native/shim.js';
import { processStart } from '../src/mount/shared-refs.js';
import { isRoot, tempDir, testIf } from './support/env.js';
import { dir, file, gnuLong, hardlink, member, pax, symlink, tarOf } from './apply-tar.js';

const maybe = testIf(isRoot, 'applyLayer tests', 'not running as root (they chown, mknod and set trusted.* xattrs)');

const shim = isRoot ? loadShim() : null;
const plain = (): ApplyOptions => ({ userxattr: false, idMappings: new IdMappings() });
const remapped = new IdMappings({
  uidMaps: [{ containerId: 0, hostId: 100000, size: 65536 }],
  gidMaps: [{ containerId: 0, hostId: 200000, size: 65536 }],
});

let roots: string[] = [];
test.after.each(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
  roots = [];
});

function newLayer(): { layer: string; diff: string } {
  const root = tempDir('ovl2-apply-');
  roots.push(root);
  const layer = join(root, 'layer');
  fs.mkdirSync(join(layer, 'diff'), { recursive: true });
  return { layer, diff: join(layer, 'diff') };
}

async function apply(tar: Buffer, opts: ApplyOptions = plain(), chunk = 0): Promise<{ size: number; diff: string; layer: string }> {
  const { layer, diff } = newLayer();
  const parts: Buffer[] = [];
  if (chunk > 0) for (let i = 0; i < tar.length; i += chunk) parts.push(tar.subarray(i, i + chunk));
  else parts.push(tar);
  const size = await applyLayer(layer, Readable.from(parts), opts);
  assert.equal(fs.readdirSync(layer), ['diff'], 'no staging dir left');
  return { size, diff, layer };
}

/** An independent size: GNU find's st_size of every non-directory, each inode once (moby's directory.Size). */
function duSize(dir: string): number {
  const out = execFileSync('find', [dir, '!', '-type', 'd', '-printf', '%i %s\\n'], { encoding: 'utf8' });
  const seen = new Map<string, number>();
  for (const line of out.split('\n').filter(Boolean)) {
    const [ino, size] = line.split(' ');
    seen.set(ino, Number(size));
  }
  let total = 0;
  for (const s of seen.values()) total += s;
  return total;
}

const CAP_V2_ALL = Buffer.from('01000002ffffffff00000000ffffffff00000000', 'hex'); // rev 2, effective, all permitted

maybe('whiteouts become char 0/0 with the header owner (mapped) and mode; opaque markers set trusted.overlay.opaque', async () => {
  const tar = tarOf(
    dir('etc/', { uid: 0, gid: 0 }),
    file('etc/.wh.passwd', '', { mode: 0o600, uid: 5, gid: 6 }),
    file('.wh.gone', '', { mode: 0o600 }),
    dir('opq/'),
    file('opq/.wh..wh..opq', '', { mode: 0o600 }),
    file('opq/kept', 'k'),
  );
  const { diff } = await apply(tar, { userxattr: false, idMappings: remapped });
  for (const [p, uid, gid] of [['etc/passwd', 100005, 200006], ['gone', 100000, 200000]] as const) {
    const st = fs.lstatSync(join(diff, p));
    assert.ok(st.isCharacterDevice(), `${p} is a char device`);
    assert.is(st.rdev, 0, `${p} is 0/0`);
    assert.is(st.mode & 0o7777, 0o600);
    assert.is(st.uid, uid);
    assert.is(st.gid, gid);
  }
  assert.not.ok(fs.existsSync(join(diff, 'etc/.wh.passwd')));
  assert.equal(shim!.lgetxattr(join(diff, 'opq'), 'trusted.overlay.opaque'), Buffer.from('y'));
  assert.not.ok(fs.existsSync(join(diff, 'opq/.wh..wh..opq')));
  assert.is(fs.readFileSync(join(diff, 'opq/kept'), 'utf8'), 'k');
});

maybe('userxattr: the opaque marker is user.overlay.opaque (also when the archive carries trusted.overlay.opaque)', async () => {
  const tar = tarOf(
    dir('a/'), file('a/.wh..wh..opq'),
    pax([['SCHILY.xattr.trusted.overlay.opaque', 'y'], ['SCHILY.xattr.trusted.overlay.origin', Buffer.from([0, 1, 2, 0xfb])]]), dir('b/'),
  );
  const { diff } = await apply(tar, { userxattr: true, idMappings: new IdMappings() });
  assert.equal(shim!.lgetxattr(join(diff, 'a'), 'user.overlay.opaque'), Buffer.from('y'));
  assert.is(shim!.lgetxattr(join(diff, 'a'), 'trusted.overlay.opaque'), null);
  assert.equal(shim!.lgetxattr(join(diff, 'b'), 'user.overlay.opaque'), Buffer.from('y'));
  assert.is(shim!.lgetxattr(join(diff, 'b'), 'trusted.overlay.origin'), null, 'kernel bookkeeping is not layer content');
});

maybe('binary xattrs arrive byte for byte: security.capability with a setuid bit and a remapped owner', async () => {
  const binary = Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x0a, 0x3d, 0x20, 0xc3, 0x28, 0x00]);
  const tar = tarOf(
    pax([['SCHILY.xattr.security.capability', CAP_V2_ALL], ['SCHILY.xattr.user.blob', binary]]),
    file('bin/ping', 'ELF...', { mode: 0o4755, uid: 0, gid: 0 }),
    pax([['SCHILY.xattr.user.blob', binary]]),
    dir('d/', { mode: 0o2775 }),
    pax([['SCHILY.xattr.user.empty', '']]),
    file('e', 'x'),
  );
  const { diff } = await apply(tar, { userxattr: false, idMappings: remapped });
  const ping = join(diff, 'bin/ping');
  assert.equal(shim!.lgetxattr(ping, 'security.capability'), CAP_V2_ALL);
  assert.equal(shim!.lgetxattr(ping, 'user.blob'), binary);
  const st = fs.lstatSync(ping);
  assert.is(st.mode & 0o7777, 0o4755, 'setuid kept (chmod after chown)');
  assert.is(st.uid, 100000);
  assert.is(st.gid, 200000);
  assert.equal(shim!.lgetxattr(join(diff, 'd'), 'user.blob'), binary);
  assert.is(fs.lstatSync(join(diff, 'd')).mode & 0o7777, 0o2775);
  assert.equal(shim!.lgetxattr(join(diff, 'e'), 'user.empty'), Buffer.alloc(0));
});

maybe('owners go through the id map; an id without a mapping is refused', async () => {
  const tar = tarOf(
    dir('home/', { uid: 0, gid: 0 }), dir('home/u/', { uid: 1000, gid: 1000 }),
    file('home/u/f', 'x', { uid: 1000, gid: 100 }), symlink('home/u/l', 'f', { uid: 1000, gid: 1000 }),
    member({ name: 'fifo', type: '6', uid: 7, gid: 8 }),
  );
  const { diff } = await apply(tar, { userxattr: false, idMappings: remapped });
  const own = (p: string): string => { const s = fs.lstatSync(join(diff, p)); return `${s.uid}:${s.gid}`; };
  assert.is(own('home'), '100000:200000');
  assert.is(own('home/u'), '101000:201000');
  assert.is(own('home/u/f'), '101000:200100');
  assert.is(own('home/u/l'), '101000:201000');
  assert.is(own('fifo'), '100007:200008');

  const { layer } = newLayer();
  const tooHigh = tarOf(file('f', 'x', { uid: 70000 }));
  try {
    await applyLayer(layer, Readable.from([tooHigh]), { userxattr: false, idMappings: remapped });
    assert.unreachable('must fail');
  } catch (e) {
    assert.is((e as { code?: string }).code, 'ERR_BAD_ARCHIVE');
  }
  assert.equal(fs.readdirSync(layer), ['diff']);
  assert.equal(fs.readdirSync(join(layer, 'diff')), []);
});

maybe('hardlinks share an inode and count once; symlinks keep their target', async () => {
  const data = Buffer.alloc(3000, 7);
  const tar = tarOf(
    dir('a/'), file('a/f', data), hardlink('a/h1', 'a/f'), hardlink('h2', '/a/f'), hardlink('./h3', './a/../a/f'),
    symlink('a/s', '../h2'), hardlink('s2', 'a/s'),
  );
  const { diff, size } = await apply(tar);
  const ino = fs.lstatSync(join(diff, 'a/f')).ino;
  for (const p of ['a/h1', 'h2', 'h3']) assert.is(fs.lstatSync(join(diff, p)).ino, ino, p);
  assert.is(fs.lstatSync(join(diff, 'a/f')).nlink, 4);
  assert.is(fs.readlinkSync(join(diff, 'a/s')), '../h2');
  assert.is(fs.lstatSync(join(diff, 's2')).ino, fs.lstatSync(join(diff, 'a/s')).ino);
  assert.is(size, 3000 + 5);
  assert.is(size, duSize(diff));
});

maybe('times: files, symlinks and devices get the archive mtime; dir mtimes survive their children', async () => {
  const tar = tarOf(
    dir('d/', { mtime: 1_000_000_000 }),
    dir('d/sub/', { mtime: 1_100_000_000 }),
    file('d/sub/f', 'x', { mtime: 1_200_000_000 }),
    symlink('d/l', 'sub/f', { mtime: 1_300_000_000 }),
    pax([['mtime', '1400000000.123456789'], ['atime', '1500000000.5']]),
    file('d/ns', 'y'),
    member({ name: 'd/fifo', type: '6', mtime: 1_600_000_001 }),
  );
  const { diff } = await apply(tar);
  const t = (p: string) => fs.lstatSync(join(diff, p), { bigint: true });
  assert.is(t('d').mtimeNs, 1_000_000_000n * 1_000_000_000n, 'dir mtime set after its children');
  assert.is(t('d/sub').mtimeNs, 1_100_000_000n * 1_000_000_000n);
  assert.is(t('d/sub/f').mtimeNs, 1_200_000_000n * 1_000_000_000n);
  assert.is(t('d/sub/f').atimeNs, 1_200_000_000n * 1_000_000_000n, 'atime = mtime without a PAX atime');
  assert.is(t('d/l').mtimeNs, 1_300_000_000n * 1_000_000_000n, 'symlink itself, not its target');
  assert.is(t('d/ns').mtimeNs, 1_400_000_000_123_456_789n, 'PAX mtime to the nanosecond');
  assert.is(t('d/ns').atimeNs, 1_500_000_000_500_000_000n, 'PAX atime');
  assert.is(t('d/fifo').mtimeNs, 1_600_000_001n * 1_000_000_000n);
});

maybe('fifos, char and block devices, modes beyond the umask, sticky dirs, pre-POSIX dirs', async () => {
  const tar = tarOf(
    member({ name: 'dev/null', type: '3', mode: 0o666, devmajor: 1, devminor: 3 }),
    member({ name: 'dev/loop0', type: '4', mode: 0o660, devmajor: 7, devminor: 0, gid: 6 }),
    member({ name: 'run/fifo', type: '6', mode: 0o622 }),
    file('open', 'x', { mode: 0o777 }),
    dir('tmp/', { mode: 0o1777 }),
    member({ name: 'old-style-dir/', type: '\0', mode: 0o750 }),
  );
  const { diff } = await apply(tar);
  const st = (p: string) => fs.lstatSync(join(diff, p));
  assert.ok(st('dev/null').isCharacterDevice());
  assert.is(st('dev/null').rdev, (1 << 8) | 3);
  assert.is(st('dev/null').mode & 0o7777, 0o666);
  assert.ok(st('dev/loop0').isBlockDevice());
  assert.is(st('dev/loop0').rdev, 7 << 8);
  assert.is(st('dev/loop0').gid, 6);
  assert.ok(st('run/fifo').isFIFO());
  assert.is(st('run/fifo').mode & 0o7777, 0o622);
  assert.is(st('open').mode & 0o7777, 0o777);
  assert.is(st('tmp').mode & 0o7777, 0o1777);
  assert.ok(st('old-style-dir').isDirectory());
  assert.is(st('old-style-dir').mode & 0o7777, 0o750);
  // implicit parents: 0755, owned by the mapped root
  assert.ok(st('dev').isDirectory());
  assert.is(st('dev').mode & 0o777, 0o755);
});

maybe('setgid dirs: what is created inside gets the header owner and mode, not the inherited group or S_ISGID', async () => {
  const tar = tarOf(
    dir('sg/', { mode: 0o2775, gid: 50 }),
    file('sg/f', 'x', { gid: 0 }),
    dir('sg/sub/', { mode: 0o755, gid: 0 }),
    file('sg/implicit/f2', 'y'),
    symlink('sg/l', 'f'),
    member({ name: 'sg/fifo', type: '6' }),
    file('sg/.wh.gone'),
    dir('./', { mode: 0o2755, gid: 60 }),
    file('top', 'z'),
  );
  for (const opts of [plain(), { userxattr: false, idMappings: remapped }]) {
    const { diff } = await apply(tar, opts);
    const base = opts.idMappings.empty ? 0 : 200000;
    const st = (p: string) => fs.lstatSync(join(diff, p));
    assert.is(st('sg').gid, base + 50);
    assert.is(st('sg').mode & 0o7777, 0o2775);
    for (const p of ['sg/f', 'sg/sub', 'sg/implicit', 'sg/implicit/f2', 'sg/l', 'sg/fifo', 'sg/gone', 'top']) {
      assert.is(st(p).gid, base, `${p} gid`);
    }
    assert.is(st('sg/sub').mode & 0o7777, 0o755, 'no inherited S_ISGID');
    assert.is(st('sg/implicit').mode & 0o777, 0o755, 'implicit parents: 0755 (S_ISGID inherited, as mkdir -p does)');
  }
});

maybe('long names and link targets via PAX and via GNU L/K', async () => {
  const deep = Array.from({ length: 12 }, (_, i) => `directory-level-${i}`).join('/');
  const long1 = `${deep}/pax-file-${'p'.repeat(150)}`;
  const long2 = `${deep}/gnu-file-${'g'.repeat(150)}`;
  const tar = tarOf(
    pax([['path', long1]]), file('short-placeholder', 'pax content'),
    gnuLong('L', long2), file('another-placeholder', 'gnu content'),
    pax([['path', `${deep}/pax-link`], ['linkpath', long1]]), hardlink('x', 'y'),
    gnuLong('K', long2), gnuLong('L', `${deep}/gnu-symlink`), symlink('z', 'w'),
    pax([['comment', 'global headers are skipped'], ['path', 'must-not-apply']], 'g'),
    file('after-global', 'g'),
  );
  const { diff } = await apply(tar);
  assert.is(fs.readFileSync(join(diff, long1), 'utf8'), 'pax content');
  assert.is(fs.readFileSync(join(diff, long2), 'utf8'), 'gnu content');
  assert.is(fs.lstatSync(join(diff, deep, 'pax-link')).ino, fs.lstatSync(join(diff, long1)).ino);
  assert.is(fs.readlinkSync(join(diff, deep, 'gnu-symlink')), long2);
  assert.ok(fs.existsSync(join(diff, 'after-global')));
  assert.not.ok(fs.existsSync(join(diff, 'short-placeholder')));
  assert.not.ok(fs.existsSync(join(diff, 'must-not-apply')));
});

maybe('replacements: file -> dir, dir -> file (tree removed), symlink -> file, a repeated file, dir over dir keeps children', async () => {
  const tar = tarOf(
    file('x', 'was a file'),
    dir('x/'), file('x/child', 'c'),
    dir('y/'), dir('y/deep/'), file('y/deep/f', Buffer.alloc(1000)), hardlink('keep', 'y/deep/f'),
    file('y', 'now a file'),
    symlink('s', 'x'), file('s', 'file now'),
    file('dup', Buffer.alloc(500)), file('dup', 'short'),
    dir('z/', { mode: 0o700 }), file('z/a', 'a'), dir('z/', { mode: 0o755, mtime: 1_234_567_890 }),
  );
  const { diff, size } = await apply(tar);
  assert.ok(fs.lstatSync(join(diff, 'x')).isDirectory());
  assert.is(fs.readFileSync(join(diff, 'x/child'), 'utf8'), 'c');
  assert.ok(fs.lstatSync(join(diff, 'y')).isFile());
  assert.is(fs.readFileSync(join(diff, 'y'), 'utf8'), 'now a file');
  assert.is(fs.lstatSync(join(diff, 'keep')).size, 1000, 'the hardlink outside the removed tree keeps the data');
  assert.ok(fs.lstatSync(join(diff, 's')).isFile());
  assert.is(fs.readFileSync(join(diff, 'dup'), 'utf8'), 'short');
  assert.is(fs.readFileSync(join(diff, 'z/a'), 'utf8'), 'a');
  assert.is(fs.lstatSync(join(diff, 'z')).mode & 0o777, 0o755);
  assert.is(fs.lstatSync(join(diff, 'z')).mtimeMs, 1_234_567_890_000);
  assert.is(size, duSize(diff), 'running size follows removals and replacements');
});

maybe('AUFS metadata (.wh..wh.plnk, .wh..wh.aufs) is skipped with its content', async () => {
  const tar = tarOf(
    dir('.wh..wh.plnk/'), file('.wh..wh.plnk/123.456', 'hidden'), file('.wh..wh.aufs', ''), dir('.wh..wh.orph/'),
    file('real', 'r'),
  );
  const { diff } = await apply(tar);
  assert.equal(fs.readdirSync(diff), ['real']);
});

/** A varied tree made with ordinary tools, archived by GNU tar, imported, compared field by field. */
function makeVariedTree(src: string): void {
  fs.mkdirSync(join(src, 'usr/bin'), { recursive: true });
  fs.mkdirSync(join(src, 'usr/lib/x'), { recursive: true });
  fs.mkdirSync(join(src, 'tmp'), { mode: 0o1777 });
  fs.chmodSync(join(src, 'tmp'), 0o1777);
  fs.writeFileSync(join(src, 'usr/bin/tool'), Buffer.alloc(70_000, 1));
  fs.chmodSync(join(src, 'usr/bin/tool'), 0o4755);
  fs.linkSync(join(src, 'usr/bin/tool'), join(src, 'usr/bin/tool-alias'));
  fs.symlinkSync('../lib/x', join(src, 'usr/bin/libx'));
  fs.symlinkSync('/usr/bin/tool', join(src, 'abs-link'));
  fs.writeFileSync(join(src, 'usr/lib/x/empty'), '');
  fs.writeFileSync(join(src, 'usr/lib/x/ünïcødé 名前'), 'utf-8 names');
  fs.chownSync(join(src, 'usr/lib/x/empty'), 1234, 5678);
  execFileSync('mkfifo', [join(src, 'usr/lib/fifo')]);
  execFileSync('mknod', [join(src, 'usr/lib/null'), 'c', '1', '3']);
  execFileSync('setfattr', ['-n', 'user.note', '-v', '0x00ff10', join(src, 'usr/lib/x/empty')]);
  execFileSync('setfattr', ['-n', 'user.dirnote', '-v', 'hello', join(src, 'usr/lib')]);
  execFileSync('touch', ['-h', '-d', '2020-02-02 02:02:02.123456789', join(src, 'usr/bin/libx')]);
  execFileSync('touch', ['-d', '2019-01-01 00:00:00.5', join(src, 'usr/bin/tool')]);
  execFileSync('touch', ['-d', '2018-01-01', join(src, 'usr/lib/x'), join(src, 'usr/lib'), join(src, 'usr')]);
}

function describeTree(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    const p = join(root, rel);
    const st = fs.lstatSync(p, { bigint: true });
    let extra = '';
    if (st.isFile()) extra = fs.readFileSync(p).toString('base64').slice(0, 64) + ` links=${st.nlink}`;
    if (st.isSymbolicLink()) extra = fs.readlinkSync(p);
    if (st.isCharacterDevice()) extra = `rdev=${st.rdev}`;
    const xattrs = st.isSymbolicLink() ? [] : shim!.llistxattr(p).filter((n) => n.startsWith('user.')).sort()
      .map((n) => `${n}=${shim!.lgetxattr(p, n)!.toString('hex')}`);
    // GNU tar stores directory and file times to the nanosecond with --format=pax
    out.push(`${rel} mode=${st.mode.toString(8)} ${st.uid}:${st.gid} size=${st.isDirectory() ? '-' : st.size} mtime=${st.mtimeNs} ${extra} ${xattrs.join(',')}`);
    if (st.isDirectory()) for (const n of fs.readdirSync(p).sort()) walk(rel === '.' ? n : `${rel}/${n}`);
  };
  walk('.');
  return out;
}

maybe('a GNU tar archive (pax format, xattrs) of a varied tree imports to an identical tree; size equals du', async () => {
  const { layer } = newLayer();
  const src = join(layer, '..', 'src');
  fs.mkdirSync(src);
  makeVariedTree(src);
  const tarPath = join(layer, '..', 'varied.tar');
  execFileSync('tar', ['--xattrs', '--xattrs-include=user.*', '--format=pax', '-C', src, '-cf', tarPath, '.']);
  const size = await applyLayer(layer, fs.createReadStream(tarPath, { highWaterMark: 1000 }), plain());
  const diff = join(layer, 'diff');
  const want = describeTree(src).filter((l) => !l.startsWith('. '));
  const got = describeTree(diff).filter((l) => !l.startsWith('. '));
  assert.equal(got, want);
  assert.is(size, duSize(diff));
});

function haveCommand(cmd: string): boolean {
  return spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;
}

for (const [format, cmd, make] of [
  ['gzip', 'gzip', (b: Buffer) => (haveCommand('gzip') ? execFileSync('gzip', ['-c'], { input: b }) : zlib.gzipSync(b))],
  ['zstd', 'zstd', (b: Buffer) => execFileSync('zstd', ['-c', '-q'], { input: b })],
  ['xz', 'xz', (b: Buffer) => execFileSync('xz', ['-c', '-q'], { input: b })],
  ['bzip2', 'bzip2', (b: Buffer) => execFileSync('bzip2', ['-c', '-q'], { input: b })],
] as const) {
  const can = isRoot && (format === 'gzip' || haveCommand(cmd));
  testIf(can, `the ${format} input test`, isRoot ? `no \`${cmd}\` command here` : 'not running as root')(`${format}-compressed input is detected and decompressed`, async () => {
    const files = Array.from({ length: 40 }, (_, i) => file(`d/f${i}`, Buffer.alloc(3000 + i, i)));
    const tar = tarOf(dir('d/'), ...files);
    const { diff, size } = await apply(make(tar), plain(), 777);
    assert.is(fs.readdirSync(join(diff, 'd')).length, 40);
    assert.equal(fs.readFileSync(join(diff, 'd/f39')), Buffer.alloc(3039, 39));
    assert.is(size, duSize(diff));
  });
}

maybe('file streams (read directly): plain, gzip, with start/end, and one already being read', async () => {
  const tar = tarOf(dir('d/'), ...Array.from({ length: 30 }, (_, i) => file(`d/f${i}`, Buffer.alloc(5000 + i, i))));
  const { layer: scratch } = newLayer();
  const plainPath = join(scratch, '..', 'plain.tar');
  const gzPath = join(scratch, '..', 'layer.tar.gz');
  const framedPath = join(scratch, '..', 'framed.bin');
  fs.writeFileSync(plainPath, tar);
  fs.writeFileSync(gzPath, zlib.gzipSync(tar));
  fs.writeFileSync(framedPath, Buffer.concat([Buffer.alloc(777, 0x41), tar, Buffer.alloc(3000, 0x42)]));
  const check = async (input: Readable, what: string) => {
    const { layer, diff } = newLayer();
    const size = await applyLayer(layer, input, plain());
    assert.is(fs.readdirSync(join(diff, 'd')).length, 30, what);
    assert.equal(fs.readFileSync(join(diff, 'd/f29')), Buffer.alloc(5029, 29), what);
    assert.is(size, duSize(diff), what);
    assert.ok(input.destroyed, `${what}: the input is released`);
  };
  await check(fs.createReadStream(plainPath), 'plain file');
  await check(fs.createReadStream(gzPath), 'gzip file');
  await check(fs.createReadStream(framedPath, { start: 777, end: 777 + tar.length - 1 }), 'start/end');
  const opened = fs.createReadStream(plainPath, { highWaterMark: 512 });
  await new Promise<void>((r) => opened.once('readable', () => r())); // buffered already: the stream path takes over
  await check(opened, 'already reading');
});

maybe('corrupt gzip is ERR_BAD_ARCHIVE and leaves nothing behind', async () => {
  const gz = zlib.gzipSync(tarOf(file('a', Buffer.alloc(100_000, 3))));
  gz[gz.length >> 1] ^= 0xff;
  gz[(gz.length >> 1) + 1] ^= 0xff;
  const { layer } = newLayer();
  try {
    await applyLayer(layer, Readable.from([gz]), plain());
    assert.unreachable('must fail');
  } catch (e) {
    assert.is((e as { code?: string }).code, 'ERR_BAD_ARCHIVE', (e as Error).message);
  }
  assert.equal(fs.readdirSync(layer), ['diff']);
  assert.equal(fs.readdirSync(join(layer, 'diff')), []);
});

maybe('odd chunk sizes give the same tree as one chunk', async () => {
  const members: Buffer[] = [dir('a/')];
  for (let i = 0; i < 30; i++) members.push(file(`a/f${i}`, Buffer.alloc(i * 97, i)));
  members.push(pax([['path', `a/${'long'.repeat(40)}`], ['SCHILY.xattr.user.x', Buffer.from([0xff, 0])]]), file('p', 'pax'));
  const tar = tarOf(...members);
  const whole = await apply(tar);
  for (const chunk of [1, 7, 511, 513, 4096]) {
    const cut = await apply(tar, plain(), chunk);
    const noRoot = (d: string) => describeTree(d).filter((l) => !l.startsWith('. '));
    assert.equal(noRoot(cut.diff), noRoot(whole.diff), `chunk ${chunk}`);
    assert.is(cut.size, whole.size);
  }
});

maybe('a non-empty diff/ is applied in place (moby semantics) and the size covers the whole dir', async () => {
  const { layer, diff } = newLayer();
  fs.writeFileSync(join(diff, 'old'), Buffer.alloc(1234));
  fs.mkdirSync(join(diff, 'keepdir'));
  fs.writeFileSync(join(diff, 'keepdir/inside'), 'kept');
  fs.writeFileSync(join(diff, 'replaced'), 'old content');
  const tar = tarOf(dir('keepdir/', { mode: 0o700 }), file('keepdir/new', 'n'), file('replaced', 'new'), file('.wh.old'));
  const size = await applyLayer(layer, Readable.from([tar]), plain());
  assert.is(fs.readFileSync(join(diff, 'keepdir/inside'), 'utf8'), 'kept');
  assert.is(fs.readFileSync(join(diff, 'keepdir/new'), 'utf8'), 'n');
  assert.is(fs.lstatSync(join(diff, 'keepdir')).mode & 0o777, 0o700);
  assert.is(fs.readFileSync(join(diff, 'replaced'), 'utf8'), 'new');
  assert.ok(fs.lstatSync(join(diff, 'old')).isCharacterDevice(), 'whiteout replaces the old file');
  assert.is(size, duSize(diff));
  assert.equal(fs.readdirSync(layer), ['diff']);
});

maybe('the staged diff/ keeps the mode and owner diff/ had; sync option works', async () => {
  const { layer, diff } = newLayer();
  fs.chmodSync(diff, 0o711);
  fs.chownSync(diff, 4242, 4343);
  await applyLayer(layer, Readable.from([tarOf(file('f', 'x'))]), { ...plain(), sync: true });
  const st = fs.lstatSync(diff);
  assert.is(st.mode & 0o7777, 0o711);
  assert.is(`${st.uid}:${st.gid}`, '4242:4343');
  assert.is(fs.readFileSync(join(diff, 'f'), 'utf8'), 'x');
});

maybe('a root entry "./" sets the attributes of diff/ itself', async () => {
  const { diff } = await apply(tarOf(dir('./', { mode: 0o750, uid: 3, gid: 4, mtime: 1_111_111_111 }), file('./f', 'x')));
  const st = fs.lstatSync(diff);
  assert.is(st.mode & 0o7777, 0o750);
  assert.is(`${st.uid}:${st.gid}`, '3:4');
  assert.is(st.mtimeMs, 1_111_111_111_000);
});

maybe('an empty archive (or an empty stream) gives an empty layer of size 0', async () => {
  const a = await apply(Buffer.alloc(10240));
  assert.is(a.size, 0);
  assert.equal(fs.readdirSync(a.diff), []);
  const b = await apply(Buffer.alloc(0));
  assert.is(b.size, 0);
});

maybe('removeStaleStaging removes dead imports\' .staging-diff-* and nothing else', async () => {
  const { layer, diff } = newLayer();
  // a pid that is not running (a child that has exited), and this process under another start time
  const dead = spawnSync('true').pid!;
  const mine = `${process.pid}-${processStart(process.pid)}`;
  fs.mkdirSync(join(layer, `.staging-diff-${dead}-123-aaaa/deep/er`), { recursive: true });
  fs.writeFileSync(join(layer, `.staging-diff-${dead}-123-aaaa/deep/er/f`), 'x');
  fs.symlinkSync('/etc', join(layer, `.staging-diff-${dead}-123-aaaa/deep/etc`));
  fs.mkdirSync(join(layer, `.staging-diff-${process.pid}-1-bbbb`));
  fs.mkdirSync(join(layer, `.staging-diff-${dead}-cccc`));
  fs.mkdirSync(join(layer, '.staging-diff-x'));
  // live: this process's own import, and one named the older way (no start time) by a live pid
  fs.mkdirSync(join(layer, `.staging-diff-${mine}-dddd`));
  fs.mkdirSync(join(layer, `.staging-diff-${process.pid}-eeee`));
  fs.writeFileSync(join(layer, 'link'), 'ABC');
  fs.writeFileSync(join(diff, 'f'), 'keep');
  assert.is(await removeStaleStaging(layer), 4);
  assert.equal(fs.readdirSync(layer).sort(), [`.staging-diff-${process.pid}-eeee`, `.staging-diff-${mine}-dddd`, 'diff', 'link'].sort());
  for (const live of [`.staging-diff-${mine}-dddd`, `.staging-diff-${process.pid}-eeee`]) fs.rmdirSync(join(layer, live));
  assert.ok(fs.existsSync('/etc/passwd'), 'a symlink inside staging was not followed');
  assert.is(fs.readFileSync(join(diff, 'f'), 'utf8'), 'keep');
  assert.is(await removeStaleStaging(join(layer, 'missing')), 0);
});

const canUnshare = isRoot && spawnSync('unshare', ['-U', '-r', 'true']).status === 0;
testIf(canUnshare, 'the user-namespace device test', isRoot ? '`unshare -U -r` does not work here' : 'not running as root')('in a user namespace, device nodes are skipped with a warning; whiteouts still work', async () => {
  const { layer, diff } = newLayer();
  const tarPath = join(layer, '..', 'dev.tar');
  fs.writeFileSync(tarPath, tarOf(
    member({ name: 'dev/null', type: '3', mode: 0o666, devmajor: 1, devminor: 3 }),
    member({ name: 'fifo', type: '6' }),
    file('.wh.gone'),
    file('f', 'x'),
  ));
  const script = `
    import { applyLayer } from ${JSON.stringify(new URL('../src/apply/apply.js', import.meta.url).href)};
    import { IdMappings } from ${JSON.stringify(new URL('../src/idmap.js', import.meta.url).href)};
    import fs from 'node:fs';
    const warnings = [];
    const size = await applyLayer(${JSON.stringify(layer)}, fs.createReadStream(${JSON.stringify(tarPath)}),
      { userxattr: false, idMappings: new IdMappings(), onWarning: (m) => warnings.push(m) });
    console.log(JSON.stringify({ size, warnings }));`;
  const r = spawnSync('unshare', ['-U', '-r', process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { size: number; warnings: string[] };
  assert.is(out.warnings.length, 1);
  assert.match(out.warnings[0], /dev\/null/);
  assert.not.ok(fs.existsSync(join(diff, 'dev/null')));
  assert.ok(fs.lstatSync(join(diff, 'fifo')).isFIFO());
  assert.ok(fs.lstatSync(join(diff, 'gone')).isCharacterDevice());
  assert.is(fs.readFileSync(join(diff, 'f'), 'utf8'), 'x');
});

test.run();
