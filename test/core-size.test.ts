// The WASM size accumulator (moby's directory.Size) from hand-built records.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sizeOf, f, d, wh, l, withTestCore, encodeBatch, sortEntries } from './core-fixtures.js';
import { SCAN_STREAMS } from '../src/core/regions.js';

test('plain files add up; directories do not count', () => {
  assert.is(sizeOf([d('a', { size: 4096 }), f('a/x', { size: 5 }), f('y', { size: 7 }), d('a/b', { size: 12288 })]), 12);
});

test('a hardlinked inode (nlink > 1) counts once', () => {
  const ino = 777;
  const entries = [
    f('a', { ino, nlink: 3, size: 100 }),
    d('dir'),
    f('dir/b', { ino, nlink: 3, size: 100 }),
    f('dir/c', { ino, nlink: 3, size: 100 }),
    f('other', { size: 1 }),
  ];
  assert.is(sizeOf(entries, 1), 101);
});

test('the same inode number on another device is another inode', () => {
  assert.is(sizeOf([f('a', { ino: 5, nlink: 2, size: 10, dev: 1 }), f('b', { ino: 5, nlink: 2, size: 10, dev: 2 })]), 20);
  assert.is(sizeOf([f('a', { ino: 5, nlink: 1, size: 10, dev: 1 }), f('b', { ino: 5, nlink: 1, size: 10, dev: 2 })]), 20);
});

test('nlink 1 entries are never deduplicated (no hash set traffic)', () => {
  withTestCore((core) => {
    const slot = SCAN_STREAMS[0][0];
    const b = encodeBatch(core, slot, sortEntries([f('a', { ino: 9, size: 3 }), f('b', { ino: 9, size: 3 })]));
    core.exports.sizeConsume(slot.recordsAddr, b.count);
    assert.is(Number(core.exports.sizeTotal()), 6);
    assert.is(core.exports.inodeCount(), 0);
  });
});

test("the kernel's shared whiteout inode: several char 0/0 with one ino and nlink > 1 add nothing", () => {
  withTestCore((core) => {
    const slot = SCAN_STREAMS[0][0];
    const entries = sortEntries([
      wh('w1', { ino: 42, nlink: 4 }), wh('w2', { ino: 42, nlink: 4 }), d('x'), wh('x/w3', { ino: 42, nlink: 4 }),
      f('real', { ino: 43, nlink: 2, size: 8 }), f('x/real2', { ino: 43, nlink: 2, size: 8 }),
    ]);
    const b = encodeBatch(core, slot, entries);
    core.exports.sizeConsume(slot.recordsAddr, b.count);
    assert.is(Number(core.exports.sizeTotal()), 8);
    assert.is(core.exports.inodeCount(), 1, 'only the real hardlinked inode entered the set');
  });
});

test('symlinks count their size, like any non-directory', () => {
  assert.is(sizeOf([l('s', { size: 11 }), f('x', { size: 1 })]), 12);
});

test('many hardlinked inodes: the set grows and stays exact', () => {
  const entries = [];
  let want = 0;
  for (let i = 0; i < 6000; i++) {
    const size = (i % 97) + 1;
    entries.push(f(`a${i}`, { ino: 100000 + i, nlink: 2, size }), f(`b${i}`, { ino: 100000 + i, nlink: 2, size }));
    want += size;
  }
  assert.is(sizeOf(entries, 4096), want);
});

test('sizes above 2^32 are summed exactly', () => {
  assert.is(sizeOf([f('big', { size: 5 * 2 ** 32 + 3 }), f('big2', { size: 2 ** 40 })]), 5 * 2 ** 32 + 3 + 2 ** 40);
});

test.run();
