// applyDiff: imports a layer tar (moby's UnpackLayer / Unpack with the overlay whiteout converter).
// What an archive may and may not do to the tree: archive-safety.ts.
import * as fs from 'node:fs';
import { basename, join } from 'node:path';
import type { Readable } from 'node:stream';
import type { ApplyTap } from './tap.js';
import { Overlay2Error, isErrno } from '../errors.js';
import type { LayerContext } from '../context.js';
import { loadShim, type Shim } from '../native/shim.js';
import {
  AT_FDCWD, AT_REMOVEDIR, AT_SYMLINK_NOFOLLOW, O_CLOEXEC, O_CREAT, O_DIRECTORY, O_EXCL, O_NOFOLLOW,
  O_RDONLY, O_WRONLY,
} from '../native/constants.js';
import { feed } from '../tar/input.js';
import { TarReader, type TarEntry, type TarSink } from '../tar/reader.js';
import { S_IFCHR, S_IFBLK, S_IFIFO } from '../core/records.js';
import { createStaging, isEmptyDir, removeStaleStaging as removeStaging, swapIntoPlace } from './staging.js';
import { directorySize } from '../size/directory-size.js';
import { RESOLVE, bad, cleanName, symlinkEscapes, unsafe } from '../tar/archive-safety.js';
import {
  OPAQUE_VALUE, TAR_AUFS_META_PREFIX, TAR_OPAQUE_MARKER, TAR_WHITEOUT_PREFIX, WHITEOUT_DEVICE, isOpaqueXattr,
  isOverlayBookkeeping, opaqueXattr,
} from '../overlay-format.js';
import { DIR_PATH_FLAGS, DirFdCache } from './dir-fd-cache.js';
import { BATCHED_FILE_MAX, BATCHED_NAME_MAX, FileBatches } from './file-batches.js';
import { applyFailure, cleanupAfter } from './errors.js';
import { removeTree } from '../layout/remove-tree.js';
import { byteString, displayName, osName } from '../util/byte-names.js';

export { cleanName };

/** The context (src/context.ts: shim, userxattr — the opaque marker's namespace —, idMappings:
 *  archive ids are container ids, files get idMappings.toHost of them) plus the apply's own options. */
export interface ApplyOptions extends LayerContext {
  /** Told about what was skipped (a device node where mknod is not permitted, an xattr the
   *  filesystem does not take). */
  onWarning?: (msg: string) => void;
  /** The layer's id, for error messages (applyLayer: the layer dir's name by default). */
  layer?: string;
  /** syncfs() the layer's filesystem before the staging dir is swapped in (applyLayer only). Off by
   *  default, as in Docker: see bench/RESULTS.md for what it costs. */
  sync?: boolean;
  /** Sees the uncompressed bytes and the entries as they pass (progress, abort, tar-split, digests);
   *  throwing from it aborts the apply like a bad entry does. */
  tap?: ApplyTap;
  /** Run the extraction on a worker thread of its own (src/stream-worker/): the event loop only
   *  reads the input, parses a shadow copy for the tap, and hands the chunks on. */
  offThread?: boolean;
}

/** A layer stream: a Node Readable or any async iterable of bytes. */
export type ApplyInput = Readable | AsyncIterable<Uint8Array>;

const CREATE_FILE_FLAGS = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;

/** Native apply into a layer dir (HOME/<id>): extracts into a staging dir beside diff/ and swaps it
 *  in, so a crash never leaves a half-filled diff/. When diff/ already has content the archive is
 *  applied in place (moby's semantics; only the empty-layer case, Docker's only use, is atomic).
 *  Returns moby's directory.Size of the resulting diff dir. */
export async function applyLayer(layerDir: string, tar: ApplyInput, opts: ApplyOptions): Promise<number> {
  const layer = opts.layer ?? basename(layerDir);
  const shim = opts.shim ?? loadShim();
  const diffDir = join(layerDir, 'diff');
  let staging = '';
  try {
    if (!isEmptyDir(diffDir)) {
      // the extractor's running count only holds for a tree it wrote from empty
      await extract(shim, diffDir, tar, opts, 'layer');
      return await directorySize(diffDir);
    }
    staging = await createStaging(layerDir, diffDir);
    const size = await extract(shim, staging, tar, opts, 'layer');
    if (opts.sync) syncfsOf(shim, staging);
    await swapIntoPlace(shim, staging, diffDir, opts.onWarning);
    return size;
  } catch (e) {
    endInput(tar);
    // The refusal (or the failure) is what the caller hears about; the staging dir goes (on the pool:
    // a cut-off import can be a big tree) before we return, and whatever would not go rides along as
    // e.cleanupErrors.
    const failure = applyFailure(e, layer, (e as { entry?: string }).entry ?? '');
    if (staging === '') throw failure;
    throw await cleanupAfter(failure, () => removeTree(staging), opts.onWarning);
  }
}

/** Naive apply through a mounted layer (moby's ApplyUncompressedLayer): whiteouts delete from
 *  `mergedDir`, opaque markers remove the dir's children this archive did not create. Returns what
 *  moby returns there: the sum of the archive's entry sizes. */
export async function applyThroughMount(mergedDir: string, tar: ApplyInput, opts: ApplyOptions): Promise<number> {
  try {
    return await extract(opts.shim ?? loadShim(), mergedDir, tar, opts, 'mount');
  } catch (e) {
    endInput(tar);
    throw applyFailure(e, opts.layer ?? '', (e as { entry?: string }).entry ?? '');
  }
}

/** A failed import ends its input (a Readable is destroyed; an iterator is returned). */
function endInput(tar: ApplyInput): void {
  const r = tar as Partial<Readable>;
  if (typeof r.destroy === 'function') r.destroy();
}

/** Removes leftovers of interrupted applies in a layer dir; returns how many. */
export function removeStaleStaging(layerDir: string): Promise<number> {
  return removeStaging(layerDir);
}

function syncfsOf(shim: Shim, dir: string): void {
  const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    shim.syncfs(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export type Mode = 'layer' | 'mount';

async function extract(shim: Shim, root: string, tar: ApplyInput, opts: ApplyOptions, mode: Mode): Promise<number> {
  if (opts.offThread) {
    const { extractInWorker } = await import('../stream-worker/host.js');
    return extractInWorker(root, tar, opts, mode);
  }
  const session = new ExtractSession(shim, root, opts, mode);
  const tap = opts.tap;
  try {
    if (tap) await feed(tar, (chunk) => { tap.before(chunk); session.push(chunk); tap.after(chunk); }, (n) => tap.input(n));
    else await feed(tar, (chunk) => session.push(chunk));
    session.finish();
    tap?.finish();
    return session.size;
  } catch (e) {
    throw session.annotate(e);
  } finally {
    session.close();
  }
}

/** One extraction driven chunk by chunk, synchronously: what extract() runs on the event loop and
 *  the stream worker (src/stream-worker/) runs on its own thread. */
export class ExtractSession {
  private readonly rootFd: number;
  private readonly ex: Extractor;
  private readonly reader: TarReader;

  constructor(shim: Shim, root: string, opts: ApplyOptions, mode: Mode) {
    this.rootFd = shim.openat2(AT_FDCWD, root, DIR_PATH_FLAGS, 0, 0);
    try {
      this.ex = new Extractor(shim, this.rootFd, opts, mode);
    } catch (e) {
      fs.closeSync(this.rootFd);
      throw e;
    }
    this.reader = new TarReader(opts.tap ? opts.tap.wrap(this.ex) : this.ex);
  }

  get size(): number {
    return this.ex.size;
  }

  /** After each chunk, what was batched goes: a file is never held back waiting for more input. */
  push(chunk: Buffer): void {
    this.reader.push(chunk);
    this.ex.flush();
  }

  finish(): void {
    this.reader.finish();
    this.ex.finish();
  }

  annotate(e: unknown): unknown {
    return annotate(e, this.ex.currentName);
  }

  close(): void {
    try {
      this.ex.close();
    } finally {
      fs.closeSync(this.rootFd);
    }
  }
}

/** Remembers which entry a system error was raised at; applyFailure() words it. */
function annotate(e: unknown, name: string): unknown {
  if (e instanceof Overlay2Error || !(e instanceof Error) || !name) return e;
  const err = e as Error & { entry?: string };
  if (err.entry === undefined) err.entry = displayName(name);
  return err;
}

interface DirTimes { as: number; an: number; ms: number; mn: number }

/** The TarSink that creates the tree. One instance per import; not reentrant. */
class Extractor implements TarSink {
  /** layer: Σ st_size of distinct non-dir inodes in the tree; mount: Σ entry sizes (moby). */
  size = 0;
  currentName = '';

  private readonly opaqueName: string;
  private readonly identityIds: boolean;
  private readonly umask: number;
  private readonly rootUid: number;
  private readonly rootGid: number;
  private readonly dirs: DirFdCache;
  /** layer mode: small files are created in batches on two threads (file-batches.ts); through a
   *  mount (where most creates replace a lower file) they are made one by one. */
  private readonly batches: FileBatches | null;
  /** The regular file being read goes into a batch. */
  private batching = false;
  /** Who a new inode belongs to without a chown (the fs ids of this process). */
  private readonly creatorUid = process.geteuid?.() ?? 0;
  private readonly creatorGid = process.getegid?.() ?? 0;
  private fileChown = true;
  private readonly dirTimes = new Map<string, DirTimes>();
  /** mount mode: paths this archive created, which an opaque marker keeps (moby's unpackedPaths). */
  private readonly unpacked: Set<string> | null;
  // the regular file being written
  private fd = -1;
  private skipping = false;
  private fileParentFd = -1;
  private fileBase = '';
  private fileUid = 0;
  private fileGid = 0;
  private fileMode = 0;
  private fileAs = 0;
  private fileAn = 0;
  private fileMs = 0;
  private fileMn = 0;
  private fileXattrs: Array<[string, Buffer]> | null = null;
  // last id translation (most entries share one owner)
  private lastUid = -1;
  private lastGid = -1;
  private hostUid = 0;
  private hostGid = 0;
  private warnedXattr = false;

  constructor(
    private readonly shim: Shim,
    private readonly rootFd: number,
    private readonly opts: ApplyOptions,
    private readonly mode: Mode,
  ) {
    this.opaqueName = opaqueXattr(opts.userxattr);
    this.identityIds = opts.idMappings.empty;
    this.umask = currentUmask();
    const root = opts.idMappings.root();
    this.rootUid = root.uid;
    this.rootGid = root.gid;
    this.unpacked = mode === 'mount' ? new Set() : null;
    this.batches = mode === 'layer' ? new FileBatches(shim, (pfd, path) => this.makeRoomFor(pfd, path)) : null;
    this.dirs = new DirFdCache(shim, rootFd, (pfd, name, path) => this.madeParent(pfd, name, path), () => this.settleAll());
    this.dirs.noteSgid(rootFd);
  }

  // ---- TarSink ---------------------------------------------------------------------------------

  entry(e: TarEntry): void {
    const name = e.name;
    this.currentName = name;
    this.skipping = false;
    if (name.includes('\0')) throw bad(name, 'NUL in name');
    const path = cleanName(name);
    if (path === null) throw unsafe(name, 'name climbs out of the layer');
    if (this.mode === 'mount') this.size += e.size;
    this.dirs.trimParents();

    if (path === '') {
      if (e.kind !== 'dir') throw unsafe(name, `the layer root cannot become a ${e.kind}`);
      this.settleAll();
      this.rootAttributes(e);
      return;
    }
    if (path.includes(TAR_WHITEOUT_PREFIX)) {
      this.settleAll();
      if (this.whiteoutEntry(e, path)) return;
    }

    const slash = path.lastIndexOf('/');
    const parent = slash < 0 ? '' : path.slice(0, slash);
    const base = slash < 0 ? path : path.slice(slash + 1);
    if (this.batches && this.dirs.cached(parent) === undefined) this.settleAncestors(parent);
    const pfd = this.dirs.parentFd(parent, name, true);
    this.unpacked?.add(path);
    this.ids(e.uid, e.gid);
    if (e.kind === 'file' && this.batches && e.size <= BATCHED_FILE_MAX && e.xattrs === null &&
        base.length <= BATCHED_NAME_MAX && this.dirs.cached(path) === undefined) {
      this.batchedFile(this.batches, e, pfd, base, path);
      return;
    }
    if (e.kind === 'hardlink') this.settleAll();
    else this.batches?.settleDir(pfd);
    switch (e.kind) {
      case 'file': this.file(e, pfd, parent, base, path); break;
      case 'dir': this.dir(e, pfd, parent, base, path); break;
      case 'symlink': this.symlink(e, pfd, parent, base, path); break;
      case 'hardlink': this.hardlink(e, pfd, parent, base, path); break;
      case 'char': case 'block': case 'fifo': this.node(e, pfd, parent, base, path); break;
    }
  }

  data(buf: Buffer, start: number, end: number): void {
    if (this.skipping) return;
    if (this.batching) {
      this.batches!.data(buf, start, end);
      return;
    }
    const fd = this.fd;
    while (start < end) start += fs.writeSync(fd, buf, start, end - start);
  }

  end(): void {
    this.batching = false;
    const fd = this.fd;
    if (fd < 0) return;
    this.fd = -1;
    try {
      if (this.fileChown) fs.fchownSync(fd, this.fileUid, this.fileGid);
      if (this.fileXattrs) this.setXattrsFd(fd, this.fileXattrs);
      if (this.needsChmod(this.fileMode)) fs.fchmodSync(fd, this.fileMode);
      if (this.fileAn === 0 && this.fileMn === 0) fs.futimesSync(fd, this.fileAs, this.fileMs);
      else this.shim.utimensat(this.fileParentFd, osName(this.fileBase), this.fileAs, this.fileAn, this.fileMs, this.fileMn, AT_SYMLINK_NOFOLLOW);
    } finally {
      fs.closeSync(fd);
    }
  }

  // ---- end of archive ------------------------------------------------------------------------

  /** Directory times last (creating children changed them), deepest first. */
  finish(): void {
    this.currentName = '';
    this.settleAll();
    const paths = [...this.dirTimes.keys()];
    for (let i = paths.length - 1; i >= 0; i--) {
      const path = paths[i];
      const t = this.dirTimes.get(path)!;
      if (path === '') {
        this.shim.utimensat(AT_FDCWD, `/proc/self/fd/${this.rootFd}`, t.as, t.an, t.ms, t.mn, 0);
        continue;
      }
      const slash = path.lastIndexOf('/');
      const pfd = this.dirs.parentFd(slash < 0 ? '' : path.slice(0, slash), path, false);
      this.shim.utimensat(pfd, osName(slash < 0 ? path : path.slice(slash + 1)), t.as, t.an, t.ms, t.mn, AT_SYMLINK_NOFOLLOW);
    }
  }

  /** Between input chunks: batched files go to a thread (the one being read stays). */
  flush(): void {
    if (!this.batching) this.batches?.flush();
  }

  close(): void {
    this.batches?.abandon();
    if (this.fd >= 0) {
      fs.closeSync(this.fd);
      this.fd = -1;
    }
    this.dirs.close();
  }

  // ---- entry kinds -------------------------------------------------------------------------------

  /** A small new file: created later, in a batch, with what file() and end() would do. */
  private batchedFile(batches: FileBatches, e: TarEntry, pfd: number, base: string, path: string): void {
    this.setTimes(e);
    batches.add({
      dirFd: pfd, base, path, entry: e.name, openFlags: CREATE_FILE_FLAGS, createMode: e.mode & 0o777, resolve: RESOLVE,
      chown: this.needsChown(pfd), uid: this.hostUid, gid: this.hostGid, chmod: this.needsChmod(e.mode), chmodMode: e.mode,
      atimeSec: this.fileAs, atimeNsec: this.fileAn, mtimeSec: this.fileMs, mtimeNsec: this.fileMn, size: e.size,
    });
    this.batching = e.size > 0;
    this.size += e.size;
  }

  private file(e: TarEntry, pfd: number, parent: string, base: string, path: string): void {
    let fd: number;
    try {
      fd = this.shim.openat2(pfd, osName(base), CREATE_FILE_FLAGS, e.mode & 0o777, RESOLVE);
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
      pfd = this.makeRoom(pfd, parent, base, path);
      fd = this.shim.openat2(pfd, osName(base), CREATE_FILE_FLAGS, e.mode & 0o777, RESOLVE);
    }
    this.fd = fd;
    this.fileChown = this.needsChown(pfd);
    this.fileParentFd = pfd;
    this.fileBase = base;
    this.fileUid = this.hostUid;
    this.fileGid = this.hostGid;
    this.fileMode = e.mode;
    this.setTimes(e);
    this.fileXattrs = e.xattrs;
    if (this.mode === 'layer') this.size += e.size;
  }

  private dir(e: TarEntry, pfd: number, parent: string, base: string, path: string): void {
    let existed = false;
    try {
      this.shim.mkdirat(pfd, osName(base), e.mode & 0o777);
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
      if (this.lstat(pfd, base).isDirectory()) {
        existed = true;
        this.settleAll(); // its new owner, mode and setgid bit must not reach files batched before
      } else {
        pfd = this.makeRoom(pfd, parent, base, path);
        this.shim.mkdirat(pfd, osName(base), e.mode & 0o777);
      }
    }
    if (existed || this.needsChown(pfd)) this.shim.fchownat(pfd, osName(base), this.hostUid, this.hostGid, AT_SYMLINK_NOFOLLOW);
    if (e.xattrs) this.setXattrsDir(pfd, base, e.xattrs);
    // mkdir in a setgid dir inherits S_ISGID: the header's mode must win
    if (existed || this.needsChmod(e.mode) || this.dirs.isSgid(pfd)) {
      this.shim.fchmodat(pfd, osName(base), e.mode);
      if (existed) this.dirs.refreshSgid(path);
    }
    this.dirTimes.set(path, this.times(e));
  }

  private symlink(e: TarEntry, pfd: number, parent: string, base: string, path: string): void {
    const target = e.linkname;
    if (target.includes('\0')) throw bad(e.name, 'NUL in symlink target');
    if (symlinkEscapes(parent, target)) throw unsafe(e.name, `symlink target ${JSON.stringify(displayName(target))} climbs out of the layer`);
    try {
      this.shim.symlinkat(osName(target), pfd, osName(base));
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
      pfd = this.makeRoom(pfd, parent, base, path);
      this.shim.symlinkat(osName(target), pfd, osName(base));
    }
    if (this.needsChown(pfd)) this.shim.fchownat(pfd, osName(base), this.hostUid, this.hostGid, AT_SYMLINK_NOFOLLOW);
    if (e.xattrs) this.setXattrsPath(pfd, base, e.xattrs);
    this.setTimes(e);
    this.shim.utimensat(pfd, osName(base), this.fileAs, this.fileAn, this.fileMs, this.fileMn, AT_SYMLINK_NOFOLLOW);
    if (this.mode === 'layer') this.size += Buffer.byteLength(target);
  }

  private hardlink(e: TarEntry, pfd: number, parent: string, base: string, path: string): void {
    if (e.linkname.includes('\0')) throw bad(e.name, 'NUL in hardlink target');
    const target = cleanName(e.linkname);
    if (target === null) throw unsafe(e.name, `hardlink target ${JSON.stringify(displayName(e.linkname))} climbs out of the layer`);
    if (target === '') throw unsafe(e.name, 'hardlink to the layer root');
    if (target === path) return; // a link to itself: the file is already there
    const tslash = target.lastIndexOf('/');
    const tparent = tslash < 0 ? '' : target.slice(0, tslash);
    const tbase = tslash < 0 ? target : target.slice(tslash + 1);
    let tpfd = this.dirs.existingDirFd(tparent, e.name, target);
    try {
      this.shim.linkat(tpfd, osName(tbase), pfd, osName(base), 0);
    } catch (err) {
      if (isErrno(err, 'EEXIST')) {
        pfd = this.makeRoom(pfd, parent, base, path);
        tpfd = this.dirs.existingDirFd(tparent, e.name, target);
        try {
          this.shim.linkat(tpfd, osName(tbase), pfd, osName(base), 0);
          return;
        } catch (again) {
          err = again;
        }
      }
      if (isErrno(err, 'ENOENT')) throw bad(e.name, `hardlink target ${JSON.stringify(displayName(e.linkname))} does not exist`);
      if (isErrno(err, 'EPERM') && this.lstatMaybe(tpfd, tbase)?.isDirectory()) {
        throw unsafe(e.name, `hardlink to a directory ${JSON.stringify(displayName(e.linkname))}`);
      }
      throw err;
    }
  }

  private node(e: TarEntry, pfd: number, parent: string, base: string, path: string): void {
    const type = e.kind === 'char' ? S_IFCHR : e.kind === 'block' ? S_IFBLK : S_IFIFO;
    try {
      this.mknod(pfd, parent, base, path, type | (e.mode & 0o777), e.devmajor, e.devminor);
    } catch (err) {
      if (isErrno(err, 'EPERM') && type !== S_IFIFO) {
        this.opts.onWarning?.(`overlay2: skipped device node ${JSON.stringify(displayName(e.name))}: mknod is not permitted here`);
        this.unpacked?.delete(path);
        return;
      }
      throw err;
    }
    if (this.needsChown(pfd)) this.shim.fchownat(pfd, osName(base), this.hostUid, this.hostGid, AT_SYMLINK_NOFOLLOW);
    if (e.xattrs) this.setXattrsPath(pfd, base, e.xattrs);
    if (this.needsChmod(e.mode)) this.shim.fchmodat(pfd, osName(base), e.mode);
    this.setTimes(e);
    this.shim.utimensat(pfd, osName(base), this.fileAs, this.fileAn, this.fileMs, this.fileMn, AT_SYMLINK_NOFOLLOW);
  }

  private mknod(pfd: number, parent: string, base: string, path: string, mode: number, major: number, minor: number): number {
    try {
      this.shim.mknodat(pfd, osName(base), mode, major, minor);
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
      pfd = this.makeRoom(pfd, parent, base, path);
      this.shim.mknodat(pfd, osName(base), mode, major, minor);
    }
    return pfd;
  }

  private rootAttributes(e: TarEntry): void {
    this.ids(e.uid, e.gid);
    const self = `/proc/self/fd/${this.rootFd}`;
    fs.chownSync(self, this.hostUid, this.hostGid);
    if (e.xattrs) this.setXattrsDir(this.rootFd, '.', e.xattrs);
    fs.chmodSync(self, e.mode);
    this.dirs.noteSgid(this.rootFd);
    this.dirTimes.set('', this.times(e));
  }

  // ---- whiteouts ---------------------------------------------------------------------------------

  /** Handles AUFS whiteout and metadata names; false when `path` is an ordinary entry after all. */
  private whiteoutEntry(e: TarEntry, path: string): boolean {
    const parts = path.split('/');
    if (parts[0].startsWith(TAR_AUFS_META_PREFIX) && path !== TAR_OPAQUE_MARKER) {
      this.skipping = true; // AUFS metadata (.wh..wh.plnk, .wh..wh.aufs, ...) and what is under it
      return true;
    }
    for (let i = 0; i < parts.length - 1; i++) {
      if (parts[i].startsWith(TAR_WHITEOUT_PREFIX)) throw unsafe(e.name, 'a whiteout cannot have children');
    }
    const base = parts[parts.length - 1];
    if (!base.startsWith(TAR_WHITEOUT_PREFIX)) return false;
    this.skipping = true;
    const parent = parts.slice(0, -1).join('/');
    if (base === TAR_OPAQUE_MARKER) {
      this.opaque(e, parent);
      return true;
    }
    if (base.startsWith(TAR_AUFS_META_PREFIX)) return true; // AUFS metadata deeper down: nothing to apply
    const victim = base.slice(TAR_WHITEOUT_PREFIX.length);
    if (victim === '' || victim === '.' || victim === '..') throw unsafe(e.name, `invalid whiteout name ${JSON.stringify(displayName(base))}`);
    const victimPath = parent === '' ? victim : `${parent}/${victim}`;
    if (this.mode === 'mount') {
      const pfd = this.dirs.lookupDir(parent, e.name);
      if (pfd === null) return true;
      const st = this.lstatMaybe(pfd, victim);
      if (st) this.remove(pfd, victim, victimPath, st.isDirectory());
      return true;
    }
    const pfd = this.dirs.parentFd(parent, e.name, true);
    this.ids(e.uid, e.gid);
    this.mknod(pfd, parent, victim, victimPath, S_IFCHR | (e.mode & 0o777), WHITEOUT_DEVICE.major, WHITEOUT_DEVICE.minor);
    if (this.needsChown(pfd)) this.shim.fchownat(pfd, osName(victim), this.hostUid, this.hostGid, AT_SYMLINK_NOFOLLOW);
    if (this.needsChmod(e.mode)) this.shim.fchmodat(pfd, osName(victim), e.mode);
    return true;
  }

  private opaque(e: TarEntry, dir: string): void {
    if (this.mode === 'layer') {
      const pfd = dir === '' ? this.rootFd : this.dirs.parentFd(dir, e.name, true);
      const fd = this.shim.openat2(pfd, '.', O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE);
      try {
        this.shim.fsetxattr(fd, this.opaqueName, OPAQUE_VALUE, 0);
      } finally {
        fs.closeSync(fd);
      }
      return;
    }
    // Through a mount: the kernel records the deletions; remove what this archive did not bring.
    const fd = dir === '' ? this.rootFd : this.dirs.lookupDir(dir, e.name);
    if (fd === null) throw bad(e.name, 'opaque marker for a directory that does not exist');
    this.removeUnpackedExcept(fd, dir);
  }

  private removeUnpackedExcept(dirFd: number, dirPath: string): void {
    for (const ent of fs.readdirSync(`/proc/self/fd/${dirFd}`, { withFileTypes: true, encoding: 'buffer' })) {
      const name = byteString(ent.name);
      const childPath = dirPath === '' ? name : `${dirPath}/${name}`;
      if (!this.unpacked!.has(childPath)) {
        this.remove(dirFd, name, childPath, ent.isDirectory());
      } else if (ent.isDirectory()) {
        const fd = this.shim.openat2(dirFd, osName(name), DIR_PATH_FLAGS | O_NOFOLLOW, 0, RESOLVE);
        try {
          this.removeUnpackedExcept(fd, childPath);
        } finally {
          fs.closeSync(fd);
        }
      }
    }
  }

  // ---- replacing and removing ------------------------------------------------------------------

  /** Removes what stands at parent/base so an entry of another kind can take its place. Returns the
   *  parent's fd, which stays valid (only fds below `path` are dropped). */
  private makeRoom(pfd: number, _parent: string, base: string, path: string): number {
    this.settleAll();
    const st = this.lstat(pfd, base);
    this.remove(pfd, base, path, st.isDirectory(), st);
    return pfd;
  }

  private remove(pfd: number, base: string, path: string, isDir: boolean, st?: fs.Stats): void {
    if (!isDir) {
      if (this.mode === 'layer') {
        const s = st ?? this.lstat(pfd, base);
        if (s.nlink === 1) this.size -= s.size;
      }
      this.shim.unlinkat(pfd, osName(base), 0);
      return;
    }
    this.forgetBelow(path);
    const fd = this.shim.openat2(pfd, osName(base), DIR_PATH_FLAGS | O_NOFOLLOW, 0, RESOLVE);
    try {
      for (const ent of fs.readdirSync(`/proc/self/fd/${fd}`, { withFileTypes: true, encoding: 'buffer' })) {
        const name = byteString(ent.name);
        this.remove(fd, name, `${path}/${name}`, ent.isDirectory());
      }
    } finally {
      fs.closeSync(fd);
    }
    this.shim.unlinkat(pfd, osName(base), AT_REMOVEDIR);
  }

  /** A batched create found `path` taken (file-batches.ts): as makeRoom, the batches already settled. */
  private makeRoomFor(pfd: number, path: string): void {
    const slash = path.lastIndexOf('/');
    this.makeRoom(pfd, slash < 0 ? '' : path.slice(0, slash), slash < 0 ? path : path.slice(slash + 1), path);
  }

  private settleAll(): void {
    this.batches?.settleAll();
  }

  /** Before a directory is looked up (or made) beneath the root: no batched file may still be due to
   *  take a name on its way. */
  private settleAncestors(dir: string): void {
    const batches = this.batches!;
    for (let p = dir; p !== '';) {
      const slash = p.lastIndexOf('/');
      p = slash < 0 ? '' : p.slice(0, slash);
      const fd = this.dirs.cached(p);
      if (fd !== undefined && batches.busy(fd)) {
        batches.settleAll();
        return;
      }
    }
  }

  /** Drops cached fds of `path` and everything below it (about to be removed or replaced). */
  private forgetBelow(path: string): void {
    const prefix = `${path}/`;
    this.dirs.forgetBelow(path);
    for (const p of this.dirTimes.keys()) {
      if (p === path || p.startsWith(prefix)) this.dirTimes.delete(p);
    }
    if (this.unpacked) for (const p of this.unpacked) if (p.startsWith(prefix)) this.unpacked.delete(p);
  }

  // ---- directory fds -------------------------------------------------------------------------------

  /** A missing parent the cache just made (0755): owned by the mapped root, as moby does. */
  private madeParent(pfd: number, comp: string, prefix: string): void {
    if (this.mode === 'mount' || this.dirs.isSgid(pfd) || this.rootUid !== this.creatorUid || this.rootGid !== this.creatorGid) {
      this.shim.fchownat(pfd, osName(comp), this.rootUid, this.rootGid, AT_SYMLINK_NOFOLLOW);
    }
    this.unpacked?.add(prefix);
  }

  // ---- attributes --------------------------------------------------------------------------------

  private ids(uid: number, gid: number): void {
    if (uid === this.lastUid && gid === this.lastGid) return;
    if (this.identityIds) {
      this.hostUid = uid;
      this.hostGid = gid;
    } else {
      const h = this.opts.idMappings.toHost(uid, gid);
      this.hostUid = h.uid;
      this.hostGid = h.gid;
    }
    this.lastUid = uid;
    this.lastGid = gid;
  }

  /** A new inode in `pfd` belongs to this process's fsuid/fsgid (or the dir's group when it is
   *  setgid): skip the chown when that is already what the archive asks. Through a mount, overlay
   *  decides the owner of copied-up parents, so always chown there. */
  private needsChown(pfd: number): boolean {
    return this.mode === 'mount' || this.hostUid !== this.creatorUid || this.hostGid !== this.creatorGid || this.dirs.isSgid(pfd);
  }

  /** open(2)/mkdir(2)/mknod(2) honour the umask and never set setuid/setgid/sticky. */
  private needsChmod(mode: number): boolean {
    return (mode & 0o7000) !== 0 || (mode & this.umask) !== 0;
  }

  private setTimes(e: TarEntry): void {
    this.fileMs = e.mtimeSec;
    this.fileMn = e.mtimeNsec;
    if (e.atimeNsec >= 0) {
      this.fileAs = e.atimeSec;
      this.fileAn = e.atimeNsec;
    } else {
      this.fileAs = e.mtimeSec;
      this.fileAn = e.mtimeNsec;
    }
  }

  private times(e: TarEntry): DirTimes {
    this.setTimes(e);
    return { as: this.fileAs, an: this.fileAn, ms: this.fileMs, mn: this.fileMn };
  }

  private xattrName(name: string): string | null {
    if (!isOverlayBookkeeping(name)) return isOpaqueXattr(name) ? this.opaqueName : name;
    return null;
  }

  private setXattrsFd(fd: number, xattrs: Array<[string, Buffer]>): void {
    for (const [name, value] of xattrs) {
      const n = this.xattrName(name);
      if (n !== null) this.tolerateUnsupported(n, () => this.shim.fsetxattr(fd, n, value, 0));
    }
  }

  private setXattrsDir(pfd: number, base: string, xattrs: Array<[string, Buffer]>): void {
    const fd = this.shim.openat2(pfd, osName(base), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0, RESOLVE);
    try {
      this.setXattrsFd(fd, xattrs);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Symlinks and device nodes cannot be opened for fsetxattr: name them through the parent's fd
   *  (the magic link is the parent itself; the last component is not followed by lsetxattr). The
   *  kernel allows `user.` xattrs only on regular files and directories (EPERM elsewhere): an
   *  archive's `user.` xattr on a symlink or device node is skipped with a warning, as moby's
   *  createTarFile skips the EPERM it gets for it. */
  private setXattrsPath(pfd: number, base: string, xattrs: Array<[string, Buffer]>): void {
    const p = osName(`/proc/self/fd/${pfd}/${base}`);
    for (const [name, value] of xattrs) {
      const n = this.xattrName(name);
      if (n === null) continue;
      if (n.startsWith('user.')) {
        this.warnXattr(n, 'user. xattrs exist only on regular files and directories');
        continue;
      }
      this.tolerateUnsupported(n, () => this.shim.lsetxattr(p, n, value, 0));
    }
  }

  /** Like moby: a filesystem without xattr support (ENOTSUP) is warned about, not fatal; so is an
   *  xattr the kernel does not let us set (EPERM: a `trusted.overlay.` name through an overlay
   *  mount, a restricted user namespace), which moby skips too. */
  private tolerateUnsupported(name: string, set: () => void): void {
    try {
      set();
    } catch (err) {
      if (isErrno(err, 'EPERM')) {
        this.warnXattr(name, 'the kernel does not permit it here');
        return;
      }
      // A name or value the kernel cannot take (an ACL that does not parse, a name over 255 bytes, a
      // value over 64 KiB) is the archive's fault.
      if (isErrno(err, 'EINVAL') || isErrno(err, 'ERANGE') || isErrno(err, 'E2BIG')) {
        throw Object.assign(bad(this.currentName, `xattr ${JSON.stringify(name)} is refused by the kernel (${(err as NodeJS.ErrnoException).code})`), { cause: err });
      }
      if (!isErrno(err, 'ENOTSUP') && !isErrno(err, 'EOPNOTSUPP')) throw err;
      this.warnXattr(name, 'the filesystem does not support it');
    }
  }

  private warnXattr(name: string, why: string): void {
    if (this.warnedXattr) return;
    this.warnedXattr = true;
    this.opts.onWarning?.(`overlay2: ignored xattr ${name} of ${JSON.stringify(displayName(this.currentName))} (and maybe others): ${why}`);
  }

  private lstat(pfd: number, base: string): fs.Stats {
    return fs.lstatSync(osName(`/proc/self/fd/${pfd}/${base}`));
  }

  private lstatMaybe(pfd: number, base: string): fs.Stats | undefined {
    return fs.lstatSync(osName(`/proc/self/fd/${pfd}/${base}`), { throwIfNoEntry: false });
  }
}

/** The process umask, read without changing it (process.umask() with no argument is deprecated). */
function currentUmask(): number {
  try {
    const m = /^Umask:\s*([0-7]+)$/m.exec(fs.readFileSync('/proc/self/status', 'latin1'));
    if (m) return parseInt(m[1], 8);
  } catch {
    // no procfs: assume the common default
  }
  return 0o022;
}
