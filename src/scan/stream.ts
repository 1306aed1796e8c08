// The streaming scan into the WASM core: depth-first records of a directory tree, batch by batch,
// straight into a scan stream's two slots (batches.ts fills one while the core consumes the other).
// JS sees counts, never entries. Without the shim (tryLoadShim() === null) the fast-glob fallback
// fills the same slots.
import { AT_FDCWD } from '../native/constants.js';
import { tryLoadShim, type ShimPath } from '../native/shim.js';
import type { Core } from '../core/wasm.js';
import { SCAN_STREAMS, type ScanStreamSlots } from '../core/regions.js';
import { NOT_READY, ScanBatches, type BatchConsumer } from './batches.js';
import { coreBatchSlot } from './record-view.js';

export type { BatchConsumer } from './batches.js';

export interface ScanOptions {
  /** Directory fd `path` is relative to (default AT_FDCWD: `path` absolute or cwd-relative). */
  dirfd?: number;
  /** Which of the core's scan streams to use (scans on different streams can run at once). */
  stream?: number;
  /** Use the fast-glob fallback even when the shim is built (tests compare the two). */
  fallback?: boolean;
}

export interface ScanResult {
  entries: number;
  /** 'shim', or 'fallback' (fast-glob: no xattrs, see src/scan/fallback.ts). */
  scanner: 'shim' | 'fallback';
}

/** Scans `path` (flags: SCAN_* of src/core/records.ts), feeding every batch to `consume`. */
export async function scanStream(core: Core, path: ShimPath, flags: number, consume: BatchConsumer,
                                 options: ScanOptions = {}): Promise<ScanResult> {
  const slots: ScanStreamSlots = SCAN_STREAMS[options.stream ?? 0]!;
  const dirfd = options.dirfd ?? AT_FDCWD;
  const shim = options.fallback ? null : tryLoadShim();
  if (!shim) {
    // a path given as bytes (a name that is not UTF-8) needs the shim
    if (typeof path !== 'string') throw new Error('overlay2: internal: the fallback scan takes text paths only');
    // loaded only here: fast-glob and its matchers cost a CLI call ~10 ms it needs only without the shim
    const { fallbackScan } = await import('./fallback.js');
    const entries = await fallbackScan(core, slots, dirfd, path, flags, consume);
    return { entries, scanner: 'fallback' };
  }
  const batches = new ScanBatches(shim, dirfd, path, flags, [coreBatchSlot(core, slots[0]), coreBatchSlot(core, slots[1])]);
  let entries = 0;
  try {
    for (;;) {
      const batch = batches.take();
      if (batch === NOT_READY) {
        await batches.ready();
        continue;
      }
      if (batch === null) break;
      consume(slots[batch.slot]!, batch.count, batch.heapUsed);
      entries += batch.count;
    }
  } finally {
    // the pool thread may still be writing into a slot: let it finish before the core is reused
    await batches.settle();
  }
  return { entries, scanner: 'shim' };
}
