// diffSize of a layer: moby's pkg/directory.Size over the layer's diff dir, streamed through the
// WASM core — the sum of st_size of every non-directory, an inode with more than one link counted
// once per (dev, ino). Whiteouts are empty, so they add nothing.
import { withCore } from '../core/wasm.js';
import { scanStream } from '../scan/stream.js';

export async function directorySize(dir: string): Promise<number> {
  return withCore(async (core) => {
    const ex = core.exports;
    // unsorted: the sum does not depend on order and the scanner skips a sort per directory
    await scanStream(core, dir, 0, (slot, count) => ex.sizeConsume(slot.recordsAddr, count));
    return Number(ex.sizeTotal());
  });
}
