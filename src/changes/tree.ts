// Scans a directory into one of the WASM core's two trees: the input of both change lists (the
// naive comparison of two trees, and the native walk of an upper dir).
import { type Core, CORE_ERR_BAD_DEPTH } from '../core/wasm.js';
import { scanStream, type ScanOptions } from '../scan/stream.js';
import { scanSplit, type SplitScanOptions } from '../scan/split.js';
import type { BatchConsumer } from '../scan/batches.js';

function appender(core: Core, tree: number, root: string): BatchConsumer {
  const ex = core.exports;
  return (slot, count) => {
    const rc = ex.treeAppend(tree, slot.recordsAddr, count, slot.heapAddr);
    if (rc === CORE_ERR_BAD_DEPTH) throw new Error(`overlay2: scanner records out of depth order under ${root}`);
  };
}

/** Scans `root` into one of the core's two trees. */
export async function scanTree(core: Core, tree: number, root: string, flags: number,
                               options: ScanOptions = {}): Promise<void> {
  await scanStream(core, root, flags, appender(core, tree, root), options);
  core.exports.treeFinish(tree);
}

/** scanTree walked by two pool threads at once (src/scan/split.ts, on scan stream 0): the same
 *  sorted tree. Needs the shim. */
export async function scanTreeSplit(core: Core, tree: number, root: string, flags: number,
                                    options: SplitScanOptions = {}): Promise<void> {
  await scanSplit(core, root, flags, appender(core, tree, root), options);
  core.exports.treeFinish(tree);
}
