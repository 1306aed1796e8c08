// The WASM disk-usage accumulator (containerd's fs.DiskUsage: every inode once, Σ size field) from
// hand-built records. The records stand for a SCAN_SIZE_ALLOCATED scan: size = st_blocks * 512.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { f, d, wh, l, withTestCore, encodeBatch, sortEntries, type Entry } from './core-fixtures.js';
import { SCAN_STREAMS } from '../src/core/regions.js';
import { FLAG_FAILED, RECORD_SIZE, OFF_FLAGS } from '../src/core/records.js';

/** usageConsume over `entries` in batches of `batch` records: [size, inodes]. */
function usageOf(entries: Entry[], batch = 2): [number, number] {
  return withTestCore((core) => {
    const sorted = sortEntries(entries);
    for (let i = 0, k = 0; i < sorted.length; i += batch, k ^= 1) {
      const slot = SCAN_STREAMS[1][k]!;
      const b = encodeBatch(core, slot, sorted.slice(i, i + batch));
      core.exports.usageConsume(slot.recordsAddr, b.count);
    }
    return [Number(core.exports.usageTotal()), Number(core.exports.usageInodes())];
  });
}

test('every entry counts: directories, files, symlinks, devices, empty files', () => {
  assert.equal(usageOf([
    d('a', { size: 4096 }), f('a/x', { size: 4096 }), f('a/empty', { size: 0 }), l('s', { size: 0 }),
    f('y', { size: 8192 }), d('a/b', { size: 4096 }), { path: 'null', type: 'c', size: 0 },
  ]), [4096 * 3 + 8192, 7]);
});

test('a hardlinked inode (nlink > 1) counts once, size and inode alike', () => {
  const ino = 777;
  assert.equal(usageOf([
    f('a', { ino, nlink: 3, size: 12288 }), d('dir', { size: 4096 }),
    f('dir/b', { ino, nlink: 3, size: 12288 }), f('dir/c', { ino, nlink: 3, size: 12288 }), f('other', { size: 4096 }),
  ], 1), [12288 + 4096 + 4096, 3]);
});

test("whiteouts count one inode each; the kernel's shared whiteout inode (nlink > 1) counts once", () => {
  assert.equal(usageOf([wh('w1'), wh('w2'), f('x', { size: 4096 })]), [4096, 3]);
  assert.equal(usageOf([
    wh('w1', { ino: 42, nlink: 4 }), wh('w2', { ino: 42, nlink: 4 }), d('x', { size: 4096 }), wh('x/w3', { ino: 42, nlink: 4 }),
  ]), [4096, 2]);
});

test('directories are never deduplicated, whatever their nlink (each is visited once)', () => {
  withTestCore((core) => {
    const slot = SCAN_STREAMS[0][0];
    const b = encodeBatch(core, slot, sortEntries([d('a', { ino: 5, nlink: 3 }), d('a/b', { ino: 6, nlink: 2 }), f('c', { ino: 9, size: 4096 })]));
    core.exports.usageConsume(slot.recordsAddr, b.count);
    assert.is(Number(core.exports.usageInodes()), 3);
    assert.is(Number(core.exports.usageTotal()), 4096 * 3);
  });
});

test('the same inode number on another device is another inode', () => {
  assert.equal(usageOf([f('a', { ino: 5, nlink: 2, size: 4096, dev: 1 }), f('b', { ino: 5, nlink: 2, size: 4096, dev: 2 })]), [8192, 2]);
});

test('a failed record (a lookup that found nothing) counts nothing', () => {
  withTestCore((core) => {
    const slot = SCAN_STREAMS[0][0];
    const b = encodeBatch(core, slot, sortEntries([f('gone', { size: 4096 }), f('here', { size: 4096 })]));
    new DataView(core.low.buffer, core.low.byteOffset + slot.recordsAddr, RECORD_SIZE).setUint16(OFF_FLAGS, FLAG_FAILED, true);
    core.exports.usageConsume(slot.recordsAddr, b.count);
    assert.equal([Number(core.exports.usageTotal()), Number(core.exports.usageInodes())], [4096, 1]);
  });
});

test('size and usage own separate inode sets: feeding one batch to both counts each link once in each', () => {
  withTestCore((core) => {
    const slot = SCAN_STREAMS[0][0];
    const b = encodeBatch(core, slot, sortEntries([f('a', { ino: 7, nlink: 2, size: 100 }), f('b', { ino: 7, nlink: 2, size: 100 })]));
    core.exports.sizeConsume(slot.recordsAddr, b.count);
    core.exports.usageConsume(slot.recordsAddr, b.count);
    assert.is(Number(core.exports.sizeTotal()), 100);
    assert.equal([Number(core.exports.usageTotal()), Number(core.exports.usageInodes())], [100, 1]);
    assert.is(core.exports.inodeCount(), 1, "the size sum's set");
  });
});

test('coreReset forgets the sums and the set', () => {
  withTestCore((core) => {
    const slot = SCAN_STREAMS[0][0];
    const b = encodeBatch(core, slot, sortEntries([f('a', { ino: 7, nlink: 2, size: 4096 })]));
    core.exports.usageConsume(slot.recordsAddr, b.count);
    core.exports.coreReset();
    core.exports.usageConsume(slot.recordsAddr, b.count);
    assert.equal([Number(core.exports.usageTotal()), Number(core.exports.usageInodes())], [4096, 1]);
  });
});

test('many hardlinked inodes: the set grows and stays exact; sums above 2^32 are exact', () => {
  const entries = [];
  for (let i = 0; i < 6000; i++) {
    entries.push(f(`a${i}`, { ino: 100000 + i, nlink: 2, size: 2 ** 20 }), f(`b${i}`, { ino: 100000 + i, nlink: 2, size: 2 ** 20 }));
  }
  entries.push(f('big', { size: 5 * 2 ** 32 }));
  assert.equal(usageOf(entries, 4096), [6000 * 2 ** 20 + 5 * 2 ** 32, 6001]);
});

test.run();
