// A scanned directory tree kept in linear memory: the scanner's records copied in pre-order, each
// with its name (and extra bytes) moved into the tree's own name buffer, plus the index of its
// parent and the end of its subtree, so children can be walked without pointers:
// first child = i + 1 (when i + 1 < end(i)), next sibling = end(child).
import { RECORD_SIZE, OFF_NAME_OFF } from './records';
import { Buf, newBuf, freeBuf, bufEnsure, bufGrow, blockAlloc, blockFree } from './mem';
import { recDepth, recNameOff, recNameLen, recExtraLen, recFlags, recMode } from './record';

export const NODE_SIZE: u32 = 80;
const N_END: u32 = 64;     // u32: index one past the last node of this subtree
const N_PARENT: u32 = 68;  // i32: parent index, ROOT for a child of the scanned root
const N_STATE: u32 = 72;   // u32: scratch bits of the comparison (STATE_*)

export const ROOT: i32 = -1;
export const NONE: i32 = -2;

export const STATE_ADDED: u32 = 1; // moby's FileInfo.added: the node itself is already A or C

export const ERR_BAD_DEPTH: i32 = 1;

@unmanaged
export class Tree {
  nodes: Buf;
  names: Buf;
  stack: Buf;     // u32 node index per depth of the entries still open
  count: u32;
  depth: u32;
  flagsSeen: u32; // OR of every record's flags
}

/** A tree sized for `nodes` entries to start with (it grows as needed). */
export function newTree(nodes: u32 = 1024): Tree {
  const t = changetype<Tree>(blockAlloc(offsetof<Tree>()));
  t.nodes = newBuf(NODE_SIZE * nodes);
  t.names = newBuf(16 * nodes);
  t.stack = newBuf(256);
  t.count = 0;
  t.depth = 0;
  t.flagsSeen = 0;
  return t;
}

/** Gives the tree's memory back (to mem.ts's free lists); `t` must not be used after. */
export function freeTree(t: Tree): void {
  freeBuf(t.nodes);
  freeBuf(t.names);
  freeBuf(t.stack);
  blockFree(changetype<usize>(t), offsetof<Tree>());
}

// @ts-ignore: decorator
@inline export function nodeAddr(t: Tree, i: i32): usize {
  return t.nodes.base + <usize>i * NODE_SIZE;
}
// @ts-ignore: decorator
@inline export function nodeEnd(t: Tree, i: i32): i32 { return load<i32>(nodeAddr(t, i), N_END); }
// @ts-ignore: decorator
@inline export function nodeParent(t: Tree, i: i32): i32 { return load<i32>(nodeAddr(t, i), N_PARENT); }
// @ts-ignore: decorator
@inline export function nodeState(t: Tree, i: i32): u32 { return load<u32>(nodeAddr(t, i), N_STATE); }
// @ts-ignore: decorator
@inline export function setNodeState(t: Tree, i: i32, s: u32): void { store<u32>(nodeAddr(t, i), s, N_STATE); }
// @ts-ignore: decorator
@inline export function nodeNameAddr(t: Tree, i: i32): usize { return t.names.base + <usize>recNameOff(nodeAddr(t, i)); }
// @ts-ignore: decorator
@inline export function nodeNameLen(t: Tree, i: i32): u32 { return recNameLen(nodeAddr(t, i)); }
/** Address of the extra bytes (capability value, redirect) that follow the name. */
// @ts-ignore: decorator
@inline export function nodeExtraAddr(t: Tree, i: i32): usize { return nodeNameAddr(t, i) + <usize>nodeNameLen(t, i); }

/** First child of `i` (ROOT allowed), or NONE. */
export function firstChild(t: Tree, i: i32): i32 {
  if (i == ROOT) return t.count > 0 ? 0 : NONE;
  const c = i + 1;
  return c < nodeEnd(t, i) ? c : NONE;
}

/** Next sibling of child `c` whose parent is `parent`, or NONE. */
export function nextSibling(t: Tree, parent: i32, c: i32): i32 {
  const n = nodeEnd(t, c);
  const limit = parent == ROOT ? <i32>t.count : nodeEnd(t, parent);
  return n < limit ? n : NONE;
}

// @ts-ignore: decorator
@inline function stackAt(t: Tree, depth: u32): usize { return t.stack.base + (<usize>depth << 2); }

/** Copies one batch of scan records (nameOff relative to `heap`) into the tree. */
export function treeAppend(t: Tree, records: usize, count: u32, heap: usize): i32 {
  for (let i: u32 = 0; i < count; i++) {
    const r = records + <usize>i * RECORD_SIZE;
    const d = recDepth(r);
    if (d == 0 || d > t.depth + 1) return ERR_BAD_DEPTH;
    const idx = t.count;
    // every entry still open at this depth or deeper ends here
    for (let k = t.depth; k >= d; k--) {
      store<u32>(nodeAddr(t, load<i32>(stackAt(t, k))), idx, N_END);
    }
    const parent: i32 = d == 1 ? ROOT : load<i32>(stackAt(t, d - 1));
    const bytes = recNameLen(r) + recExtraLen(r);
    const nameAt = bufGrow(t.names, bytes);
    memory.copy(t.names.base + nameAt, heap + <usize>recNameOff(r), bytes);
    const at = bufGrow(t.nodes, NODE_SIZE);
    const n = t.nodes.base + at;
    memory.copy(n, r, RECORD_SIZE);
    store<u32>(n, nameAt, OFF_NAME_OFF);
    store<u32>(n, idx + 1, N_END);
    store<i32>(n, parent, N_PARENT);
    store<u32>(n, 0, N_STATE);
    store<u32>(n, 0, N_STATE + 4);
    bufEnsure(t.stack, (d + 1) << 2);
    store<u32>(stackAt(t, d), idx);
    t.depth = d;
    t.count = idx + 1;
    t.flagsSeen |= recFlags(r);
  }
  return 0;
}

/** Closes every entry still open: call once after the last batch. */
export function treeFinish(t: Tree): void {
  for (let k = t.depth; k >= 1; k--) {
    store<u32>(nodeAddr(t, load<i32>(stackAt(t, k))), t.count, N_END);
  }
  t.depth = 0;
}

// @ts-ignore: decorator
@inline export function nodeMode(t: Tree, i: i32): u32 { return recMode(nodeAddr(t, i)); }
