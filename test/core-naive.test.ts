// The naive comparison in the WASM core (moby's ChangesDirs rules) from hand-built trees.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { naive, lines, f, d, l, type Entry } from './core-fixtures.js';

// a base both sides share: same inode numbers only where a test says so
const base = (): Entry[] => [d('a', { ino: 1 }), f('a/x', { ino: 2 }), f('a/y', { ino: 3 }), d('b', { ino: 4 }), f('top', { ino: 5 })];

test('identical trees: no changes', () => {
  assert.equal(naive(base(), base()), []);
});

test('add a file at the root and below a directory (the directory gets C)', () => {
  assert.equal(lines(naive([...base(), f('new'), f('a/z')], base())), ['C /a', 'A /a/z', 'A /new']);
});

test('a new directory: A for it and everything below, no C for it', () => {
  assert.equal(lines(naive([...base(), d('n'), d('n/m'), f('n/m/k')], base())), ['A /n', 'A /n/m', 'A /n/m/k']);
});

test('delete a file: D plus C of its directory', () => {
  assert.equal(lines(naive(base().filter((e) => e.path !== 'a/y'), base())), ['C /a', 'D /a/y']);
});

test('delete a directory: one D, nothing for its children', () => {
  assert.equal(lines(naive(base().filter((e) => !e.path.startsWith('a')), base())), ['D /a']);
});

test('content change (size) and touch (mtime) are C', () => {
  const n = base();
  n.find((e) => e.path === 'a/x')!.size = 999;
  n.find((e) => e.path === 'top')!.mtime = 1_800_000_000;
  assert.equal(lines(naive(n, base())), ['C /a', 'C /a/x', 'C /top']);
});

test('mode, uid, gid and rdev changes are C', () => {
  const cases: Array<Partial<Entry>> = [{ perm: 0o600 }, { uid: 1000 }, { gid: 50 }];
  for (const c of cases) assert.equal(lines(naive([f('x', c)], [f('x')])), ['C /x'], JSON.stringify(c));
  assert.equal(lines(naive([f('x', { type: 'c', rdev: 0x100005 })], [f('x', { type: 'c', rdev: 0x100003 })])), ['C /x']);
});

test('mtime nanoseconds: equal, or either side 0 with equal seconds, is the same time', () => {
  const t = (nsOld: number, nsNew: number, secNew = 100) =>
    lines(naive([f('x', { mtime: secNew, nsec: nsNew })], [f('x', { mtime: 100, nsec: nsOld })]));
  assert.equal(t(5, 5), []);
  assert.equal(t(0, 5), []);
  assert.equal(t(5, 0), []);
  assert.equal(t(5, 6), ['C /x']);
  assert.equal(t(0, 0, 101), ['C /x']);
  assert.equal(t(5, 5, 101), ['C /x']);
});

test('directories: size and mtime are not a change, mode is', () => {
  assert.equal(lines(naive([d('a', { size: 8192, mtime: 5 })], [d('a', { size: 4096, mtime: 9 })])), []);
  assert.equal(lines(naive([d('a', { perm: 0o700 })], [d('a')])), ['C /a']);
});

test('security.capability bytes: added, changed and removed are C; equal is not', () => {
  const caps1 = [1, 0, 0, 2, 32, 0, 0, 0];
  const caps2 = [1, 0, 0, 2, 64, 0, 0, 0];
  assert.equal(lines(naive([f('x', { caps: caps1 })], [f('x', { caps: caps1 })])), []);
  assert.equal(lines(naive([f('x', { caps: caps2 })], [f('x', { caps: caps1 })])), ['C /x']);
  assert.equal(lines(naive([f('x', { caps: caps1 })], [f('x')])), ['C /x']);
  assert.equal(lines(naive([f('x')], [f('x', { caps: caps1 })])), ['C /x']);
});

test('file → directory: C, everything below it A', () => {
  assert.equal(lines(naive([d('x'), f('x/a'), d('x/s'), f('x/s/b')], [f('x')])), ['C /x', 'A /x/a', 'A /x/s', 'A /x/s/b']);
});

test('directory → file: one C, no D below it', () => {
  assert.equal(lines(naive([f('x')], [d('x'), f('x/a'), f('x/b')])), ['C /x']);
});

test('a directory removed and made again (opaque in overlay): old children D, new ones A', () => {
  const old = [d('o'), f('o/a'), f('o/b'), d('o/sub'), f('o/sub/k')];
  assert.equal(lines(naive([d('o'), f('o/c')], old)), ['C /o', 'D /o/a', 'D /o/b', 'A /o/c', 'D /o/sub']);
});

test('rename is D + A', () => {
  assert.equal(lines(naive([f('b')], [f('a')])), ['D /a', 'A /b']);
  assert.equal(lines(naive([d('n'), f('n/k')], [d('o'), f('o/k')])), ['A /n', 'A /n/k', 'D /o']);
});

test("moby's dir-like test: a block device or socket over a directory deletes the old children", () => {
  assert.equal(lines(naive([f('x', { type: 'b' })], [d('x'), f('x/a')])), ['C /x', 'D /x/a']);
  assert.equal(lines(naive([f('x', { type: 's' })], [d('x'), f('x/a')])), ['C /x', 'D /x/a']);
  // and a FIFO (no 040000 bit) is an ordinary non-directory
  assert.equal(lines(naive([f('x', { type: 'p' })], [d('x'), f('x/a')])), ['C /x']);
});

test('old block device: size and mtime are ignored (its type bits include 040000)', () => {
  assert.equal(lines(naive([f('x', { type: 'b', mtime: 9, size: 1 })], [f('x', { type: 'b', mtime: 8, size: 2 })])), []);
});

test('symlink retarget: size/mtime differ → C', () => {
  assert.equal(lines(naive([l('s', { size: 4, mtime: 2 })], [l('s', { size: 3, mtime: 1 })])), ['C /s']);
});

test('output is sorted by path bytes ("/a-b" before "/a/b")', () => {
  const out = lines(naive([d('a'), f('a/b'), f('a-b'), f('a.c'), d('a0')], [d('a')]));
  assert.equal(out, ['C /a', 'A /a-b', 'A /a.c', 'A /a/b', 'A /a0']);
});

test("same device and same inode: moby's walker drops the entry from both trees", () => {
  const n = [d('a', { ino: 1 }), f('a/x', { ino: 2, size: 50 })];
  const o = [d('a', { ino: 1 }), f('a/x', { ino: 2, size: 10 })];
  assert.equal(lines(naive(n, o, true)), [], 'same ino, same device: pruned');
  assert.equal(lines(naive(n, o, false)), ['C /a', 'C /a/x'], 'different devices: compared');
});

test('an empty old tree: everything is A', () => {
  assert.equal(lines(naive([d('a'), f('a/b'), f('c')], [])), ['A /a', 'A /a/b', 'A /c']);
});

test('nested changes: every unchanged ancestor directory gets one C', () => {
  const old = [d('p'), d('p/q'), d('p/q/r'), f('p/q/r/f')];
  assert.equal(lines(naive([...old, f('p/q/r/g')], old)), ['C /p', 'C /p/q', 'C /p/q/r', 'A /p/q/r/g']);
});

test('many entries across batch boundaries stay consistent', () => {
  const old: Entry[] = [d('big')];
  const nu: Entry[] = [d('big')];
  for (let i = 0; i < 500; i++) {
    old.push(f(`big/f${String(i).padStart(4, '0')}`, { ino: 10_000 + i }));
    if (i % 3 !== 0) nu.push(f(`big/f${String(i).padStart(4, '0')}`, { ino: 10_000 + i, size: i % 5 === 0 ? 1 : 10 }));
  }
  const out = lines(naive(nu, old));
  const want = ['C /big'];
  for (let i = 0; i < 500; i++) {
    const p = `/big/f${String(i).padStart(4, '0')}`;
    if (i % 3 === 0) want.push(`D ${p}`);
    else if (i % 5 === 0) want.push(`C ${p}`);
  }
  assert.equal(out, want);
});

test.run();
