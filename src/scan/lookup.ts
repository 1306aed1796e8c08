// The lookups of the native change walk (src/changes/native.ts) into lower dirs: batched fstatat of
// named entries, and the listing of one directory, both as scan records.
import type { Shim } from '../native/shim.js';
import type { Core } from '../core/wasm.js';
import { SCAN_NO_RECURSE, SCAN_SORTED } from '../core/records.js';
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
