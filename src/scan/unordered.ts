// A whole-tree scan for consumers that do not care about order (the size sum): the tree is split
// by name into shards (SCAN_SHARD_* of shim/records.h) that the core's scan streams walk at the same
// time, one libuv pool thread each, so the stat-bound walk uses every core instead of one. Each
// shard is one continuous scan in 4096-record batches: no per-directory round trips through the main
// thread, and a single huge directory splits as well as many small ones.
import type { Core } from '../core/wasm.js';
import { FLAG_SHARD_COPY, SCAN_NO_RECURSE, scanShardFlags } from '../core/records.js';
import { SCAN_STREAM_COUNT } from '../core/regions.js';
import { scanStream, type BatchConsumer } from './stream.js';
import { coreRecordView } from './record-view.js';

/** Entries down to this depth are spread over the shards: deep enough that one big top-level
 *  directory (/usr/lib, /usr/share) is split, shallow enough that the directories every shard walks
 *  through are few. */
export const SHARD_DEPTH = 3;

/** Two shards: one per core of the machines this runs on; more threads only contend. */
export const DEFAULT_SHARDS = 2;

/** Scans the whole tree under `root` split over `shards` scan streams of `core`; `consume` sees
 *  every entry once plus, from the other shards, FLAG_SHARD_COPY records of the directories above
 *  SHARD_DEPTH. Returns the number of entries (copies not counted). */
export async function scanUnordered(core: Core, root: string, flags: number, consume: BatchConsumer,
                                    shards = DEFAULT_SHARDS): Promise<number> {
  const n = Math.min(Math.max(shards, 2), SCAN_STREAM_COUNT);
  const depth = (flags & SCAN_NO_RECURSE) !== 0 ? 1 : SHARD_DEPTH;
  let copies = 0;
  const counting: BatchConsumer = (slot, count, heapUsed) => {
    const r = coreRecordView(core, slot);
    for (let i = 0; i < count; i++) if ((r.seek(i).flags & FLAG_SHARD_COPY) !== 0) copies++;
    consume(slot, count, heapUsed);
  };
  const results = await Promise.allSettled(Array.from({ length: n }, (_, k) =>
    scanStream(core, root, flags | scanShardFlags(k, n, depth), counting, { stream: k })));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.reduce((sum, r) => sum + (r as PromiseFulfilledResult<{ entries: number }>).value.entries, 0) - copies;
}
