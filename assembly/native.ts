// The native classification: the changes of one overlay layer from its upper dir plus lookups into
// the lower dirs, equal to the naive comparison of the two merged trees — in memory that grows with
// the depth of the upper tree and its widest directory, never with the number of changes.
//
// The host walks the upper tree one directory at a time (a "frame") and does the syscalls; this
// file keeps the arithmetic. A frame holds only its directory's own entries (a non-recursive listing
// of the upper dir), so only the frames from the root to the current directory are alive. Per frame:
//   walkPush(layers)                   a frame for the child walkNext named (the root when none)
//   walkListApply* ; walkListDone()    the upper dir's entries (sorted), all pending lookup
//   per visible lower layer, top down: nativeLookupPrepare → (host: lookupBatch) → nativeLookupApply
//   when the upper listing read directories' xattrs only: nativeUpperPrepare →
//     (host: lookupBatch in the upper dir) → nativeUpperApply, for the children the old tree has
//   nativeNeedsListing() ? per layer: nativeListLayerBegin, nativeListApply*, nativeListLayerEnd;
//                          then nativeListFinish
//   nativeClassify()                   the frame's items: changes of its entries, walks into them
//   walkNext()* ... the host walks each child it names (a nested frame) ...
//   walkPop()
// Lookup rules (overlay's, per directory): the topmost hit is the old entry (a whiteout means
// absent); a directory hit adds its layer to the child's visible layers and the walk continues down
// for more directory hits, stopping at a non-directory or whiteout (not included) or after an opaque
// directory (included).
// In the NEW tree an upper dir merges no lower at all when it is opaque or lies below an opaque upper
// dir; there every old child without an upper entry is a D (found by listing the old dir).
//
// Order without a sort of the whole list: every path below child c starts "c/", so in byte order a
// frame's output is its items sorted by key — c for c's own change, "c/" for the walk of c's
// subtree — and each subtree's changes are one contiguous run. The walk visits items in that order
// and writes changes straight to the output, which the host drains in chunks (walkNext returns
// WALK_FLUSH). One rule looks ahead: moby's parent-C (a directory that is no change itself but has
// a change below it is C) must be decided at key c, before its subtree is walked at "c/". When the
// walk of c is the very next item, c is written lazily, just before the first change below it (a
// pending frame); when another item lies between (a sibling "c-1" or "c.d" sorts between "c" and
// "c/"), the host first probes c's subtree (WALK_PROBE: a walk that writes nothing and stops at the
// first change), then walks it for real at "c/".
import { RECORD_SIZE, FLAG_FAILED, FLAG_OPAQUE, FLAG_REDIRECT, FLAG_METACOPY, OFF_NAME_OFF, OFF_MODE, S_IFMT } from './records';
import { Buf, newBuf, freeBuf, bufGrow, bufAppend, bufEnsure, bufPushU32, compareBytes, blockAlloc, blockFree } from './mem';
import { Tree, newTree, freeTree, treeAppend, treeFinish, nodeAddr, nodeMode, nodeNameAddr, nodeNameLen,
  nodeExtraAddr } from './tree';
import { recFlags, recMode, recNlink, recNameOff, recNameLen, recExtraLen, recCapsLen, isRealDir, isDirLike,
  isWhiteout, statDifferent, capsEqual } from './record';
import { KIND_A, KIND_C, KIND_D } from './changes';

export const ERR_NEEDS_NAIVE: i32 = 2;
export const ERR_LOOKUP: i32 = 3;
const ENOENT: u32 = 2;
const ENOTDIR: u32 = 20;

// walkNext's answers
export const WALK_END: i32 = 0;    // the frame is done: walkPop
export const WALK_CHILD: i32 = 1;  // walk child walkChild() (its layers: walkChildLayers()), then walkNext again
export const WALK_PROBE: i32 = 2;  // probeBegin, walk child walkChild() the same way, probeEnd(found), walkNext again
export const WALK_FLUSH: i32 = 3;  // the output holds a chunk: take it (streamOutput/streamOutputLen, streamOutputReset)
export const WALK_FOUND: i32 = 4;  // probing: a change exists; leave every frame the probe pushed (walkPop each)

// child state, one per upper child of a frame
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

// frame bits
const FRAME_HIDES_LOWERS: u32 = 1; // the NEW tree sees no lower below this upper dir
const FRAME_PENDING_C: u32 = 2;    // this dir's parent-C is written before the first change below it
const FRAME_NOT_DIR: u32 = 4;      // a dir-like non-directory (block device, socket) over an old dir
const FRAME_ROOT: u32 = 8;

// items: what a frame writes or walks, in output order once sorted (see the top)
const ITEM: u32 = 16;              // key offset u32, key length u32, type u32, child (or 0) u32
const IT_OWN_A: u32 = 0x41;        // the child's own change, kind = the type
const IT_OWN_C: u32 = 0x43;
const IT_OWN_D: u32 = 0x44;
const IT_LISTED_D: u32 = 0x144;    // an old child with no upper entry (key in the frame's keys)
const IT_PENDING: u32 = 0x200;     // the child's parent-C, decided by what lies below it
const IT_WALK: u32 = 0x300;        // the child's subtree, key "name/"

@unmanaged
class Frame {
  tree: Tree;      // the upper dir's own entries
  children: Buf;   // CS bytes per entry
  vis: Buf;        // u16 layer indices, `layers` slots per child
  caps: Buf;
  items: Buf;
  keys: Buf;       // names of the old children listed (IT_LISTED_D keys)
  childCount: u32;
  layers: u32;
  bits: u32;
  prefixLen: u32;  // this dir's path length in `prefix`
  cursor: u32;     // next item
}

let stack: Buf = changetype<Buf>(0);   // Frame pointers, root first
let cur: Frame = changetype<Frame>(0);
let prefix: Buf = changetype<Buf>(0);  // the current frame's path: "" for the root, "/a/b"
let out: Buf = changetype<Buf>(0);     // "<kind><path>\0" per change, drained by the host
let outChunk: u32 = 0;
let pendingCount: u32 = 0;             // frames with FRAME_PENDING_C set
let pendingNext = false;               // the next walkPush's frame is pending
let probing = false;
let probeFound = false;
let walkChildIndex: u32 = 0;
let childLayers: Buf = changetype<Buf>(0); // u32 count, then the layers of walkChild()
let itemsTmp: Buf = changetype<Buf>(0);

let chunk: Buf = changetype<Buf>(0);    // child index of each name in the current lookup batch
let lookupLayerPos: i32 = -1;
let lookupCursor: u32 = 0;
let upperCursor: u32 = 0;
let upperChunk: Buf = changetype<Buf>(0); // child index of each name in the current upper batch
let lastErrno: u32 = 0;
// listing of the old children of an opaque (or dir-like non-directory) upper entry
let listNames: Buf = changetype<Buf>(0);
let listMerged: Buf = changetype<Buf>(0); // entries: name offset u32, name length u16, whiteout u16
let listLayer: Buf = changetype<Buf>(0);
let listTmp: Buf = changetype<Buf>(0);

export function nativeReset(): void {
  stack = newBuf(256);
  cur = changetype<Frame>(0);
  prefix = newBuf(4096);
  out = newBuf(65536);
  outChunk = 65536;
  pendingCount = 0;
  pendingNext = false;
  probing = false;
  probeFound = false;
  childLayers = newBuf(1024);
  itemsTmp = newBuf(1024);
  chunk = newBuf(4096);
  upperChunk = newBuf(4096);
  listNames = newBuf(4096);
  listMerged = newBuf(1024);
  listLayer = newBuf(1024);
  listTmp = newBuf(1024);
  lastErrno = 0;
}

// @ts-ignore: decorator
@inline function child(i: u32): usize { return cur.children.base + <usize>i * CS; }
// @ts-ignore: decorator
@inline function visAt(i: u32): usize { return cur.vis.base + ((<usize>i * cur.layers) << 1); }
// @ts-ignore: decorator
@inline function frameAt(k: u32): Frame { return changetype<Frame>(load<usize>(stack.base + (<usize>k << 2))); }
// @ts-ignore: decorator
@inline function depthOf(): u32 { return stack.used >> 2; }

// ---- frames ---------------------------------------------------------------------------------

/** Pushes the frame of walkChild() of the current frame (the root's, when there is none), whose old
 *  directory is visible in `layers` layers (walkChildLayers). */
export function walkPush(layers: u32): void {
  const f = changetype<Frame>(blockAlloc(offsetof<Frame>()));
  let bits: u32 = 0;
  if (depthOf() == 0) {
    bits = FRAME_ROOT; // the kernel ignores opaque on the root
    prefix.used = 0;
  } else {
    const n = load<i32>(child(walkChildIndex), CS_NODE);
    const mode = nodeMode(cur.tree, n);
    if ((cur.bits & FRAME_HIDES_LOWERS) != 0 || (isRealDir(mode) && (recFlags(nodeAddr(cur.tree, n)) & FLAG_OPAQUE) != 0)) bits |= FRAME_HIDES_LOWERS;
    if (!isRealDir(mode)) bits |= FRAME_NOT_DIR;
    const len = nodeNameLen(cur.tree, n);
    prefix.used = cur.prefixLen;
    const at = bufAppend(prefix, 1 + len);
    store<u8>(at, 0x2f);
    memory.copy(at + 1, nodeNameAddr(cur.tree, n), len);
  }
  if (pendingNext) {
    bits |= FRAME_PENDING_C;
    pendingCount++;
    pendingNext = false;
  }
  f.tree = newTree(64);
  f.children = newBuf(CS * 64);
  f.vis = newBuf(256);
  f.caps = newBuf(256);
  f.items = newBuf(ITEM * 64);
  f.keys = newBuf(256);
  f.childCount = 0;
  f.layers = layers;
  f.bits = bits;
  f.prefixLen = prefix.used;
  f.cursor = 0;
  bufPushU32(stack, <u32>changetype<usize>(f));
  cur = f;
}

/** One batch of the upper dir's listing (non-recursive, sorted: every record at depth 1). */
export function walkListApply(records: usize, count: u32, heap: usize): i32 {
  return treeAppend(cur.tree, records, count, heap);
}

/** After the listing: every child pending lookup in the frame's layers. 0 or ERR_NEEDS_NAIVE (a
 *  redirect or metacopy mark in the upper dir). */
export function walkListDone(): i32 {
  const t = cur.tree;
  treeFinish(t);
  if ((t.flagsSeen & (FLAG_REDIRECT | FLAG_METACOPY)) != 0) return ERR_NEEDS_NAIVE;
  const layers = cur.layers;
  const n = t.count;
  bufEnsure(cur.children, n * CS);
  for (let c: u32 = 0; c < n; c++) {
    const s = cur.children.base + <usize>c * CS;
    store<i32>(s, <i32>c, CS_NODE);
    store<u32>(s, layers > 0 ? PENDING : 0, CS_STATUS);
    store<u32>(s, 0, CS_CAPS_LEN);
    store<u32>(s, 0, CS_VIS_COUNT);
    store<u32>(s, 0, CS_UCAPS_LEN);
  }
  cur.children.used = n * CS;
  cur.childCount = n;
  bufEnsure(cur.vis, (n * layers) << 1);
  cur.caps.used = 0;
  cur.items.used = 0;
  cur.keys.used = 0;
  lookupLayerPos = -1;
  lookupCursor = 0;
  upperCursor = 0;
  return 0;
}

/** Drops the current frame (its memory goes back to the free lists). */
export function walkPop(): void {
  const f = cur;
  if ((f.bits & FRAME_PENDING_C) != 0) pendingCount--; // nothing below it changed
  freeTree(f.tree);
  freeBuf(f.children);
  freeBuf(f.vis);
  freeBuf(f.caps);
  freeBuf(f.items);
  freeBuf(f.keys);
  blockFree(changetype<usize>(f), offsetof<Frame>());
  stack.used -= 4;
  if (depthOf() > 0) {
    cur = frameAt(depthOf() - 1);
    prefix.used = cur.prefixLen;
  } else {
    cur = changetype<Frame>(0);
    prefix.used = 0;
  }
}

export function nativeFrameDepth(): u32 {
  return depthOf();
}

// ---- lookups --------------------------------------------------------------------------------

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
  const childCount = cur.childCount;
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
  const len = nodeNameLen(cur.tree, node);
  if (<u64>used + len + 1 > <u64>namesCap) return -1;
  memory.copy(names + used, nodeNameAddr(cur.tree, node), len);
  store<u8>(names + used + len, 0);
  return <i64>used + len + 1;
}

/** Copies a lookup record's capability (`len` bytes at `extra`, which the next batch overwrites) into
 *  the frame's caps buffer and notes where in child state `s` (fields offField / lenField). */
function keepCaps(s: usize, extra: usize, len: u32, offField: u32, lenField: u32): void {
  if (len > 0) {
    const at = bufGrow(cur.caps, len);
    memory.copy(cur.caps.base + at, extra, len);
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
      const upperMode = nodeMode(cur.tree, load<i32>(s, CS_NODE));
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
  while (upperCursor < cur.childCount && count < maxCount) {
    const s = child(upperCursor);
    const node = load<i32>(s, CS_NODE);
    const mode = nodeMode(cur.tree, node);
    if ((load<u32>(s, CS_STATUS) & (OLD_PRESENT | UPPER_READ)) == OLD_PRESENT && !isRealDir(mode) && !isWhiteout(nodeAddr(cur.tree, node))) {
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
    const n = nodeAddr(cur.tree, load<i32>(s, CS_NODE));
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
  if ((cur.bits & FRAME_ROOT) != 0 || cur.layers == 0) return false;
  return (cur.bits & (FRAME_NOT_DIR | FRAME_HIDES_LOWERS)) != 0;
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

/** An IT_LISTED_D item for every old child (present: its topmost entry is not a whiteout) with no
 *  upper entry. */
export function nativeListFinish(): void {
  const count = listMerged.used >> 3;
  const childCount = cur.childCount;
  let j: u32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const e = listMerged.base + (<usize>i << 3);
    const name = listNames.base + load<u32>(e, 0);
    const len = <u32>load<u16>(e, 4);
    let inUpper = false;
    while (j < childCount) {
      const c = load<i32>(child(j), CS_NODE);
      const cmp = compareBytes(nodeNameAddr(cur.tree, c), nodeNameLen(cur.tree, c), name, len);
      if (cmp < 0) { j++; continue; }
      inUpper = cmp == 0;
      break;
    }
    if (!inUpper && load<u16>(e, 6) == 0) {
      const at = bufGrow(cur.keys, len);
      memory.copy(cur.keys.base + at, name, len); // listNames is reused by the frames below this one
      pushItem(at, len, IT_LISTED_D, 0);
    }
  }
}

function pushItem(keyOff: u32, keyLen: u32, type: u32, c: u32): void {
  const it = bufAppend(cur.items, ITEM);
  store<u32>(it, keyOff, 0);
  store<u32>(it, keyLen, 4);
  store<u32>(it, type, 8);
  store<u32>(it, c, 12);
}

function pushChildItem(c: u32, type: u32): void {
  const n = load<i32>(child(c), CS_NODE);
  pushItem(<u32>recNameOff(nodeAddr(cur.tree, n)), nodeNameLen(cur.tree, n), type, c);
}

// @ts-ignore: decorator
@inline function itemKey(it: usize): usize {
  return (load<u32>(it, 8) == IT_LISTED_D ? cur.keys.base : cur.tree.names.base) + <usize>load<u32>(it, 0);
}

/** Byte order of two items' keys, a walk's key being its name and a "/". */
function compareItems(a: usize, b: usize): i32 {
  const aLen = load<u32>(a, 4), bLen = load<u32>(b, 4);
  const ka = itemKey(a), kb = itemKey(b);
  const n = aLen < bLen ? aLen : bLen;
  const c = memory.compare(ka, kb, n);
  if (c != 0) return c;
  const aSlash = load<u32>(a, 8) == IT_WALK, bSlash = load<u32>(b, 8) == IT_WALK;
  // the byte after the common part: the longer key's next byte, or a walk's "/", or the end (-1)
  const na: i32 = aLen > n ? <i32>load<u8>(ka + n) : (aSlash ? 0x2f : -1);
  const nb: i32 = bLen > n ? <i32>load<u8>(kb + n) : (bSlash ? 0x2f : -1);
  if (na != nb) return na - nb;
  // equal so far: "c" before "c/" (a name holds no "/", so nothing else compares equal here)
  return (aSlash ? 1 : 0) - (bSlash ? 1 : 0);
}

/** Sorts the frame's items (bottom-up merge sort; they come nearly sorted). */
function sortItems(): void {
  const n = cur.items.used / ITEM;
  bufEnsure(itemsTmp, cur.items.used);
  let a = cur.items.base, b = itemsTmp.base;
  let swapped = false;
  for (let width: u32 = 1; width < n; width <<= 1) {
    for (let lo: u32 = 0; lo < n; lo += width << 1) {
      const mid = min(lo + width, n);
      const hi = min(lo + (width << 1), n);
      if (mid >= hi || compareItems(a + <usize>(mid - 1) * ITEM, a + <usize>mid * ITEM) <= 0) {
        memory.copy(b + <usize>lo * ITEM, a + <usize>lo * ITEM, <usize>(hi - lo) * ITEM);
        continue;
      }
      let i = lo, j = mid, k = lo;
      while (i < mid && j < hi) {
        const x = a + <usize>i * ITEM, y = a + <usize>j * ITEM;
        if (compareItems(x, y) <= 0) { memory.copy(b + <usize>k * ITEM, x, ITEM); i++; }
        else { memory.copy(b + <usize>k * ITEM, y, ITEM); j++; }
        k++;
      }
      if (i < mid) memory.copy(b + <usize>k * ITEM, a + <usize>i * ITEM, <usize>(mid - i) * ITEM);
      else if (j < hi) memory.copy(b + <usize>k * ITEM, a + <usize>j * ITEM, <usize>(hi - j) * ITEM);
    }
    const t = a; a = b; b = t;
    swapped = !swapped;
  }
  if (swapped) memory.copy(cur.items.base, itemsTmp.base, cur.items.used);
}

/** The frame's items: each child's own change (A, C, D, or a pending parent-C) and the walks into
 *  its subtree, with the listed D's, sorted into output order. */
export function nativeClassify(): void {
  const childCount = cur.childCount;
  for (let i: u32 = 0; i < childCount; i++) {
    const s = child(i);
    const c = load<i32>(s, CS_NODE);
    const status = load<u32>(s, CS_STATUS);
    const rec = nodeAddr(cur.tree, c);
    const mode = nodeMode(cur.tree, c);
    if (isWhiteout(rec)) {
      if ((status & OLD_PRESENT) != 0) pushChildItem(i, IT_OWN_D);
      continue;
    }
    if ((status & OLD_PRESENT) == 0) {
      // added, and so is every entry below it but whiteouts: a walk with no lower
      pushChildItem(i, IT_OWN_A);
      if (isRealDir(mode)) pushChildItem(i, IT_WALK);
      continue;
    }
    const upperRead = (status & UPPER_READ) != 0;
    const capsSame = capsEqual(cur.caps.base + load<u32>(s, CS_CAPS_OFF), load<u32>(s, CS_CAPS_LEN),
                               upperRead ? cur.caps.base + load<u32>(s, CS_UCAPS_OFF) : nodeExtraAddr(cur.tree, c),
                               upperRead ? load<u32>(s, CS_UCAPS_LEN) : recCapsLen(rec));
    const changed = statDifferent(s, rec) || !capsSame;
    if (changed) pushChildItem(i, IT_OWN_C);
    if (!isDirLike(mode)) continue;
    if ((status & OLD_DIR) != 0) {
      if (!changed) pushChildItem(i, IT_PENDING);
      pushChildItem(i, IT_WALK);
    } else if (isRealDir(mode)) {
      // the old entry is no directory: nothing below it merges in, so the walk has no lower (its own
      // C is certain: the type differs)
      store<u32>(s, 0, CS_VIS_COUNT);
      pushChildItem(i, IT_WALK);
    }
  }
  sortItems();
  cur.cursor = 0;
}

// ---- the output -----------------------------------------------------------------------------

function writeChange(kind: u32, pathLen: u32, name: usize, nameLen: u32): void {
  const total = 1 + pathLen + (nameLen > 0 ? 1 + nameLen : 0) + 1;
  const o = bufAppend(out, total);
  store<u8>(o, <u8>kind);
  memory.copy(o + 1, prefix.base, pathLen);
  let at = o + 1 + pathLen;
  if (nameLen > 0) {
    store<u8>(at, 0x2f);
    memory.copy(at + 1, name, nameLen);
    at += 1 + nameLen;
  }
  store<u8>(at, 0);
}

/** A change of `name` in the current frame's dir; the pending dirs above it first (their C). */
function emit(kind: u32, name: usize, nameLen: u32): void {
  if (probing) {
    probeFound = true;
    return;
  }
  if (pendingCount > 0) {
    const depth = depthOf();
    for (let k: u32 = 0; k < depth; k++) {
      const f = frameAt(k);
      if ((f.bits & FRAME_PENDING_C) == 0) continue;
      f.bits &= ~FRAME_PENDING_C;
      writeChange(KIND_C, f.prefixLen, 0, 0);
    }
    pendingCount = 0;
  }
  writeChange(kind, cur.prefixLen, name, nameLen);
}

function emitChild(kind: u32, c: u32): void {
  const n = load<i32>(child(c), CS_NODE);
  emit(kind, nodeNameAddr(cur.tree, n), nodeNameLen(cur.tree, n));
}

/** Notes child `c` as the one to walk, and its layers for walkChildLayers. */
function nameWalk(c: u32): void {
  walkChildIndex = c;
  const s = child(c);
  const n = load<u32>(s, CS_VIS_COUNT);
  childLayers.used = 0;
  bufPushU32(childLayers, n);
  for (let k: u32 = 0; k < n; k++) bufPushU32(childLayers, <u32>load<u16>(visAt(c) + (<usize>k << 1)));
}

/** Writes the frame's items in order until it must stop: WALK_END, WALK_CHILD, WALK_PROBE,
 *  WALK_FLUSH (the output is over a chunk) or WALK_FOUND (probing). */
export function walkNext(): i32 {
  const items = cur.items;
  const count = items.used / ITEM;
  while (cur.cursor < count) {
    if (!probing && out.used >= outChunk) return WALK_FLUSH;
    const it = items.base + <usize>cur.cursor * ITEM;
    const type = load<u32>(it, 8);
    const c = load<u32>(it, 12);
    if (type == IT_WALK) {
      cur.cursor++;
      nameWalk(c);
      return WALK_CHILD;
    }
    if (type == IT_PENDING) {
      if (probing) { cur.cursor++; continue; } // the walk below finds any change there is
      const next = cur.cursor + 1;
      if (next < count && load<u32>(it + ITEM, 8) == IT_WALK && load<u32>(it + ITEM, 12) == c) {
        pendingNext = true; // nothing lies between "c" and "c/": decided by the walk itself
        cur.cursor++;
        continue;
      }
      nameWalk(c);
      return WALK_PROBE; // the cursor stays here: probeEnd writes (or not) this item
    }
    cur.cursor++;
    if (type == IT_LISTED_D) emit(KIND_D, cur.keys.base + <usize>load<u32>(it, 0), load<u32>(it, 4));
    else emitChild(type, c);
    if (probeFound) return WALK_FOUND;
  }
  return WALK_END;
}

/** The child walkNext named: its index in the frame (for its name: walkChildName*). */
export function walkChild(): u32 {
  return walkChildIndex;
}

export function walkChildNameAddr(): usize {
  return nodeNameAddr(cur.tree, load<i32>(child(walkChildIndex), CS_NODE));
}

export function walkChildNameLen(): u32 {
  return nodeNameLen(cur.tree, load<i32>(child(walkChildIndex), CS_NODE));
}

/** Whether the child to walk is a directory in the upper dir (else a dir-like non-directory over an
 *  old directory: no upper dir to list). */
export function walkChildIsDir(): bool {
  return isRealDir(nodeMode(cur.tree, load<i32>(child(walkChildIndex), CS_NODE)));
}

/** u32 count, then the child's visible layers (absolute indices, top down). */
export function walkChildLayers(): usize {
  return childLayers.base;
}

export function probeBegin(): void {
  probing = true;
  probeFound = false;
}

/** Ends the probe of the pending item at the cursor: its C when the probe found a change below. */
export function probeEnd(found: bool): void {
  probing = false;
  probeFound = false;
  const it = cur.items.base + <usize>cur.cursor * ITEM;
  cur.cursor++;
  if (found) emitChild(KIND_C, load<u32>(it, 12));
}

export function streamOutput(): usize {
  return out.base;
}

export function streamOutputLen(): u32 {
  return out.used;
}

export function streamOutputReset(): void {
  out.used = 0;
}

/** The output size at which walkNext stops with WALK_FLUSH (tests make it small). */
export function streamChunkSize(bytes: u32): void {
  outChunk = bytes;
}
