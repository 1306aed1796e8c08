// The record contract from every side: assembly/records.ts (the source text), its TS mirror
// (src/core/records.ts), the WASM core's exported table and decoder, and what the C scanner writes
// for a small real tree (decoded by TS and by WASM, checked against lstat).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, mkdirSync, writeFileSync, symlinkSync, linkSync, lstatSync, utimesSync, openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import * as R from '../src/core/records.js';
import { decodeRecord } from '../src/scan/record-view.js';
import { scanStream } from '../src/scan/stream.js';
import { acquireCore, releaseCore } from '../src/core/wasm.js';
import { SCAN_STREAMS } from '../src/core/regions.js';
import { tryLoadShim } from '../src/native/shim.js';
import { AT_FDCWD } from '../src/native/constants.js';
import { tempDir, removeTree, isRoot, testIf } from './support/env.js';

const shim = tryLoadShim();
const withShim = testIf(!!shim, 'the C-scanner side of the record contract', 'the shim is not built');

test('the TS mirror has every constant of assembly/records.ts with the same value', () => {
  const text = readFileSync(new URL('../../assembly/records.ts', import.meta.url), 'utf8');
  const found = [...text.matchAll(/^export const (\w+): \w+ = ([^;]+);/gm)];
  assert.ok(found.length >= 37, `parsed ${found.length} constants`);
  for (const [, name, value] of found) {
    const want = Number(value!.trim().replace(/^0o/, '0o'));
    assert.is((R as Record<string, unknown>)[name!], want, name);
  }
});

test('the C header (shim/records.h) has the same offsets, record size and shim-side constants', () => {
  const text = readFileSync(new URL('../../shim/records.h', import.meta.url), 'utf8');
  const offsets = [...text.matchAll(/offsetof\(struct scan_record, \w+\) == (\d+), "(\w+)"/g)];
  const offKey = (field: string) => 'OFF_' + field.replace(/[A-Z]/g, (c) => '_' + c).toUpperCase();
  assert.is(offsets.length, R.RECORD_FIELDS.length, 'one offset check per record field');
  for (const [, off, field] of offsets) {
    assert.is(Number(off), (R as unknown as Record<string, number>)[offKey(field!)], field);
  }
  const define = (name: string) => Number(new RegExp(`#define ${name} (\\S+)`).exec(text)?.[1]);
  assert.is(define('RECORD_SIZE'), R.RECORD_SIZE);
  assert.is(define('FLAG_FAILED'), R.FLAG_FAILED);
  assert.is(define('FLAG_DATA'), R.FLAG_DATA);
  assert.is(define('SCAN_SORTED'), R.SCAN_SORTED);
  assert.is(define('SCAN_NO_RECURSE'), R.SCAN_NO_RECURSE);
  assert.is(define('SCAN_SHARED'), R.SCAN_SHARED);
  assert.is(define('SCAN_SPLIT'), R.SCAN_SPLIT);
  assert.is(define('SCAN_STAT_DIRS_ONLY'), R.SCAN_STAT_DIRS_ONLY);
  assert.is(define('SCAN_SIZE_ALLOCATED'), R.SCAN_SIZE_ALLOCATED);
});

test('the WASM table equals the TS mirror, key by key', () => {
  const core = acquireCore();
  try {
    const ex = core.exports;
    assert.is(ex.recordLayoutCount(), R.RECORD_LAYOUT_KEYS.length);
    R.RECORD_LAYOUT_KEYS.forEach((key, i) => assert.is(ex.recordLayoutValue(i), (R as unknown as Record<string, number>)[key], key));
    assert.is(ex.recordVersion(), R.RECORD_VERSION);
  } finally {
    releaseCore(core);
  }
});

test('a record encoded by TS decodes identically in TS and in WASM', () => {
  const core = acquireCore();
  try {
    const at = SCAN_STREAMS[0][0].recordsAddr;
    const rec: R.RecordFields = {
      ino: 0xfedcba9876543210n, size: -5n, mtimeSec: 0x1_2345_6789n, mtimeNsec: 999_999_999, mode: 0o104755,
      uid: 0xfffffffe, gid: 65534, nlink: 7, dev: (259 << 20) | 3, rdev: (1 << 20) | 3, nameOff: 0x10203,
      nameLen: 255, extraLen: 20, depth: 65535, flags: R.FLAG_CAPS | R.FLAG_OPAQUE,
    };
    R.encodeRecord(core.low, at, rec);
    assert.equal(decodeRecord(core.low, at), rec);
    const fromWasm = R.RECORD_FIELDS.map((_, i) => core.exports.recordField(at, i));
    const expected = R.RECORD_FIELDS.map((k) => BigInt.asIntN(64, BigInt(rec[k])));
    assert.equal(fromWasm, expected);
  } finally {
    releaseCore(core);
  }
});

test('kernelDev converts glibc dev_t to the kernel encoding', () => {
  assert.is(R.kernelDev(0x803n), (8 << 20) | 3);
  assert.is(R.kernelDev((259n << 8n) | 5n), (259 << 20) | 5); // nvme: major 259
  assert.is(R.kernelDev(((1n & 0xfffn) << 8n) | (0x123n & 0xffn) | ((0x123n & ~0xffn) << 12n)), (1 << 20) | 0x123);
});

withShim('the C scanner writes what lstat says, and TS and WASM decode it the same', async () => {
  const dir = tempDir('ovl2-records-');
  try {
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'sub', 'file'), 'hello world');
    utimesSync(join(dir, 'sub', 'file'), new Date(1_600_000_000_123), new Date(1_600_000_000_456));
    linkSync(join(dir, 'sub', 'file'), join(dir, 'hard'));
    symlinkSync('sub/file', join(dir, 'link'));
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    if (isRoot) {
      shim!.mknodat(AT_FDCWD, join(dir, 'null'), R.S_IFCHR | 0o666, 1, 3);
      shim!.lsetxattr(join(dir, 'sub', 'file'), 'security.capability',
        Buffer.from([1, 0, 0, 2, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), 0);
      shim!.lsetxattr(join(dir, 'sub'), 'trusted.overlay.opaque', 'y', 0);
    }
    const core = acquireCore();
    try {
      const slot = SCAN_STREAMS[0][0];
      const h = shim!.scanOpen(AT_FDCWD, dir, R.SCAN_SORTED | R.SCAN_CAPS | R.SCAN_OPAQUE);
      const batch = shim!.scanNextSync(h, core.low.subarray(slot.recordsAddr, slot.recordsAddr + slot.recordsSize),
        core.low.subarray(slot.heapAddr, slot.heapAddr + slot.heapSize));
      shim!.scanClose(h);
      assert.ok(batch.done);
      const names: string[] = [];
      const stack: string[] = [];
      for (let i = 0; i < batch.count; i++) {
        const at = slot.recordsAddr + i * R.RECORD_SIZE;
        const r = decodeRecord(core.low, at);
        const wasm = R.RECORD_FIELDS.map((_, k) => core.exports.recordField(at, k));
        assert.equal(wasm, R.RECORD_FIELDS.map((k) => BigInt.asIntN(64, BigInt(r[k]))), 'WASM decodes what TS decodes');
        const name = Buffer.from(core.low.subarray(slot.heapAddr + r.nameOff, slot.heapAddr + r.nameOff + r.nameLen)).toString();
        stack.length = r.depth - 1;
        stack.push(name);
        const rel = stack.join('/');
        names.push(rel);
        const st = lstatSync(join(dir, rel), { bigint: true });
        assert.is(r.ino, st.ino, `${rel} ino`);
        assert.is(r.size, st.size, `${rel} size`);
        assert.is(r.mtimeSec * 1_000_000_000n + BigInt(r.mtimeNsec), st.mtimeNs, `${rel} mtime`);
        assert.is(r.mode, Number(st.mode), `${rel} mode`);
        assert.is(r.uid, Number(st.uid));
        assert.is(r.gid, Number(st.gid));
        assert.is(r.nlink, Number(st.nlink), `${rel} nlink`);
        assert.is(r.dev, R.kernelDev(st.dev), `${rel} dev`);
        assert.is(r.rdev, st.isCharacterDevice() || st.isBlockDevice() ? R.kernelDev(st.rdev) : 0, `${rel} rdev`);
        if (isRoot && rel === 'sub/file') {
          assert.is(r.flags & R.FLAG_CAPS, R.FLAG_CAPS);
          assert.is(r.extraLen, 20);
        }
        if (isRoot && rel === 'sub') assert.is(r.flags & R.FLAG_OPAQUE, R.FLAG_OPAQUE);
      }
      assert.equal(names, isRoot ? ['fifo', 'hard', 'link', 'null', 'sub', 'sub/file'] : ['fifo', 'hard', 'link', 'sub', 'sub/file']);
    } finally {
      releaseCore(core);
    }
  } finally {
    removeTree(dir);
  }
});

withShim('SCAN_SIZE_ALLOCATED: the walk and lookupBatch write st_blocks * 512 as size, the fallback too', async () => {
  const dir = tempDir('ovl2-records-alloc-');
  try {
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'sub', 'file'), 'x'.repeat(10_000));
    execFileSync('truncate', ['-s', '5M', join(dir, 'sparse')]); // st_size 5 MiB, no blocks
    symlinkSync('sub/file', join(dir, 'link'));
    const allocated = (rel: string) => lstatSync(join(dir, rel), { bigint: true }).blocks * 512n;
    assert.ok(allocated('sparse') < lstatSync(join(dir, 'sparse'), { bigint: true }).size, 'the sparse file has holes');
    const core = acquireCore();
    try {
      const slot = SCAN_STREAMS[0][0];
      const records = core.low.subarray(slot.recordsAddr, slot.recordsAddr + slot.recordsSize);
      const heap = core.low.subarray(slot.heapAddr, slot.heapAddr + slot.heapSize);
      const sizesBy = (count: number, name: (r: R.RecordFields) => string) => {
        const out: Record<string, bigint> = {};
        for (let i = 0; i < count; i++) {
          const r = decodeRecord(core.low, slot.recordsAddr + i * R.RECORD_SIZE);
          out[name(r)] = r.size;
        }
        return out;
      };
      const want = { link: allocated('link'), sparse: allocated('sparse'), sub: allocated('sub'), 'sub/file': allocated('sub/file') };
      const h = shim!.scanOpen(AT_FDCWD, dir, R.SCAN_SORTED | R.SCAN_SIZE_ALLOCATED);
      const batch = shim!.scanNextSync(h, records, heap);
      shim!.scanClose(h);
      const stack: string[] = [];
      assert.equal(sizesBy(batch.count, (r) => {
        stack.length = r.depth - 1;
        stack.push(Buffer.from(heap.subarray(r.nameOff, r.nameOff + r.nameLen)).toString());
        return stack.join('/');
      }), want, 'the walk');
      const dfd = openSync(dir, 'r');
      try {
        shim!.lookupBatch(dfd, Buffer.from('link\0sparse\0sub\0'), 3, records, heap, R.SCAN_SIZE_ALLOCATED);
      } finally {
        closeSync(dfd);
      }
      const looked = ['link', 'sparse', 'sub'];
      assert.equal(sizesBy(3, (r) => looked[r.nameOff === 0 ? 0 : r.nameOff === 5 ? 1 : 2]!), { link: want.link, sparse: want.sparse, sub: want.sub }, 'lookupBatch');
      const fromFallback: Record<string, bigint> = {};
      const fbStack: string[] = [];
      await scanStream(core, dir, R.SCAN_SIZE_ALLOCATED, (s, count) => {
        for (let i = 0; i < count; i++) {
          const r = decodeRecord(core.low, s.recordsAddr + i * R.RECORD_SIZE);
          fbStack.length = r.depth - 1;
          fbStack.push(Buffer.from(core.low.subarray(s.heapAddr + r.nameOff, s.heapAddr + r.nameOff + r.nameLen)).toString());
          fromFallback[fbStack.join('/')] = r.size;
        }
      }, { fallback: true });
      assert.equal(fromFallback, want, 'the fallback scanner');
    } finally {
      releaseCore(core);
    }
  } finally {
    removeTree(dir);
  }
});

test.run();
