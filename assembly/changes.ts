// The change list: every change's absolute path is written out when it is emitted, then the list is
// sorted in byte order and packed for the host as "<kind><path>\0" per change.
import { Buf, newBuf, bufGrow, bufEnsure, compareBytes } from './mem';
import { Tree, ROOT, nodeParent, nodeNameAddr, nodeNameLen } from './tree';

export const KIND_A: u32 = 0x41; // 'A'
export const KIND_C: u32 = 0x43; // 'C'
export const KIND_D: u32 = 0x44; // 'D'

const ENTRY: u32 = 12; // kind u32, path offset u32, path length u32

let entries: Buf = changetype<Buf>(0);
let paths: Buf = changetype<Buf>(0);
let output: Buf = changetype<Buf>(0);

export function changesReset(): void {
  entries = newBuf(ENTRY * 256);
  paths = newBuf(16384);
  output = newBuf(16);
}

export function changeCount(): u32 {
  return entries.used / ENTRY;
}

function pathLength(t: Tree, node: i32): u32 {
  let len: u32 = 0;
  while (node != ROOT) {
    len += 1 + nodeNameLen(t, node);
    node = nodeParent(t, node);
  }
  return len;
}

/** Writes "/a/b/c" for `node` ending right before `end`. */
function writePathBackwards(t: Tree, node: i32, end: usize): void {
  while (node != ROOT) {
    const n = nodeNameLen(t, node);
    end -= <usize>n;
    memory.copy(end, nodeNameAddr(t, node), n);
    end -= 1;
    store<u8>(end, 0x2f);
    node = nodeParent(t, node);
  }
}

function pushEntry(kind: u32, off: u32, len: u32): void {
  const at = bufGrow(entries, ENTRY);
  const e = entries.base + at;
  store<u32>(e, kind, 0);
  store<u32>(e, off, 4);
  store<u32>(e, len, 8);
}

/** A change of tree node `node`. */
export function emitNode(kind: u32, t: Tree, node: i32): void {
  const len = pathLength(t, node);
  const off = bufGrow(paths, len);
  writePathBackwards(t, node, paths.base + off + len);
  pushEntry(kind, off, len);
}

/** A change of `name` inside tree node `dir` (ROOT allowed): names that are in no tree we keep. */
export function emitChild(kind: u32, t: Tree, dir: i32, name: usize, nameLen: u32): void {
  const dirLen = pathLength(t, dir);
  const len = dirLen + 1 + nameLen;
  const off = bufGrow(paths, len);
  const p = paths.base + off;
  writePathBackwards(t, dir, p + dirLen);
  store<u8>(p + dirLen, 0x2f);
  memory.copy(p + dirLen + 1, name, nameLen);
  pushEntry(kind, off, len);
}

// @ts-ignore: decorator
@inline function comparePathsOf(a: u32, b: u32): i32 {
  const ea = entries.base + <usize>a * ENTRY;
  const eb = entries.base + <usize>b * ENTRY;
  return compareBytes(paths.base + load<u32>(ea, 4), load<u32>(ea, 8), paths.base + load<u32>(eb, 4), load<u32>(eb, 8));
}

/** Bottom-up merge sort of entry indices by path; stable, n log n. Returns the sorted array. */
function sortedOrder(n: u32): usize {
  const bytes: usize = (n > 0 ? <usize>n : 1) << 2;
  let a = heap.alloc(bytes);
  let b = heap.alloc(bytes);
  for (let i: u32 = 0; i < n; i++) store<u32>(a + (<usize>i << 2), i);
  for (let width: u32 = 1; width < n; width <<= 1) {
    for (let lo: u32 = 0; lo < n; lo += width << 1) {
      const mid = min(lo + width, n);
      const hi = min(lo + (width << 1), n);
      let i = lo, j = mid, k = lo;
      // an already ordered pair of runs is copied as is (change lists come out nearly sorted)
      if (mid < hi && comparePathsOf(load<u32>(a + (<usize>(mid - 1) << 2)), load<u32>(a + (<usize>mid << 2))) <= 0) {
        memory.copy(b + (<usize>lo << 2), a + (<usize>lo << 2), <usize>(hi - lo) << 2);
        continue;
      }
      while (i < mid && j < hi) {
        const x = load<u32>(a + (<usize>i << 2));
        const y = load<u32>(a + (<usize>j << 2));
        if (comparePathsOf(x, y) <= 0) { store<u32>(b + (<usize>k << 2), x); i++; }
        else { store<u32>(b + (<usize>k << 2), y); j++; }
        k++;
      }
      while (i < mid) { store<u32>(b + (<usize>k << 2), load<u32>(a + (<usize>i << 2))); i++; k++; }
      while (j < hi) { store<u32>(b + (<usize>k << 2), load<u32>(a + (<usize>j << 2))); j++; k++; }
    }
    const t = a; a = b; b = t;
  }
  return a;
}

/** Sorts the changes and packs them; returns the packed byte length (address: changesOutput()). */
export function changesFinish(): u32 {
  const n = changeCount();
  const order = sortedOrder(n);
  let total: u32 = 0;
  for (let i: u32 = 0; i < n; i++) total += 2 + load<u32>(entries.base + <usize>i * ENTRY, 8);
  bufEnsure(output, total);
  output.used = total;
  let o = output.base;
  for (let i: u32 = 0; i < n; i++) {
    const e = entries.base + <usize>load<u32>(order + (<usize>i << 2)) * ENTRY;
    const len = load<u32>(e, 8);
    store<u8>(o, <u8>load<u32>(e, 0));
    memory.copy(o + 1, paths.base + load<u32>(e, 4), len);
    store<u8>(o + 1 + len, 0);
    o += 2 + <usize>len;
  }
  return total;
}

export function changesOutput(): usize {
  return output.base;
}
