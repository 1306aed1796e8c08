// How the host uses WASM memory below memoryBase (4 MiB; asconfig.json): the core never allocates
// there, so these regions are fixed for the life of an instance and views of them stay valid when
// the core grows its memory (shared memory never detaches; the regions never move).
//
//   [0, 64)                   untouched (a stray null pointer lands here)
//   CONTROL                   small host↔core scratch (layer lists and the like)
//   SCAN_STREAMS[0], [1]      two scan streams of two batch slots each (records + heap): the shim
//                             fills one slot while the core consumes the other; two streams let
//                             the naive comparison scan both trees at once
//   LOOKUP names/records/heap one lookupBatch round of the native walk
//   [LOOKUP_HEAP_END, 4 MiB)  spare
import { RECORD_SIZE } from './records.js';

export const MEMORY_BASE = 4 * 1024 * 1024;

export const CONTROL_ADDR = 64;
export const CONTROL_SIZE = 4096 - 64;

export const SCAN_RECORDS_PER_BATCH = 4096;
export const SCAN_HEAP_SIZE = 192 * 1024;

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

/** A double-buffered scan stream: the shim fills one slot while the core consumes the other. */
export type ScanStreamSlots = readonly [ScanSlot, ScanSlot];

/** Two streams, so two trees can be scanned at the same time (the naive comparison). */
export const SCAN_STREAMS: readonly [ScanStreamSlots, ScanStreamSlots] = [[slot(0), slot(1)], [slot(2), slot(3)]];

export const LOOKUP_MAX_NAMES = 4096;
export const LOOKUP_NAMES_ADDR = SCAN_BASE + 4 * SLOT_SIZE;
export const LOOKUP_NAMES_SIZE = 128 * 1024;
export const LOOKUP_RECORDS_ADDR = LOOKUP_NAMES_ADDR + LOOKUP_NAMES_SIZE;
export const LOOKUP_RECORDS_SIZE = LOOKUP_MAX_NAMES * RECORD_SIZE;
export const LOOKUP_HEAP_ADDR = LOOKUP_RECORDS_ADDR + LOOKUP_RECORDS_SIZE;
// a capability value is at most 24 bytes (VFS_CAP_REVISION_3): 64 per name is plenty
export const LOOKUP_HEAP_SIZE = LOOKUP_MAX_NAMES * 64;
export const LOOKUP_HEAP_END = LOOKUP_HEAP_ADDR + LOOKUP_HEAP_SIZE;

if (LOOKUP_HEAP_END > MEMORY_BASE) throw new Error('overlay2: host regions overflow memoryBase');
