// File names are bytes (issue #13): a layer whose names are Latin-1 and broken UTF-8 — files, a
// directory, a hardlink and symlinks to them, whiteouts and an opaque directory of them, a
// security.capability on one — goes through apply, diff and changes unchanged, byte for byte what
// moby 20.10's own driver (the peer CLI moby-ovl) does with the same upper dir, through the API
// and the CLI.
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { suite } from 'uvu';
import { Overlay2Driver } from '../src/driver.js';
import type { Change } from '../src/changes/change.js';
import { loadShim } from '../src/native/shim.js';
import { TarReader } from '../src/tar/reader.js';
import { TarHeaderEncoder, TYPE_REG, TYPE_SYMLINK } from '../src/tar/header.js';
import { escapeBytes, goDisplay, unescapeBytes } from '../src/util/byte-names.js';
import { applyLayer } from '../src/apply/apply.js';
import { IdMappings } from '../src/idmap.js';
import { isRoot, mountTest, tempDir, removeTree, testIf } from './support/env.js';
import { CLI_BIN } from './support/cli.js';
import { member, pax, tarOf } from './apply-tar.js';
import { findPeer } from './support/peers.js';
import { CAPS_V2, collect, parseTar } from './export-fixture.js';

const moby = findPeer('moby-ovl');
const test = mountTest(testIf(!!moby, 'byte-name tests against Docker', 'moby-ovl not built (bash ../shared/peers/build.sh /opt/ovl-peers)'));
const cli = CLI_BIN;

/** A name's bytes, written as a latin1 string: 'caf\xe9' is c a f 0xE9. */
const B = (s: string) => Buffer.from(s, 'latin1');
const LATIN1 = 'caf\xe9';                 // café in Latin-1: 0xE9 alone is not UTF-8
const BROKEN = 'bad\xe2\x82';             // a UTF-8 sequence cut short
const DIR = 'd\xff';                      // 0xFF never occurs in UTF-8
const CHILD = 'f\xfe\xe9';
const GONE = 'gone\xe9';
const OPAQUE = 'o\xe9';
const UTF8 = Buffer.from('ünïcode').toString('latin1'); // valid UTF-8, for contrast

let base = '';
let home = '';

function peer(args: string[], input?: Buffer): Buffer {
  const r = spawnSync(moby as string, ['--home', home, ...args], { input, maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`moby-ovl ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

function at(dir: string, ...names: string[]): Buffer {
  return Buffer.concat([Buffer.from(dir), ...names.map((n) => B('/' + n))]);
}

/** moby's change list ("K /path\n", the path's raw bytes) as [kind, bytes]. */
function peerChanges(out: Buffer): Array<[string, string]> {
  const list: Array<[string, string]> = [];
  for (let start = 0; start < out.length;) {
    const end = out.indexOf(0x0a, start);
    list.push([String.fromCharCode(out[start]!), out.toString('latin1', start + 2, end)]);
    start = end + 1;
  }
  return list;
}

/** The first entry where two tars differ, for a failure message. */
function firstDifference(got: Buffer, want: Buffer): string {
  const show = (e: ReturnType<typeof parseTar>[number] | undefined) => e === undefined ? 'nothing' :
    JSON.stringify({ ...e, data: e.data.length, pax: [...e.pax].map(([k, v]) => [k, v.toString('latin1')]) });
  const a = parseTar(got), b = parseTar(want);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (show(a[i]) !== show(b[i])) return `entry ${i}: got ${show(a[i])}, want ${show(b[i])}`;
  }
  return `same entries, ${got.length} vs ${want.length} bytes`;
}

const ours = (list: Change[]) => list.map((c) => [c.kind, c.pathBytes.toString('latin1')] as [string, string]);

test.before(() => {
  base = tempDir();
  home = join(base, 'overlay2');
  // The lower layer, written straight into its diff dir.
  peer(['create', 'bn-base', '-']);
  const lower = join(home, 'bn-base', 'diff');
  fs.writeFileSync(at(lower, GONE), 'to be deleted\n');
  fs.mkdirSync(at(lower, OPAQUE));
  fs.writeFileSync(at(lower, OPAQUE, 'old\xe9'), 'hidden by the opaque dir\n');
  fs.mkdirSync(at(lower, DIR));
  // The upper layer, changed through moby's own mount: the kernel writes the whiteout and the
  // opaque marker, under the names' exact bytes.
  peer(['create', 'bn-top', 'bn-base']);
  const merged = peer(['get', 'bn-top']).toString().trim();
  try {
    fs.writeFileSync(at(merged, LATIN1), 'latin-1 name\n', { mode: 0o755 });
    fs.writeFileSync(at(merged, BROKEN), 'broken utf-8 name\n');
    fs.writeFileSync(at(merged, DIR, CHILD), 'child of a non-UTF-8 dir\n');
    fs.linkSync(at(merged, LATIN1), at(merged, 'hl\xe9'));
    fs.symlinkSync(B(LATIN1), at(merged, 'sl\xe9'));
    fs.symlinkSync(B(`${DIR}/${CHILD}`), at(merged, 'sl-deep'));
    fs.writeFileSync(at(merged, UTF8), 'valid utf-8, for contrast\n');
    fs.rmSync(at(merged, GONE));
    fs.rmSync(at(merged, OPAQUE), { recursive: true });
    fs.mkdirSync(at(merged, OPAQUE));
    fs.writeFileSync(at(merged, OPAQUE, 'new\xe9'), 'new in the opaque dir\n');
  } finally {
    peer(['put', 'bn-top']);
  }
  // An xattr on a non-UTF-8 name (Docker exports security.capability), and fixed times so the
  // diff does not depend on when the test ran.
  const upper = join(home, 'bn-top', 'diff');
  const fd = fs.openSync(at(upper, LATIN1), 'r');
  try {
    loadShim().fsetxattr(fd, 'security.capability', CAPS_V2, 0);
  } finally {
    fs.closeSync(fd);
  }
  for (const n of [LATIN1, BROKEN, `${DIR}/${CHILD}`, DIR, UTF8, `${OPAQUE}/new\xe9`, OPAQUE]) {
    fs.utimesSync(at(upper, n), 1_600_000_000, 1_600_000_000);
  }
  for (const n of ['sl\xe9', 'sl-deep']) fs.lutimesSync(at(upper, n), 1_600_000_000, 1_600_000_000);
  fixWhiteoutTime(upper);
});

/** A whiteout's tar entry carries the device's mtime, which no apply (moby's neither) gives back
 *  to the device it makes: pin it where a round trip is compared byte for byte. */
function fixWhiteoutTime(upper: string): void {
  fs.utimesSync(at(upper, GONE), 1_600_000_000, 1_600_000_000);
}
test.after(() => removeTree(base));

test('diff of a layer with non-UTF-8 names is byte-identical to moby\'s diff of the same upper dir', async () => {
  const expected = peer(['diff', 'bn-top', 'bn-base']);
  // what moby wrote carries the names' bytes (PAX path records), the capability and the whiteouts
  const names: string[] = [];
  const caps: string[] = [];
  const r = new TarReader({ entry: (e) => { names.push(e.name); if (e.xattrs) caps.push(e.name); }, data() {}, end() {} });
  r.push(expected);
  r.finish();
  for (const n of [LATIN1, BROKEN, `${DIR}/${CHILD}`, 'hl\xe9', 'sl\xe9', `.wh.${GONE}`, `${OPAQUE}/.wh..wh..opq`]) {
    assert.ok(names.includes(n), `moby's tar has ${JSON.stringify(n)}`);
  }
  assert.ok(caps.includes(LATIN1), JSON.stringify(caps));

  const driver = await Overlay2Driver.init(home);
  const got = await collect(await driver.diff('bn-top', 'bn-base'));
  assert.ok(got.equals(expected), firstDifference(got, expected));
});

test('changes: the exact bytes equal moby\'s; the display path is what docker diff shows', async () => {
  const driver = await Overlay2Driver.init(home);
  const expected = peerChanges(peer(['changes', 'bn-top', 'bn-base']));
  assert.ok(expected.some(([, p]) => p === `/${BROKEN}`));
  const native = await driver.changes('bn-top', 'bn-base');
  assert.equal(ours(native), expected, JSON.stringify(ours(native)));
  assert.equal(ours(await driver.changesNaive('bn-top', 'bn-base')), expected);
  const broken = native.find((c) => c.pathBytes.equals(B(`/${BROKEN}`)))!;
  assert.is(broken.path, '/bad\ufffd\ufffd'); // Go's JSON: one U+FFFD per byte that is not UTF-8
  assert.is(native.find((c) => c.pathBytes.equals(Buffer.from('/ünïcode')))!.path, '/ünïcode');
});

test('apply → diff round trip: the layer comes back byte-identical, and moby reads it the same', async () => {
  const driver = await Overlay2Driver.init(home);
  const tar = peer(['diff', 'bn-top', 'bn-base']);
  await driver.create('bn-copy', 'bn-base');
  await driver.applyDiff('bn-copy', 'bn-base', Readable.from([tar]));
  const upper = join(home, 'bn-copy', 'diff');
  assert.is(fs.readFileSync(at(upper, DIR, CHILD), 'utf8'), 'child of a non-UTF-8 dir\n');
  assert.ok(fs.readlinkSync(at(upper, 'sl\xe9'), { encoding: 'buffer' }).equals(B(LATIN1)));
  assert.is(fs.statSync(at(upper, 'hl\xe9')).ino, fs.statSync(at(upper, LATIN1)).ino);
  assert.ok(fs.lstatSync(at(upper, GONE)).isCharacterDevice());
  fixWhiteoutTime(upper);
  const again = await collect(await driver.diff('bn-copy', 'bn-base'));
  assert.ok(again.equals(tar), `our diff of our apply: ${firstDifference(again, tar)}`);
  const mobyAgain = peer(['diff', 'bn-copy', 'bn-base']);
  assert.ok(mobyAgain.equals(tar), `moby's diff of our apply: ${firstDifference(mobyAgain, tar)}`);
  assert.equal(ours(await driver.changes('bn-copy', 'bn-base')), peerChanges(peer(['changes', 'bn-copy', 'bn-base'])));
});

test('CLI: changes prints paths as docker diff does; --json escapes the bytes reversibly', async () => {
  const expected = peerChanges(peer(['changes', 'bn-top', 'bn-base']));
  const text = spawnSync(process.execPath, [cli, '--home', home, 'changes', 'bn-top', '--parent', 'bn-base'], { encoding: 'buffer' });
  assert.is(text.status, 0, text.stderr.toString());
  assert.is(text.stdout.toString('utf8'), expected.map(([k, p]) => `${k} ${goDisplay(B(p))}\n`).join(''));
  const json = spawnSync(process.execPath, [cli, '--home', home, 'changes', 'bn-top', '--parent', 'bn-base', '--json'], { encoding: 'utf8' });
  assert.is(json.status, 0, json.stderr);
  assert.ok(json.stdout.includes('"/caf\\udce9"'), json.stdout);
  const list = JSON.parse(json.stdout) as Array<{ path: string; kind: string }>;
  assert.equal(list.map((c) => [c.kind, unescapeBytes(c.path).toString('latin1')]), expected);
  // and the CLI's import takes such a tar, which it used to refuse
  const tar = peer(['diff', 'bn-top', 'bn-base']);
  const file = join(base, 'top.tar');
  fs.writeFileSync(file, tar);
  const create = spawnSync(process.execPath, [cli, '--home', home, 'create', 'bn-cli', '--parent', 'bn-base'], { encoding: 'utf8' });
  assert.is(create.status, 0, create.stderr);
  const apply = spawnSync(process.execPath, [cli, '--home', home, 'apply', 'bn-cli', '--parent', 'bn-base', '-i', file], { encoding: 'utf8' });
  assert.is(apply.status, 0, apply.stderr);
  fixWhiteoutTime(join(home, 'bn-cli', 'diff'));
  const viaCli = peer(['diff', 'bn-cli', 'bn-base']);
  assert.ok(viaCli.equals(tar), firstDifference(viaCli, tar));
});

// ---- the pieces, without mounts ------------------------------------------------------------------

const units = suite('byte names (no mounts)');

units('goDisplay replaces each byte that is not UTF-8 the way Go does (one U+FFFD per byte)', () => {
  assert.is(goDisplay(B('caf\xe9')), 'caf\ufffd');
  assert.is(goDisplay(B('a\xe2\x82b')), 'a\ufffd\ufffdb');     // WHATWG decoding would give one
  assert.is(goDisplay(B('\xed\xa0\x80')), '\ufffd\ufffd\ufffd'); // a surrogate's encoding
  assert.is(goDisplay(B('\xc0\xaf')), '\ufffd\ufffd');         // overlong "/"
  assert.is(goDisplay(B('\xf4\x90\x80\x80')), '\ufffd\ufffd\ufffd\ufffd'); // above U+10FFFF
  assert.is(goDisplay(Buffer.from('ünï ✓ 😀')), 'ünï ✓ 😀');
});

units('escapeBytes/unescapeBytes: every byte sequence round-trips through JSON', () => {
  const samples = [B('caf\xe9'), B('a\xe2\x82b'), B('\xff\xfe'), Buffer.from('ünï 😀'), B('\xed\xb3\xa9'), Buffer.from('\udce9')];
  for (let i = 0; i < 200; i++) samples.push(Buffer.from(Array.from({ length: i % 9 }, (_, j) => (i * 37 + j * 101) & 0xff)));
  for (const s of samples) {
    const back = unescapeBytes(JSON.parse(JSON.stringify(escapeBytes(s))));
    assert.ok(back.equals(s), s.toString('hex'));
  }
  assert.is(JSON.stringify(escapeBytes(B('caf\xe9'))), '"caf\\udce9"');
});

units('the header encoder writes a non-UTF-8 name and link target as raw PAX records, as Go does', () => {
  const h = { name: 'caf\xe9', linkname: '', typeflag: TYPE_REG, mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0,
    uname: '', gname: '', devmajor: 0, devminor: 0, xattrs: null };
  const block = Buffer.from(new TarHeaderEncoder().encode(h));
  assert.is(block.length, 1536);
  assert.is(block.toString('latin1', 0, 20).replace(/\0+$/, ''), 'PaxHeaders.0/caf');
  assert.is(block.toString('latin1', 512, 525), '13 path=caf\xe9\n');
  assert.is(block.toString('latin1', 1024, 1027), 'caf'); // Go's toASCII drops the byte in the USTAR field
  const link = Buffer.from(new TarHeaderEncoder().encode({ ...h, name: 'l', typeflag: TYPE_SYMLINK, linkname: 'd\xff/x' }));
  assert.is(link.toString('latin1', 512, 529), '17 linkpath=d\xff/x\n');
  // and the reader gives the same bytes back
  const names: string[] = [];
  const r = new TarReader({ entry: (e) => names.push(`${e.name}>${e.linkname}`), data() {}, end() {} });
  r.push(Buffer.concat([block, link, Buffer.alloc(1024)]));
  r.finish();
  assert.equal(names, ['caf\xe9>', 'l>d\xff/x']);
});

// ---- apply's rules on bytes ------------------------------------------------------------------------

const rules = suite('byte names: apply rules');
const rulesTest = testIf(isRoot, 'apply rules on byte names', 'not running as root', rules);
const paxNamed = (name: string, data = '', type = '0', linkname?: string) =>
  Buffer.concat([pax([['path', B(name)], ...(linkname ? [['linkpath', B(linkname)] as [string, Buffer]] : [])]),
    member({ name: 'placeholder', type, data, linkname: linkname ? 'placeholder' : undefined })]);

async function applyTo(tar: Buffer): Promise<{ diff: string; err: (Error & { code?: string }) | null }> {
  const layer = join(rulesBase, `rules-${Math.random().toString(36).slice(2)}`);
  fs.mkdirSync(join(layer, 'diff'), { recursive: true });
  const err = await applyLayer(layer, Readable.from([tar]), { userxattr: false, idMappings: new IdMappings() })
    .then(() => null, (e: Error & { code?: string }) => e);
  return { diff: join(layer, 'diff'), err };
}

let rulesBase = '';
rules.before(() => { rulesBase = tempDir(); });
rules.after(() => removeTree(rulesBase));

rulesTest('a USTAR archive GNU tar writes from Latin-1 names applies (it used to be refused)', async () => {
  const src = join(rulesBase, 'gnu-src');
  fs.mkdirSync(at(src, DIR), { recursive: true });
  fs.writeFileSync(at(src, DIR, LATIN1), 'gnu tar\n');
  fs.symlinkSync(B(LATIN1), at(src, DIR, 'sl'));
  const tar = execFileSync('tar', ['--format=ustar', '-C', src, '-cf', '-', '.']);
  assert.ok(tar.includes(B(LATIN1)), 'GNU tar kept the raw bytes in the USTAR name field');
  const { diff, err } = await applyTo(tar);
  assert.is(err, null);
  assert.is(fs.readFileSync(at(diff, DIR, LATIN1), 'utf8'), 'gnu tar\n');
  assert.ok(fs.readlinkSync(at(diff, DIR, 'sl'), { encoding: 'buffer' }).equals(B(LATIN1)));
});

rulesTest('".." climbing out is refused whatever the other bytes are', async () => {
  for (const name of ['\xff/../../x', 'caf\xe9/../../../x']) {
    const { err } = await applyTo(tarOf(paxNamed(name, 'x')));
    assert.is(err?.code, 'ERR_UNSAFE_ARCHIVE', name);
  }
  const { err } = await applyTo(tarOf(paxNamed('d\xff/l', '', '2', '../../\xe9')));
  assert.is(err?.code, 'ERR_UNSAFE_ARCHIVE', 'a symlink target climbing out');
  const wh = await applyTo(tarOf(paxNamed('.wh.\xff/x', 'x')));
  assert.is(wh.err?.code, 'ERR_UNSAFE_ARCHIVE', 'a whiteout with children');
});

rulesTest('bytes are never "repaired": an overlong ".." is a plain name; whiteouts and hardlinks by bytes', async () => {
  const { diff, err } = await applyTo(tarOf(
    paxNamed('a/\xc0\xae\xc0\xae/x', 'overlong'), // what a lax decoder reads as "a/../x"
    paxNamed(LATIN1, 'target'),
    paxNamed('hl\xff', '', '1', LATIN1),
    paxNamed('.wh.\xff\xfe'),
  ));
  assert.is(err, null, err?.message);
  assert.is(fs.readFileSync(at(diff, 'a', '\xc0\xae\xc0\xae', 'x'), 'utf8'), 'overlong');
  assert.not.ok(fs.existsSync(join(diff, 'x')));
  assert.is(fs.statSync(at(diff, 'hl\xff')).ino, fs.statSync(at(diff, LATIN1)).ino);
  const wo = fs.lstatSync(at(diff, '\xff\xfe'));
  assert.ok(wo.isCharacterDevice() && wo.rdev === 0, 'the whiteout device has the bytes after ".wh."');
});

units('the shim takes a path as bytes, and refuses bytes with a NUL as it refuses such a string', () => {
  const shim = loadShim();
  const dir = tempDir('ovl2-bytes-');
  try {
    const fd = fs.openSync(dir, 'r');
    try {
      shim.mkdirat(fd, B(DIR), 0o755);
      shim.symlinkat(B(LATIN1), fd, at('', DIR, 'l').subarray(1));
      assert.ok(fs.readlinkSync(at(dir, DIR, 'l'), { encoding: 'buffer' }).equals(B(LATIN1)));
      const sub = shim.openat2(fd, B(DIR), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY, 0, 0);
      fs.closeSync(sub);
      let err: (Error & { code?: string }) | null = null;
      try { shim.mkdirat(fd, B('a\0b'), 0o755); } catch (e) { err = e as Error & { code?: string }; }
      assert.is(err?.code, 'ERR_INVALID_ARG_VALUE');
      const missing = (() => { try { shim.unlinkat(fd, B('nope\xe9'), 0); return null; } catch (e) { return e as Error & { code?: string }; } })();
      assert.is(missing?.code, 'ENOENT');
    } finally {
      fs.closeSync(fd);
    }
  } finally {
    removeTree(dir);
  }
});

test.run();
units.run();
rules.run();
