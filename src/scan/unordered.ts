// A whole-tree scan for consumers that do not care about order (the size sum): the shim's shared
// scan (SCAN_SHARED, shim/scanner.c) walks the tree with two walkers at once, one libuv pool thread
// each, which share out its directories among themselves — a big flat directory in two shards — so
// the stat-bound walk uses both cores and the main thread sees one callback per batch of records,
// never one per directory. Each batch lands in its own slot of a core scan stream and is consumed
// as it comes; the walker then goes on into the same slot.
import { AT_FDCWD } from '../native/constants.js';
import { loadShim } from '../native/shim.js';
import type { Core } from '../core/wasm.js';
import { SCAN_SHARED } from '../core/records.js';
import { SCAN_STREAMS } from '../core/regions.js';
import type { BatchConsumer } from './batches.js';
import { runWalkers } from './walkers.js';

/** Scans the whole tree under `root` (flags: SCAN_* xattr bits of src/core/records.ts) with both
 *  walkers of a shared scan into scan stream `stream` of `core`; returns the entry count. Needs the shim. */
export async function scanUnordered(core: Core, root: string, flags: number, consume: BatchConsumer, stream = 0): Promise<number> {
  const shim = loadShim();
  const slots = SCAN_STREAMS[stream]!;
  const handle = shim.scanOpen(AT_FDCWD, root, flags | SCAN_SHARED);
  let entries = 0;
  await runWalkers(shim, handle, core, slots, (k, batch) => {
    if (batch.count > 0) consume(slots[k]!, batch.count, batch.heapUsed);
    entries += batch.count;
  });
  return entries;
}
