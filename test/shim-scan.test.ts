// The shim's batched scanner and lookupBatch against real trees: every record field is checked
// against fs.lstatSync, the order against a sorted pre-order walk, and resumption across batches.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { loadShim, type ScanHandle, type ScanBatch, type ShimError } from '../src/native/shim.js';
import * as C from '../src/native/constants.js';
import { encodeXattrPlan } from '../src/native/xattr-plan.js';
import { scanInlineDataFlags } from '../src/core/records.js';
import { isRoot, testIf } from './support/env.js';

const shim = loadShim();
const rootTest = testIf(isRoot, 'shim-scan.test: trusted.* xattr, caps and device-node tests', 'not root');

// Scan flags and record flags (assembly/records.ts), restated here on purpose: this test checks the
// C side against the contract text, not against another mirror.
const SCAN_SORTED = 1, SCAN_OPAQUE = 2, SCAN_USER_XATTR = 4, SCAN_CAPS = 8, SCAN_REDIRECT = 16,
  SCAN_METACOPY = 32, SCAN_NO_RECURSE = 64, SCAN_SHARED = 128;
const FLAG_OPAQUE = 1, FLAG_REDIRECT = 2, FLAG_METACOPY = 4, FLAG_CAPS = 8, FLAG_FAILED = 0x8000, FLAG_DATA = 0x2000;
const RECORD_SIZE = 64;
const ALL_XATTRS = SCAN_OPAQUE | SCAN_CAPS | SCAN_REDIRECT | SCAN_METACOPY;

interface Rec {
  ino: bigint; size: bigint; mtimeSec: bigint; mtimeNsec: number; mode: number; uid: number; gid: number;
  nlink: number; dev: number; rdev: number; nameOff: number; nameLen: number; extraLen: number;
  depth: number; flags: number; name: string; extra: Buffer;
}

/** Reads `count` records; names (and extras right after them) from `heap`, or names from `names`
 *  and extras packed in record order in `heap` (lookup batches). */
function readRecords(records: Uint8Array, heap: Uint8Array, count: number, names?: Uint8Array): Rec[] {
  const dv = new DataView(records.buffer, records.byteOffset, records.byteLength);
  const out: Rec[] = [];
  let extraAt = 0;
  for (let i = 0; i < count; i++) {
    const o = i * RECORD_SIZE;
    const nameOff = dv.getUint32(o + 52, true), nameLen = dv.getUint16(o + 56, true), extraLen = dv.getUint16(o + 58, true);
    const nameSrc = names ?? heap;
    const extraOff = names ? extraAt : nameOff + nameLen;
    extraAt += extraLen;
    out.push({
      ino: dv.getBigUint64(o, true), size: dv.getBigInt64(o + 8, true), mtimeSec: dv.getBigInt64(o + 16, true),
      mtimeNsec: dv.getUint32(o + 24, true), mode: dv.getUint32(o + 28, true), uid: dv.getUint32(o + 32, true),
      gid: dv.getUint32(o + 36, true), nlink: dv.getUint32(o + 40, true), dev: dv.getUint32(o + 44, true),
      rdev: dv.getUint32(o + 48, true), nameOff, nameLen, extraLen, depth: dv.getUint16(o + 60, true),
      flags: dv.getUint16(o + 62, true),
      name: Buffer.from(nameSrc.subarray(nameOff, nameOff + nameLen)).toString('utf8'),
      extra: Buffer.from(heap.subarray(extraOff, extraOff + extraLen)),
    });
  }
  return out;
}

/** A record with its relative path rebuilt from the depth stack. */
interface Entry extends Rec { path: string }

function withPaths(recs: Rec[], stack: string[] = []): Entry[] {
  return recs.map((r) => {
    stack.length = r.depth - 1;
    stack.push(r.name);
    return { ...r, path: stack.join('/') };
  });
}

function scanAll(root: string, flags: number, recordSlots = 1024, heapBytes = 1 << 20): Entry[] {
  const h = shim.scanOpen(C.AT_FDCWD, root, flags);
  try {
    const records = new Uint8Array(recordSlots * RECORD_SIZE), heap = new Uint8Array(heapBytes);
    const all: Entry[] = [];
    const stack: string[] = [];
    for (;;) {
      const b = shim.scanNextSync(h, records, heap);
      assert.ok(b.count <= recordSlots && b.heapUsed <= heapBytes);
      all.push(...withPaths(readRecords(records, heap, b.count), stack));
      if (b.done) return all;
      assert.ok(b.count > 0, 'a batch that is not the last one carries records');
    }
  } finally { shim.scanClose(h); }
}

function scanNextAsync(h: ScanHandle, records: Uint8Array, heap: Uint8Array): Promise<ScanBatch> {
  return new Promise((resolve, reject) => shim.scanNext(h, records, heap, (err, b) => (err ? reject(err) : resolve(b))));
}

/** The kernel's 32-bit device encoding from the glibc dev_t Node reports. */
function dev32(d: bigint): number {
  const major = Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn));
  const minor = Number((d & 0xffn) | ((d >> 12n) & ~0xffn));
  return ((major << 20) | minor) >>> 0;
}

/** Go's filepath.Walk order: pre-order, each directory's names in byte order, symlinks not followed. */
function expectedWalk(root: string, rel = '', out: string[] = [], recurse = true): string[] {
  const names = fs.readdirSync(join(root, rel), { encoding: 'buffer' }).sort(Buffer.compare).map((b) => b.toString('utf8'));
  for (const n of names) {
    const p = rel ? `${rel}/${n}` : n;
    out.push(p);
    if (recurse && fs.lstatSync(join(root, p)).isDirectory()) expectedWalk(root, p, out);
  }
  return out;
}

function expectError(fn: () => unknown, code: string, syscall?: string): ShimError {
  let caught: unknown;
  try { fn(); } catch (e) { caught = e; }
  assert.ok(caught instanceof Error, `expected ${code}, got no error`);
  const e = caught as ShimError;
  assert.is(e.code, code, e.message);
  assert.is(e.errno, -(os.constants.errno as Record<string, number>)[code]);
  if (syscall) assert.is(e.syscall, syscall);
  return e;
}

let base = '';
let tree = '';
// A v2 file capability: magic|flags (VFS_CAP_REVISION_2) then permitted/inheritable for two 32-bit words.
const CAPS = Buffer.alloc(20);
CAPS.writeUInt32LE(0x02000000, 0);
CAPS.writeUInt32LE(1 << 13 /* CAP_NET_RAW */, 4);
const REDIRECT = '/elsewhere/dir';

test.before(() => {
  base = fs.mkdtempSync(join(os.tmpdir(), 'overlay2-scan-'));
  fs.chmodSync(base, 0o755);
  tree = join(base, 'tree');
  const p = (...s: string[]) => join(tree, ...s);
  fs.mkdirSync(tree);
  fs.writeFileSync(p('a.txt'), 'hello');
  fs.writeFileSync(p('Zupper'), 'byte order puts me first');
  fs.mkdirSync(p('b'));
  fs.writeFileSync(p('b', 'c'), 'cc');
  fs.mkdirSync(p('b', 'd'));
  fs.writeFileSync(p('b', 'd', 'e'), 'e');
  fs.writeFileSync(p('b-'), '');
  fs.writeFileSync(p('b.txt'), 'b.txt');
  fs.symlinkSync('a.txt', p('link'));
  fs.symlinkSync('b', p('linkdir'));        // must not be followed
  fs.symlinkSync('/nonexistent/target', p('dangling'));
  fs.writeFileSync(p('hard1'), 'linked');
  fs.linkSync(p('hard1'), p('hard2'));
  fs.mkdirSync(p('empty'));
  fs.mkdirSync(p('deep', '1', '2', '3'), { recursive: true });
  fs.writeFileSync(p('deep', '1', '2', '3', 'leaf'), 'x'.repeat(4097));
  fs.writeFileSync(p('été'), 'multi-byte name');
  spawnSync('mkfifo', [p('fifo')]);
  fs.mkdirSync(p('udir'));
  fs.utimesSync(p('a.txt'), 1_600_000_000.25, 1_700_000_000.123456);
  if (isRoot) {
    const dfd = fs.openSync(tree, 'r');
    try {
      shim.mknodat(dfd, 'whiteout', fs.constants.S_IFCHR | 0o600, 0, 0);
      shim.mknodat(dfd, 'nulldev', fs.constants.S_IFCHR | 0o666, 1, 3);
      shim.mknodat(dfd, 'blockdev', fs.constants.S_IFBLK | 0o600, 259, 1048575); // minor needs all 20 bits
    } finally { fs.closeSync(dfd); }
    fs.mkdirSync(p('opaque'));
    fs.writeFileSync(p('opaque', 'inside'), '');
    shim.lsetxattr(p('opaque'), 'trusted.overlay.opaque', 'y', 0);
    fs.mkdirSync(p('notopaque'));
    shim.lsetxattr(p('notopaque'), 'trusted.overlay.opaque', 'x', 0); // "x" is not "y"
    fs.mkdirSync(p('redirected'));
    shim.lsetxattr(p('redirected'), 'trusted.overlay.redirect', REDIRECT, 0);
    fs.writeFileSync(p('capfile'), 'binary');
    shim.lsetxattr(p('capfile'), 'security.capability', CAPS, 0);
    fs.writeFileSync(p('meta'), '');
    shim.lsetxattr(p('meta'), 'trusted.overlay.metacopy', Buffer.alloc(0), 0);
    fs.chownSync(p('b', 'c'), 4242, 4343);
  }
  shim.lsetxattr(p('udir'), 'user.overlay.opaque', 'y', 0);
});

test.after(() => { fs.rmSync(base, { recursive: true, force: true }); });

function checkAgainstLstat(root: string, e: Entry) {
  const st = fs.lstatSync(join(root, e.path), { bigint: true });
  const where = `${e.path}: `;
  assert.is(e.ino, st.ino, where + 'ino');
  assert.is(e.mode, Number(st.mode), where + 'mode');
  assert.is(e.uid, Number(st.uid), where + 'uid');
  assert.is(e.gid, Number(st.gid), where + 'gid');
  assert.is(e.nlink, Number(st.nlink), where + 'nlink');
  assert.is(e.size, st.size, where + 'size');
  assert.is(e.mtimeSec * 1_000_000_000n + BigInt(e.mtimeNsec), st.mtimeNs, where + 'mtime');
  assert.is(e.dev, dev32(st.dev), where + 'dev');
  const isDev = st.isCharacterDevice() || st.isBlockDevice();
  assert.is(e.rdev, isDev ? dev32(st.rdev) : 0, where + 'rdev');
  assert.is(e.depth, e.path.split('/').length, where + 'depth');
}

test('sorted scan: pre-order byte order, every field equals lstat', () => {
  const got = scanAll(tree, SCAN_SORTED);
  assert.equal(got.map((e) => e.path), expectedWalk(tree));
  for (const e of got) checkAgainstLstat(tree, e);
  for (const e of got) { assert.is(e.flags, 0, e.path); assert.is(e.extraLen, 0, e.path); }
  const paths = got.map((e) => e.path);
  assert.is(paths[0], 'Zupper');
  assert.ok(paths.indexOf('b/d/e') < paths.indexOf('b-'), 'a directory is walked before its next sibling');
  assert.not.ok(paths.some((p) => p.startsWith('linkdir/')), 'symlinked directory not followed');
  const a = got.find((e) => e.path === 'a.txt')!;
  assert.is(a.mtimeSec, 1_700_000_000n);
  assert.ok(Math.abs(a.mtimeNsec - 123_456_000) < 1000, String(a.mtimeNsec));
  assert.is(a.size, 5n);
  const h1 = got.find((e) => e.path === 'hard1')!, h2 = got.find((e) => e.path === 'hard2')!;
  assert.is(h1.ino, h2.ino);
  assert.is(h1.nlink, 2);
  assert.is(got.find((e) => e.path === 'fifo')!.mode & 0o170000, 0o010000);
  assert.ok(got.some((e) => e.path === 'été'), 'a multi-byte name comes back as its bytes');
});

rootTest('device numbers use the kernel encoding major<<20|minor; a whiteout is char 0/0', () => {
  const got = scanAll(tree, SCAN_SORTED);
  const by = (p: string) => got.find((e) => e.path === p)!;
  assert.is(by('whiteout').mode & 0o170000, 0o020000);
  assert.is(by('whiteout').rdev, 0);
  assert.is(by('nulldev').rdev, (1 << 20) | 3);
  assert.is(by('blockdev').rdev, ((259 << 20) | 1048575) >>> 0);
  assert.is(by('b/c').uid, 4242);
  assert.is(by('b/c').gid, 4343);
});

rootTest('xattr flags: opaque, redirect (flag; extra when caps are not asked), metacopy, caps (extra); only when asked', () => {
  const got = scanAll(tree, SCAN_SORTED | ALL_XATTRS);
  assert.equal(got.map((e) => e.path), expectedWalk(tree));
  const by = (p: string) => got.find((e) => e.path === p)!;
  assert.is(by('opaque').flags, FLAG_OPAQUE);
  assert.is(by('notopaque').flags, 0);
  assert.is(by('redirected').flags, FLAG_REDIRECT);
  assert.is(by('redirected').extraLen, 0, 'with SCAN_CAPS the extra is reserved for capabilities');
  const redirectOnly = scanAll(tree, SCAN_SORTED | SCAN_REDIRECT).find((e) => e.path === 'redirected')!;
  assert.is(redirectOnly.extra.toString(), REDIRECT);
  assert.is(by('meta').flags, FLAG_METACOPY);
  assert.is(by('capfile').flags, FLAG_CAPS);
  assert.equal(by('capfile').extra, CAPS);
  assert.is(by('udir').flags, 0, 'user.overlay.opaque is not read without SCAN_USER_XATTR');
  const flagged = new Set(['opaque', 'redirected', 'meta', 'capfile']);
  for (const e of got) if (!flagged.has(e.path)) { assert.is(e.flags, 0, e.path); assert.is(e.extraLen, 0, e.path); }
  for (const e of got) checkAgainstLstat(tree, e);
  // Each flag alone.
  const only = (flag: number) => scanAll(tree, SCAN_SORTED | flag).filter((e) => e.flags !== 0).map((e) => e.path);
  assert.equal(only(SCAN_OPAQUE), ['opaque']);
  assert.equal(only(SCAN_REDIRECT), ['redirected']);
  assert.equal(only(SCAN_METACOPY), ['meta']);
  assert.equal(only(SCAN_CAPS), ['capfile']);
  assert.equal(only(0), []);
});

rootTest('SCAN_CAPS reads security.capability on directories and symlinks too (moby compares every entry)', () => {
  const dir = fs.mkdtempSync(join(base, 'caps-'));
  fs.mkdirSync(join(dir, 'd'));
  fs.symlinkSync('target', join(dir, 'l'));
  shim.lsetxattr(join(dir, 'd'), 'security.capability', CAPS, 0);
  shim.lsetxattr(join(dir, 'l'), 'security.capability', CAPS, 0);
  const got = scanAll(dir, SCAN_SORTED | SCAN_CAPS);
  assert.equal(got.map((e) => [e.path, e.flags]), [['d', FLAG_CAPS], ['l', FLAG_CAPS]]);
  for (const e of got) assert.equal(e.extra, CAPS);
});

test('SCAN_USER_XATTR reads user.overlay.opaque', () => {
  const got = scanAll(tree, SCAN_SORTED | SCAN_OPAQUE | SCAN_USER_XATTR);
  assert.equal(got.filter((e) => e.flags & FLAG_OPAQUE).map((e) => e.path), ['udir']);
});

test('SCAN_NO_RECURSE: only the root entries, with xattrs read without opening them', () => {
  const got = scanAll(tree, SCAN_SORTED | SCAN_NO_RECURSE | SCAN_OPAQUE | SCAN_USER_XATTR);
  assert.equal(got.map((e) => e.path), expectedWalk(tree, '', [], false));
  assert.ok(got.every((e) => e.depth === 1));
  assert.equal(got.filter((e) => e.flags & FLAG_OPAQUE).map((e) => e.path), ['udir']);
});

test('unsorted scan: the same entries, still pre-order (children right after their directory)', () => {
  const got = scanAll(tree, 0);
  assert.equal(got.map((e) => e.path).sort(), expectedWalk(tree).sort());
  for (let i = 0; i < got.length; i++) {
    const e = got[i];
    if (e.depth > 1) {
      const parent = e.path.slice(0, e.path.lastIndexOf('/'));
      // Everything between the parent and this entry lies inside the parent.
      const pi = got.findIndex((x) => x.path === parent);
      assert.ok(pi >= 0 && pi < i, e.path);
      for (let k = pi + 1; k < i; k++) assert.ok(got[k].path.startsWith(parent + '/'), `${got[k].path} inside ${parent}`);
    }
    checkAgainstLstat(tree, e);
  }
});

test('resumption with tiny buffers (3 records, ~300 bytes heap) gives the identical sequence', () => {
  const flags = SCAN_SORTED | (isRoot ? ALL_XATTRS : 0);
  const big = scanAll(tree, flags);
  const small = scanAll(tree, flags, 3, 300);
  const strip = (e: Entry) => ({ ...e, nameOff: 0 });
  assert.equal(small.map(strip), big.map(strip));
  // Heap-bound batches too: a heap that holds only a couple of names.
  const tiny = scanAll(tree, flags, 1000, 40);
  assert.equal(tiny.map(strip), big.map(strip));
});

test('an entry that cannot fit an empty batch throws ENOBUFS; bigger buffers then resume there', () => {
  const d = join(base, 'longname');
  fs.mkdirSync(d);
  fs.writeFileSync(join(d, 'a'), '');
  fs.writeFileSync(join(d, 'n'.repeat(200)), '');
  fs.writeFileSync(join(d, 'z'), '');
  const h = shim.scanOpen(C.AT_FDCWD, d, SCAN_SORTED);
  try {
    const rec = new Uint8Array(RECORD_SIZE * 8);
    let b = shim.scanNextSync(h, rec, new Uint8Array(50));
    assert.equal([b.count, b.done], [1, false]);
    const e = expectError(() => shim.scanNextSync(h, rec, new Uint8Array(50)), 'ENOBUFS');
    assert.ok(e.path?.endsWith('/' + 'n'.repeat(200)), e.path);
    expectError(() => shim.scanNextSync(h, new Uint8Array(RECORD_SIZE - 1), new Uint8Array(4096)), 'ENOBUFS');
    const heap = new Uint8Array(4096);
    b = shim.scanNextSync(h, rec, heap);
    assert.equal(readRecords(rec, heap, b.count).map((r) => r.name), ['n'.repeat(200), 'z']);
    assert.is(b.done, true);
    b = shim.scanNextSync(h, rec, heap);
    assert.equal([b.count, b.heapUsed, b.done], [0, 0, true]);
  } finally { shim.scanClose(h); }
});

test('entries that vanish after the directory was read are skipped silently', () => {
  const d = join(base, 'vanish');
  fs.mkdirSync(d);
  for (const n of ['a', 'b', 'c', 'e']) fs.writeFileSync(join(d, n), n);
  fs.mkdirSync(join(d, 'd'));
  fs.writeFileSync(join(d, 'd', 'inner'), '');
  const h = shim.scanOpen(C.AT_FDCWD, d, SCAN_SORTED);
  try {
    const rec = new Uint8Array(RECORD_SIZE), heap = new Uint8Array(256);
    // SCAN_SORTED reads the whole directory on first use; "b" is already examined for the next batch.
    let b = shim.scanNextSync(h, rec, heap);
    assert.equal(readRecords(rec, heap, b.count).map((r) => r.name), ['a']);
    fs.unlinkSync(join(d, 'c'));
    fs.rmSync(join(d, 'd'), { recursive: true });
    const rest: string[] = [];
    const big = new Uint8Array(RECORD_SIZE * 16);
    do {
      b = shim.scanNextSync(h, big, heap);
      rest.push(...readRecords(big, heap, b.count).map((r) => r.name));
    } while (!b.done);
    assert.equal(rest, ['b', 'e']);
  } finally { shim.scanClose(h); }
});

test('scanOpen relative to a dirfd; failures name the path', () => {
  const dfd = fs.openSync(base, 'r');
  try {
    const h = shim.scanOpen(dfd, 'tree', SCAN_SORTED | SCAN_NO_RECURSE);
    const rec = new Uint8Array(RECORD_SIZE * 100), heap = new Uint8Array(8192);
    const b = shim.scanNextSync(h, rec, heap);
    shim.scanClose(h);
    assert.equal(readRecords(rec, heap, b.count).map((r) => r.name), expectedWalk(tree, '', [], false));
  } finally { fs.closeSync(dfd); }
  let e = expectError(() => shim.scanOpen(C.AT_FDCWD, join(base, 'missing'), 0), 'ENOENT', 'openat');
  assert.is(e.path, join(base, 'missing'));
  e = expectError(() => shim.scanOpen(C.AT_FDCWD, join(tree, 'a.txt'), 0), 'ENOTDIR', 'openat');
  assert.is(e.path, join(tree, 'a.txt'));
});

rootTest('a failure deep in the walk names the full path (unreadable dir for a non-root user)', () => {
  const d = join(base, 'perm');
  fs.mkdirSync(join(d, 'ok', 'locked', 'x'), { recursive: true });
  fs.chmodSync(d, 0o755);
  fs.chmodSync(join(d, 'ok'), 0o755);
  fs.chmodSync(join(d, 'ok', 'locked'), 0o700);
  const addon = createRequire(import.meta.url).resolve(join(process.cwd(), 'shim', 'build', 'Release', 'overlay2_shim.node'));
  const script = `
    const s = require(${JSON.stringify(addon)});
    const h = s.scanOpen(-100, ${JSON.stringify(d)}, 1);
    const rec = new Uint8Array(64 * 16), heap = new Uint8Array(4096);
    const batches = [];
    for (let i = 0; i < 3; i++) {
      try { batches.push(s.scanNextSync(h, rec, heap)); }
      catch (e) { batches.push({ code: e.code, errno: e.errno, syscall: e.syscall, path: e.path }); }
    }
    console.log(JSON.stringify(batches));`;
  const r = spawnSync(process.execPath, ['-e', script], { uid: 65534, gid: 65534, encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  const [first, second, third] = JSON.parse(r.stdout);
  // The records before the failure come out first ("ok"); the failure follows, and stays.
  assert.equal(first, { count: 1, heapUsed: 2, done: false });
  assert.equal(second, { code: 'EACCES', errno: -13, syscall: 'openat', path: join(d, 'ok', 'locked') });
  assert.equal(third, second);
});

test('async scanNext yields the same batches as scanNextSync', async () => {
  const flags = SCAN_SORTED | (isRoot ? ALL_XATTRS : 0);
  const want = scanAll(tree, flags, 5, 512);
  const h = shim.scanOpen(C.AT_FDCWD, tree, flags);
  const got: Entry[] = [];
  const stack: string[] = [];
  try {
    const rec = new Uint8Array(5 * RECORD_SIZE), heap = new Uint8Array(512);
    for (;;) {
      const b = await scanNextAsync(h, rec, heap);
      got.push(...withPaths(readRecords(rec, heap, b.count), stack));
      if (b.done) break;
    }
  } finally { shim.scanClose(h); }
  assert.equal(got, want);
});

/** A SCAN_SHARED scan driven like src/scan/unordered.ts: two scanNext calls at once, each re-issued into
 *  its own buffers until it says done. Records as [walker call, record]. */
async function scanShared(root: string, flags: number, recordSlots = 64): Promise<Array<[number, Rec]>> {
  const h = shim.scanOpen(C.AT_FDCWD, root, flags | SCAN_SHARED);
  const out: Array<[number, Rec]> = [];
  try {
    await Promise.all([0, 1].map(async (k) => {
      const rec = new Uint8Array(recordSlots * RECORD_SIZE), heap = new Uint8Array(1 << 16);
      for (;;) {
        const b = await scanNextAsync(h, rec, heap);
        assert.ok(b.count > 0 || b.done, 'an async shared batch is empty only at the end');
        for (const r of readRecords(rec, heap, b.count)) out.push([k, r]);
        if (b.done) return;
      }
    }));
  } finally { shim.scanClose(h); }
  return out;
}

test('SCAN_SHARED: two walkers at once emit every entry of the tree exactly once, with the sorted walk\'s fields', async () => {
  const flags = isRoot ? ALL_XATTRS : 0;
  const key = (r: Rec) => `${r.depth}:${r.name}:${r.ino}`;
  const whole = new Map(scanAll(tree, SCAN_SORTED | flags).map((e) => [key(e), e]));
  for (const slots of [1, 7, 1024]) {
    const got = await scanShared(tree, flags, slots);
    assert.equal(got.map(([, r]) => key(r)).sort(), [...whole.keys()].sort(), `${slots} records a batch`);
    for (const [, r] of got) {
      const w = whole.get(key(r))!;
      assert.equal([r.mode, r.size, r.nlink, r.flags, r.extra], [w.mode, w.size, w.nlink, w.flags, w.extra], r.name);
    }
  }
  expectError(() => shim.scanOpen(C.AT_FDCWD, tree, SCAN_SHARED | SCAN_SORTED), 'EINVAL', 'scan');
  expectError(() => shim.scanOpen(C.AT_FDCWD, tree, SCAN_SHARED | SCAN_NO_RECURSE), 'EINVAL', 'scan');
});

test('SCAN_SHARED: a big flat directory is shared out in shards, both walkers take part, each name once', async () => {
  const dir = fs.mkdtempSync(join(os.tmpdir(), 'ovl2-shared-'));
  try {
    const flat = join(dir, 'flat');
    fs.mkdirSync(flat);
    const n = 3000;
    for (let i = 0; i < n; i++) fs.writeFileSync(join(flat, `${'f'.repeat(30)}${i}`), '');
    fs.mkdirSync(join(flat, 'sub'));
    fs.writeFileSync(join(flat, 'sub', 'inner'), 'x');
    assert.ok(fs.statSync(flat).size >= 64 * 1024, 'big enough to be sharded');
    const got = await scanShared(dir, 0, 128);
    const names = got.map(([, r]) => r.name);
    assert.is(names.length, n + 3);
    assert.is(new Set(names).size, n + 3, 'no name twice');
    assert.is(got.find(([, r]) => r.name === 'inner')![1].depth, 3);
    // the root's one big child is queued as two shards; unless one walker finished its shard before
    // the other took the second, both walkers emit records (not asserted: it is up to the scheduler)
    const perWalker = [0, 1].map((k) => got.filter(([w]) => w === k).length);
    assert.is(perWalker[0]! + perWalker[1]!, n + 3);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('SCAN_SHARED: scanClose while both walkers are in flight ends them (a walker waiting for the queue too)', async () => {
  for (let round = 0; round < 20; round++) {
    const h = shim.scanOpen(C.AT_FDCWD, tree, SCAN_SHARED);
    const bufs = [0, 1].map(() => ({ rec: new Uint8Array(RECORD_SIZE), heap: new Uint8Array(4096) }));
    const calls = bufs.map((b) => scanNextAsync(h, b.rec, b.heap).catch((e: ShimError) => e));
    shim.scanClose(h);
    const results = await Promise.all(calls);
    for (const r of results) assert.ok(!(r instanceof Error) || (r as ShimError).code === 'ECANCELED', String(r));
    expectError(() => shim.scanNextSync(h, bufs[0]!.rec, bufs[0]!.heap), 'EBADF', 'scan');
  }
});

test('SCAN_INLINE_DATA: regular files of 1 to 2^k bytes come with their contents after the extra', () => {
  const dir = fs.mkdtempSync(join(os.tmpdir(), 'ovl2-inline-'));
  try {
    fs.writeFileSync(join(dir, 'small'), 'hello');
    fs.writeFileSync(join(dir, 'exact'), Buffer.alloc(1024, 7));
    fs.writeFileSync(join(dir, 'big'), Buffer.alloc(1025, 8));
    fs.writeFileSync(join(dir, 'empty'), '');
    fs.symlinkSync('small', join(dir, 'link'));
    const h = shim.scanOpen(C.AT_FDCWD, dir, SCAN_SORTED | SCAN_CAPS | scanInlineDataFlags(10));
    const rec = new Uint8Array(16 * RECORD_SIZE), heap = new Uint8Array(1 << 16);
    try {
      const b = shim.scanNextSync(h, rec, heap);
      const got = readRecords(rec, heap, b.count).map((r) => {
        const at = r.nameOff + r.nameLen + r.extraLen;
        return [r.name, (r.flags & FLAG_DATA) !== 0 ? Buffer.from(heap.subarray(at, at + Number(r.size))).toString('latin1') : null];
      });
      assert.equal(got, [['big', null], ['empty', null], ['exact', '\x07'.repeat(1024)], ['link', null], ['small', 'hello']]);
    } finally { shim.scanClose(h); }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('SCAN_INLINE_DATA with two calls in flight: each batch\'s files are read after its walk, beside the next one\'s', async () => {
  const dir = fs.mkdtempSync(join(os.tmpdir(), 'ovl2-inline-async-'));
  try {
    const want = new Map<string, Buffer>();
    for (let d = 0; d < 4; d++) {
      fs.mkdirSync(join(dir, `d${d}`));
      for (let i = 0; i < 30; i++) {
        const body = Buffer.alloc(1 + ((d * 31 + i * 17) % 900), 65 + ((d + i) % 26));
        fs.writeFileSync(join(dir, `d${d}`, `f${i}`), body);
        want.set(`f${i}@${d}`, body);
      }
    }
    fs.writeFileSync(join(dir, 'd0', 'big'), Buffer.alloc(2000, 1)); // over the limit: no data
    const h = shim.scanOpen(C.AT_FDCWD, dir, SCAN_SORTED | scanInlineDataFlags(10));
    const bufs = [0, 1, 2].map(() => ({ rec: new Uint8Array(7 * RECORD_SIZE), heap: new Uint8Array(8192) }));
    const got = new Map<string, Buffer | null>();
    let dirIndex = -1;
    try {
      // three buffers, two calls in flight, taken in call order (as src/scan/batches.ts does)
      const inFlight: Array<{ k: number; p: Promise<ScanBatch> }> = [];
      const issue = (k: number) => inFlight.push({ k, p: scanNextAsync(h, bufs[k]!.rec, bufs[k]!.heap) });
      const free = [2];
      issue(0);
      issue(1);
      for (;;) {
        const { k, p } = inFlight.shift()!;
        const b = await p;
        for (const r of readRecords(bufs[k]!.rec, bufs[k]!.heap, b.count)) {
          if ((r.mode & 0o170000) === 0o040000) { dirIndex = Number(r.name.slice(1)); continue; }
          const at = r.nameOff + r.nameLen + r.extraLen;
          got.set(`${r.name}@${dirIndex}`, (r.flags & FLAG_DATA) !== 0 ? Buffer.from(bufs[k]!.heap.subarray(at, at + Number(r.size))) : null);
        }
        if (b.done) break;
        free.push(k);
        while (inFlight.length < 2) issue(free.shift()!);
      }
      await Promise.all(inFlight.map((x) => x.p));
    } finally { shim.scanClose(h); }
    assert.is(got.get('big@0'), null);
    for (const [key, body] of want) assert.ok(got.get(key)?.equals(body), key);
    assert.is(got.size, want.size + 1);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

rootTest('SCAN_INLINE_DATA: records and xattrs are the same when files are examined through the fd their data is read by', () => {
  const plain = scanAll(tree, SCAN_SORTED | ALL_XATTRS);
  const inline = scanAll(tree, SCAN_SORTED | ALL_XATTRS | scanInlineDataFlags(10));
  assert.equal(inline.map((e) => e.path), plain.map((e) => e.path));
  for (const e of inline) checkAgainstLstat(tree, e);
  const strip = (e: Entry) => ({ path: e.path, flags: e.flags & ~FLAG_DATA, extra: e.extra, size: e.size, mode: e.mode });
  assert.equal(inline.map(strip), plain.map(strip));
  assert.is(inline.find((e) => e.path === 'capfile')!.flags, FLAG_CAPS | FLAG_DATA, 'the capability read through the fd');
  assert.is(inline.find((e) => e.path === 'meta')!.flags, FLAG_METACOPY, 'an empty file: its xattrs, no data');
});

test('SCAN_INLINE_DATA: the fds the walk keeps for its reads are all closed, whether the scan ends or is closed midway', async () => {
  const dir = fs.mkdtempSync(join(os.tmpdir(), 'ovl2-inline-fds-'));
  const fdCount = () => fs.readdirSync('/proc/self/fd').length;
  try {
    for (let i = 0; i < 200; i++) fs.writeFileSync(join(dir, `f${String(i).padStart(3, '0')}`), `body ${i}`);
    const before = fdCount();
    const flags = SCAN_SORTED | SCAN_CAPS | scanInlineDataFlags(10);
    // to the end
    const all = scanAll(dir, flags, 16, 1 << 16);
    assert.is(all.length, 200);
    assert.ok(all.every((e) => (e.flags & FLAG_DATA) !== 0));
    assert.is(fdCount(), before);
    // closed with a record examined but not yet written (the batch ran out of slots), sync
    const h = shim.scanOpen(C.AT_FDCWD, dir, flags);
    shim.scanNextSync(h, new Uint8Array(5 * RECORD_SIZE), new Uint8Array(4096));
    shim.scanClose(h);
    assert.is(fdCount(), before);
    // closed while two batches are in flight
    const h2 = shim.scanOpen(C.AT_FDCWD, dir, flags);
    const calls = [0, 1].map(() => scanNextAsync(h2, new Uint8Array(50 * RECORD_SIZE), new Uint8Array(1 << 14)).catch((e: Error) => e));
    shim.scanClose(h2);
    await Promise.all(calls);
    assert.is(fdCount(), before);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('SCAN_INLINE_DATA under a low fd limit: files past the batch\'s share of fds are opened again by name, all read', () => {
  const dir = fs.mkdtempSync(join(os.tmpdir(), 'ovl2-inline-nofile-'));
  try {
    for (let i = 0; i < 300; i++) fs.writeFileSync(join(dir, `f${String(i).padStart(3, '0')}`), `body ${i}`);
    // a child with 64 fds (8 kept per batch) scans all 300 files in batches of 256 records
    const shimModule = new URL('../src/native/shim.js', import.meta.url).href;
    const script = `
      import { loadShim } from ${JSON.stringify(shimModule)};
      const shim = loadShim();
      const h = shim.scanOpen(-100, ${JSON.stringify(dir)}, ${SCAN_SORTED | scanInlineDataFlags(10)});
      const rec = new Uint8Array(256 * 64), heap = new Uint8Array(1 << 16);
      const out = [];
      for (;;) {
        const b = shim.scanNextSync(h, rec, heap);
        const dv = new DataView(rec.buffer);
        for (let i = 0; i < b.count; i++) {
          const o = i * 64, off = dv.getUint32(o + 52, true), len = dv.getUint16(o + 56, true), size = Number(dv.getBigInt64(o + 8, true));
          const name = Buffer.from(heap.subarray(off, off + len)).toString();
          out.push(name + '=' + ((dv.getUint16(o + 62, true) & ${FLAG_DATA}) ? Buffer.from(heap.subarray(off + len, off + len + size)).toString() : '-'));
        }
        if (b.done) break;
      }
      shim.scanClose(h);
      console.log(out.join('\\n'));`;
    const r = spawnSync('bash', ['-c', 'ulimit -n 64 && exec "$0" --input-type=module -e "$1"', process.execPath, script], { encoding: 'utf8' });
    assert.is(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.is(lines.length, 300);
    lines.forEach((l, i) => assert.is(l, `f${String(i).padStart(3, '0')}=body ${i}`));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('two scanNext calls may be in flight (filled in call order, called back in any); a third throws EBUSY; scanClose while busy defers', async () => {
  const all = await (async () => {
    const h = shim.scanOpen(C.AT_FDCWD, tree, SCAN_SORTED);
    const rec = new Uint8Array(64 * RECORD_SIZE), heap = new Uint8Array(4096);
    const got: Array<{ ino: bigint; nameLen: number }> = [];
    for (;;) {
      const b = await scanNextAsync(h, rec, heap);
      got.push(...readRecords(rec, heap, b.count).map((r) => ({ ino: r.ino, nameLen: r.nameLen })));
      if (b.done) break;
    }
    shim.scanClose(h);
    return got;
  })();
  const h = shim.scanOpen(C.AT_FDCWD, tree, SCAN_SORTED);
  const small = 3; // several batches, so the second call continues where the first stopped
  const bufs = [0, 1].map(() => ({ rec: new Uint8Array(small * RECORD_SIZE), heap: new Uint8Array(4096) }));
  // Filled in call order is the contract (the records below); the callbacks may come in either
  // order — the first job hands the walk on before it returns — and ScanBatches takes them in call order.
  const first = scanNextAsync(h, bufs[0]!.rec, bufs[0]!.heap);
  const second = scanNextAsync(h, bufs[1]!.rec, bufs[1]!.heap);
  expectError(() => shim.scanNext(h, bufs[0]!.rec, bufs[0]!.heap, () => { throw new Error('must not run'); }), 'EBUSY', 'scan');
  expectError(() => shim.scanNextSync(h, bufs[0]!.rec, bufs[0]!.heap), 'EBUSY', 'scan');
  const [b0, b1] = await Promise.all([first, second]);
  assert.is(b0.count, small);
  const two = [...readRecords(bufs[0]!.rec, bufs[0]!.heap, b0.count), ...readRecords(bufs[1]!.rec, bufs[1]!.heap, b1.count)];
  assert.equal(two.map((r) => ({ ino: r.ino, nameLen: r.nameLen })), all.slice(0, two.length));
  // Close while a batch is in flight: the batch still completes, then the handle is closed.
  const third = scanNextAsync(h, bufs[0]!.rec, bufs[0]!.heap);
  shim.scanClose(h);
  await third;
  expectError(() => shim.scanNextSync(h, bufs[0]!.rec, bufs[0]!.heap), 'EBADF', 'scan');
});

test('a closed handle throws EBADF (sync and async); scanClose is idempotent', () => {
  const h = shim.scanOpen(C.AT_FDCWD, tree, 0);
  shim.scanClose(h);
  shim.scanClose(h);
  const rec = new Uint8Array(RECORD_SIZE), heap = new Uint8Array(256);
  const e = expectError(() => shim.scanNextSync(h, rec, heap), 'EBADF', 'scan');
  assert.is(e.path, tree);
  expectError(() => shim.scanNext(h, rec, heap, () => {}), 'EBADF', 'scan');
});

test('the scan holds one fd per open depth level and closes each when done', () => {
  const fdCount = () => fs.readdirSync('/proc/self/fd').length;
  const before = fdCount();
  const h = shim.scanOpen(C.AT_FDCWD, tree, SCAN_SORTED);
  const rec = new Uint8Array(RECORD_SIZE), heap = new Uint8Array(256);
  let maxOpen = 0;
  for (;;) {
    const b = shim.scanNextSync(h, rec, heap); // one record at a time
    maxOpen = Math.max(maxOpen, fdCount() - before);
    if (b.done) break;
  }
  assert.is(fdCount() - before, 0, 'every level closed at the end of the walk');
  assert.ok(maxOpen >= 4 && maxOpen <= 6, `deep/1/2/3/leaf: root + 4 levels (+ one prepared dir): ${maxOpen}`);
  shim.scanClose(h);
  // Closing midway releases everything too.
  const h2 = shim.scanOpen(C.AT_FDCWD, tree, SCAN_SORTED);
  shim.scanNextSync(h2, new Uint8Array(RECORD_SIZE * 12), new Uint8Array(4096));
  assert.ok(fdCount() > before);
  shim.scanClose(h2);
  assert.is(fdCount(), before);
});

test('a 2000-entry directory comes out complete and sorted', () => {
  const d = join(base, 'many');
  fs.mkdirSync(d);
  const names: string[] = [];
  for (let i = 0; i < 2000; i++) {
    const n = `f${((i * 7919) % 2000).toString(36)}-${'x'.repeat(i % 40)}`;
    names.push(n);
    fs.writeFileSync(join(d, n), '');
  }
  const got = scanAll(d, SCAN_SORTED, 300, 4096);
  assert.is(got.length, 2000);
  assert.equal(got.map((e) => e.name), names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
  assert.ok(got.every((e) => e.depth === 1 && (e.mode & 0o170000) === 0o100000));
  const unsorted = scanAll(d, 0, 300, 4096);
  assert.equal(unsorted.map((e) => e.name).sort(), [...names].sort());
});

test('scanning into views of a shared WebAssembly.Memory; records survive memory.grow', () => {
  // lib ES2022 has no WebAssembly types; the global exists in Node.
  const WA = (globalThis as any).WebAssembly as { Memory: new (d: object) => { buffer: SharedArrayBuffer; grow(pages: number): number } };
  const memory = new WA.Memory({ initial: 64, maximum: 1024, shared: true });
  const sab = memory.buffer;
  assert.ok(sab instanceof SharedArrayBuffer);
  const recOff = 65536, recLen = 16 * RECORD_SIZE, heapOff = 2 * 65536, heapLen = 600;
  const rec = new Uint8Array(sab, recOff, recLen), heap = new Uint8Array(sab, heapOff, heapLen);
  const flags = SCAN_SORTED | (isRoot ? ALL_XATTRS : 0);
  const want = scanAll(tree, flags);
  const h = shim.scanOpen(C.AT_FDCWD, tree, flags);
  const got: Entry[] = [];
  const stack: string[] = [];
  try {
    for (;;) {
      const b = shim.scanNextSync(h, rec, heap);
      memory.grow(1); // the old views stay attached to the (same, larger) shared memory
      const after = memory.buffer;
      assert.ok(after.byteLength > sab.byteLength);
      got.push(...withPaths(readRecords(new Uint8Array(after, recOff, recLen), new Uint8Array(after, heapOff, heapLen), b.count), stack));
      assert.equal(readRecords(rec, heap, b.count), readRecords(new Uint8Array(after, recOff, recLen), new Uint8Array(after, heapOff, heapLen), b.count));
      if (b.done) break;
    }
  } finally { shim.scanClose(h); }
  const strip = (e: Entry) => ({ ...e, nameOff: 0 });
  assert.equal(got.map(strip), want.map(strip));
  // Nothing was written outside the two regions.
  const all = new Uint8Array(memory.buffer);
  assert.ok(all.subarray(0, recOff).every((x) => x === 0));
  assert.ok(all.subarray(recOff + recLen, heapOff).every((x) => x === 0));
  assert.ok(all.subarray(heapOff + heapLen).every((x) => x === 0));
});

test('lookupBatch: one record per name in order, failures inline, extras packed in heap', () => {
  const list = ['a.txt', 'missing', 'b', 'link', ...(isRoot ? ['capfile', 'redirected', 'opaque', 'whiteout'] : [])];
  const names = Buffer.from(list.map((n) => n + '\0').join(''));
  const rec = new Uint8Array(list.length * RECORD_SIZE), heap = new Uint8Array(256);
  const dfd = fs.openSync(tree, 'r');
  try {
    const used = shim.lookupBatch(dfd, names, list.length, rec, heap, isRoot ? ALL_XATTRS : 0);
    const got = readRecords(rec, heap, list.length, names);
    assert.equal(got.map((r) => r.name), list);
    assert.ok(got.every((r) => r.depth === 0));
    const missing = got[1];
    assert.equal([missing.mode, missing.flags, missing.nlink], [0, FLAG_FAILED, os.constants.errno.ENOENT]);
    for (const r of got) if (r !== missing) checkAgainstLstat(tree, { ...r, path: r.name, depth: 1 });
    if (isRoot) {
      assert.is(used, CAPS.length);
      const by = (n: string) => got[list.indexOf(n)];
      assert.is(by('capfile').flags, FLAG_CAPS);
      assert.equal(by('capfile').extra, CAPS);
      assert.is(by('redirected').flags, FLAG_REDIRECT);
      assert.is(by('redirected').extraLen, 0);
      assert.is(by('opaque').flags, FLAG_OPAQUE);
      assert.is(by('whiteout').rdev, 0);
    } else {
      assert.is(used, 0);
    }
    // Input validation: a '/' in a name, a missing NUL, too few record slots, too little heap.
    const slash = Buffer.from('b/c\0');
    expectError(() => shim.lookupBatch(dfd, slash, 1, rec, heap, 0), 'EINVAL');
    expectError(() => shim.lookupBatch(dfd, Buffer.from('a.txt'), 1, rec, heap, 0), 'EINVAL');
    expectError(() => shim.lookupBatch(dfd, names, list.length + 1, rec, heap, 0), 'ENOBUFS');
    if (isRoot) {
      const one = Buffer.from('capfile\0');
      expectError(() => shim.lookupBatch(dfd, one, 1, rec, new Uint8Array(4), SCAN_CAPS), 'ENOBUFS');
    }
  } finally { fs.closeSync(dfd); }
});

// The C scanner knows no attribute name: it reads what the plan (shim/xattr_plan.h) names, per file
// type. Called on the raw addon with a plan of made-up user.* names and bits.
test('the scanner reads exactly the xattr plan it is given, per file type (no names of its own)', () => {
  const d = join(base, 'plan');
  fs.mkdirSync(join(d, 'on'), { recursive: true });
  fs.mkdirSync(join(d, 'off'));
  fs.writeFileSync(join(d, 'file'), '');
  fs.writeFileSync(join(d, 'plain'), '');
  fs.symlinkSync('file', join(d, 'link'));
  shim.lsetxattr(join(d, 'on'), 'user.mark', 'on', 0);
  shim.lsetxattr(join(d, 'off'), 'user.mark', 'off', 0);
  shim.lsetxattr(join(d, 'file'), 'user.mark', 'on', 0);   // a file: the directory rule does not apply
  shim.lsetxattr(join(d, 'file'), 'user.data', Buffer.from([1, 2, 3]), 0);
  shim.lsetxattr(join(d, 'plain'), 'user.present', '', 0);
  const plan = encodeXattrPlan({
    dir: { flags: [{ name: 'user.mark', bit: 0x10, equals: 'on' }] },
    reg: { flags: [{ name: 'user.present', bit: 0x20 }], extra: { name: 'user.data', bit: 0x40 } },
    other: { flags: [] },
  });
  const raw = createRequire(import.meta.url)(join(process.cwd(), 'shim', 'build', 'Release', 'overlay2_shim.node'));
  const h = raw.scanOpen(C.AT_FDCWD, d, SCAN_SORTED, plan);
  const rec = new Uint8Array(16 * RECORD_SIZE), heap = new Uint8Array(4096);
  let got: Rec[];
  try { got = readRecords(rec, heap, raw.scanNextSync(h, rec, heap).count); } finally { raw.scanClose(h); }
  assert.equal(got.map((r) => [r.name, r.flags, [...r.extra]]), [
    ['file', 0x40, [1, 2, 3]], ['link', 0, []], ['off', 0, []], ['on', 0x10, []], ['plain', 0x20, []],
  ]);
  // the same plan through lookupBatch
  const names = Buffer.from('on\0file\0');
  const dfd = fs.openSync(d, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try { assert.is(raw.lookupBatch(dfd, names, 2, rec, heap, plan), 3); } finally { fs.closeSync(dfd); }
  assert.equal(readRecords(rec, heap, 2, names).map((r) => [r.name, r.flags]), [['on', 0x10], ['file', 0x40]]);
  // a malformed plan is refused before anything is read
  assert.throws(() => raw.scanOpen(C.AT_FDCWD, d, 0, Uint8Array.from([9])), (e: ShimError) => e.code === 'EINVAL');
});

test.run();
