// diffSize of a layer: moby's pkg/directory.Size over the layer's diff dir, streamed through the
// WASM core — the sum of st_size of every non-directory, an inode with more than one link counted
// once per (dev, ino). Whiteouts are empty, so they add nothing. This is the project's one "size of
// a tree" (diffSize, the layer record, an apply into a non-empty diff dir); changes-size.ts is the
// other thing moby sizes: a change list read through a mount.
import { withCore } from '../core/wasm.js';
import { scanStream } from '../scan/stream.js';
import { scanUnordered } from '../scan/unordered.js';
import { tryLoadShim } from '../native/shim.js';

export async function directorySize(dir: string): Promise<number> {
  return withCore(async (core) => {
    const ex = core.exports;
    const consume = (slot: { recordsAddr: number }, count: number) => ex.sizeConsume(slot.recordsAddr, count);
    // unsorted (the sum does not depend on order), walked by both cores
    if (tryLoadShim()) await scanUnordered(core, dir, 0, consume);
    else await scanStream(core, dir, 0, consume);
    return Number(ex.sizeTotal());
  });
}
