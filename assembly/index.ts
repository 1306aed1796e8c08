// The WASM core's exports. Pure arithmetic over scan records: no imports but memory.
// One instance serves one operation at a time; coreReset() (heap.reset) starts a new one.
// Addresses below memoryBase (4 MiB) belong to the host (scan regions, see src/core/regions.ts);
// everything this module allocates lives above it.
import { RECORD_VERSION } from './records';
import { Tree, newTree, nodeAddr, treeAppend as appendTo, treeFinish as finish, nodeNameAddr, nodeNameLen, ERR_BAD_DEPTH } from './tree';
import { sizeReset, sizeInodeCount } from './size';
import { usageReset } from './usage';
import { changesReset } from './changes';
import { naiveCompare as compareTrees } from './naive';
import { nativeReset } from './native';
import { memReset } from './mem';

export { recordLayoutCount, recordLayoutValue, recordField } from './layout';
export { sizeConsume, sizeTotal } from './size';
export { usageConsume, usageTotal, usageInodes } from './usage';
export { changeCount, changesFinish, changesOutput } from './changes';
export {
  walkPush, walkListApply, walkListDone, walkPop, walkNext, walkChild, walkChildNameAddr, walkChildNameLen, walkChildIsDir,
  walkChildLayers, probeBegin, probeEnd, streamOutput, streamOutputLen, streamOutputReset, streamChunkSize,
  nativeLookupPrepare, nativeLookupApply, nativeUpperPrepare, nativeUpperApply, nativeLastErrno, nativeNeedsListing,
  nativeListBegin, nativeListLayerBegin, nativeListApply, nativeListLayerEnd, nativeListFinish,
  nativeClassify, nativeFrameDepth, ERR_NEEDS_NAIVE, ERR_LOOKUP,
  WALK_END, WALK_CHILD, WALK_PROBE, WALK_FLUSH, WALK_FOUND,
} from './native';
export { ERR_BAD_DEPTH };

export function recordVersion(): u32 {
  return RECORD_VERSION;
}

let trees: StaticArray<usize> = changetype<StaticArray<usize>>(0);

// @ts-ignore: decorator
@inline function tree(t: u32): Tree {
  return changetype<Tree>(unchecked(trees[t & 1]));
}

/** Forgets everything: the heap and its free lists, both trees, the size and usage sums, the change
 *  list, the native walk's frames and output. */
export function coreReset(): void {
  heap.reset();
  memReset();
  trees = new StaticArray<usize>(2);
  unchecked(trees[0] = changetype<usize>(newTree()));
  unchecked(trees[1] = changetype<usize>(newTree()));
  sizeReset();
  usageReset();
  changesReset();
  nativeReset();
}

export function treeAppend(t: u32, records: usize, count: u32, heapBase: usize): i32 {
  return appendTo(tree(t), records, count, heapBase);
}

export function treeFinish(t: u32): void {
  finish(tree(t));
}

export function treeCount(t: u32): u32 {
  return tree(t).count;
}

export function treeFlagsSeen(t: u32): u32 {
  return tree(t).flagsSeen;
}

/** Address of node `node` of tree `t` (a record, then end u32, parent i32): for tests. */
export function treeNodeAddr(t: u32, node: i32): usize {
  return nodeAddr(tree(t), node);
}

export function treeNameAddr(t: u32, node: i32): usize {
  return nodeNameAddr(tree(t), node);
}

export function treeNameLen(t: u32, node: i32): u32 {
  return nodeNameLen(tree(t), node);
}

/** Hardlinked inodes the size sum (sizeConsume) has counted. */
export function inodeCount(): u32 {
  return sizeInodeCount();
}

/** Tree 0 (new) against tree 1 (old). */
export function naiveCompare(rootsOnSameDevice: bool): void {
  compareTrees(tree(0), tree(1), rootsOnSameDevice);
}
