// The one reader of scan records (the contract in src/core/records.ts) on the host side: a cursor
// over one batch — its records and the heap their names and extras point into — that reads fields
// in place, whether the batch sits in JS Buffers or in the WASM core's regions.
import {
  RECORD_SIZE, OFF_INO, OFF_SIZE, OFF_MTIME_SEC, OFF_MTIME_NSEC, OFF_MODE, OFF_UID, OFF_GID, OFF_NLINK,
  OFF_DEV, OFF_RDEV, OFF_NAME_OFF, OFF_NAME_LEN, OFF_EXTRA_LEN, OFF_DEPTH, OFF_FLAGS, type RecordFields,
} from '../core/records.js';
import type { Core } from '../core/wasm.js';
import type { ScanSlot } from '../core/regions.js';
import type { BatchSlot } from './batches.js';

const TWO_32 = 0x1_0000_0000;

export class RecordView {
  private readonly v: DataView;
  private readonly heapBuf: Buffer;
  private readonly heapBytes: Uint8Array;
  private at = 0;

  constructor(records: Uint8Array, heap: Uint8Array) {
    this.v = new DataView(records.buffer, records.byteOffset, records.byteLength);
    this.heapBuf = Buffer.from(heap.buffer, heap.byteOffset, heap.byteLength);
    this.heapBytes = new Uint8Array(heap.buffer, heap.byteOffset, heap.byteLength);
  }

  /** Points the view at record `index` of the batch; returns the view. */
  seek(index: number): this {
    this.at = index * RECORD_SIZE;
    return this;
  }

  get mode(): number { return this.v.getUint32(this.at + OFF_MODE, true); }
  get uid(): number { return this.v.getUint32(this.at + OFF_UID, true); }
  get gid(): number { return this.v.getUint32(this.at + OFF_GID, true); }
  get nlink(): number { return this.v.getUint32(this.at + OFF_NLINK, true); }
  get dev(): number { return this.v.getUint32(this.at + OFF_DEV, true); }
  get rdev(): number { return this.v.getUint32(this.at + OFF_RDEV, true); }
  get depth(): number { return this.v.getUint16(this.at + OFF_DEPTH, true); }
  get flags(): number { return this.v.getUint16(this.at + OFF_FLAGS, true); }
  get nameLen(): number { return this.v.getUint16(this.at + OFF_NAME_LEN, true); }
  get extraLen(): number { return this.v.getUint16(this.at + OFF_EXTRA_LEN, true); }
  private get nameOff(): number { return this.v.getUint32(this.at + OFF_NAME_OFF, true); }

  /** st_size as a number (exact below 2^53). */
  get size(): number { return this.int64(OFF_SIZE); }
  /** st_mtim.tv_sec as a number. */
  get mtimeSec(): number { return this.int64(OFF_MTIME_SEC); }

  /** Identifies the inode among the scan's records (for hard-link detection). */
  inodeKey(): string {
    return `${this.dev}:${this.v.getUint32(this.at + OFF_INO + 4, true)}:${this.v.getUint32(this.at + OFF_INO, true)}`;
  }

  /** The name's bytes as a latin1 string (one char per byte: any name round-trips). */
  nameLatin1(): string {
    const off = this.nameOff;
    return this.heapBuf.toString('latin1', off, off + this.nameLen);
  }

  /** The name's bytes, in place (valid until the slot is refilled). */
  nameBytes(): Buffer {
    const off = this.nameOff;
    return this.heapBuf.subarray(off, off + this.nameLen);
  }

  /** A copy of the extra bytes after the name (e.g. the capability with FLAG_CAPS). */
  extra(): Buffer {
    const off = this.nameOff + this.nameLen;
    return Buffer.from(this.heapBuf.subarray(off, off + this.extraLen));
  }

  /** The file's contents read by the scan (FLAG_DATA: size bytes after the extra), in place (valid
   *  until the slot is refilled). A plain Uint8Array: cheaper to make than a Buffer. */
  data(): Uint8Array {
    const off = this.nameOff + this.nameLen + this.extraLen;
    return this.heapBytes.subarray(off, off + this.size);
  }

  /** Every field, 64-bit ones as bigint: for tests and debugging, never the hot path. */
  fields(): RecordFields {
    const v = this.v;
    const at = this.at;
    return {
      ino: v.getBigUint64(at + OFF_INO, true),
      size: v.getBigInt64(at + OFF_SIZE, true),
      mtimeSec: v.getBigInt64(at + OFF_MTIME_SEC, true),
      mtimeNsec: v.getUint32(at + OFF_MTIME_NSEC, true),
      mode: this.mode,
      uid: this.uid,
      gid: this.gid,
      nlink: this.nlink,
      dev: this.dev,
      rdev: this.rdev,
      nameOff: this.nameOff,
      nameLen: this.nameLen,
      extraLen: this.extraLen,
      depth: this.depth,
      flags: this.flags,
    };
  }

  private int64(off: number): number {
    return this.v.getUint32(this.at + off, true) + this.v.getInt32(this.at + off + 4, true) * TWO_32;
  }
}

/** The two halves of a core scan slot as a BatchSlot (views of the core's fixed regions). */
export function coreBatchSlot(core: Core, slot: ScanSlot): BatchSlot {
  return {
    records: core.low.subarray(slot.recordsAddr, slot.recordsAddr + slot.recordsSize),
    heap: core.low.subarray(slot.heapAddr, slot.heapAddr + slot.heapSize),
  };
}

/** A view of the records of a core scan slot. */
export function coreRecordView(core: Core, slot: ScanSlot): RecordView {
  const s = coreBatchSlot(core, slot);
  return new RecordView(s.records, s.heap);
}

/** One record as an object, read at byte offset `at` of `bytes` (the heap is not needed). */
export function decodeRecord(bytes: Uint8Array, at: number): RecordFields {
  return new RecordView(bytes.subarray(at, at + RECORD_SIZE), new Uint8Array(0)).fields();
}
