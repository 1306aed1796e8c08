// The streaming scanner host: double-buffered batches into WASM memory, and the fast-glob fallback
// producing the same records (bar xattrs) as the shim on the same tree.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { withCore, type Core } from '../src/core/wasm.js';
import { RECORD_SIZE, SCAN_SORTED, SCAN_NO_RECURSE, SCAN_CAPS, SCAN_STAT_DIRS_ONLY, type RecordFields } from '../src/core/records.js';
import { decodeRecord } from '../src/scan/record-view.js';
import { SCAN_RECORDS_PER_BATCH, type ScanSlot } from '../src/core/regions.js';
import { scanStream, type ScanOptions } from '../src/scan/stream.js';
import { scanUnordered } from '../src/scan/unordered.js';
import { scanSplit, SegmentOrder } from '../src/scan/split.js';
import { tryLoadShim } from '../src/native/shim.js';
import { changesNaive } from '../src/changes/naive.js';
import { tempDir, removeTree, testIf } from './support/env.js';

const shim = tryLoadShim();
const withShim = testIf(!!shim, 'shim-vs-fallback scan comparisons (fallback-only tests still run)', 'the shim is not built');

interface Seen extends Omit<RecordFields, 'nameOff'> { path: string }

/** A batch consumer that decodes every record of a depth-first walk into `seen`, with its path
 *  (tests only: the real consumers never decode). */
function pathCollector(core: Core, seen: Seen[]): (slot: ScanSlot, count: number) => void {
  const stack: string[] = [];
  return (slot, count) => {
    for (let i = 0; i < count; i++) {
      const { nameOff, ...r } = decodeRecord(core.low, slot.recordsAddr + i * RECORD_SIZE);
      const name = Buffer.from(core.low.subarray(slot.heapAddr + nameOff, slot.heapAddr + nameOff + r.nameLen)).toString();
      stack.length = r.depth - 1;
      stack.push(name);
      seen.push({ ...r, path: stack.join('/') });
    }
  };
}

/** Every record of a scan, decoded in the consumer. */
async function collect(root: string, flags: number, options: ScanOptions = {}): Promise<{ seen: Seen[]; slots: Set<number>; scanner: string }> {
  return withCore(async (core: Core) => {
    const seen: Seen[] = [];
    const slots = new Set<number>();
    const decode = pathCollector(core, seen);
    const res = await scanStream(core, root, flags, (slot: ScanSlot, count: number) => {
      slots.add(slot.recordsAddr);
      decode(slot, count);
    }, options);
    assert.is(res.entries, seen.length);
    return { seen, slots, scanner: res.scanner };
  });
}

function makeTree(root: string, files: number): number {
  let n = 0;
  for (let d = 0; d < 20; d++) {
    const dir = join(root, `dir-${d}`, d % 3 === 0 ? 'deep/er' : 'x');
    fs.mkdirSync(dir, { recursive: true });
    n += d % 3 === 0 ? 3 : 2;
    // a few real files, the rest hardlinks to them: inode creation is slow here, links are not
    for (let i = 0; i < files / 20; i++) {
      if (i < 13) fs.writeFileSync(join(dir, `f${i}.txt`), 'x'.repeat(i));
      else fs.linkSync(join(dir, `f${i % 13}.txt`), join(dir, `f${i}.txt`));
      n++;
    }
  }
  for (const name of ['a', 'a-b', 'a.c', 'a0', '.hidden', 'ü-utf8']) {
    fs.mkdirSync(join(root, name));
    fs.writeFileSync(join(root, name, 'k'), name);
    n += 2;
  }
  fs.symlinkSync('a/k', join(root, 'link'));
  fs.linkSync(join(root, 'a', 'k'), join(root, 'hard'));
  return n + 2;
}

withShim('the shim scan streams every entry through both slots, in sorted pre-order', async () => {
  const dir = tempDir('ovl2-scan-');
  try {
    const n = makeTree(dir, 10_000);
    const { seen, slots, scanner } = await collect(dir, SCAN_SORTED);
    assert.is(scanner, 'shim');
    assert.is(seen.length, n);
    assert.ok(n > 2 * SCAN_RECORDS_PER_BATCH, 'more than two batches');
    assert.is(slots.size, 2, 'both slots of the stream were used');
    const idx = (p: string) => seen.findIndex((s) => s.path === p);
    assert.ok(idx('a') < idx('a/k') && idx('a/k') < idx('a-b'), 'pre-order, a directory before its entries');
    assert.ok(idx('.hidden') < idx('a') && idx('a-b') < idx('a.c') && idx('a.c') < idx('a0'), 'byte order within a directory');
  } finally {
    removeTree(dir);
  }
});

test('SegmentOrder: a split walk\'s batches come out in walk order, whatever order they arrive in', () => {
  // segment 0 is the walk's start; 1 then 2 are split off 0 (2 is the later tail: it comes first),
  // 3 is split off 2. Walk order: 0, 2, 3, 1. Records are letters in that order: a b | c d | e | f.
  type B = { segment: number; after?: number; count: number; segmentDone?: boolean; stolen?: number; items: string };
  const batches: B[] = [
    { segment: 0, after: -1, count: 1, items: 'a' },
    { segment: 1, after: 0, count: 1, items: 'f', segmentDone: true, stolen: 0 },
    { segment: 3, after: 2, count: 1, items: 'e', segmentDone: true, stolen: 0 }, // before 2's first batch
    { segment: 0, count: 1, items: 'b', segmentDone: true, stolen: 2 },
    { segment: 2, after: 0, count: 1, items: 'c' },
    { segment: 2, count: 1, items: 'd', segmentDone: true, stolen: 1 },
  ];
  const orders = [[0, 1, 2, 3, 4, 5], [0, 3, 4, 1, 2, 5], [0, 4, 2, 5, 1, 3], [0, 4, 5, 2, 3, 1]];
  for (const arrival of orders) {
    const out: string[] = [];
    const order = new SegmentOrder((h) => out.push(h.records.toString()));
    for (const i of arrival) {
      const b = batches[i]!;
      order.batch({ ...b, heapUsed: 0, done: false }, () => out.push(b.items),
        () => ({ records: Buffer.from(b.items), heap: Buffer.alloc(0), count: b.count }));
    }
    assert.is(out.join(''), 'abcdef', `arrival ${arrival}`);
    assert.ok(order.settled);
  }
});

withShim('the split scan (two walkers, segments put back in order) gives exactly the sorted walk', async () => {
  const dir = tempDir('ovl2-scan-splitsorted-');
  try {
    makeTree(dir, 6000);
    // a lopsided tree: one deep, wide subtree and many small ones, so walkers split off work at several depths
    for (let i = 0; i < 6; i++) {
      const d = join(dir, 'dir-1', 'x', 'big', `l${i}`, 'm', 'n');
      fs.mkdirSync(d, { recursive: true });
      for (let f = 0; f < 400; f++) fs.linkSync(join(dir, 'a', 'k'), join(d, `e${f}`));
    }
    for (let i = 0; i < 40; i++) fs.mkdirSync(join(dir, `small-${i}`, 'one'), { recursive: true });
    const want = (await collect(dir, SCAN_SORTED)).seen;
    // syncFirst: records walked on this thread before the pool's walkers take over (or finish it all)
    const syncFirst = [0, 1, 100, 4096, 0];
    for (let round = 0; round < 5; round++) {
      const got = await withCore(async (core) => {
        const seen: Seen[] = [];
        const n = await scanSplit(core, dir, 0, pathCollector(core, seen), { syncFirst: syncFirst[round] });
        assert.is(n, seen.length);
        return seen;
      });
      assert.is(got.length, want.length, `round ${round}`);
      assert.equal(got, want, `round ${round}`);
    }
    // SCAN_STAT_DIRS_ONLY (the native changes' upper scan): the same walk, stolen segments too; a
    // regular file or symlink is its file type alone, a directory its full stat
    const S_IFMT = 0o170000, S_IFDIR = 0o040000;
    execFileSync('mkfifo', [join(dir, 'a', 'fifo')]);
    const full = (await collect(dir, SCAN_SORTED)).seen;
    for (let round = 0; round < 3; round++) {
      const got = await withCore(async (core) => {
        const seen: Seen[] = [];
        await scanSplit(core, dir, SCAN_STAT_DIRS_ONLY, pathCollector(core, seen));
        return seen;
      });
      assert.equal(got.map((e) => e.path), full.map((e) => e.path), `round ${round}`);
      got.forEach((e, i) => {
        const f = full[i]!;
        if ((f.mode & S_IFMT) === S_IFDIR) assert.equal(e, f, e.path);
        else assert.equal(e, { ...f, ino: 0n, size: 0n, mtimeSec: 0n, mtimeNsec: 0, mode: f.mode & S_IFMT, uid: 0, gid: 0, nlink: 0, dev: 0, rdev: 0 }, e.path);
      });
    }
    // an empty directory
    const empty = join(dir, 'small-0', 'one');
    assert.is(await withCore((core) => scanSplit(core, empty, 0, () => assert.unreachable('no batch'))), 0);
    assert.is(await withCore((core) => scanSplit(core, empty, 0, () => assert.unreachable('no batch'), { syncFirst: 64 })), 0);
    // a tree smaller than syncFirst: walked on this thread alone, the same records
    const sub = join(dir, 'dir-1');
    const wantSub = (await collect(sub, SCAN_SORTED)).seen;
    const gotSub = await withCore(async (core) => {
      const seen: Seen[] = [];
      assert.is(await scanSplit(core, sub, 0, pathCollector(core, seen), { syncFirst: 4096 }), wantSub.length);
      return seen;
    });
    assert.equal(gotSub, wantSub);
  } finally {
    removeTree(dir);
  }
});

withShim('the fast-glob fallback produces the same records as the shim (no xattr flags asked)', async () => {
  const dir = tempDir('ovl2-scan-fb-');
  try {
    makeTree(dir, 3000);
    for (const flags of [SCAN_SORTED, SCAN_SORTED | SCAN_NO_RECURSE]) {
      const a = await collect(dir, flags);
      const b = await collect(dir, flags, { fallback: true });
      assert.is(b.scanner, 'fallback');
      assert.equal(b.seen, a.seen, `flags ${flags}`);
    }
  } finally {
    removeTree(dir);
  }
});

withShim('fallback and shim agree on naive changes between two plain trees', async () => {
  const dir = tempDir('ovl2-scan-naive-');
  try {
    const oldDir = join(dir, 'old'), newDir = join(dir, 'new');
    fs.mkdirSync(oldDir);
    fs.mkdirSync(newDir);
    makeTree(oldDir, 200);
    makeTree(newDir, 200);
    fs.rmSync(join(newDir, 'dir-3'), { recursive: true });
    fs.writeFileSync(join(newDir, 'a-b', 'k'), 'changed!');
    fs.writeFileSync(join(newDir, 'dir-4', 'x', 'new'), 'n');
    fs.chmodSync(join(newDir, 'a0'), 0o700);
    const viaShim = await changesNaive(newDir, oldDir);
    const viaFallback = await changesNaive(newDir, oldDir, { fallback: true });
    assert.equal(viaFallback, viaShim);
    assert.ok(viaShim.some((c) => c.path === '/dir-3' && c.kind === 'D'));
    assert.ok(viaShim.some((c) => c.path === '/dir-4/x/new' && c.kind === 'A'));
  } finally {
    removeTree(dir);
  }
});

test('a missing root rejects with ENOENT (shim and fallback)', async () => {
  for (const fallback of shim ? [false, true] : [true]) {
    let code = '';
    try {
      await collect('/nonexistent/ovl2-nothing-here', SCAN_SORTED, { fallback });
    } catch (e) {
      code = (e as { code?: string }).code ?? '';
    }
    assert.is(code, 'ENOENT', fallback ? 'fallback' : 'shim');
  }
});

withShim('a consumer that throws stops the scan cleanly and the core can be used again', async () => {
  const dir = tempDir('ovl2-scan-throw-');
  try {
    makeTree(dir, 10_000);
    let batches = 0;
    await withCore(async (core) => {
      try {
        await scanStream(core, dir, SCAN_SORTED | SCAN_CAPS, () => {
          if (++batches === 1) throw new Error('stop here');
        });
        assert.unreachable();
      } catch (e) {
        assert.is((e as Error).message, 'stop here');
      }
    });
    assert.is(batches, 1);
    const again = await collect(dir, SCAN_SORTED);
    assert.ok(again.seen.length > 10_000);
  } finally {
    removeTree(dir);
  }
});

withShim('the shared unordered scan (two walkers) consumes every entry exactly once, a big flat directory in shards', async () => {
  const dir = tempDir('ovl2-scan-split-');
  try {
    const n = makeTree(dir, 3000);
    for (let i = 0; i < 3; i++) fs.mkdirSync(join(dir, 'dir-1', 'x', `deep${i}`, 'a', 'b'), { recursive: true });
    const flat = join(dir, 'flat'); // st_size over BIG_DIR: listed in shards
    fs.mkdirSync(flat);
    for (let i = 0; i < 1600; i++) fs.writeFileSync(join(flat, `${'n'.repeat(36)}${String(i).padStart(4, '0')}`), '');
    for (let i = 0; i < 3; i++) fs.mkdirSync(join(flat, `sub${i}`));
    assert.ok(fs.statSync(flat).size >= 64 * 1024, 'the flat directory is big enough to be sharded');
    const whole = await collect(dir, 0);
    const keys = (xs: Array<{ ino: bigint; nameLen: number; mode: number }>) =>
      xs.map((x) => `${x.ino}:${x.nameLen}:${x.mode}`).sort();
    const split = await withCore(async (core) => {
      const seen: Array<{ ino: bigint; nameLen: number; mode: number }> = [];
      const streams = new Set<number>();
      const count = await scanUnordered(core, dir, 0, (slot, c) => {
        streams.add(slot.recordsAddr);
        for (let i = 0; i < c; i++) seen.push(decodeRecord(core.low, slot.recordsAddr + i * RECORD_SIZE));
      });
      assert.is(count, seen.length);
      assert.ok(streams.size >= 2, 'more than one slot took part');
      return seen;
    });
    assert.is(split.length, n + 9 + 1 + 1600 + 3);
    assert.equal(keys(split), keys(whole.seen));
  } finally {
    removeTree(dir);
  }
});

test('the fallback alone scans a tree (what runs when the shim is not built)', async () => {
  const dir = tempDir('ovl2-scan-fbonly-');
  try {
    const n = makeTree(dir, 100);
    const { seen, scanner } = await collect(dir, SCAN_SORTED, { fallback: true });
    assert.is(scanner, 'fallback');
    assert.is(seen.length, n);
    const st = fs.lstatSync(join(dir, 'hard'), { bigint: true });
    const rec = seen.find((s) => s.path === 'hard')!;
    assert.is(rec.ino, st.ino);
    assert.is(rec.nlink, 2);
    assert.is(rec.mtimeSec * 1_000_000_000n + BigInt(rec.mtimeNsec), st.mtimeNs);
  } finally {
    removeTree(dir);
  }
});

test.run();
