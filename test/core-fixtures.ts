// Hand-built scan records for the WASM core tests: trees described as entries, encoded exactly as
// the scanner would (pre-order, each directory's entries in byte order), and an in-memory
// LowerAccess answering the native walk's lookups and listings from such trees.
import { acquireCore, releaseCore, type Core } from '../src/core/wasm.js';
import { SCAN_STREAMS, type ScanSlot } from '../src/core/regions.js';
import {
  RECORD_SIZE, encodeRecord, FLAG_CAPS, FLAG_FAILED, FLAG_METACOPY, FLAG_OPAQUE, FLAG_REDIRECT,
  S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, S_IFSOCK, SCAN_CAPS, SCAN_OPAQUE, SCAN_REDIRECT, SCAN_METACOPY,
} from '../src/core/records.js';
import { takeChanges } from '../src/changes/change-list.js';
import { walkUpper, type LowerAccess, type WalkOptions } from '../src/changes/native.js';
import type { Change } from '../src/changes/change.js';
import type { BatchConsumer } from '../src/scan/stream.js';

export type EntryType = 'f' | 'd' | 'l' | 'c' | 'b' | 's' | 'p' | 'wh';

export interface Entry {
  path: string; // relative, "a/b"
  type?: EntryType;
  perm?: number;
  uid?: number;
  gid?: number;
  size?: number;
  mtime?: number;
  nsec?: number;
  ino?: number;
  nlink?: number;
  dev?: number;
  rdev?: number;
  caps?: number[];
  opaque?: boolean;
  redirect?: string;
  metacopy?: boolean;
}

const TYPE_BITS: Record<EntryType, number> = {
  f: S_IFREG, d: S_IFDIR, l: S_IFLNK, c: S_IFCHR, b: S_IFBLK, s: S_IFSOCK, p: S_IFIFO, wh: S_IFCHR,
};

let nextIno = 1000;

/** Shorthands: f('a/b', {...}), d('a'), wh('a/x'). */
export const f = (path: string, o: Partial<Entry> = {}): Entry => ({ path, type: 'f', ...o });
export const d = (path: string, o: Partial<Entry> = {}): Entry => ({ path, type: 'd', ...o });
export const wh = (path: string, o: Partial<Entry> = {}): Entry => ({ path, type: 'wh', ...o });
export const l = (path: string, o: Partial<Entry> = {}): Entry => ({ path, type: 'l', ...o });

function parts(p: string): Buffer[] {
  return p.split('/').map((x) => Buffer.from(x));
}

export function sortEntries(entries: Entry[]): Entry[] {
  return [...entries].sort((a, b) => {
    const pa = parts(a.path), pb = parts(b.path);
    for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
      const c = Buffer.compare(pa[i]!, pb[i]!);
      if (c !== 0) return c;
    }
    return pa.length - pb.length;
  });
}

function extraOf(e: Entry): { bytes: Buffer; flag: number } {
  if (e.caps) return { bytes: Buffer.from(e.caps), flag: FLAG_CAPS };
  if (e.redirect !== undefined) return { bytes: Buffer.from(e.redirect), flag: FLAG_REDIRECT };
  return { bytes: Buffer.alloc(0), flag: 0 };
}

/** Writes one record for `e` at record index `index`; its name at nameOff, its extra at extraAt. */
export function writeRecord(core: Core, recordsAddr: number, index: number, e: Entry, nameOff: number,
                            depth: number, extraAt: number | null, heapAddr: number): number {
  const type = e.type ?? 'f';
  const extra = extraOf(e);
  if (extraAt !== null) core.low.set(extra.bytes, heapAddr + extraAt);
  e.ino ??= nextIno++;
  const name = Buffer.from(e.path.split('/').pop()!);
  encodeRecord(core.low, recordsAddr + index * RECORD_SIZE, {
    ino: BigInt(e.ino),
    size: BigInt(type === 'wh' || type === 'd' ? (e.size ?? (type === 'd' ? 4096 : 0)) : (e.size ?? 10)),
    mtimeSec: BigInt(e.mtime ?? 1_700_000_000),
    mtimeNsec: e.nsec ?? 0,
    mode: TYPE_BITS[type] | (e.perm ?? (type === 'd' ? 0o755 : type === 'wh' ? 0 : 0o644)),
    uid: e.uid ?? 0,
    gid: e.gid ?? 0,
    nlink: e.nlink ?? 1,
    dev: e.dev ?? 0x800001,
    rdev: type === 'wh' ? 0 : (e.rdev ?? (type === 'c' || type === 'b' ? 0x100003 : 0)),
    nameOff,
    nameLen: name.length,
    extraLen: extra.bytes.length,
    depth,
    flags: extra.flag | (e.opaque ? FLAG_OPAQUE : 0) | (e.metacopy ? FLAG_METACOPY : 0),
  });
  return extra.bytes.length;
}

/** Encodes `entries` (pre-ordered by sortEntries) into `slot` as one scan batch. */
export function encodeBatch(core: Core, slot: ScanSlot, entries: Entry[]): { count: number; heapUsed: number } {
  let heap = 0;
  entries.forEach((e, i) => {
    const name = Buffer.from(e.path.split('/').pop()!);
    core.low.set(name, slot.heapAddr + heap);
    const extra = writeRecord(core, slot.recordsAddr, i, e, heap, e.path.split('/').length, heap + name.length, slot.heapAddr);
    heap += name.length + extra;
  });
  return { count: entries.length, heapUsed: heap };
}

/** Feeds `entries` to tree `tree` in batches of `batch` records (to cross batch boundaries). */
export function feedTree(core: Core, tree: number, entries: Entry[], batch = 3): void {
  const sorted = sortEntries(entries);
  for (let i = 0, k = 0; i < sorted.length; i += batch, k ^= 1) {
    const slot = SCAN_STREAMS[0][k]!;
    const b = encodeBatch(core, slot, sorted.slice(i, i + batch));
    const rc = core.exports.treeAppend(tree, slot.recordsAddr, b.count, slot.heapAddr);
    if (rc !== 0) throw new Error(`treeAppend: ${rc}`);
  }
  core.exports.treeFinish(tree);
}

export function withTestCore<T>(fn: (core: Core) => T): T {
  const core = acquireCore();
  try {
    return fn(core);
  } finally {
    releaseCore(core);
  }
}

export function sizeOf(entries: Entry[], batch = 2): number {
  return withTestCore((core) => {
    const sorted = sortEntries(entries);
    for (let i = 0, k = 0; i < sorted.length; i += batch, k ^= 1) {
      const slot = SCAN_STREAMS[1][k]!;
      const b = encodeBatch(core, slot, sorted.slice(i, i + batch));
      core.exports.sizeConsume(slot.recordsAddr, b.count);
    }
    return Number(core.exports.sizeTotal());
  });
}

/** Naive comparison of two hand-built trees. Entries without a dev get the new or old tree's own
 *  device (like two mounts); with `sameDevice` both trees share one (moby prunes equal inodes). */
export function naive(newEntries: Entry[], oldEntries: Entry[], sameDevice = false): Change[] {
  const onDev = (es: Entry[], dev: number) => es.map((e) => ({ ...e, dev: e.dev ?? dev }));
  return withTestCore((core) => {
    feedTree(core, 0, onDev(newEntries, 0x800001));
    feedTree(core, 1, onDev(oldEntries, sameDevice ? 0x800001 : 0x800002));
    core.exports.naiveCompare(sameDevice ? 1 : 0);
    return takeChanges(core);
  });
}

/** An in-memory lower: handles are indices of (layer, dir) pairs. */
export class FakeLowers implements LowerAccess {
  private readonly handles: Array<{ layer: number; dir: string } | null> = [];
  private readonly byPath: Array<Map<string, Entry>>;
  opened = 0;
  lookups = 0;
  listings = 0;

  constructor(readonly layers: Entry[][]) {
    this.byPath = layers.map((es) => new Map(es.map((e) => [e.path, e])));
  }

  roots(): number[] {
    return this.layers.map((_, i) => this.open(i, ''));
  }

  private open(layer: number, dir: string): number {
    this.opened++;
    this.handles.push({ layer, dir });
    return this.handles.length - 1;
  }

  private at(h: number): { layer: number; dir: string } {
    const x = this.handles[h];
    if (!x) throw new Error(`bad or closed handle ${h}`);
    return x;
  }

  lookup(dir: number, names: Uint8Array, count: number, records: Uint8Array, heap: Uint8Array): void {
    const { layer, dir: path } = this.at(dir);
    let off = 0;
    let extraAt = 0;
    const base = records.byteOffset;
    const heapAddr = heap.byteOffset;
    // records/heap are views of the core's low memory: write through a Core-shaped stand-in
    const low = new Uint8Array(records.buffer);
    const pseudo = { low } as unknown as Core;
    for (let i = 0; i < count; i++) {
      const end = names.indexOf(0, off);
      const name = Buffer.from(names.subarray(off, end)).toString();
      this.lookups++;
      const e = this.byPath[layer]!.get(path ? `${path}/${name}` : name);
      if (!e) {
        encodeRecord(low, base + i * RECORD_SIZE, {
          ino: 0n, size: 0n, mtimeSec: 0n, mtimeNsec: 0, mode: 0, uid: 0, gid: 0, nlink: 2, dev: 0, rdev: 0,
          nameOff: off, nameLen: end - off, extraLen: 0, depth: 0, flags: FLAG_FAILED,
        });
      } else {
        extraAt += writeRecord(pseudo, base, i, e, off, 1, extraAt, heapAddr);
      }
      off = end + 1;
    }
  }

  async list(core: Core, dir: number, consume: BatchConsumer): Promise<void> {
    const { layer, dir: path } = this.at(dir);
    this.listings++;
    const prefix = path ? `${path}/` : '';
    const kids = this.layers[layer]!.filter((e) => e.path.startsWith(prefix) && !e.path.slice(prefix.length).includes('/'))
      .map((e) => ({ ...e, path: e.path.slice(prefix.length) }));
    const slot = SCAN_STREAMS[0][0]!;
    const sorted = sortEntries(kids);
    // in batches, as the scanner hands a big directory out (a slot holds 4096 records)
    for (let i = 0; i < sorted.length; i += 1000) {
      const b = encodeBatch(core, slot, sorted.slice(i, i + 1000));
      consume(slot, b.count, b.heapUsed);
    }
  }

  /** An upper dir listed the same way (its records are whole: the walk needs no upper lookups). */
  async listUpper(core: Core, dir: number, _flags: number, consume: BatchConsumer): Promise<void> {
    await this.list(core, dir, consume);
  }

  openChild(dir: number, nameBytes: Buffer): number {
    const name = nameBytes.toString('utf8'); // the fixtures' names are UTF-8
    const { layer, dir: path } = this.at(dir);
    const p = path ? `${path}/${name}` : name;
    const e = this.byPath[layer]!.get(p);
    if (!e || e.type !== 'd') throw new Error(`openChild: ${p} is no directory in layer ${layer}`);
    return this.open(layer, p);
  }

  close(dir: number): void {
    this.at(dir);
    this.handles[dir] = null;
    this.opened--;
  }
}

export const NATIVE_LOOKUP_FLAGS = SCAN_OPAQUE | SCAN_CAPS | SCAN_REDIRECT | SCAN_METACOPY;

/** Native classification of hand-built `upper` over hand-built `lowers` (top first): the walk's
 *  chunks (`opts.chunkBytes` to make them small) and the whole list. The fake's layer 0 is the upper. */
export async function native(upper: Entry[], lowers: Entry[][], opts: WalkOptions = {}): Promise<{ changes: Change[]; chunks: number; fake: FakeLowers }> {
  const core = acquireCore();
  const fake = new FakeLowers([upper, ...lowers]);
  try {
    const [upperRoot, ...roots] = fake.roots();
    const changes: Change[] = [];
    let chunks = 0;
    try {
      for await (const chunk of walkUpper(core, fake, upperRoot!, roots, NATIVE_LOOKUP_FLAGS, { upperLookups: false, ...opts })) {
        chunks++;
        changes.push(...chunk);
      }
    } finally {
      fake.close(upperRoot!);
      for (const r of roots) fake.close(r);
    }
    return { changes, chunks, fake };
  } finally {
    releaseCore(core);
  }
}

/** "A /x" lines, the way docker diff prints them. */
export function lines(changes: Change[]): string[] {
  return changes.map((c) => `${c.kind} ${c.path}`);
}

/** Overlay's merged view of `layers` (top first), as entries: the topmost entry of each name wins,
 *  a whiteout hides, a directory merges with the directories below it until a non-directory or
 *  whiteout, or after an opaque one (ignored on the root). Written independently of the core. */
export function mergeLayers(layers: Entry[][]): Entry[] {
  const maps = layers.map((es) => new Map(es.map((e) => [e.path, e])));
  const out: Entry[] = [];
  const walk = (dir: string, from: number[]): void => {
    const names = new Set<string>();
    const prefix = dir ? `${dir}/` : '';
    for (const i of from) {
      for (const e of layers[i]!) {
        if (e.path.startsWith(prefix) && e.path.length > prefix.length && !e.path.slice(prefix.length).includes('/')) names.add(e.path.slice(prefix.length));
      }
    }
    for (const name of names) {
      const p = prefix + name;
      let top: Entry | undefined;
      const below: number[] = [];
      for (const i of from) {
        const e = maps[i]!.get(p);
        if (!e) continue;
        if (!top) {
          top = e;
          if (e.type !== 'd') break;
          below.push(i);
          if (e.opaque) break;
          continue;
        }
        if (e.type !== 'd') break;
        below.push(i);
        if (e.opaque) break;
      }
      if (!top || top.type === 'wh') continue;
      out.push(top);
      if (top.type === 'd') walk(p, below);
    }
  };
  walk('', layers.map((_, i) => i));
  return out;
}
