// Native export source: the shim's sorted depth-first scan of the upper dir.
import { closeSync, constants as fsConstants, openSync, readlinkSync } from 'node:fs';
import { loadShim, type Shim } from '../native/shim.js';
import { AT_FDCWD, O_CLOEXEC } from '../native/constants.js';
import { TYPE_REG } from '../tar/header.js';
import {
  RECORD_SIZE, FLAG_OPAQUE, FLAG_CAPS, FLAG_DATA, SCAN_SORTED, SCAN_OPAQUE, SCAN_USER_XATTR, SCAN_CAPS,
  S_IFMT, S_IFSOCK, S_IFLNK, S_IFDIR, scanInlineDataFlags,
} from '../core/records.js';
import { NOT_READY as SCAN_NOT_READY, ScanBatches, type BatchSlot } from '../scan/batches.js';
import { RecordView } from '../scan/record-view.js';
import {
  ASCII_ONLY, CAPS_XATTR, HeaderRules, opaqueMarker, readXattrs, shimPath, toWhiteout, type FileFacts,
} from './header-rules.js';
import { NOT_READY, O_FILE, type EntrySource, type ExportEntry } from './entry.js';
import type { ExportOptions } from './options.js';
import { isWhiteoutDevice } from '../overlay-format.js';

// SCAN_CAPS: security.capability of every entry as the record's extra bytes (FLAG_CAPS).

const RECORDS_PER_BATCH = 4096;
// Small files' contents come with the scan (read on the pool thread, so this thread only frames
// headers and copies); larger ones are read here, straight into the outgoing chunk.
const INLINE_DATA_LOG2 = 15; // up to 32 KiB
// names + capability values + inline file data of one batch; ≥ 255 + 65535 + 32 KiB for any entry
const HEAP_SIZE = 4 << 20;

const O_DIR = fsConstants.O_RDONLY | fsConstants.O_DIRECTORY | fsConstants.O_NOFOLLOW | O_CLOEXEC;

/**
 * The upper dir as entries, from the shim's sorted depth-first scan (src/scan/batches.ts). The scan
 * runs ahead on the libuv pool (the second core): one pool thread reads a batch's small files while
 * another walks the next batch, and this thread encodes the current one.
 * File data is opened relative to a cached fd of its directory (openat2 of one name: no path walk,
 * and a renamed-away parent cannot redirect it).
 */
export class UpperDirSource implements EntrySource {
  private readonly shim: Shim;
  private readonly rules: HeaderRules;
  private readonly rootUtf8: string;
  private readonly rootBytes: string;
  private readonly batches: ScanBatches;
  private readonly views: RecordView[];
  private view: RecordView;                  // the batch being read
  private count = 0;
  private index = 0;
  private closed = false;
  private readonly dirs: string[] = [];       // rel path of the directory at each depth (index depth-1)
  private readonly dirFds: number[] = [];     // fd of that directory (index depth; 0 = root), -1 unknown
  private queued: ExportEntry | null = null;  // an opaque marker to write after its directory
  private lastRel = '';
  private lastDepth = 0;
  private lastNameStart = 0;
  private readonly facts: FileFacts = { mode: 0, uid: 0, gid: 0, size: 0, mtimeSec: 0, nlink: 0, inodeKey: '', devmajor: 0, devminor: 0 };

  constructor(upperDir: string, opts: ExportOptions) {
    this.shim = opts.shim ?? loadShim();
    this.rules = new HeaderRules(opts);
    this.rootUtf8 = upperDir.replace(/\/+$/, '') || '/';
    this.rootBytes = Buffer.from(this.rootUtf8, 'utf8').toString('latin1');
    const batch = (): BatchSlot => ({ records: Buffer.alloc(RECORD_SIZE * RECORDS_PER_BATCH), heap: Buffer.alloc(HEAP_SIZE) });
    // three slots: this thread frames one batch while the pool reads one's files and walks the next
    const slots = [batch(), batch(), batch()];
    this.views = slots.map((s) => new RecordView(s.records, s.heap));
    this.view = this.views[0]!;
    const flags = SCAN_SORTED | SCAN_OPAQUE | SCAN_CAPS | (opts.userxattr ? SCAN_USER_XATTR : 0) | scanInlineDataFlags(INLINE_DATA_LOG2);
    this.dirFds[0] = openSync(this.rootUtf8, O_DIR);
    try {
      this.batches = new ScanBatches(this.shim, AT_FDCWD, upperDir, flags, slots, { syncFirst: true });
    } catch (e) {
      closeSync(this.dirFds[0]);
      throw e;
    }
  }

  next(): ExportEntry | null | typeof NOT_READY {
    if (this.queued !== null) {
      const q = this.queued;
      this.queued = null;
      return q;
    }
    for (;;) {
      if (this.index === this.count) {
        const batch = this.batches.take();
        if (batch === SCAN_NOT_READY) return NOT_READY;
        if (batch === null) return null;
        this.view = this.views[batch.slot]!;
        this.count = batch.count;
        this.index = 0;
        continue;
      }
      const entry = this.entry(this.view.seek(this.index++));
      if (entry !== null) return entry;
    }
  }

  whenReady(cb: (err: Error | null) => void): void {
    // a failed batch is reported by the next next()
    this.batches.whenReady(() => { if (!this.closed) cb(null); });
  }

  openData(): number {
    const fd = this.dirFd(this.lastDepth - 1);
    const name = this.lastRel.slice(this.lastNameStart);
    return this.shim.openat2(fd, ASCII_ONLY.test(name) ? name : Buffer.from(name, 'latin1'), O_FILE, 0, 0);
  }

  dataPath(): string {
    return this.rootUtf8 + '/' + Buffer.from(this.lastRel, 'latin1').toString('utf8');
  }

  /** The fd of the directory at `depth` on the current path (opened on first use, by the name's
   *  bytes). */
  private dirFd(depth: number): number {
    const known = this.dirFds[depth];
    if (known !== undefined && known !== -1) return known;
    const parent = this.dirFd(depth - 1);
    const rel = this.dirs[depth - 1]!;
    const name = rel.slice(rel.lastIndexOf('/') + 1);
    const fd = this.shim.openat2(parent, ASCII_ONLY.test(name) ? name : Buffer.from(name, 'latin1'), O_DIR, 0, 0);
    this.dirFds[depth] = fd;
    return fd;
  }

  /** A new directory at `depth`: fds of the previous one there and below it are stale. */
  private forgetDirFds(depth: number): void {
    for (let d = depth; d < this.dirFds.length; d++) {
      const fd = this.dirFds[d]!;
      if (fd >= 0) closeSync(fd);
      this.dirFds[d] = -1;
    }
  }

  close(): void {
    this.closed = true;
    this.forgetDirFds(0);
    this.batches.close(); // the shim waits for an in-flight batch by itself
  }

  private entry(r: RecordView): ExportEntry | null {
    const depth = r.depth;
    const name = r.nameLatin1();
    const rel = depth === 1 ? name : this.dirs[depth - 2] + '/' + name;
    const mode = r.mode;
    const type = mode & S_IFMT;
    if (type === S_IFDIR) {
      this.dirs[depth - 1] = rel;
      if (depth < this.dirFds.length) this.forgetDirFds(depth);
    }
    if (type === S_IFSOCK) return null;
    const flags = r.flags;
    const nlink = r.nlink;
    const rdev = r.rdev;
    const facts = this.facts; // header() copies what it keeps
    facts.mode = mode;
    facts.uid = r.uid;
    facts.gid = r.gid;
    facts.size = r.size;
    facts.mtimeSec = r.mtimeSec;
    facts.nlink = nlink;
    facts.inodeKey = nlink > 1 && type !== S_IFDIR ? r.inodeKey() : ''; // directories: no hard links
    facts.devmajor = rdev >>> 20;
    facts.devminor = rdev & 0xfffff;

    // The scan read security.capability for every entry (Docker reads it for every entry too:
    // directories and symlinks can carry one).
    const caps = flags & FLAG_CAPS ? r.extra() : null;
    const all = this.rules.allXattrs;
    const xattrs = caps === null && !all ? null : readXattrs(this.shim, all ? shimPath(this.rootUtf8, rel) : null, all, caps);
    const link = type === S_IFLNK ? readlinkSync(Buffer.from(this.rootBytes + '/' + rel, 'latin1'), { encoding: 'latin1' }) : '';
    const h = this.rules.header(rel, facts, link, xattrs);
    if (h === null) return null;

    if (isWhiteoutDevice(mode, h.devmajor, h.devminor)) {
      toWhiteout(h);
      if (this.rules.allXattrs) h.xattrs = keepCaps(h.xattrs);
    } else if (type === S_IFDIR && flags & FLAG_OPAQUE) {
      this.queued = { header: opaqueMarker(h), hasData: false };
    }
    const hasData = h.typeflag === TYPE_REG && h.size > 0;
    if (hasData) {
      this.lastRel = rel;
      this.lastDepth = depth;
      this.lastNameStart = rel.length - name.length;
      // the scan's copy is exactly the listed size (the header's, as headers come from the record)
      if (flags & FLAG_DATA && r.size === h.size) return { header: h, hasData, data: r.data() };
    }
    return { header: h, hasData };
  }
}

/** A whiteout carries what Docker would give it (the capability, if any), never other xattrs. */
function keepCaps(xattrs: Array<[string, Buffer]> | null): Array<[string, Buffer]> | null {
  const caps = xattrs?.filter(([k]) => k === CAPS_XATTR) ?? [];
  return caps.length > 0 ? caps : null;
}
