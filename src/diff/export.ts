// A layer as a tar stream, byte for byte what Docker 20.10's overlay2 Diff writes
// (pkg/archive TarWithOptions + overlayWhiteoutConverter over Go 1.19's archive/tar):
//   exportLayer   — native: walks the layer's upper dir, overlay whiteouts become AUFS ones.
//   exportChanges — naive: a mounted tree plus a change list (deleted paths become whiteouts).
//
// Docker's rules, reproduced here (see test/fixtures/export/README.md for how they were checked):
// - Go filepath.Walk order: each directory's entries in byte order, a directory before its
//   children, the root itself never; names relative, directories with a trailing "/".
// - Headers from lstat: mode = permission, setuid/setgid/sticky and c_IS* type bits; mtime in
//   whole seconds, no atime/ctime; uname/gname looked up for the HOST ids; sockets skipped.
// - Hard links: a non-directory with nlink > 1 is written in full at its first path, later paths
//   are typeflag '1' naming the first one.
// - Only security.capability among xattrs (a revision-3 value cut to revision 2), as PAX.
// - uid/gid go through the id maps (host → container) except for whiteouts.
// - An overlay whiteout (char device 0/0) becomes an empty 0600 file ".wh.NAME". The kernel links
//   all whiteouts to one inode, and Docker's hard-link map runs before the conversion: later
//   whiteouts keep the first one's original path as a (meaningless) link name. We keep it too.
// - An opaque directory gets an empty "DIR/.wh..wh..opq" entry (mode = dir mode & 0777, mtime 0,
//   the directory's owners) right after its own entry. trusted.overlay.* is never exported.
//
// Deliberate differences from Docker: Docker logs and skips entries it cannot read, encode or
// map to a container id (leaving a silently incomplete layer); we fail the stream instead. A file
// that grew since it was listed is cut at the listed size (as Docker does); one that shrank fails.
// Limit: the shim takes paths as UTF-8 strings, so for a path that is not UTF-8 xattrs:'all' (and,
// in the naive export, the capability) cannot be read; the native export gets capabilities from
// the scan, which reads them relative to directory fds.
import { Readable } from 'node:stream';
import { closeSync, constants as fsConstants, lstatSync, openSync, readSync, readlinkSync } from 'node:fs';
import { isUtf8 } from 'node:buffer';
import type { Change } from './types.js';
import type { IdMappings } from '../idmap.js';
import { Overlay2Error, isErrno } from '../errors.js';
import { loadShim, type Shim, type ScanHandle } from '../native/shim.js';
import { AT_FDCWD, O_CLOEXEC } from '../native/constants.js';
import {
  BLOCK_SIZE, END_OF_ARCHIVE, TYPE_BLOCK, TYPE_CHAR, TYPE_DIR, TYPE_FIFO, TYPE_LINK, TYPE_REG, TYPE_SYMLINK,
  TarHeaderEncoder, blockPadding, cleanPath, type TarHeader,
} from '../tar/header.js';
import { IdNames } from '../tar/names.js';
import {
  RECORD_SIZE, OFF_INO, OFF_SIZE, OFF_MTIME_SEC, OFF_MODE, OFF_UID, OFF_GID, OFF_NLINK, OFF_DEV, OFF_RDEV,
  OFF_NAME_OFF, OFF_NAME_LEN, OFF_EXTRA_LEN, OFF_DEPTH, OFF_FLAGS, FLAG_OPAQUE, FLAG_CAPS,
  SCAN_SORTED, SCAN_OPAQUE, SCAN_USER_XATTR, SCAN_CAPS,
  S_IFMT, S_IFSOCK, S_IFLNK, S_IFREG, S_IFBLK, S_IFDIR, S_IFCHR, S_IFIFO,
} from '../core/records.js';

export interface ExportOptions {
  /** The opaque marker is user.overlay.opaque instead of trusted.overlay.opaque (rootless). */
  userxattr: boolean;
  /** The tar carries container ids (toContainer) — except whiteouts, which keep the kernel's. */
  idMappings: IdMappings;
  /** 'docker' (default): only security.capability, like Docker. 'all': every xattr except the
   *  overlay's own trusted.overlay.* / user.overlay.* bookkeeping. */
  xattrs?: 'docker' | 'all';
}

/** Native export: the upper dir of a layer whose parent is its lower, in Docker's layer format. */
export function exportLayer(upperDir: string, opts: ExportOptions): Readable {
  return new TarStream(() => new UpperDirSource(upperDir, opts));
}

/**
 * Naive export: `changes` (from comparing the layer with its parent) read from `root`, the
 * layer's mounted tree. Entries come in the same walk order as exportLayer's, and a deleted path
 * becomes a ".wh.NAME" file where NAME sorts (mode 0600, uid/gid 0, mtime 0), so the tar equals
 * the native one for the same change set except for whiteout times, owners and stale link names,
 * and an opaque directory, which appears as whiteouts of its old children instead of a
 * ".wh..wh..opq" marker. (moby's ExportChanges sorts plain paths and stamps whiteouts with the
 * current time, atime and ctime; we do not copy that.)
 */
export function exportChanges(root: string, changes: Change[], opts: ExportOptions): Readable {
  return new TarStream(() => new ChangesSource(root, changes, opts));
}

// ---------------------------------------------------------------------------------------------
// The stream: pulls entries one at a time and packs headers and file data into fresh chunks.

/** One entry to write: its header, and whether the source must open file data for it. */
interface ExportEntry {
  header: TarHeader;
  hasData: boolean; // a regular file with size > 0: openData() gives its fd
}

/** Returned by next() when the source is waiting for a batch: call whenReady() and try again. */
const NOT_READY = Symbol('not ready');

interface EntrySource {
  next(): ExportEntry | null | typeof NOT_READY;
  /** Registers the one callback to run when next() can make progress again (or failed). */
  whenReady(cb: (err: Error | null) => void): void;
  /** Opens the data of the entry next() returned last (O_RDONLY|O_NOFOLLOW). */
  openData(): number;
  /** The path of that entry, for messages. */
  dataPath(): string;
  close(): void;
}

// Chunks are pushed as they are and never reused (the reader may keep them). Measured here:
// fresh 1–2 MiB buffers keep page-faulting (glibc maps and unmaps them), from 2.5 MiB on they are
// recycled and copying file data into them runs at memory speed (see bench/RESULTS.md).
export const CHUNK_SIZE = 4 << 20;

class TarStream extends Readable {
  private source: EntrySource | null = null;
  private readonly encoder = new TarHeaderEncoder();
  private chunk: Buffer | null = null;   // the chunk being filled
  private pos = 0;
  private pending: Buffer | null = null; // header bytes that did not fit the last chunk
  private fd = -1;                       // file whose data comes next
  private dataLeft = 0;
  private padLeft = 0;
  private trailerLeft = -1;              // -1 until the entries run out
  private waiting = false;               // for the source; resumes by itself
  private scheduled = false;

  constructor(private readonly open: () => EntrySource) {
    super({ highWaterMark: CHUNK_SIZE });
  }

  // Readable.read() calls _read() and then takes everything buffered: a chunk pushed right here
  // would be concatenated with the one the reader is about to get (a copy of every byte).
  // Producing on the next tick hands out each chunk as it was filled.
  override _read(): void {
    if (this.waiting || this.scheduled) return;
    this.scheduled = true;
    process.nextTick(() => {
      this.scheduled = false;
      if (!this.destroyed) this.pump();
    });
  }

  /** Fills and pushes chunks until the reader has enough, the archive ends or the source waits. */
  private pump(): void {
    try {
      this.source ??= this.open();
      for (;;) {
        const state = this.fill();
        if (state === 'wait') {
          this.waiting = true;
          this.source.whenReady((err) => {
            this.waiting = false;
            if (err) this.destroy(err);
            else if (!this.destroyed) this.pump();
          });
          return;
        }
        const chunk = this.chunk!.subarray(0, this.pos);
        this.chunk = null;
        this.pos = 0;
        const more = chunk.length === 0 || this.push(chunk);
        if (state === 'end') {
          this.push(null);
          return;
        }
        if (!more) return;
      }
    } catch (e) {
      this.destroy(e as Error);
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.closeFile();
    try {
      this.source?.close();
    } catch (e) {
      err ??= e as Error;
    }
    cb(err);
  }

  /** Fills this.chunk: 'full', 'end' (the last bytes of the archive are in), or 'wait'. */
  private fill(): 'full' | 'end' | 'wait' {
    const chunk = (this.chunk ??= Buffer.allocUnsafe(CHUNK_SIZE));
    while (this.pos < CHUNK_SIZE) {
      const room = CHUNK_SIZE - this.pos;
      if (this.pending !== null) {
        const n = Math.min(this.pending.length, room);
        this.pending.copy(chunk, this.pos, 0, n);
        this.pos += n;
        this.pending = n === this.pending.length ? null : this.pending.subarray(n);
      } else if (this.dataLeft > 0) {
        this.pos += this.readData(chunk, this.pos, room);
      } else if (this.padLeft > 0) {
        const n = Math.min(this.padLeft, room);
        chunk.fill(0, this.pos, this.pos + n);
        this.pos += n;
        this.padLeft -= n;
      } else if (this.trailerLeft >= 0) {
        const n = Math.min(this.trailerLeft, room);
        chunk.fill(0, this.pos, this.pos + n);
        this.pos += n;
        this.trailerLeft -= n;
        if (this.trailerLeft === 0) return 'end';
      } else {
        const entry = this.source!.next();
        if (entry === NOT_READY) return 'wait';
        if (entry === null) this.trailerLeft = END_OF_ARCHIVE.length;
        else this.startEntry(entry, chunk, room);
      }
    }
    return 'full';
  }

  /** Writes the entry's header (what fits; the rest waits in `pending`) and opens its data. */
  private startEntry(entry: ExportEntry, chunk: Buffer, room: number): void {
    const h = entry.header;
    if (entry.hasData) {
      // Opened before the header goes out, so a failure never leaves a header without its data.
      this.fd = this.source!.openData();
      this.dataLeft = h.size;
      this.padLeft = blockPadding(h.size);
    }
    const bytes = this.encoder.encode(h);
    const n = Math.min(bytes.length, room);
    bytes.copy(chunk, this.pos, 0, n);
    this.pos += n;
    if (n < bytes.length) this.pending = Buffer.from(bytes.subarray(n));
  }

  /** Reads file data straight into the chunk; exactly the size the header announced. */
  private readData(chunk: Buffer, pos: number, room: number): number {
    const n = readSync(this.fd, chunk, pos, Math.min(this.dataLeft, room), null);
    if (n === 0) {
      const path = this.source!.dataPath();
      throw new Overlay2Error('ERR_BAD_ARCHIVE', `overlay2: ${path} shrank while it was being exported`, { path });
    }
    this.dataLeft -= n;
    if (this.dataLeft === 0) this.closeFile();
    return n;
  }

  private closeFile(): void {
    if (this.fd >= 0) {
      const fd = this.fd;
      this.fd = -1;
      closeSync(fd);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Docker's header rules, shared by both sources.


const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';
const CAPS_XATTR = 'security.capability';

/** What the header rules need to know about one file, from a scan record or an lstat. */
interface FileFacts {
  mode: number;       // st_mode
  uid: number;        // host ids
  gid: number;
  size: number;
  mtimeSec: number;   // st_mtim.tv_sec: Go's Truncate(time.Second) of the mtime
  nlink: number;
  inodeKey: string;   // identifies the inode for hard-link detection
  devmajor: number;   // of st_rdev, for the types Docker reads it for
  devminor: number;
}

class HeaderRules {
  private readonly names = new IdNames();
  private readonly seen = new Map<string, string>(); // inode → first name written
  readonly allXattrs: boolean;

  constructor(readonly opts: ExportOptions) {
    this.allXattrs = opts.xattrs === 'all';
    if (opts.xattrs !== undefined && opts.xattrs !== 'docker' && opts.xattrs !== 'all') {
      throw new Overlay2Error('ERR_BAD_OPTION', `overlay2: xattrs must be 'docker' or 'all', not ${JSON.stringify(opts.xattrs)}`, { option: 'xattrs' });
    }
  }

  /**
   * Docker's addTarFile up to (not including) the whiteout conversion: FileInfoHeader, the
   * capability xattr, the hard-link map, the id maps. Null for a socket (Go refuses those).
   * `rel` is the byte-string path without a trailing slash.
   */
  header(rel: string, f: FileFacts, linkTarget: string, xattrs: Array<[string, Buffer]> | null): TarHeader | null {
    const type = f.mode & S_IFMT;
    let typeflag: number;
    let name = rel;
    let size = 0;
    switch (type) {
      case S_IFREG: typeflag = TYPE_REG; size = f.size; break;
      case S_IFDIR: typeflag = TYPE_DIR; name = rel + '/'; break;
      case S_IFLNK: typeflag = TYPE_SYMLINK; break;
      case S_IFCHR: typeflag = TYPE_CHAR; break;
      case S_IFBLK: typeflag = TYPE_BLOCK; break;
      case S_IFIFO: typeflag = TYPE_FIFO; break;
      default: return null; // S_IFSOCK and anything unknown: "archive/tar: sockets not supported"
    }
    const h: TarHeader = {
      name,
      linkname: typeflag === TYPE_SYMLINK ? linkTarget : '',
      typeflag,
      mode: f.mode & 0o177777,
      uid: f.uid,
      gid: f.gid,
      size,
      mtime: f.mtimeSec,
      uname: this.names.userName(f.uid),
      gname: this.names.groupName(f.gid),
      // Docker's setHeaderForSpecialDevice tests st_mode & (S_IFBLK|S_IFCHR) bitwise, which also
      // matches directories, symlinks and sockets; their st_rdev is 0 on every real filesystem.
      devmajor: f.mode & 0o060000 ? f.devmajor : 0,
      devminor: f.mode & 0o060000 ? f.devminor : 0,
      xattrs,
    };
    if (type !== S_IFDIR && f.nlink > 1) {
      const first = this.seen.get(f.inodeKey);
      if (first !== undefined) {
        h.typeflag = TYPE_LINK;
        h.linkname = first;
        h.size = 0;
      } else {
        this.seen.set(f.inodeKey, name);
      }
    }
    const whiteout = type === S_IFCHR && h.devmajor === 0 && h.devminor === 0;
    if (!whiteout && !baseName(name).startsWith(WHITEOUT_PREFIX) && !this.opts.idMappings.empty) {
      const ids = this.opts.idMappings.toContainer(f.uid, f.gid);
      h.uid = ids.uid;
      h.gid = ids.gid;
    }
    return h;
  }

  /** A header for the D change of `rel` (naive export): an empty 0600 file owned by root. */
  deletedHeader(rel: string): TarHeader {
    const slash = rel.lastIndexOf('/');
    return {
      name: rel.slice(0, slash + 1) + WHITEOUT_PREFIX + rel.slice(slash + 1),
      linkname: '',
      typeflag: TYPE_REG,
      mode: 0o600,
      uid: 0,
      gid: 0,
      size: 0,
      mtime: 0,
      uname: this.names.userName(0),
      gname: this.names.groupName(0),
      devmajor: 0,
      devminor: 0,
      xattrs: null,
    };
  }
}

/** overlayWhiteoutConverter.ConvertWrite for a char device 0/0: rename to .wh.NAME, 0600 file. */
function toWhiteout(h: TarHeader): void {
  const slash = h.name.lastIndexOf('/');
  h.name = h.name.slice(0, slash + 1) + WHITEOUT_PREFIX + h.name.slice(slash + 1);
  h.mode = 0o600;
  h.typeflag = TYPE_REG;
  h.size = 0;
}

/** The entry Docker writes after an opaque directory's own. */
function opaqueMarker(dir: TarHeader): TarHeader {
  return {
    name: dir.name + OPAQUE_MARKER, // dir.name ends with "/"
    linkname: '',
    typeflag: TYPE_REG,
    mode: dir.mode & 0o777,
    uid: dir.uid,
    gid: dir.gid,
    size: 0,
    mtime: 0,
    uname: dir.uname,
    gname: dir.gname,
    devmajor: 0,
    devminor: 0,
    xattrs: null,
  };
}

function baseName(name: string): string {
  let end = name.length;
  while (end > 1 && name.charCodeAt(end - 1) === 0x2f) end--;
  return name.slice(name.lastIndexOf('/', end - 1) + 1, end);
}

/** Docker's ReadSecurityXattrToTarHeader: a VFS_CAP_REVISION_3 value becomes revision 2 (20 bytes),
 *  since the namespaced root uid it carries means nothing outside the user namespace. */
function dockerCapability(raw: Buffer): Buffer {
  if (raw.length > 3 && raw[3] === 3) {
    const v2 = Buffer.from(raw.subarray(0, Math.min(20, raw.length)));
    v2[3] = 2;
    return v2;
  }
  return raw;
}

function isOverlayXattr(name: string): boolean {
  return name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.');
}

const ASCII_ONLY = /^[\x00-\x7f]*$/;

/** The path as a JS string the shim can take (it only takes UTF-8), or null when the bytes are
 *  not UTF-8: such paths cannot be handed to lgetxattr/llistxattr through the shim. */
function shimPath(rootUtf8: string, rel: string): string | null {
  if (ASCII_ONLY.test(rel)) return rootUtf8 + '/' + rel;
  const bytes = Buffer.from(rel, 'latin1');
  return isUtf8(bytes) ? rootUtf8 + '/' + bytes.toString('utf8') : null;
}

/** Xattrs of one entry for its header: the capability (Docker's rule) and, with 'all', the rest. */
function readXattrs(shim: Shim, path: string | null, all: boolean, knownCaps: Buffer | null | undefined): Array<[string, Buffer]> | null {
  let caps = knownCaps;
  if (caps === undefined) {
    caps = null;
    if (path !== null) {
      try {
        caps = shim.lgetxattr(path, CAPS_XATTR);
      } catch {
        caps = null; // Docker ignores every error reading it
      }
    }
  }
  let out: Array<[string, Buffer]> | null = caps !== null ? [[CAPS_XATTR, dockerCapability(caps)]] : null;
  if (all && path !== null) {
    let names: string[];
    try {
      names = shim.llistxattr(path);
    } catch (e) {
      if (isErrno(e, 'EOPNOTSUPP') || isErrno(e, 'ENOTSUP')) return out; // no xattrs on this filesystem
      throw e;
    }
    for (const name of names) {
      if (name === CAPS_XATTR || isOverlayXattr(name)) continue;
      const value = shim.lgetxattr(path, name);
      if (value === null) continue; // removed meanwhile
      (out ??= []).push([Buffer.from(name, 'utf8').toString('latin1'), value]);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Native source: the shim's sorted depth-first scan of the upper dir.

// SCAN_CAPS: security.capability of every entry as the record's extra bytes (FLAG_CAPS).

const RECORDS_PER_BATCH = 4096;
const HEAP_SIZE = 1 << 20; // names + capability values of one batch; ≥ 255 + 65535 for any entry

const O_FILE = fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | O_CLOEXEC;
const O_DIR = fsConstants.O_RDONLY | fsConstants.O_DIRECTORY | fsConstants.O_NOFOLLOW | O_CLOEXEC;

interface BatchBuffers {
  records: Buffer;
  heap: Buffer;
}

/**
 * The upper dir as entries, from the shim's sorted depth-first scan. The scan runs one batch ahead
 * on the libuv pool (a second core) while this thread opens, reads and encodes the current batch.
 * File data is opened relative to a cached fd of its directory (openat2 of one name: no path walk,
 * and a renamed-away parent cannot redirect it).
 */
class UpperDirSource implements EntrySource {
  private readonly shim: Shim;
  private readonly rules: HeaderRules;
  private readonly rootUtf8: string;
  private readonly rootBytes: string;
  private handle: ScanHandle | null;
  private readonly buffers: [BatchBuffers, BatchBuffers];
  private current = 0;                       // which buffers hold the batch being read
  private count = 0;
  private index = 0;
  private scanDone = false;
  private prefetching = false;
  private prefetched: { count: number; done: boolean } | null = null;
  private prefetchError: Error | null = null;
  private onReady: ((err: Error | null) => void) | null = null;
  private closed = false;
  private readonly dirs: string[] = [];       // rel path of the directory at each depth (index depth-1)
  private readonly dirFds: number[] = [];     // fd of that directory (index depth; 0 = root), -1 unknown
  private queued: ExportEntry | null = null;  // an opaque marker to write after its directory
  private lastRel = '';
  private lastDepth = 0;
  private lastNameStart = 0;

  constructor(upperDir: string, opts: ExportOptions) {
    this.shim = loadShim();
    this.rules = new HeaderRules(opts);
    this.rootUtf8 = upperDir.replace(/\/+$/, '') || '/';
    this.rootBytes = Buffer.from(this.rootUtf8, 'utf8').toString('latin1');
    const batch = () => ({ records: Buffer.alloc(RECORD_SIZE * RECORDS_PER_BATCH), heap: Buffer.alloc(HEAP_SIZE) });
    this.buffers = [batch(), batch()];
    const flags = SCAN_SORTED | SCAN_OPAQUE | SCAN_CAPS | (opts.userxattr ? SCAN_USER_XATTR : 0);
    this.dirFds[0] = openSync(this.rootUtf8, O_DIR);
    try {
      this.handle = this.shim.scanOpen(AT_FDCWD, upperDir, flags);
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
        if (this.scanDone || this.handle === null) return null;
        if (this.prefetching) return NOT_READY;
        if (this.prefetchError !== null) throw this.prefetchError;
        let batch: { count: number; done: boolean };
        if (this.prefetched !== null) {
          batch = this.prefetched;
          this.prefetched = null;
          this.current ^= 1;
        } else {
          const b = this.buffers[this.current];
          batch = this.shim.scanNextSync(this.handle, b.records, b.heap); // the first batch
        }
        this.count = batch.count;
        this.index = 0;
        this.scanDone = batch.done;
        if (!batch.done) this.prefetch();
        continue;
      }
      const entry = this.entry(this.index++ * RECORD_SIZE);
      if (entry !== null) return entry;
    }
  }

  private prefetch(): void {
    const b = this.buffers[this.current ^ 1];
    this.prefetching = true;
    this.shim.scanNext(this.handle!, b.records, b.heap, (err, batch) => {
      this.prefetching = false;
      if (this.closed) return;
      if (err) this.prefetchError = err;
      else this.prefetched = batch;
      const cb = this.onReady;
      this.onReady = null;
      cb?.(null); // next() reports a failure
    });
  }

  whenReady(cb: (err: Error | null) => void): void {
    if (this.prefetching) this.onReady = cb;
    else setImmediate(cb, null);
  }

  openData(): number {
    const fd = this.dirFd(this.lastDepth - 1);
    const name = this.lastRel.slice(this.lastNameStart);
    if (fd >= 0 && ASCII_ONLY.test(name)) return this.shim.openat2(fd, name, O_FILE, 0, 0);
    const bytes = Buffer.from(name, 'latin1');
    if (fd >= 0 && isUtf8(bytes)) return this.shim.openat2(fd, bytes.toString('utf8'), O_FILE, 0, 0);
    return openSync(Buffer.from(this.rootBytes + '/' + this.lastRel, 'latin1'), O_FILE);
  }

  dataPath(): string {
    return this.rootUtf8 + '/' + Buffer.from(this.lastRel, 'latin1').toString('utf8');
  }

  /** The fd of the directory at `depth` on the current path (opened on first use), or -1 when its
   *  name cannot be handed to the shim (not UTF-8). */
  private dirFd(depth: number): number {
    const known = this.dirFds[depth];
    if (known !== undefined && known !== -1) return known;
    const parent = this.dirFd(depth - 1);
    const rel = this.dirs[depth - 1]!;
    const bytes = Buffer.from(rel.slice(rel.lastIndexOf('/') + 1), 'latin1');
    const fd = parent >= 0 && isUtf8(bytes) ? this.shim.openat2(parent, bytes.toString('utf8'), O_DIR, 0, 0) : -2;
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
    if (this.handle !== null) {
      const h = this.handle;
      this.handle = null;
      this.shim.scanClose(h); // waits for an in-flight batch by itself
    }
  }

  private entry(off: number): ExportEntry | null {
    const { records: r, heap } = this.buffers[this.current];
    const depth = r.readUInt16LE(off + OFF_DEPTH);
    const nameOff = r.readUInt32LE(off + OFF_NAME_OFF);
    const nameLen = r.readUInt16LE(off + OFF_NAME_LEN);
    const name = heap.toString('latin1', nameOff, nameOff + nameLen);
    const rel = depth === 1 ? name : this.dirs[depth - 2] + '/' + name;
    const mode = r.readUInt32LE(off + OFF_MODE);
    const type = mode & S_IFMT;
    if (type === S_IFDIR) {
      this.dirs[depth - 1] = rel;
      if (depth < this.dirFds.length) this.forgetDirFds(depth);
    }
    if (type === S_IFSOCK) return null;
    const flags = r.readUInt16LE(off + OFF_FLAGS);
    const nlink = r.readUInt32LE(off + OFF_NLINK);
    const rdev = r.readUInt32LE(off + OFF_RDEV);
    const facts: FileFacts = {
      mode,
      uid: r.readUInt32LE(off + OFF_UID),
      gid: r.readUInt32LE(off + OFF_GID),
      size: r.readUInt32LE(off + OFF_SIZE) + r.readInt32LE(off + OFF_SIZE + 4) * 0x1_0000_0000,
      mtimeSec: r.readUInt32LE(off + OFF_MTIME_SEC) + r.readInt32LE(off + OFF_MTIME_SEC + 4) * 0x1_0000_0000,
      nlink,
      inodeKey: nlink > 1
        ? `${r.readUInt32LE(off + OFF_DEV)}:${r.readUInt32LE(off + OFF_INO + 4)}:${r.readUInt32LE(off + OFF_INO)}`
        : '',
      devmajor: rdev >>> 20,
      devminor: rdev & 0xfffff,
    };

    // The scan read security.capability for every entry (Docker reads it for every entry too:
    // directories and symlinks can carry one).
    let caps: Buffer | null = null;
    if (flags & FLAG_CAPS) {
      const extraLen = r.readUInt16LE(off + OFF_EXTRA_LEN);
      caps = Buffer.from(heap.subarray(nameOff + nameLen, nameOff + nameLen + extraLen));
    }
    const all = this.rules.allXattrs;
    const xattrs = readXattrs(this.shim, all ? shimPath(this.rootUtf8, rel) : null, all, caps);
    const link = type === S_IFLNK ? readlinkSync(Buffer.from(this.rootBytes + '/' + rel, 'latin1'), { encoding: 'latin1' }) : '';
    const h = this.rules.header(rel, facts, link, xattrs);
    if (h === null) return null;

    if (type === S_IFCHR && h.devmajor === 0 && h.devminor === 0) {
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
    }
    return { header: h, hasData };
  }
}

/** A whiteout carries what Docker would give it (the capability, if any), never other xattrs. */
function keepCaps(xattrs: Array<[string, Buffer]> | null): Array<[string, Buffer]> | null {
  const caps = xattrs?.filter(([k]) => k === CAPS_XATTR) ?? [];
  return caps.length > 0 ? caps : null;
}

// ---------------------------------------------------------------------------------------------
// Naive source: the changed paths, read through the layer's mounted tree.

interface SortedChange {
  rel: string;      // byte string, no leading "/"
  key: string;      // rel with "/" as "\0": plain string order is then walk order
  deleted: boolean;
}

class ChangesSource implements EntrySource {
  private readonly shim: Shim;
  private readonly rules: HeaderRules;
  private readonly rootUtf8: string;
  private readonly rootBytes: string;
  private readonly list: SortedChange[];
  private index = 0;
  private lastPath = Buffer.alloc(0);

  constructor(root: string, changes: Change[], opts: ExportOptions) {
    this.shim = loadShim();
    this.rules = new HeaderRules(opts);
    this.rootUtf8 = root.replace(/\/+$/, '') || '/';
    this.rootBytes = Buffer.from(this.rootUtf8, 'utf8').toString('latin1');
    const list: SortedChange[] = [];
    for (const c of changes) {
      const clean = cleanPath('/' + c.path);
      if (clean === '/') continue;
      const rel = Buffer.from(clean.slice(1), 'utf8').toString('latin1');
      list.push({ rel, key: rel.replaceAll('/', '\0'), deleted: c.kind === 'D' });
    }
    list.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    this.list = list.filter((c, i) => i === 0 || list[i - 1]!.key !== c.key);
  }

  next(): ExportEntry | null {
    while (this.index < this.list.length) {
      const c = this.list[this.index++]!;
      if (c.deleted) return { header: this.rules.deletedHeader(c.rel), hasData: false };
      const abs = Buffer.from(this.rootBytes + '/' + c.rel, 'latin1');
      const st = lstatSync(abs, { bigint: true });
      const mode = Number(st.mode);
      const type = mode & S_IFMT;
      if (type === S_IFSOCK) continue;
      const nsec = st.mtimeNs % 1_000_000_000n;
      const rdev = st.rdev;
      const facts: FileFacts = {
        mode,
        uid: Number(st.uid),
        gid: Number(st.gid),
        size: Number(st.size),
        mtimeSec: Number((st.mtimeNs - (nsec < 0n ? nsec + 1_000_000_000n : nsec)) / 1_000_000_000n),
        nlink: Number(st.nlink),
        inodeKey: `${st.dev}:${st.ino}`,
        devmajor: Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn)),
        devminor: Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn)),
      };
      const xattrs = readXattrs(this.shim, shimPath(this.rootUtf8, c.rel), this.rules.allXattrs, undefined);
      const link = type === S_IFLNK ? readlinkSync(abs, { encoding: 'latin1' }) : '';
      const h = this.rules.header(c.rel, facts, link, xattrs);
      if (h === null) continue;
      this.lastPath = abs;
      return { header: h, hasData: h.typeflag === TYPE_REG && h.size > 0 };
    }
    return null;
  }

  whenReady(cb: (err: Error | null) => void): void {
    setImmediate(cb, null);
  }

  openData(): number {
    return openSync(this.lastPath, O_FILE);
  }

  dataPath(): string {
    return this.lastPath.toString('utf8');
  }

  close(): void {}
}

