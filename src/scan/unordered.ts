// A whole-tree scan for consumers that do not care about order (the size sum): the shim's shared
// scan (SCAN_SHARED, shim/scanner.c) walks the tree with two walkers at once, one libuv pool thread
// each, which share out its directories among themselves — a big flat directory in two shards — so
// the stat-bound walk uses both cores and the main thread sees one callback per batch of records,
// never one per directory. Each batch lands in its own slot of a core scan stream and is consumed
// as it comes; the walker then goes on into the same slot.
import { AT_FDCWD } from '../native/constants.js';
import { loadShim, type ShimError } from '../native/shim.js';
import type { Core } from '../core/wasm.js';
import { SCAN_SHARED } from '../core/records.js';
import { SCAN_STREAMS } from '../core/regions.js';
import type { BatchConsumer } from './batches.js';
import { coreBatchSlot } from './record-view.js';

/** Scans the whole tree under `root` (flags: SCAN_* xattr bits of src/core/records.ts) with both
 *  walkers of a shared scan into scan stream `stream` of `core`; returns the entry count. Needs the shim. */
export function scanUnordered(core: Core, root: string, flags: number, consume: BatchConsumer, stream = 0): Promise<number> {
  const shim = loadShim();
  const slots = SCAN_STREAMS[stream]!;
  const handle = shim.scanOpen(AT_FDCWD, root, flags | SCAN_SHARED);
  return new Promise((resolve, reject) => {
    let entries = 0;
    let running = 0;
    let failure: unknown = null;
    const fill = (k: number): void => {
      const slot = slots[k]!;
      const s = coreBatchSlot(core, slot);
      shim.scanNext(handle, s.records, s.heap, (err: ShimError | null, batch) => {
        running--;
        if (err !== null) failure ??= err;
        else if (failure === null) {
          try {
            if (batch.count > 0) consume(slot, batch.count, batch.heapUsed);
            entries += batch.count;
            if (!batch.done) return fill(k);
          } catch (e) {
            failure = e;
          }
        }
        // a failure stops the other walker too (scanClose cancels a wait for the queue); the slot
        // it fills stays untouched only once its callback has come
        if (failure !== null || running === 0) shim.scanClose(handle);
        if (running > 0) return;
        if (failure !== null) reject(failure);
        else resolve(entries);
      });
      running++;
    };
    try {
      fill(0);
      fill(1);
    } catch (e) {
      failure = e;
      shim.scanClose(handle);
      if (running === 0) reject(e);
    }
  });
}
