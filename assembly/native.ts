// The native classification: the changes of one overlay layer from its upper dir (a Tree) plus
// lookups into the lower dirs, equal to the naive comparison of the two merged trees.
//
// The host walks the upper tree one directory at a time (a "frame") and does the syscalls; this
// file keeps the arithmetic. Per frame:
//   nativeBeginDir(node, layers)       children of the upper dir, all pending lookup
//   per visible lower layer, top down: nativeLookupPrepare → (host: lookupBatch) → nativeLookupApply
//   when the upper scan read directories' xattrs only (changesNative): nativeUpperPrepare →
//     (host: lookupBatch in the upper dir) → nativeUpperApply, for the children the old tree has
//   nativeNeedsListing() ? per layer: nativeListLayerBegin, nativeListApply*, nativeListLayerEnd;
//                          then nativeListFinish
//   nativeClassify()                   emits A/C/D, returns the children to walk into
//   ... the host walks each of them (nested frames) ...
//   nativeEndDir()                     the parent-C rule
// Lookup rules (overlay's, per directory): the topmost hit is the old entry (a whiteout means
// absent); a directory hit adds its layer to the child's visible layers and the walk continues down
// for more directory hits, stopping at a non-directory or whiteout (not included) or after an opaque
// directory (included).
// In the NEW tree an upper dir merges no lower at all when it is opaque or lies below an opaque upper
// dir; there every old child without an upper entry is a D (found by listing the old dir).
import { RECORD_SIZE, FLAG_FAILED, FLAG_OPAQUE, FLAG_REDIRECT, FLAG_METACOPY, OFF_NAME_OFF, OFF_MODE, S_IFMT } from './records';
import { Buf, newBuf, bufGrow, bufAppend, bufEnsure, bufPushU32, compareBytes } from './mem';
import { Tree, ROOT, NONE, STATE_ADDED, nodeAddr, nodeMode, nodeState, setNodeState, nodeNameAddr,
  nodeNameLen, nodeExtraAddr, firstChild, nextSibling, nodeEnd } from './tree';
import { recFlags, recMode, recNlink, recNameOff, recNameLen, recExtraLen, recCapsLen, isRealDir, isDirLike,
  isWhiteout, statDifferent, capsEqual } from './record';
import { emitNode, emitChild, changeCount, KIND_A, KIND_C, KIND_D } from './changes';

export const ERR_NEEDS_NAIVE: i32 = 2;
export const ERR_LOOKUP: i32 = 3;
const ENOENT: u32 = 2;
const ENOTDIR: u32 = 20;

// child state, one per upper child of the current frame
const CS: u32 = 96;
const CS_NODE: u32 = 64;
const CS_STATUS: u32 = 68;
const CS_CAPS_OFF: u32 = 72;
const CS_CAPS_LEN: u32 = 76;
const CS_VIS_COUNT: u32 = 80;
const CS_UCAPS_OFF: u32 = 84;   // the upper entry's capability from nativeUpperApply (UPPER_READ)
const CS_UCAPS_LEN: u32 = 88;

const PENDING: u32 = 1;     // wants a lookup in the next visible layer
const FOUND: u32 = 2;       // the topmost hit is recorded
const OLD_PRESENT: u32 = 4; // the old tree has this path
const OLD_DIR: u32 = 8;     // ... and it is a directory (its visible layers are in the vis list)
const UPPER_READ: u32 = 16; // the upper entry's xattrs were read by nativeUpperApply

let upper: Tree = changetype<Tree>(0);
let children: Buf = changetype<Buf>(0);
let childCount: u32 = 0;
let vis: Buf = changetype<Buf>(0);      // u16 layer indices, frameLayers slots per child
let frameLayers: u32 = 0;
let caps: Buf = changetype<Buf>(0);
let chunk: Buf = changetype<Buf>(0);    // child index of each name in the current lookup batch
let lookupLayerPos: i32 = -1;
let lookupCursor: u32 = 0;
let upperCursor: u32 = 0;
let upperChunk: Buf = changetype<Buf>(0); // child index of each name in the current upper batch
let frames: Buf = changetype<Buf>(0);   // FRAME bytes each: node i32, changes at entry u32, bits u32
const FRAME: u32 = 12;
const FRAME_HIDES_LOWERS: u32 = 1;      // the NEW tree sees no lower below this upper dir
let recurse: Buf = changetype<Buf>(0);  // u32: node, layer count, layers...
let lastErrno: u32 = 0;
// listing of the old children of an opaque (or dir-like non-directory) upper entry
let listNames: Buf = changetype<Buf>(0);
let listMerged: Buf = changetype<Buf>(0); // entries: name offset u32, name length u16, whiteout u16
let listLayer: Buf = changetype<Buf>(0);
let listTmp: Buf = changetype<Buf>(0);

export function nativeReset(t: Tree): void {
  upper = t;
  children = newBuf(CS * 64);
  vis = newBuf(1024);
  caps = newBuf(1024);
  chunk = newBuf(4096);
  upperChunk = newBuf(4096);
  frames = newBuf(1024);
  recurse = newBuf(1024);
  listNames = newBuf(4096);
  listMerged = newBuf(1024);
  listLayer = newBuf(1024);
  listTmp = newBuf(1024);
  childCount = 0;
  lastErrno = 0;
}

// @ts-ignore: decorator
@inline function child(i: u32): usize { return children.base + <usize>i * CS; }
// @ts-ignore: decorator
@inline function visAt(i: u32): usize { return vis.base + ((<usize>i * frameLayers) << 1); }

function frameNode(): i32 {
  return load<i32>(frames.base + frames.used - FRAME);
}

function frameBits(): u32 {
  return load<u32>(frames.base + frames.used - FRAME, 8);
}

/** Whether, in the NEW tree, upper dir `node` merges with no lower: it is opaque, or an ancestor is
 *  (overlay looks a child up only in the lowers its parent merged, and an opaque dir merged none).
 *  The kernel ignores opaque on the root. Call before pushing node's frame. */
function hidesLowers(node: i32): bool {
  if (node == ROOT) return false;
  if (frames.used >= FRAME && (frameBits() & FRAME_HIDES_LOWERS) != 0) return true;
  return isRealDir(nodeMode(upper, node)) && (recFlags(nodeAddr(upper, node)) & FLAG_OPAQUE) != 0;
}

export function nativeBeginDir(node: i32, layers: u32): void {
  const hides = hidesLowers(node);
  const f = bufAppend(frames, FRAME);
  store<i32>(f, node, 0);
  store<u32>(f, changeCount(), 4);
  store<u32>(f, hides ? FRAME_HIDES_LOWERS : 0, 8);
  children.used = 0;
  childCount = 0;
  caps.used = 0;
  frameLayers = layers;
  for (let c = firstChild(upper, node); c != NONE; c = nextSibling(upper, node, c)) {
    const s = bufAppend(children, CS);
    store<i32>(s, c, CS_NODE);
    store<u32>(s, layers > 0 ? PENDING : 0, CS_STATUS);
    store<u32>(s, 0, CS_CAPS_LEN);
    store<u32>(s, 0, CS_VIS_COUNT);
    store<u32>(s, 0, CS_UCAPS_LEN);
    childCount++;
  }
  bufEnsure(vis, (childCount * layers) << 1);
  lookupLayerPos = -1;
  lookupCursor = 0;
  upperCursor = 0;
}

/** Packs the names still pending for layer position `layerPos` (NUL-terminated) at `names`;
 *  returns how many (0: this layer is done). Call again for the next chunk of the same layer. */
export function nativeLookupPrepare(layerPos: i32, names: usize, namesCap: u32, maxCount: u32): u32 {
  if (layerPos != lookupLayerPos) {
    lookupLayerPos = layerPos;
    lookupCursor = 0;
  }
  chunk.used = 0;
  let count: u32 = 0;
  let used: u32 = 0;
  while (lookupCursor < childCount && count < maxCount) {
    const s = child(lookupCursor);
    if ((load<u32>(s, CS_STATUS) & PENDING) != 0) {
      const next = packName(names, used, namesCap, load<i32>(s, CS_NODE));
      if (next < 0) break;
      used = <u32>next;
      bufPushU32(chunk, lookupCursor);
      count++;
    }
    lookupCursor++;
  }
  return count;
}

/** Packs an upper node's name NUL-terminated at names + used, as the shim's lookupBatch takes names;
 *  returns the bytes used after it, or -1 when it does not fit in namesCap. */
function packName(names: usize, used: u32, namesCap: u32, node: i32): i64 {
  const len = nodeNameLen(upper, node);
  if (<u64>used + len + 1 > <u64>namesCap) return -1;
  memory.copy(names + used, nodeNameAddr(upper, node), len);
  store<u8>(names + used + len, 0);
  return <i64>used + len + 1;
}

/** Copies a lookup record's capability (`len` bytes at `extra`, which the next batch overwrites) into
 *  the caps buffer and notes where in child state `s` (fields offField / lenField). */
function keepCaps(s: usize, extra: usize, len: u32, offField: u32, lenField: u32): void {
  if (len > 0) {
    const at = bufGrow(caps, len);
    memory.copy(caps.base + at, extra, len);
    store<u32>(s + <usize>offField, at);
  }
  store<u32>(s + <usize>lenField, len);
}

function pushVis(i: u32, layer: u32): void {
  const s = child(i);
  const n = load<u32>(s, CS_VIS_COUNT);
  store<u16>(visAt(i) + (<usize>n << 1), <u16>layer);
  store<u32>(s, n + 1, CS_VIS_COUNT);
}

/** Takes the lookup records of one batch in layer `layer` (absolute index); extras (capability
 *  bytes) are packed in `heap` in record order. 0, ERR_LOOKUP (see nativeLastErrno) or ERR_NEEDS_NAIVE. */
export function nativeLookupApply(layer: u32, records: usize, count: u32, heap: usize): i32 {
  let extraAt: usize = heap;
  for (let k: u32 = 0; k < count; k++) {
    const r = records + <usize>k * RECORD_SIZE;
    const i = load<u32>(chunk.base + (<usize>k << 2));
    const s = child(i);
    const flags = recFlags(r);
    const extra = extraAt;
    extraAt += <usize>recExtraLen(r);
    if ((flags & FLAG_FAILED) != 0) {
      const errno = recNlink(r);
      if (errno == ENOENT || errno == ENOTDIR) continue; // not in this layer: keep looking lower
      lastErrno = errno;
      return ERR_LOOKUP;
    }
    if ((flags & (FLAG_REDIRECT | FLAG_METACOPY)) != 0) return ERR_NEEDS_NAIVE;
    let status = load<u32>(s, CS_STATUS);
    const dir = isRealDir(recMode(r));
    if ((status & FOUND) == 0) {
      status |= FOUND;
      memory.copy(s, r, RECORD_SIZE);
      keepCaps(s, extra, recCapsLen(r), CS_CAPS_OFF, CS_CAPS_LEN);
      const upperMode = nodeMode(upper, load<i32>(s, CS_NODE));
      if (isWhiteout(r)) {
        status &= ~PENDING;
      } else if (dir) {
        status |= OLD_PRESENT | OLD_DIR;
        pushVis(i, layer);
        // only a dir-like upper entry ever needs the layers below the topmost hit
        if ((flags & FLAG_OPAQUE) != 0 || !isDirLike(upperMode)) status &= ~PENDING;
      } else {
        status = (status | OLD_PRESENT) & ~PENDING;
      }
    } else if (dir) {
      pushVis(i, layer);
      if ((flags & FLAG_OPAQUE) != 0) status &= ~PENDING;
    } else {
      status &= ~PENDING; // a non-directory or whiteout below a directory ends the merge
    }
    store<u32>(s, status, CS_STATUS);
  }
  return 0;
}

/** After the lower lookups, when the upper scan read the xattrs of directories only: packs the
 *  names of the non-directory children whose old entry exists (the only ones compared: an added
 *  path is an A whatever its capability or metacopy mark) for a lookup in the upper dir. Whiteouts
 *  are not compared. Returns how many (0: done); call again for the next chunk. */
export function nativeUpperPrepare(names: usize, namesCap: u32, maxCount: u32): u32 {
  upperChunk.used = 0;
  let count: u32 = 0;
  let used: u32 = 0;
  while (upperCursor < childCount && count < maxCount) {
    const s = child(upperCursor);
    const node = load<i32>(s, CS_NODE);
    const mode = nodeMode(upper, node);
    if ((load<u32>(s, CS_STATUS) & (OLD_PRESENT | UPPER_READ)) == OLD_PRESENT && !isRealDir(mode) && !isWhiteout(nodeAddr(upper, node))) {
      const next = packName(names, used, namesCap, node);
      if (next < 0) break;
      used = <u32>next;
      bufPushU32(upperChunk, upperCursor);
      count++;
    }
    upperCursor++;
  }
  return count;
}

/** Takes the upper dir's lookup records of the names nativeUpperPrepare packed: their stat (into
 *  the tree), their capability (kept for nativeClassify) and their metacopy or redirect mark
 *  (ERR_NEEDS_NAIVE). An entry gone since the scan keeps what the scan saw. 0, ERR_LOOKUP (see nativeLastErrno) or ERR_NEEDS_NAIVE. */
export function nativeUpperApply(records: usize, count: u32, heap: usize): i32 {
  let extraAt: usize = heap;
  for (let k: u32 = 0; k < count; k++) {
    const r = records + <usize>k * RECORD_SIZE;
    const s = child(load<u32>(upperChunk.base + (<usize>k << 2)));
    const flags = recFlags(r);
    const extra = extraAt;
    extraAt += <usize>recExtraLen(r);
    if ((flags & FLAG_FAILED) != 0) {
      const errno = recNlink(r);
      if (errno == ENOENT) continue;
      lastErrno = errno;
      return ERR_LOOKUP;
    }
    if ((flags & (FLAG_REDIRECT | FLAG_METACOPY)) != 0) return ERR_NEEDS_NAIVE;
    // its stat too (the scan may have left it at the file type: SCAN_STAT_DIRS_ONLY); the type the
    // tree was walked with stays
    const n = nodeAddr(upper, load<i32>(s, CS_NODE));
    const type = recMode(n) & S_IFMT;
    memory.copy(n, r, OFF_NAME_OFF);
    store<u32>(n, (recMode(r) & ~S_IFMT) | type, OFF_MODE);
    keepCaps(s, extra, recCapsLen(r), CS_UCAPS_OFF, CS_UCAPS_LEN);
    store<u32>(s, load<u32>(s, CS_STATUS) | UPPER_READ, CS_STATUS);
  }
  return 0;
}

export function nativeLastErrno(): u32 {
  return lastErrno;
}

/** Whether the old children of the frame's directory must be listed: in the new tree the upper
 *  entry hides the whole old directory (an opaque dir or one below it, or a dir-like non-directory
 *  replacing it), so every old child without an upper entry is deleted. */
export function nativeNeedsListing(): bool {
  const n = frameNode();
  if (n == ROOT || frameLayers == 0) return false;
  if (!isRealDir(nodeMode(upper, n))) return true;
  return (frameBits() & FRAME_HIDES_LOWERS) != 0;
}

export function nativeListBegin(): void {
  listNames.used = 0;
  listMerged.used = 0;
}

export function nativeListLayerBegin(): void {
  listLayer.used = 0;
}

/** One batch of a non-recursive, sorted scan of one visible lower directory. */
export function nativeListApply(records: usize, count: u32, heap: usize): void {
  for (let k: u32 = 0; k < count; k++) {
    const r = records + <usize>k * RECORD_SIZE;
    const len = recNameLen(r);
    const at = bufGrow(listNames, len);
    memory.copy(listNames.base + at, heap + <usize>recNameOff(r), len);
    const e = bufAppend(listLayer, 8);
    store<u32>(e, at, 0);
    store<u16>(e, <u16>len, 4);
    store<u16>(e, isWhiteout(r) ? 1 : 0, 6);
  }
}

// @ts-ignore: decorator
@inline function entryCompare(a: usize, b: usize): i32 {
  return compareBytes(listNames.base + load<u32>(a, 0), load<u16>(a, 4), listNames.base + load<u32>(b, 0), load<u16>(b, 4));
}

/** Merges the layer just listed under the layers above it: the higher entry of a name wins. */
export function nativeListLayerEnd(): void {
  listTmp.used = 0;
  const na = listMerged.used >> 3, nb = listLayer.used >> 3;
  bufEnsure(listTmp, (na + nb) << 3);
  let i: u32 = 0, j: u32 = 0, k: u32 = 0;
  while (i < na || j < nb) {
    const a = listMerged.base + (<usize>i << 3);
    const b = listLayer.base + (<usize>j << 3);
    let take: usize;
    if (j >= nb) { take = a; i++; }
    else if (i >= na) { take = b; j++; }
    else {
      const c = entryCompare(a, b);
      if (c < 0) { take = a; i++; }
      else if (c > 0) { take = b; j++; }
      else { take = a; i++; j++; }
    }
    store<u64>(listTmp.base + (<usize>k << 3), load<u64>(take));
    k++;
  }
  listTmp.used = k << 3;
  const t = listMerged; listMerged = listTmp; listTmp = t;
}

/** D for every old child (present: its topmost entry is not a whiteout) with no upper entry. */
export function nativeListFinish(): void {
  const n = frameNode();
  const count = listMerged.used >> 3;
  let j: u32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const e = listMerged.base + (<usize>i << 3);
    const name = listNames.base + load<u32>(e, 0);
    const len = <u32>load<u16>(e, 4);
    let inUpper = false;
    while (j < childCount) {
      const c = load<i32>(child(j), CS_NODE);
      const cmp = compareBytes(nodeNameAddr(upper, c), nodeNameLen(upper, c), name, len);
      if (cmp < 0) { j++; continue; }
      inUpper = cmp == 0;
      break;
    }
    if (!inUpper && load<u16>(e, 6) == 0) emitChild(KIND_D, upper, n, name, len);
  }
}

/** A for `node` (unless it is a whiteout) and every non-whiteout entry below it. */
function addSubtree(node: i32, withSelf: bool): void {
  const end = nodeEnd(upper, node);
  for (let i = withSelf ? node : node + 1; i < end; i++) {
    if (!isWhiteout(nodeAddr(upper, i))) emitNode(KIND_A, upper, i);
  }
}

/** Emits the changes of the frame's children; returns how many of them the host must walk into
 *  (listed by nativeRecurseList: node, layer count, layers...). */
export function nativeClassify(): u32 {
  recurse.used = 0;
  let walks: u32 = 0;
  for (let i: u32 = 0; i < childCount; i++) {
    const s = child(i);
    const c = load<i32>(s, CS_NODE);
    const status = load<u32>(s, CS_STATUS);
    const rec = nodeAddr(upper, c);
    if (isWhiteout(rec)) {
      if ((status & OLD_PRESENT) != 0) emitNode(KIND_D, upper, c);
      continue;
    }
    if ((status & OLD_PRESENT) == 0) {
      addSubtree(c, true);
      continue;
    }
    const upperRead = (status & UPPER_READ) != 0;
    const capsSame = capsEqual(caps.base + load<u32>(s, CS_CAPS_OFF), load<u32>(s, CS_CAPS_LEN),
                               upperRead ? caps.base + load<u32>(s, CS_UCAPS_OFF) : nodeExtraAddr(upper, c),
                               upperRead ? load<u32>(s, CS_UCAPS_LEN) : recCapsLen(rec));
    if (statDifferent(s, rec) || !capsSame) {
      emitNode(KIND_C, upper, c);
      setNodeState(upper, c, nodeState(upper, c) | STATE_ADDED);
    }
    const mode = nodeMode(upper, c);
    if (!isDirLike(mode)) continue;
    if ((status & OLD_DIR) != 0) {
      const n = load<u32>(s, CS_VIS_COUNT);
      bufPushU32(recurse, <u32>c);
      bufPushU32(recurse, n);
      for (let k: u32 = 0; k < n; k++) bufPushU32(recurse, <u32>load<u16>(visAt(i) + (<usize>k << 1)));
      walks++;
    } else if (isRealDir(mode)) {
      addSubtree(c, false); // the old entry is no directory: nothing below it merges in
    }
  }
  return walks;
}

export function nativeRecurseList(): usize {
  return recurse.base;
}

/** The parent-C rule for the frame's directory, then drops the frame. */
export function nativeEndDir(): void {
  const f = frames.base + frames.used - FRAME;
  const n = load<i32>(f, 0);
  const atEntry = load<u32>(f, 4);
  frames.used -= FRAME;
  if (n != ROOT && changeCount() > atEntry && (nodeState(upper, n) & STATE_ADDED) == 0 && isDirLike(nodeMode(upper, n))) {
    emitNode(KIND_C, upper, n);
  }
}

export function nativeFrameDepth(): u32 {
  return frames.used / FRAME;
}
