// The sorted pre-order walk of a tree by the shim's two SCAN_SPLIT walkers at once (one libuv pool
// thread each): a walker that runs out of work takes the second half of what the other still has
// ahead at its shallowest level, as a new segment of the walk. Batches come per segment, in any
// order; this puts them back into the one sorted walk: the segment at the head of the walk is
// consumed as its batches come, a later one's batches are copied out and held until every segment
// before it is complete (records and names only: a few MB for a 50k-entry tree).
import { AT_FDCWD } from '../native/constants.js';
import { loadShim, type ScanBatch } from '../native/shim.js';
import type { Core } from '../core/wasm.js';
import { RECORD_SIZE, SCAN_SORTED, SCAN_SPLIT } from '../core/records.js';
import { SCAN_STREAMS, type ScanSlot } from '../core/regions.js';
import type { BatchConsumer } from './batches.js';
import { coreBatchSlot } from './record-view.js';
import { runWalkers } from './walkers.js';

export interface SplitScanOptions {
  /** The scan stream whose two slots the walkers fill (default 0). */
  stream?: number;
  /** Walk up to this many records on the calling thread before the pool's walkers start (default
   *  0): a tree that small is done without a round trip to the pool. */
  syncFirst?: number;
  /** The slot a held batch is copied back into to be consumed (default: the first of stream 2). */
  staging?: ScanSlot;
}

/** A batch copied out of its slot until its segment's turn. */
export interface Held { records: Buffer; heap: Buffer; count: number }

/** Puts the segments of a split walk back in order and hands out batches in walk order. The walk is
 *  the first segment, then the segments split off it from the newest to the oldest, each followed
 *  by its own split-offs the same way (shim/scanner.c, SCAN_SPLIT). */
export class SegmentOrder {
  private readonly order: number[] = [];                  // segments known so far, in walk order
  private head = 0;                                       // order[head]: consumed as it comes
  private readonly parent = new Map<number, number>();    // segment → the one it was split off
  private readonly waiting = new Map<number, number[]>(); // parent not known yet → its split-offs
  private readonly stolen = new Map<number, number>();    // complete segment → how many were split off it
  private readonly children = new Map<number, number>();  // segment → split-offs placed so far
  private readonly complete = new Set<number>();
  private readonly held = new Map<number, Held[]>();

  constructor(private readonly deliver: (h: Held) => void) {}

  /** One batch: consumed right away (`direct`) when its segment is the walk's head, else copied out
   *  (`copy`) and held until it is. */
  batch(b: ScanBatch, direct: () => void, copy: () => Held): void {
    const segment = b.segment!;
    if (b.after !== undefined) this.add(segment, b.after);
    if (b.count > 0) {
      if (this.order[this.head] === segment) direct();
      else this.hold(segment, copy());
    }
    if (b.segmentDone) this.finish(segment, b.stolen ?? 0);
  }

  private hold(segment: number, h: Held): void {
    let list = this.held.get(segment);
    if (!list) this.held.set(segment, (list = []));
    list.push(h);
  }

  /** A segment's first batch: it was split off `after` (-1: it is the walk's start). */
  private add(segment: number, after: number): void {
    if (after === -1) {
      this.order.push(segment);
    } else {
      let at = this.order.indexOf(after);
      if (at < 0) {
        let w = this.waiting.get(after);
        if (!w) this.waiting.set(after, (w = []));
        w.push(segment);
        return;
      }
      this.parent.set(segment, after);
      // after the parent, past the blocks of its newer split-offs (each with its own descendants)
      for (at++; at < this.order.length; at++) {
        const child = this.childOf(this.order[at]!, after);
        if (child === null || child < segment) break;
      }
      if (at <= this.head) throw new Error('overlay2: internal: a split scan segment came after its place was consumed');
      this.order.splice(at, 0, segment);
      this.children.set(after, (this.children.get(after) ?? 0) + 1);
    }
    const waiting = this.waiting.get(segment);
    if (waiting) {
      this.waiting.delete(segment);
      for (const s of waiting) this.add(s, segment);
    }
    this.advance();
  }

  /** The child of `ancestor` that `segment` descends from (or is), or null. */
  private childOf(segment: number, ancestor: number): number | null {
    for (let s = segment; ;) {
      const p = this.parent.get(s);
      if (p === undefined) return null;
      if (p === ancestor) return s;
      s = p;
    }
  }

  private finish(segment: number, stolen: number): void {
    this.complete.add(segment);
    this.stolen.set(segment, stolen);
    this.advance();
  }

  /** Moves past complete segments whose split-offs are all placed, delivering the next one's held batches. */
  private advance(): void {
    for (;;) {
      const seg = this.order[this.head];
      if (seg === undefined || !this.complete.has(seg) || (this.children.get(seg) ?? 0) !== this.stolen.get(seg)) return;
      this.head++;
      const next = this.order[this.head];
      if (next === undefined) return;
      for (const h of this.held.get(next) ?? []) this.deliver(h);
      this.held.delete(next);
    }
  }

  /** Every segment consumed, none held. */
  get settled(): boolean {
    return this.head === this.order.length && this.held.size === 0 && this.waiting.size === 0;
  }
}

/** Scans the whole tree under `root` (flags: SCAN_* of src/core/records.ts) in sorted pre-order,
 *  walked by two pool threads, feeding every batch to `consume` in walk order; returns the entry
 *  count. Needs the shim. */
export async function scanSplit(core: Core, root: string, flags: number, consume: BatchConsumer, options: SplitScanOptions = {}): Promise<number> {
  const shim = loadShim();
  const slots = SCAN_STREAMS[options.stream ?? 0]!;
  const staging = options.staging ?? SCAN_STREAMS[2]![0];
  const handle = shim.scanOpen(AT_FDCWD, root, flags | SCAN_SORTED | SCAN_SPLIT);
  const order = new SegmentOrder((h) => {
    core.low.set(h.records, staging.recordsAddr);
    core.low.set(h.heap, staging.heapAddr);
    consume(staging, h.count, h.heap.length);
  });
  let entries = 0;
  await runWalkers(shim, handle, core, slots, (k, batch) => {
    const slot = slots[k]!;
    entries += batch.count;
    order.batch(batch, () => consume(slot, batch.count, batch.heapUsed), () => {
      const s = coreBatchSlot(core, slot);
      return {
        records: Buffer.from(s.records.subarray(0, batch.count * RECORD_SIZE)),
        heap: Buffer.from(s.heap.subarray(0, batch.heapUsed)),
        count: batch.count,
      };
    });
  }, () => (order.settled ? null : new Error(`overlay2: internal: a split scan of ${root} ended with segments out of order`)),
  options.syncFirst ?? 0);
  return entries;
}
