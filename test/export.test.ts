// exportLayer (native diff) against Docker: byte-identical to the tar moby 20.10's own overlay2
// driver wrote for the same layer (test/fixtures/export/layer.tar, see regenerate.mjs), readable by
// GNU tar, and what GNU tar extracts equals the upper dir after whiteout conversion.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { exportLayer } from '../src/export/export.js';
import { IdMappings } from '../src/idmap.js';
import { loadShim } from '../src/native/shim.js';
import { AT_FDCWD } from '../src/native/constants.js';
import { isRoot, hasOverlay, testIf, scratchRoot } from './support/env.js';
import { buildExportLayer, collect, parseTar, CAPS_V2, NON_UTF8_NAME, type LayerDirs } from './export-fixture.js';

const shim = loadShim();
const hasGnuTar = spawnSync('tar', ['--version']).stdout?.toString().includes('GNU tar') ?? false;
const whyNoOverlay = !isRoot ? 'not root (overlay mounts, chown, mknod, trusted.* xattrs)' : 'no overlay in /proc/filesystems';
const overlayTest = testIf(isRoot && hasOverlay, 'export.test: golden and kernel-made layer tests', whyNoOverlay);
const overlayTarTest = testIf(isRoot && hasOverlay && hasGnuTar, 'export.test: GNU tar tests', hasGnuTar ? whyNoOverlay : 'GNU tar not found');
const rootTest = testIf(isRoot, 'export.test: root-only tests', 'not root (chown, mknod, trusted.* xattrs)');

const GOLDEN = join(process.cwd(), 'test', 'fixtures', 'export', 'layer.tar');
const noMaps = new IdMappings();
const S_IFMT = 0o170000, S_IFCHR = 0o020000, S_IFDIR = 0o040000;

const scratch = scratchRoot('overlay2-export-');
const fresh = scratch.fresh;
let layer: LayerDirs | null = null;
let ours: Buffer | null = null; // exportLayer of the fixture layer, made once

test.after(() => scratch.remove());

async function fixtureExport(): Promise<{ dirs: LayerDirs; tar: Buffer }> {
  if (layer === null || ours === null) {
    const d = fresh();
    layer = { lower: join(d, 'lower'), upper: join(d, 'upper'), work: join(d, 'work'), merged: join(d, 'merged') };
    buildExportLayer(layer);
    ours = await collect(exportLayer(layer.upper, { userxattr: false, idMappings: noMaps }));
  }
  return { dirs: layer, tar: ours };
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

overlayTest('byte-identical to the tar Docker 20.10 exported for the same layer', async () => {
  const golden = fs.readFileSync(GOLDEN);
  const { tar } = await fixtureExport();
  if (!tar.equals(golden)) {
    let i = 0;
    while (i < tar.length && tar[i] === golden[i]) i++;
    const entries = parseTar(golden);
    assert.unreachable(`sha256 ${sha256(tar)} != golden ${sha256(golden)}: first difference at byte ${i} ` +
      `(block ${i >> 9}, offset ${i % 512}); lengths ${tar.length}/${golden.length}; golden has ${entries.length} entries`);
  }
});

overlayTest('the golden layer holds every case it is meant to (so identity proves something)', async () => {
  const entries = parseTar(fs.readFileSync(GOLDEN));
  const byName = new Map(entries.map((e) => [e.name, e]));
  const names = entries.map((e) => e.name);
  // walk order: a directory's children right after it, entries of a directory by name
  assert.ok(names.indexOf('a/b') === names.indexOf('a/') + 1 && names.indexOf('a/b') < names.indexOf('a-b'));
  // kernel whiteouts share one inode: the later ones carry the first one's path as link name
  assert.is(byName.get('etc/.wh.old.conf')?.linkname, '');
  assert.is(byName.get('.wh.gone.txt')?.linkname, 'etc/old.conf');
  assert.is(byName.get('.wh.gonedir')?.typeflag, '0');
  assert.is(byName.get('.wh.gonedir')?.mode, 0o600);
  const marker = byName.get('opq/.wh..wh..opq')!;
  assert.equal([marker.typeflag, marker.mode, marker.mtime, names.indexOf('opq/.wh..wh..opq')], ['0', 0o755, 0, names.indexOf('opq/') + 1]);
  assert.is(byName.get('caps-v3')?.pax.get('SCHILY.xattr.security.capability')?.toString('hex'), CAPS_V2.toString('hex'));
  assert.is(byName.get('caps-dir/')?.pax.get('SCHILY.xattr.security.capability')?.toString('hex'), CAPS_V2.toString('hex'));
  assert.is(byName.get('sub/hl3')?.typeflag, '1');
  assert.is(byName.get('owned-daemon')?.uname, 'daemon');
  assert.is(byName.get('owned-unnamed')?.uname, '');
  assert.ok(byName.has(NON_UTF8_NAME.toString('latin1')));
  assert.not.ok(names.some((n) => n.includes('socket')), 'sockets are skipped');
  assert.not.ok(entries.some((e) => [...e.pax.keys()].some((k) => k.includes('overlay'))), 'no overlay xattrs');
  // hostile symlinks are entries of their own, never followed
  assert.is(byName.get('link-abs')?.typeflag, '2');
  assert.is(byName.get('link-abs')?.linkname, '/etc/shadow');
  assert.is(byName.get('link-escape')?.typeflag, '2');
  assert.not.ok(names.some((n) => n.startsWith('link-escape/') || n.startsWith('link-abs/')));
});

overlayTarTest('GNU tar lists our export', async () => {
  const { tar } = await fixtureExport();
  const r = spawnSync('tar', ['-tvf', '-'], { input: tar, encoding: 'latin1' });
  assert.is(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.is(lines.length, parseTar(tar).length);
});

const EMPTY_SHA = sha256(Buffer.alloc(0)).slice(0, 16);

/** A comparable description of every entry below root; with `convert`, as Docker's tar shows the
 *  upper dir: whiteouts become .wh. files, opaque dirs get their marker, sockets vanish. */
function describe(root: string, convert: boolean): Map<string, string> {
  const out = new Map<string, string>();
  const inodes = new Map<bigint, string>();
  const walk = (dir: Buffer, rel: string) => {
    const names = fs.readdirSync(dir, { encoding: 'buffer' }).sort(Buffer.compare);
    for (const nb of names) {
      const p = Buffer.concat([dir, Buffer.from('/'), nb]);
      const name = rel + nb.toString('latin1');
      const st = fs.lstatSync(p, { bigint: true });
      const mode = Number(st.mode);
      const type = mode & S_IFMT;
      const mtime = Number(st.mtimeNs / 1_000_000_000n) - (st.mtimeNs < 0n && st.mtimeNs % 1_000_000_000n !== 0n ? 1 : 0);
      const own = `${st.uid}:${st.gid}`;
      if (type === 0o140000) { if (!convert) out.set(name, 'socket'); continue; }
      if (convert && type === S_IFCHR && st.rdev === 0n) {
        const slash = name.lastIndexOf('/');
        out.set(name.slice(0, slash + 1) + '.wh.' + name.slice(slash + 1), `file 600 ${own} ${mtime} size=0 sha=${EMPTY_SHA} caps=-`);
        continue;
      }
      let raw: Buffer | null = null;
      // the shim takes the name's bytes, UTF-8 or not
      try { raw = shim.lgetxattr(Buffer.concat([Buffer.from(root + '/'), Buffer.from(name, 'latin1')]), 'security.capability'); } catch { /* none */ }
      // Docker writes a revision-3 capability as revision 2 (the first 20 bytes)
      if (convert && raw !== null && raw[3] === 3) { raw = Buffer.from(raw.subarray(0, 20)); raw[3] = 2; }
      const caps = raw?.toString('hex') ?? '-';
      let what: string;
      if (type === S_IFDIR) what = 'dir';
      else if (type === 0o120000) what = `symlink -> ${fs.readlinkSync(p, { encoding: 'latin1' })}`;
      else if (type === 0o100000) {
        const first = st.nlink > 1n ? inodes.get(st.ino) : undefined;
        if (st.nlink > 1n && first === undefined) inodes.set(st.ino, name);
        what = `file size=${st.size} sha=${sha256(fs.readFileSync(p)).slice(0, 16)}${first ? ` same-inode-as=${first}` : ''}`;
      } else if (type === S_IFCHR) what = `char ${st.rdev}`;
      else if (type === 0o060000) what = `block ${st.rdev}`;
      else what = 'fifo';
      const [kind, ...detail] = what.split(' ');
      out.set(name, `${kind} ${(mode & 0o7777).toString(8)} ${own} ${mtime} ${detail.join(' ')} caps=${caps}`);
      if (type === S_IFDIR) {
        if (convert && shim.lgetxattr(p.toString('utf8'), 'trusted.overlay.opaque')?.toString() === 'y') {
          out.set(name + '/.wh..wh..opq', `file ${(mode & 0o777).toString(8)} ${own} 0 size=0 sha=${EMPTY_SHA} caps=-`);
        }
        walk(p, name + '/');
      }
    }
  };
  walk(Buffer.from(root), '');
  return out;
}

overlayTarTest('GNU tar extracts our export into the upper dir after whiteout conversion', async () => {
  const { dirs, tar } = await fixtureExport();
  const out = join(fresh(), 'x');
  fs.mkdirSync(out);
  execFileSync('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-xpf', '-', '-C', out], { input: tar, stdio: ['pipe', 'ignore', 'ignore'] });
  const want = describe(dirs.upper, true);
  const got = describe(out, false);
  for (const [name, w] of want) assert.is(got.get(name), w, `after extraction: ${name}`);
  assert.equal([...got.keys()].filter((k) => !want.has(k)), [], 'extra entries after extraction');
});

overlayTest("xattrs: 'all' adds every xattr except the overlay's, keeps Docker's capability rule", async () => {
  const { dirs } = await fixtureExport();
  const all = parseTar(await collect(exportLayer(dirs.upper, { userxattr: false, idMappings: noMaps, xattrs: 'all' })));
  const byName = new Map(all.map((e) => [e.name, e]));
  assert.is(byName.get('a.txt')?.pax.get('SCHILY.xattr.user.note')?.toString(), 'not exported by Docker');
  assert.is(byName.get('caps-v3')?.pax.get('SCHILY.xattr.security.capability')?.toString('hex'), CAPS_V2.toString('hex'));
  for (const e of all) {
    for (const k of e.pax.keys()) assert.not.ok(k.includes('.overlay.'), `${e.name} carries ${k}`);
  }
  // copied-up etc/ has trusted.overlay.origin and friends on disk: none of it leaks
  assert.ok(shim.llistxattr(join(dirs.upper, 'etc')).some((k) => k.startsWith('trusted.overlay.')), 'fixture lost its overlay xattrs');
  assert.is(byName.get('etc/')?.pax.size, 0);
  // the default export does not carry user.note
  assert.not.ok(parseTar((await fixtureExport()).tar).some((e) => e.pax.has('SCHILY.xattr.user.note')));
});

rootTest('id maps: tar carries container ids, except whiteouts and .wh. files; unmapped ids fail', async () => {
  const d = fresh();
  fs.mkdirSync(join(d, 'dir'));
  fs.writeFileSync(join(d, 'dir/f'), 'x');
  fs.writeFileSync(join(d, '.wh.kept'), '');
  shim.mknodat(AT_FDCWD, join(d, 'dir/deleted'), S_IFCHR | 0o600, 0, 0);
  fs.lchownSync(join(d, 'dir'), 100_000, 100_000);
  fs.lchownSync(join(d, 'dir/f'), 100_005, 100_007);
  fs.lchownSync(join(d, 'dir/deleted'), 0, 0);
  fs.lchownSync(join(d, '.wh.kept'), 3, 3);
  const maps = new IdMappings({ uidMaps: [{ containerId: 0, hostId: 100_000, size: 65_536 }], gidMaps: [{ containerId: 0, hostId: 100_000, size: 65_536 }] });
  const entries = parseTar(await collect(exportLayer(d, { userxattr: false, idMappings: maps })));
  const ids = Object.fromEntries(entries.map((e) => [e.name, [e.uid, e.gid, e.uname]]));
  assert.equal(ids, {
    '.wh.kept': [3, 3, fs.readFileSync('/etc/passwd', 'utf8').match(/^([^:]*):[^:]*:3:/m)?.[1] ?? ''],
    'dir/': [0, 0, ''],
    'dir/.wh.deleted': [0, 0, 'root'],
    'dir/f': [5, 7, ''],
  });
  fs.lchownSync(join(d, 'dir/f'), 7, 7);
  const err = await collect(exportLayer(d, { userxattr: false, idMappings: maps })).then(() => null, (e: Error & { code?: string }) => e);
  assert.is(err?.code, 'ERR_BAD_OPTION');
});

rootTest('userxattr picks which opaque marker counts (user.overlay.* vs trusted.overlay.*)', async () => {
  const d = fresh();
  for (const n of ['t', 'u']) fs.mkdirSync(join(d, n), { mode: 0o750 });
  shim.lsetxattr(join(d, 't'), 'trusted.overlay.opaque', 'y', 0);
  shim.lsetxattr(join(d, 'u'), 'user.overlay.opaque', 'y', 0);
  const names = async (userxattr: boolean) =>
    parseTar(await collect(exportLayer(d, { userxattr, idMappings: noMaps, xattrs: 'all' }))).map((e) => e.name);
  assert.equal(await names(false), ['t/', 't/.wh..wh..opq', 'u/']);
  assert.equal(await names(true), ['t/', 'u/', 'u/.wh..wh..opq']);
});

test('a symlinked directory in the upper dir is not walked into', async () => {
  const d = fresh();
  fs.mkdirSync(join(d, 'real'));
  fs.writeFileSync(join(d, 'real/secret'), 'inside');
  fs.symlinkSync('/etc', join(d, 'etc-link'));
  fs.symlinkSync('real', join(d, 'real-link'));
  const entries = parseTar(await collect(exportLayer(d, { userxattr: false, idMappings: noMaps })));
  assert.equal(entries.map((e) => `${e.typeflag} ${e.name} ${e.linkname}`), ['2 etc-link /etc', '5 real/ ', '0 real/secret ', '2 real-link real']);
});

test('an empty upper dir is just the end-of-archive blocks', async () => {
  const tar = await collect(exportLayer(fresh(), { userxattr: false, idMappings: noMaps }));
  assert.equal(tar, Buffer.alloc(1024));
});

test.run();
