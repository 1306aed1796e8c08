// Scans a directory into one of the WASM core's two trees: the input of both change lists (the
// naive comparison of two trees, and the native walk of an upper dir).
import { type Core, CORE_ERR_BAD_DEPTH } from '../core/wasm.js';
import { scanStream, type ScanOptions } from '../scan/stream.js';

/** Scans `root` into one of the core's two trees. */
export async function scanTree(core: Core, tree: number, root: string, flags: number,
                               options: ScanOptions = {}): Promise<void> {
  const ex = core.exports;
  await scanStream(core, root, flags, (slot, count) => {
    const rc = ex.treeAppend(tree, slot.recordsAddr, count, slot.heapAddr);
    if (rc === CORE_ERR_BAD_DEPTH) throw new Error(`overlay2: scanner records out of depth order under ${root}`);
  }, options);
  ex.treeFinish(tree);
}
