// How the host uses WASM memory below memoryBase (4 MiB; asconfig.json): the core never allocates
// there, so these regions are fixed for the life of an instance and views of them stay valid when
// the core grows its memory (shared memory never detaches; the regions never move).
//
//   [0, 64)                   untouched (a stray null pointer lands here)
//   CONTROL                   small host↔core scratch (layer lists and the like)
//   SCAN_STREAMS[0..2]        three scan streams of two batch slots each (records + heap): the
//                             shim fills one slot while the core consumes the other (a shared
//                             scan's two walkers fill one slot each); several streams let scans
//                             run at once (both trees of the naive comparison)
//   LOOKUP names/records/heap one lookupBatch round of the native walk
//   [LOOKUP_HEAP_END, 4 MiB)  spare
import { RECORD_SIZE } from './records.js';

export const MEMORY_BASE = 4 * 1024 * 1024;

export const CONTROL_ADDR = 64;
export const CONTROL_SIZE = 4096 - 64;

export const SCAN_RECORDS_PER_BATCH = 4096;
export const SCAN_HEAP_SIZE = 128 * 1024; // 32 bytes a record: names average well under that

export interface ScanSlot {
  recordsAddr: number;
  recordsSize: number;
  heapAddr: number;
  heapSize: number;
}

const SLOT_SIZE = SCAN_RECORDS_PER_BATCH * RECORD_SIZE + SCAN_HEAP_SIZE;
const SCAN_BASE = 4096;

function slot(index: number): ScanSlot {
  const at = SCAN_BASE + index * SLOT_SIZE;
  return {
    recordsAddr: at,
    recordsSize: SCAN_RECORDS_PER_BATCH * RECORD_SIZE,
    heapAddr: at + SCAN_RECORDS_PER_BATCH * RECORD_SIZE,
    heapSize: SCAN_HEAP_SIZE,
  };
}

/** A double-buffered scan stream: the shim fills one slot while the core consumes the other, or
 *  (SCAN_SHARED, src/scan/unordered.ts) each of a shared scan's two walkers fills one. */
export type ScanStreamSlots = readonly [ScanSlot, ScanSlot];

/** Several streams, so several scans run at once: the two trees of the naive comparison, a size
 *  scan beside them (one or two libuv pool threads each; the pool has 4). */
export const SCAN_STREAM_COUNT = 3;
export const SCAN_STREAMS: readonly ScanStreamSlots[] = Array.from({ length: SCAN_STREAM_COUNT }, (_, k) => [slot(2 * k), slot(2 * k + 1)] as const);

export const LOOKUP_MAX_NAMES = 4096;
export const LOOKUP_NAMES_ADDR = SCAN_BASE + 2 * SCAN_STREAM_COUNT * SLOT_SIZE;
export const LOOKUP_NAMES_SIZE = 128 * 1024;
export const LOOKUP_RECORDS_ADDR = LOOKUP_NAMES_ADDR + LOOKUP_NAMES_SIZE;
export const LOOKUP_RECORDS_SIZE = LOOKUP_MAX_NAMES * RECORD_SIZE;
export const LOOKUP_HEAP_ADDR = LOOKUP_RECORDS_ADDR + LOOKUP_RECORDS_SIZE;
// a capability value is at most 24 bytes (VFS_CAP_REVISION_3): 64 per name is plenty
export const LOOKUP_HEAP_SIZE = LOOKUP_MAX_NAMES * 64;
export const LOOKUP_HEAP_END = LOOKUP_HEAP_ADDR + LOOKUP_HEAP_SIZE;

if (LOOKUP_HEAP_END > MEMORY_BASE) throw new Error('overlay2: host regions overflow memoryBase');
