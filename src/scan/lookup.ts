// The lookups of the native change walk (src/changes/native.ts) into lower dirs: batched fstatat of
// named entries, and the listing of one directory, both as scan records.
import type { Shim } from '../native/shim.js';
import type { Core } from '../core/wasm.js';
import { SCAN_NO_RECURSE, SCAN_SORTED } from '../core/records.js';
import { SCAN_STREAMS } from '../core/regions.js';
import { scanStream, type BatchConsumer } from './stream.js';

/** One record per NUL-terminated name in `names`, in order, failures inline (FLAG_FAILED); the
 *  extras (SCAN_* flags) packed in `heap`. Returns the heap bytes used. */
export function lookupNames(shim: Shim, dirfd: number, names: Uint8Array, count: number,
                            records: Uint8Array, heap: Uint8Array, flags: number): number {
  return shim.lookupBatch(dirfd, names, count, records, heap, flags);
}

/** Every entry of the directory `dirfd` (not recursive), sorted, as scan batches in `core`'s slots. */
export async function listDirectory(core: Core, dirfd: number, consume: BatchConsumer): Promise<void> {
  await scanStream(core, '.', SCAN_SORTED | SCAN_NO_RECURSE, consume, { dirfd });
}

/** The entries of the directory `dirfd` (not recursive, sorted; `flags`: more SCAN_* bits) read on
 *  this thread, batch by batch into `core`'s first scan slot: the native change walk lists every
 *  upper dir it enters, and most are small — a round trip to the pool per directory would cost more
 *  than the listing (a batch is one slot, so a call blocks for one batch at a time at most). */
export function listDirectorySync(shim: Shim, core: Core, dirfd: number, flags: number, consume: BatchConsumer): void {
  const slot = SCAN_STREAMS[0][0];
  const records = core.low.subarray(slot.recordsAddr, slot.recordsAddr + slot.recordsSize);
  const heap = core.low.subarray(slot.heapAddr, slot.heapAddr + slot.heapSize);
  const handle = shim.scanOpen(dirfd, '.', flags | SCAN_SORTED | SCAN_NO_RECURSE);
  try {
    for (let idle = 0; ;) {
      const batch = shim.scanNextSync(handle, records, heap);
      if (batch.count > 0) consume(slot, batch.count, batch.heapUsed);
      if (batch.done) return;
      if (batch.count > 0) idle = 0;
      else if (++idle > 2) throw new Error('overlay2: scanner made no progress listing a directory');
    }
  } finally {
    shim.scanClose(handle);
  }
}
