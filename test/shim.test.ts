// The shim's plain syscalls against the real kernel: every export succeeds once and fails once with
// a Node-style error (code, negative errno, syscall, path/dest).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { loadShim, type ShimError } from '../src/native/shim.js';
import * as C from '../src/native/constants.js';
import { isRoot, hasOverlay, testIf, scratchRoot, detectedFeatures, whyNoLowerdirPlus } from './support/env.js';

const shim = loadShim();
const rootTest = testIf(isRoot, 'shim.test: mount, trusted.* xattr, mknod and chown tests', 'not root');
const overlayTest = testIf(isRoot && hasOverlay, 'shim.test: overlay mount tests', isRoot ? 'no overlay in /proc/filesystems' : 'not root');
const features = await detectedFeatures();
const lowerdirPlusTest = testIf(features?.lowerdirPlus === true, 'shim.test: the fsconfig lowerdir+ test', whyNoLowerdirPlus(features));

// Nothing may stay mounted below the scratch root, whatever failed: remove() unmounts first.
const scratch = scratchRoot('overlay2-shim-');
const base = scratch.root;
const fresh = scratch.fresh;
test.after(() => scratch.remove());

function expectError(fn: () => unknown, want: { code: string; syscall: string; path?: string; dest?: string }): ShimError {
  let caught: unknown;
  try { fn(); } catch (e) { caught = e; }
  assert.ok(caught instanceof Error, `expected ${want.code} from ${want.syscall}, got no error`);
  const e = caught as ShimError;
  assert.is(e.code, want.code, e.message);
  assert.is(e.errno, -(os.constants.errno as Record<string, number>)[want.code]);
  assert.is(e.syscall, want.syscall);
  if ('path' in want) assert.is(e.path, want.path);
  if ('dest' in want) assert.is(e.dest, want.dest);
  assert.ok(e.message.startsWith(`${want.code}: `), e.message);
  assert.ok(e.message.includes(`, ${want.syscall}`), e.message);
  if (want.path !== undefined) assert.ok(e.message.includes(`'${want.path}'`), e.message);
  return e;
}

function isMounted(target: string): boolean {
  return fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === target);
}

function withDirFd<T>(dir: string, fn: (fd: number) => T): T {
  const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try { return fn(fd); } finally { fs.closeSync(fd); }
}

/** withDirFd for calls that finish on the pool: the fd stays open until they called back. */
async function withDirFdAsync<T>(dir: string, fn: (fd: number) => Promise<T>): Promise<T> {
  const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try { return await fn(fd); } finally { fs.closeSync(fd); }
}

/** lower1 (a, shared=lower1), lower2 (b, shared=lower2), upper, work, merged under dir. */
function overlayDirs(dir: string) {
  for (const d of ['l1', 'l2', 'u', 'w', 'm']) fs.mkdirSync(join(dir, d));
  fs.writeFileSync(join(dir, 'l1', 'a'), 'from l1');
  fs.writeFileSync(join(dir, 'l1', 'shared'), 'l1 wins');
  fs.writeFileSync(join(dir, 'l2', 'b'), 'from l2');
  fs.writeFileSync(join(dir, 'l2', 'shared'), 'l2 hidden');
}

function checkMerged(dir: string) {
  const m = join(dir, 'm');
  assert.is(fs.readFileSync(join(m, 'a'), 'utf8'), 'from l1');
  assert.is(fs.readFileSync(join(m, 'b'), 'utf8'), 'from l2');
  assert.is(fs.readFileSync(join(m, 'shared'), 'utf8'), 'l1 wins');
  fs.writeFileSync(join(m, 'new'), 'written');
  assert.is(fs.readFileSync(join(dir, 'u', 'new'), 'utf8'), 'written');
  assert.is(shim.statfs(m).type, C.FS_MAGIC.overlay);
}

// ---- argument checking --------------------------------------------------------------------------

test('bad argument types throw TypeError, strings with NUL are refused', () => {
  assert.throws(() => (shim.mount as any)(1, '/x', 'tmpfs', 0, null), (e: any) => e.code === 'ERR_INVALID_ARG_TYPE' && e instanceof TypeError);
  assert.throws(() => (shim.mkdirat as any)('x', 'y', 0o755), (e: any) => e instanceof TypeError);
  assert.throws(() => (shim.lsetxattr as any)('/x', 'user.a', 42, 0), (e: any) => e instanceof TypeError);
  assert.throws(() => shim.statfs('/tmp\0/etc'), (e: any) => e.code === 'ERR_INVALID_ARG_VALUE' && e instanceof TypeError);
  assert.throws(() => (shim.scanNextSync as any)({}, new Uint8Array(64), new Uint8Array(64)), (e: any) => e instanceof TypeError);
});

// ---- mounting -----------------------------------------------------------------------------------

rootTest('mount a tmpfs, statfs sees it, umount2 removes it; failures name the target', () => {
  const target = fresh();
  shim.mount('tmpfs', target, 'tmpfs', C.MS_NOSUID | C.MS_NODEV, 'size=1m,mode=0750');
  try {
    assert.ok(isMounted(target));
    const st = shim.statfs(target);
    assert.is(st.type, C.FS_MAGIC.tmpfs);
    assert.is(st.bsize * st.blocks, 1024 * 1024);
    assert.is(fs.statSync(target).mode & 0o7777, 0o750);
  } finally {
    shim.umount2(target, 0);
  }
  assert.not.ok(isMounted(target));
  expectError(() => shim.mount('tmpfs', join(base, 'nope'), 'tmpfs', 0, null), { code: 'ENOENT', syscall: 'mount', path: join(base, 'nope') });
  expectError(() => shim.mount('x', target, 'no-such-fs', 0, null), { code: 'ENODEV', syscall: 'mount', path: target });
  expectError(() => shim.umount2(target, 0), { code: 'EINVAL', syscall: 'umount2', path: target });
});

overlayTest('mount an overlay with mount()', () => {
  const d = fresh();
  overlayDirs(d);
  shim.mount('overlay', join(d, 'm'), 'overlay', 0,
    `lowerdir=${join(d, 'l1')}:${join(d, 'l2')},upperdir=${join(d, 'u')},workdir=${join(d, 'w')}`);
  try { checkMerged(d); } finally { shim.umount2(join(d, 'm'), 0); }
  // Two lowers: with one lower and no upper, 6.1 refuses the data with EINVAL before looking anything up.
  expectError(() => shim.mount('overlay', join(d, 'm'), 'overlay', 0, `lowerdir=${join(d, 'missing')}:${join(d, 'l1')}`),
    { code: 'ENOENT', syscall: 'mount', path: join(d, 'm') });
});

overlayTest('mountAsync: the same mount on the libuv pool, its failure the same Node-style error', async () => {
  const d = fresh();
  overlayDirs(d);
  const mountAsync = (data: string) => new Promise<ShimError | null>((resolve) => shim.mountAsync('overlay', join(d, 'm'), 'overlay', 0, data, resolve));
  assert.is(await mountAsync(`lowerdir=${join(d, 'l1')}:${join(d, 'l2')},upperdir=${join(d, 'u')},workdir=${join(d, 'w')}`), null);
  try { checkMerged(d); } finally { shim.umount2(join(d, 'm'), 0); }
  const err = await mountAsync(`lowerdir=${join(d, 'missing')}:${join(d, 'l1')}`);
  expectError(() => { throw err; }, { code: 'ENOENT', syscall: 'mount', path: join(d, 'm') });
  assert.throws(() => (shim.mountAsync as any)('overlay', join(d, 'm'), 'overlay', 0, null), (e: any) => e.code === 'ERR_INVALID_ARG_TYPE');
});

rootTest('umount2 refuses a busy mount (EBUSY) and MNT_DETACH takes it away anyway', () => {
  const target = fresh();
  shim.mount('tmpfs', target, 'tmpfs', 0, null);
  const fd = fs.openSync(join(target, 'held'), 'w');
  try {
    expectError(() => shim.umount2(target, 0), { code: 'EBUSY', syscall: 'umount2', path: target });
    shim.umount2(target, C.MNT_DETACH);
    assert.not.ok(isMounted(target));
    fs.writeSync(fd, 'still writable through the detached mount');
  } finally {
    fs.closeSync(fd);
  }
});

lowerdirPlusTest('new mount API: fsopen("overlay") + fsconfig lowerdir+ + fsmount + moveMount', () => {
  const d = fresh();
  overlayDirs(d);
  const fsfd = shim.fsopen('overlay', C.FSOPEN_CLOEXEC);
  let mfd = -1;
  try {
    shim.fsconfig(fsfd, C.FSCONFIG_SET_STRING, 'lowerdir+', join(d, 'l1'), 0);
    shim.fsconfig(fsfd, C.FSCONFIG_SET_STRING, 'lowerdir+', join(d, 'l2'), 0);
    shim.fsconfig(fsfd, C.FSCONFIG_SET_STRING, 'upperdir', join(d, 'u'), 0);
    shim.fsconfig(fsfd, C.FSCONFIG_SET_STRING, 'workdir', join(d, 'w'), 0);
    shim.fsconfig(fsfd, C.FSCONFIG_SET_STRING, 'index', 'off', 0);
    expectError(() => shim.fsconfig(fsfd, C.FSCONFIG_SET_STRING, 'lowerdir+', join(d, 'missing'), 0),
      { code: 'ENOENT', syscall: 'fsconfig', path: join(d, 'missing') });
    shim.fsconfig(fsfd, C.FSCONFIG_CMD_CREATE, null, null, 0);
    mfd = shim.fsmount(fsfd, C.FSMOUNT_CLOEXEC, 0);
    shim.moveMount(mfd, '', C.AT_FDCWD, join(d, 'm'), C.MOVE_MOUNT_F_EMPTY_PATH);
  } finally {
    fs.closeSync(fsfd);
    if (mfd >= 0) fs.closeSync(mfd);
  }
  try { checkMerged(d); } finally { shim.umount2(join(d, 'm'), 0); }
});

rootTest('new mount API failures: fsopen ENODEV, fsconfig binary/flag, fsmount and moveMount EBADF', () => {
  expectError(() => shim.fsopen('no-such-fs', 0), { code: 'ENODEV', syscall: 'fsopen' });
  const target = fresh();
  const fsfd = shim.fsopen('tmpfs', C.FSOPEN_CLOEXEC);
  try {
    // tmpfs takes no binary parameters: the Buffer reaches the kernel and is refused there.
    const e = expectError(() => shim.fsconfig(fsfd, C.FSCONFIG_SET_BINARY, 'size', Buffer.from([1, 0, 2]), 0),
      { code: 'EINVAL', syscall: 'fsconfig' });
    assert.ok(!(e instanceof TypeError));
    shim.fsconfig(fsfd, C.FSCONFIG_SET_STRING, 'size', '2m', 0);
    shim.fsconfig(fsfd, C.FSCONFIG_SET_FLAG, 'ro', null, 0);
    shim.fsconfig(fsfd, C.FSCONFIG_CMD_CREATE, null, null, 0);
    const mfd = shim.fsmount(fsfd, C.FSMOUNT_CLOEXEC, C.MOUNT_ATTR_RDONLY);
    try {
      expectError(() => shim.moveMount(mfd, '', C.AT_FDCWD, join(base, 'nope'), C.MOVE_MOUNT_F_EMPTY_PATH),
        { code: 'ENOENT', syscall: 'move_mount', path: '', dest: join(base, 'nope') });
      shim.moveMount(mfd, '', C.AT_FDCWD, target, C.MOVE_MOUNT_F_EMPTY_PATH);
    } finally { fs.closeSync(mfd); }
    try {
      assert.is(shim.statfs(target).type, C.FS_MAGIC.tmpfs);
      assert.throws(() => fs.writeFileSync(join(target, 'x'), ''), (err: any) => err.code === 'EROFS');
    } finally { shim.umount2(target, 0); }
  } finally { fs.closeSync(fsfd); }
  expectError(() => shim.fsmount(987654, 0, 0), { code: 'EBADF', syscall: 'fsmount' });
  expectError(() => shim.fsconfig(987654, C.FSCONFIG_CMD_CREATE, null, null, 0), { code: 'EBADF', syscall: 'fsconfig' });
});

overlayTest('mountAt resolves relative paths against dir and leaves the process cwd alone', () => {
  const d = fresh();
  overlayDirs(d);
  const cwd = process.cwd();
  shim.mountAt(d, 'overlay', 'm', 'overlay', 0, 'lowerdir=l1:l2,upperdir=u,workdir=w');
  try {
    assert.is(process.cwd(), cwd);
    assert.ok(isMounted(join(d, 'm')));
    checkMerged(d);
  } finally { shim.umount2(join(d, 'm'), 0); }
  assert.is(process.cwd(), cwd);
  expectError(() => shim.mountAt(join(d, 'missing'), 'overlay', 'm', 'overlay', 0, 'lowerdir=l1'),
    { code: 'ENOENT', syscall: 'chdir', path: join(d, 'missing') });
  expectError(() => shim.mountAt(d, 'overlay', 'm', 'overlay', 0, 'lowerdir=nope:l1,upperdir=u,workdir=w'),
    { code: 'ENOENT', syscall: 'mount', path: 'm' });
  assert.is(process.cwd(), cwd);
});

// ---- extended attributes ------------------------------------------------------------------------

test('lsetxattr/lgetxattr round-trip binary values with NUL bytes; absent is null', () => {
  const f = join(fresh(), 'f');
  fs.writeFileSync(f, '');
  const value = Buffer.from([0, 1, 2, 0, 255, 0, 0x79]);
  shim.lsetxattr(f, 'user.bin', value, 0);
  assert.equal(shim.lgetxattr(f, 'user.bin'), value);
  shim.lsetxattr(f, 'user.str', 'héllo', 0);
  assert.equal(shim.lgetxattr(f, 'user.str'), Buffer.from('héllo'));
  shim.lsetxattr(f, 'user.empty', Buffer.alloc(0), 0);
  assert.equal(shim.lgetxattr(f, 'user.empty'), Buffer.alloc(0));
  const big = Buffer.alloc(3000, 7);
  shim.lsetxattr(f, 'user.big', big, 0);
  assert.equal(shim.lgetxattr(f, 'user.big'), big);
  assert.is(shim.lgetxattr(f, 'user.absent'), null);
  expectError(() => shim.lsetxattr(f, 'user.bin', 'x', C.XATTR_CREATE), { code: 'EEXIST', syscall: 'lsetxattr', path: f });
  expectError(() => shim.lgetxattr(f + '.missing', 'user.x'), { code: 'ENOENT', syscall: 'lgetxattr', path: f + '.missing' });
});

rootTest('trusted.* xattrs (overlay opaque marker) and llistxattr', () => {
  const d = join(fresh(), 'd');
  fs.mkdirSync(d);
  shim.lsetxattr(d, 'trusted.overlay.opaque', 'y', 0);
  shim.lsetxattr(d, 'user.other', Buffer.from([0]), 0);
  assert.equal(shim.lgetxattr(d, 'trusted.overlay.opaque'), Buffer.from('y'));
  const names = shim.llistxattr(d);
  assert.ok(names.includes('trusted.overlay.opaque'), names.join());
  assert.ok(names.includes('user.other'), names.join());
  expectError(() => shim.llistxattr(d + '-missing'), { code: 'ENOENT', syscall: 'llistxattr', path: d + '-missing' });
});

test('l* xattr calls do not follow a symlink', () => {
  const d = fresh();
  fs.writeFileSync(join(d, 'target'), '');
  shim.lsetxattr(join(d, 'target'), 'user.t', 'on target', 0);
  fs.symlinkSync('target', join(d, 'link'));
  assert.is(shim.lgetxattr(join(d, 'link'), 'user.t'), null);
  assert.not.ok(shim.llistxattr(join(d, 'link')).includes('user.t'));
  // The kernel allows no user.* attributes on symlinks: proof the call landed on the link itself.
  expectError(() => shim.lsetxattr(join(d, 'link'), 'user.t', 'x', 0), { code: 'EPERM', syscall: 'lsetxattr', path: join(d, 'link') });
});

test('fsetxattr on an fd', () => {
  const f = join(fresh(), 'f');
  const fd = fs.openSync(f, 'w');
  try {
    shim.fsetxattr(fd, 'user.fd', Buffer.from([9, 0, 9]), 0);
    expectError(() => shim.fsetxattr(fd, 'user.fd', 'x', C.XATTR_CREATE), { code: 'EEXIST', syscall: 'fsetxattr' });
  } finally { fs.closeSync(fd); }
  assert.equal(shim.lgetxattr(f, 'user.fd'), Buffer.from([9, 0, 9]));
  expectError(() => shim.fsetxattr(987654, 'user.fd', 'x', 0), { code: 'EBADF', syscall: 'fsetxattr' });
});

// ---- filesystem facts ---------------------------------------------------------------------------

test('statfs reports the backing filesystem; fails with ENOENT', () => {
  const st = shim.statfs(base);
  const node = fs.statfsSync(base);
  assert.is(st.type, node.type);
  assert.is(st.bsize, node.bsize);
  assert.is(st.blocks, node.blocks);
  assert.is(st.files, node.files);
  assert.ok(st.namelen >= 255);
  assert.ok(st.frsize > 0);
  for (const k of ['bfree', 'bavail', 'ffree', 'flags'] as const) assert.type(st[k], 'number');
  expectError(() => shim.statfs(join(base, 'missing')), { code: 'ENOENT', syscall: 'statfs', path: join(base, 'missing') });
});

test('direntTypes lists d_type per entry', () => {
  const d = fresh();
  fs.writeFileSync(join(d, 'f'), '');
  fs.mkdirSync(join(d, 'sub'));
  fs.symlinkSync('f', join(d, 'l'));
  const types = shim.direntTypes(d).sort((a, b) => a - b);
  assert.equal(types, [4, 8, 10]); // DT_DIR, DT_REG, DT_LNK
  expectError(() => shim.direntTypes(join(d, 'f')), { code: 'ENOTDIR', syscall: 'open', path: join(d, 'f') });
});

test('fstatatModes: one st_mode or -errno a path, in order, symlinks not followed; bad arguments refused', () => {
  const d = fresh();
  fs.mkdirSync(join(d, 'a'));
  fs.writeFileSync(join(d, 'a', 'link'), '');
  fs.symlinkSync('missing', join(d, 'dangling'));
  const paths = ['a/link', 'a/.incomplete', 'a', 'dangling', 'a/link/x'];
  const modes = new Int32Array(paths.length + 1).fill(7);
  withDirFd(d, (fd) => shim.fstatatModes(fd, Buffer.from(paths.join('\0') + '\0'), paths.length, new Uint8Array(modes.buffer)));
  assert.is(modes[0]! & 0o170000, 0o100000);
  assert.is(modes[1], -os.constants.errno.ENOENT);
  assert.is(modes[2]! & 0o170000, 0o040000);
  assert.is(modes[3]! & 0o170000, 0o120000);
  assert.is(modes[4], -os.constants.errno.ENOTDIR);
  assert.is(modes[5], 7, 'nothing written past count');
  withDirFd(d, (fd) => {
    expectError(() => shim.fstatatModes(fd, Buffer.from('a/link'), 1, new Uint8Array(4)), { code: 'EINVAL', syscall: 'fstatat' });
    expectError(() => shim.fstatatModes(fd, Buffer.from('a\0a\0'), 2, new Uint8Array(4)), { code: 'ENOBUFS', syscall: 'fstatat' });
  });
  assert.throws(() => shim.fstatatModes(0, 'a' as never, 1, new Uint8Array(4)), (e: any) => e.code === 'ERR_INVALID_ARG_TYPE');
});

test('syncfs on an fd; EBADF on a bad one', () => {
  withDirFd(base, (fd) => shim.syncfs(fd));
  expectError(() => shim.syncfs(987654), { code: 'EBADF', syscall: 'syncfs' });
});

// ---- *at operations -----------------------------------------------------------------------------

test('openat2 opens beneath a dirfd; RESOLVE_BENEATH refuses ../ and absolute paths; NO_SYMLINKS refuses links', () => {
  const d = fresh();
  fs.mkdirSync(join(d, 'root'));
  fs.writeFileSync(join(d, 'outside'), 'secret');
  fs.writeFileSync(join(d, 'root', 'inside'), 'ok');
  fs.symlinkSync('inside', join(d, 'root', 'link'));
  withDirFd(join(d, 'root'), (dfd) => {
    const fd = shim.openat2(dfd, 'inside', C.O_RDONLY | C.O_CLOEXEC, 0, C.RESOLVE_BENEATH);
    try { assert.is(fs.readFileSync(fd, 'utf8'), 'ok'); } finally { fs.closeSync(fd); }
    const cfd = shim.openat2(dfd, 'made', C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_CLOEXEC, 0o640, C.RESOLVE_BENEATH);
    fs.closeSync(cfd);
    assert.is(fs.statSync(join(d, 'root', 'made')).mode & 0o777, 0o640 & ~process.umask());
    expectError(() => shim.openat2(dfd, '../outside', C.O_RDONLY, 0, C.RESOLVE_BENEATH), { code: 'EXDEV', syscall: 'openat2', path: '../outside' });
    expectError(() => shim.openat2(dfd, join(d, 'outside'), C.O_RDONLY, 0, C.RESOLVE_BENEATH), { code: 'EXDEV', syscall: 'openat2', path: join(d, 'outside') });
    expectError(() => shim.openat2(dfd, 'link', C.O_RDONLY, 0, C.RESOLVE_NO_SYMLINKS), { code: 'ELOOP', syscall: 'openat2', path: 'link' });
    const lfd = shim.openat2(dfd, 'link', C.O_RDONLY, 0, C.RESOLVE_BENEATH);
    try { assert.is(fs.readFileSync(lfd, 'utf8'), 'ok'); } finally { fs.closeSync(lfd); }
  });
});

test('mkdirat creates; EEXIST when present', () => {
  const d = fresh();
  withDirFd(d, (dfd) => {
    shim.mkdirat(dfd, 'sub', 0o700);
    assert.ok(fs.statSync(join(d, 'sub')).isDirectory());
    assert.is(fs.statSync(join(d, 'sub')).mode & 0o777, 0o700);
    expectError(() => shim.mkdirat(dfd, 'sub', 0o700), { code: 'EEXIST', syscall: 'mkdirat', path: 'sub' });
  });
});

rootTest('mknodat makes a whiteout (char 0/0) and a char device with major/minor', () => {
  const d = fresh();
  withDirFd(d, (dfd) => {
    shim.mknodat(dfd, 'wh', fs.constants.S_IFCHR | 0o600, 0, 0);
    shim.mknodat(dfd, 'null', fs.constants.S_IFCHR | 0o666, 1, 3);
    shim.mknodat(dfd, 'fifo', fs.constants.S_IFIFO | 0o644, 0, 0);
    expectError(() => shim.mknodat(dfd, 'wh', fs.constants.S_IFCHR, 0, 0), { code: 'EEXIST', syscall: 'mknodat', path: 'wh' });
  });
  const wh = fs.lstatSync(join(d, 'wh'));
  assert.ok(wh.isCharacterDevice());
  assert.is(wh.rdev, 0);
  const nul = fs.lstatSync(join(d, 'null'));
  assert.ok(nul.isCharacterDevice());
  assert.is(nul.rdev, fs.statSync('/dev/null').rdev);
  assert.ok(fs.lstatSync(join(d, 'fifo')).isFIFO());
});

test('symlinkat and linkat; errors carry path and dest', () => {
  const d = fresh();
  fs.writeFileSync(join(d, 'f'), 'x');
  withDirFd(d, (dfd) => {
    shim.symlinkat('../anything', dfd, 'sl');
    assert.is(fs.readlinkSync(join(d, 'sl')), '../anything');
    expectError(() => shim.symlinkat('t', dfd, 'sl'), { code: 'EEXIST', syscall: 'symlinkat', path: 't', dest: 'sl' });
    shim.linkat(dfd, 'f', dfd, 'hard', 0);
    assert.is(fs.statSync(join(d, 'f')).nlink, 2);
    assert.is(fs.statSync(join(d, 'hard')).ino, fs.statSync(join(d, 'f')).ino);
    // Without AT_SYMLINK_FOLLOW the link itself is hardlinked.
    shim.linkat(dfd, 'sl', dfd, 'sl2', 0);
    assert.ok(fs.lstatSync(join(d, 'sl2')).isSymbolicLink());
    expectError(() => shim.linkat(dfd, 'missing', dfd, 'x', 0), { code: 'ENOENT', syscall: 'linkat', path: 'missing', dest: 'x' });
  });
});

test('unlinkat removes files and (AT_REMOVEDIR) directories', () => {
  const d = fresh();
  fs.writeFileSync(join(d, 'f'), '');
  fs.mkdirSync(join(d, 'sub'));
  fs.writeFileSync(join(d, 'sub', 'g'), '');
  withDirFd(d, (dfd) => {
    shim.unlinkat(dfd, 'f', 0);
    assert.not.ok(fs.existsSync(join(d, 'f')));
    expectError(() => shim.unlinkat(dfd, 'sub', C.AT_REMOVEDIR), { code: 'ENOTEMPTY', syscall: 'unlinkat', path: 'sub' });
    expectError(() => shim.unlinkat(dfd, 'sub', 0), { code: 'EISDIR', syscall: 'unlinkat', path: 'sub' });
    shim.unlinkat(dfd, 'sub/g', 0);
    shim.unlinkat(dfd, 'sub', C.AT_REMOVEDIR);
    assert.not.ok(fs.existsSync(join(d, 'sub')));
    expectError(() => shim.unlinkat(dfd, 'f', 0), { code: 'ENOENT', syscall: 'unlinkat', path: 'f' });
  });
});

test('renameat2: plain, NOREPLACE refuses (EEXIST), EXCHANGE swaps', () => {
  const d = fresh();
  fs.writeFileSync(join(d, 'a'), 'A');
  fs.writeFileSync(join(d, 'b'), 'B');
  fs.mkdirSync(join(d, 'dir'));
  withDirFd(d, (dfd) => {
    expectError(() => shim.renameat2(dfd, 'a', dfd, 'b', C.RENAME_NOREPLACE), { code: 'EEXIST', syscall: 'renameat2', path: 'a', dest: 'b' });
    shim.renameat2(dfd, 'a', dfd, 'dir', C.RENAME_EXCHANGE);
    assert.is(fs.readFileSync(join(d, 'dir'), 'utf8'), 'A');
    assert.ok(fs.statSync(join(d, 'a')).isDirectory());
    shim.renameat2(dfd, 'b', dfd, 'c', C.RENAME_NOREPLACE);
    assert.is(fs.readFileSync(join(d, 'c'), 'utf8'), 'B');
    shim.renameat2(dfd, 'c', dfd, 'dir', 0);
    assert.is(fs.readFileSync(join(d, 'dir'), 'utf8'), 'B');
    expectError(() => shim.renameat2(dfd, 'gone', dfd, 'x', C.RENAME_EXCHANGE), { code: 'ENOENT', syscall: 'renameat2', path: 'gone', dest: 'x' });
  });
});

test('renameat2Async: the same renames on the pool, calling back once with null or a Node-style error', async () => {
  const d = fresh();
  fs.writeFileSync(join(d, 'a'), 'A');
  fs.writeFileSync(join(d, 'b'), 'B');
  fs.mkdirSync(join(d, 'dir'));
  await withDirFdAsync(d, async (dfd) => {
    const run = (from: string, to: string, flags: number) =>
      new Promise<ShimError | null>((resolve) => shim.renameat2Async(dfd, from, dfd, to, flags, resolve));
    const refused = await run('a', 'b', C.RENAME_NOREPLACE);
    expectError(() => { if (refused) throw refused; }, { code: 'EEXIST', syscall: 'renameat2', path: 'a', dest: 'b' });
    assert.is(await run('a', 'dir', C.RENAME_EXCHANGE), null);
    assert.is(fs.readFileSync(join(d, 'dir'), 'utf8'), 'A');
    assert.ok(fs.statSync(join(d, 'a')).isDirectory());
    assert.is(await run('b', 'c', C.RENAME_NOREPLACE), null);
    assert.is(fs.readFileSync(join(d, 'c'), 'utf8'), 'B');
    const gone = await run('gone', 'x', C.RENAME_EXCHANGE);
    expectError(() => { if (gone) throw gone; }, { code: 'ENOENT', syscall: 'renameat2', path: 'gone', dest: 'x' });
    let caught: unknown;
    try { shim.renameat2Async(dfd, 'c', dfd, 'd', 0, 'nope' as unknown as () => void); } catch (e) { caught = e; }
    assert.is((caught as { code?: string }).code, 'ERR_INVALID_ARG_TYPE');
    assert.ok(fs.existsSync(join(d, 'c')), 'a refused call renames nothing');
  });
});

rootTest('fchownat changes owners (and the link itself with AT_SYMLINK_NOFOLLOW)', () => {
  const d = fresh();
  fs.writeFileSync(join(d, 'f'), '');
  fs.symlinkSync('f', join(d, 'l'));
  withDirFd(d, (dfd) => {
    shim.fchownat(dfd, 'f', 1234, 5678, 0);
    shim.fchownat(dfd, 'l', 4000000000, 4000000001, C.AT_SYMLINK_NOFOLLOW);
    expectError(() => shim.fchownat(dfd, 'missing', 0, 0, 0), { code: 'ENOENT', syscall: 'fchownat', path: 'missing' });
  });
  const f = fs.statSync(join(d, 'f'));
  assert.equal([f.uid, f.gid], [1234, 5678]);
  const l = fs.lstatSync(join(d, 'l'));
  assert.equal([l.uid, l.gid], [4000000000, 4000000001]);
});

test('fchmodat sets mode bits; ENOENT on a missing name', () => {
  const d = fresh();
  fs.writeFileSync(join(d, 'f'), '');
  withDirFd(d, (dfd) => {
    shim.fchmodat(dfd, 'f', 0o4751);
    expectError(() => shim.fchmodat(dfd, 'missing', 0o644), { code: 'ENOENT', syscall: 'fchmodat', path: 'missing' });
  });
  assert.is(fs.statSync(join(d, 'f')).mode & 0o7777, 0o4751);
});

test('utimensat sets exact times; UTIME_OMIT keeps one; NOFOLLOW touches the link', () => {
  const d = fresh();
  fs.writeFileSync(join(d, 'f'), '');
  fs.symlinkSync('f', join(d, 'l'));
  withDirFd(d, (dfd) => {
    shim.utimensat(dfd, 'f', 1000, 5, 2000, 123456789, 0);
    let st = fs.statSync(join(d, 'f'), { bigint: true });
    assert.is(st.atimeNs, 1000n * 1_000_000_000n + 5n);
    assert.is(st.mtimeNs, 2000n * 1_000_000_000n + 123456789n);
    shim.utimensat(dfd, 'f', 0, C.UTIME_OMIT, 3000, 0, 0);
    st = fs.statSync(join(d, 'f'), { bigint: true });
    assert.is(st.atimeNs, 1000n * 1_000_000_000n + 5n);
    assert.is(st.mtimeNs, 3000n * 1_000_000_000n);
    shim.utimensat(dfd, 'l', 10, 0, 20, 0, C.AT_SYMLINK_NOFOLLOW);
    assert.is(fs.lstatSync(join(d, 'l')).mtimeMs, 20_000);
    assert.is(fs.statSync(join(d, 'f')).mtimeMs, 3_000_000);
    shim.utimensat(dfd, 'f', 0, C.UTIME_NOW, 0, C.UTIME_OMIT, 0);
    assert.ok(fs.statSync(join(d, 'f')).atimeMs > 1_000_000_000_000);
    expectError(() => shim.utimensat(dfd, 'missing', 0, 0, 0, 0, 0), { code: 'ENOENT', syscall: 'utimensat', path: 'missing' });
    expectError(() => shim.utimensat(dfd, 'f', 0, 2_000_000_000, 0, 0, 0), { code: 'EINVAL', syscall: 'utimensat', path: 'f' });
  });
});

test('removeTreeSync deletes a tree beneath a dirfd through fds; symlinks unlinked, not followed; missing is fine', () => {
  const d = fresh();
  fs.mkdirSync(join(d, 'outside'));
  fs.writeFileSync(join(d, 'outside', 'keep'), 'k');
  fs.mkdirSync(join(d, 'a', 'b', 'c', 'd'), { recursive: true });
  fs.writeFileSync(join(d, 'a', 'b', 'f'), 'x');
  fs.writeFileSync(join(d, 'a', 'b', 'c', 'd', 'g'), 'y');
  fs.symlinkSync(join(d, 'outside'), join(d, 'a', 'b', 'c', 'toOutside'));
  fs.symlinkSync('../../../outside/keep', join(d, 'a', 'b', 'c', 'toKeep'));
  withDirFd(d, (dfd) => {
    shim.removeTreeSync(dfd, 'a/b');
    assert.equal(fs.readdirSync(join(d, 'a')), []);
    shim.removeTreeSync(dfd, 'a/b');          // gone: nothing to do
    shim.removeTreeSync(dfd, 'nothere/deeper'); // the parent too
    fs.writeFileSync(join(d, 'a', 'file'), 'f');
    shim.removeTreeSync(dfd, 'a/file');        // a non-directory root is unlinked
    shim.removeTreeSync(dfd, 'a/');
    assert.not.ok(fs.existsSync(join(d, 'a')));
  });
  assert.equal(fs.readdirSync(join(d, 'outside')), ['keep']);
});

test('removeTreeSync: RESOLVE_BENEATH refuses ../ and absolute paths, NO_SYMLINKS a linked parent, and . / .. as the root', () => {
  const d = fresh();
  fs.mkdirSync(join(d, 'sub', 'x'), { recursive: true });
  fs.symlinkSync('sub', join(d, 'l'));
  withDirFd(join(d, 'sub'), (dfd) => {
    expectError(() => shim.removeTreeSync(dfd, '../sub/x'), { code: 'EXDEV', syscall: 'openat2', path: '../sub/x' });
    expectError(() => shim.removeTreeSync(dfd, join(d, 'sub', 'x')), { code: 'EXDEV', syscall: 'openat2', path: join(d, 'sub', 'x') });
    expectError(() => shim.removeTreeSync(dfd, 'x/..'), { code: 'EINVAL', syscall: 'rmtree', path: 'x/..' });
    expectError(() => shim.removeTreeSync(dfd, ''), { code: 'EINVAL', syscall: 'rmtree', path: '' });
  });
  withDirFd(d, (dfd) => {
    expectError(() => shim.removeTreeSync(dfd, 'l/x'), { code: 'ELOOP', syscall: 'openat2', path: 'l/x' });
  });
  assert.ok(fs.existsSync(join(d, 'sub', 'x')));
});

test('removeTree runs on the pool and calls back once (null, or a Node-style error); refuses a non-function callback', async () => {
  const d = fresh();
  fs.mkdirSync(join(d, 't', 'u'), { recursive: true });
  fs.writeFileSync(join(d, 't', 'u', 'f'), 'x');
  const fd = fs.openSync(d, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    const run = (p: string) => new Promise<ShimError | null>((resolve) => shim.removeTree(fd, p, resolve));
    assert.is(await run('t'), null);
    assert.not.ok(fs.existsSync(join(d, 't')));
    const err = await run('../t');
    expectError(() => { if (err) throw err; }, { code: 'EXDEV', syscall: 'openat2', path: '../t' });
    let caught: unknown;
    try { shim.removeTree(fd, 't', 'nope' as unknown as () => void); } catch (e) { caught = e; }
    assert.is((caught as { code?: string }).code, 'ERR_INVALID_ARG_TYPE');
  } finally {
    fs.closeSync(fd);
  }
});

rootTest('removeTreeSync does not enter a bind mount (EXDEV naming it) and deletes nothing below it', () => {
  const d = fresh();
  fs.mkdirSync(join(d, 'src'));
  fs.writeFileSync(join(d, 'src', 'precious'), 'p');
  fs.mkdirSync(join(d, 'tree', 'mnt'), { recursive: true });
  shim.mount(join(d, 'src'), join(d, 'tree', 'mnt'), null, C.MS_BIND, null);
  try {
    withDirFd(d, (dfd) => {
      expectError(() => shim.removeTreeSync(dfd, 'tree'), { code: 'EXDEV', syscall: 'openat2', path: 'tree/mnt' });
    });
    assert.equal(fs.readdirSync(join(d, 'tree', 'mnt')), ['precious']);
  } finally {
    shim.umount2(join(d, 'tree', 'mnt'), 0);
  }
  assert.equal(fs.readdirSync(join(d, 'src')), ['precious']);
});

test.run();
