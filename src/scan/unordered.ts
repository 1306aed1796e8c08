// A whole-tree scan for consumers that do not care about order (the size sum): the tree is split
// into subtrees that the core's scan streams walk at the same time, one libuv pool thread each, so
// the stat-bound walk uses every core instead of one.
//
// Splitting: a work queue of directories, breadth first. A directory near the top (or taken while
// the queue is short) is "expanded": its own entries are scanned without recursing and its
// subdirectories are queued; any other directory is scanned whole. Every entry is consumed exactly
// once (a scan never emits its root, and an expansion emits the subdirectories it queues).
// A big directory (st_size: thousands of entries) is expanded as two shards by name hash
// (SCAN_SHARD_*), so one huge flat directory keeps every stream busy too.
import { statSync } from 'node:fs';
import type { Core } from '../core/wasm.js';
import { tryLoadShim, type ShimPath } from '../native/shim.js';
import { byteString, displayName, osName, utf8ByteString } from '../util/byte-names.js';
import { SCAN_NO_RECURSE, S_IFDIR, S_IFMT, scanShardFlags } from '../core/records.js';
import { SCAN_STREAMS, type ScanSlot } from '../core/regions.js';
import { scanStream, type BatchConsumer } from './stream.js';
import { coreRecordView } from './record-view.js';

const EXPAND_DEPTH = 2;  // always split the top levels
const QUEUE_TARGET = 16; // below that many waiting directories, keep splitting
const BIG_DIR = 64 * 1024; // st_size of a directory worth listing in shards (ext4: ~2000 entries)
const SHARDS = 2;          // each shard reads the whole directory: one per core, no more

/** A directory to scan: `rel` is a byte string (src/util/byte-names.ts); a big one is one of `shards`. */
interface Item { rel: string; depth: number; shard: number; shards: number }

/** `rel` as queue items: SHARDS shards when the directory is big, else one. */
function items(rel: string, depth: number, dirSize: number): Item[] {
  const n = dirSize >= BIG_DIR ? SHARDS : 1;
  return Array.from({ length: n }, (_, shard) => ({ rel, depth, shard, shards: n }));
}

/** Thrown inside the split scan when a directory name is not UTF-8 and cannot be reopened by path
 *  (only the fallback scanner is here, which takes text paths);
 *  scanUnordered turns it into its 'unsplittable' result. */
class Unsplittable extends Error {}

/** The tree could not be split (a directory name that is not UTF-8, no shim): nothing is in flight any more,
 *  but part of the tree was consumed — reset the consumer and scan sequentially. */
export const UNSPLITTABLE = 'unsplittable';

/** Scans the whole tree under `root` with every scan stream of `core`; returns the entry count,
 *  or UNSPLITTABLE. */
export async function scanUnordered(core: Core, root: string, flags: number, consume: BatchConsumer): Promise<number | typeof UNSPLITTABLE> {
  const queue: Item[] = items('', 0, statSync(root).size);
  let busy = 0;
  let entries = 0;
  let failure: unknown = null;
  let wake: (() => void) | null = null;
  const signal = () => {
    const w = wake;
    wake = null;
    w?.();
  };

  // rel is a byte string (src/util/byte-names.ts): a directory whose name is not UTF-8 is reopened
  // by its bytes, which only the shim takes
  const rootBytes = utf8ByteString(root.replace(/\/+$/, ''));
  const pathOf = (rel: string): ShimPath => {
    const path = osName(rel ? `${rootBytes}/${rel}` : rootBytes || '/');
    if (typeof path !== 'string' && !tryLoadShim()) throw new Unsplittable(displayName(rel));
    return path;
  };

  const expand = async ({ rel, depth, shard, shards }: Item, stream: number): Promise<number> => {
    const found: Item[] = [];
    const sharded = shards > 1 ? scanShardFlags(shard, shards, 1) : 0;
    const n = (await scanStream(core, pathOf(rel), flags | SCAN_NO_RECURSE | sharded, (slot: ScanSlot, count: number, heapUsed: number) => {
      const r = coreRecordView(core, slot);
      for (let i = 0; i < count; i++) {
        if ((r.seek(i).mode & S_IFMT) !== S_IFDIR) continue;
        const name = byteString(r.nameBytes());
        found.push(...items(rel ? `${rel}/${name}` : name, depth + 1, r.size));
      }
      consume(slot, count, heapUsed);
    }, { stream })).entries;
    queue.push(...found);
    return n;
  };

  const worker = async (stream: number): Promise<void> => {
    for (;;) {
      if (failure) return;
      const item = queue.shift();
      if (!item) {
        if (busy === 0) {
          signal();
          return;
        }
        await new Promise<void>((resolve) => {
          const prev = wake;
          wake = () => { prev?.(); resolve(); };
        });
        continue;
      }
      busy++;
      try {
        // (`entries += await ...` would read `entries` before the await and lose the other worker's adds)
        const n = item.depth < EXPAND_DEPTH || queue.length < QUEUE_TARGET || item.shards > 1
          ? await expand(item, stream)
          : (await scanStream(core, pathOf(item.rel), flags, consume, { stream })).entries;
        entries += n;
      } catch (e) {
        failure ??= e;
      } finally {
        busy--;
        signal();
      }
    }
  };

  await Promise.all(SCAN_STREAMS.map((_, k) => worker(k)));
  if (failure instanceof Unsplittable) return UNSPLITTABLE;
  if (failure) throw failure;
  return entries;
}
