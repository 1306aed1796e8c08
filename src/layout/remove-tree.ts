// The one way this package deletes a directory tree. The trees it deletes (a removed layer, a refused
// import's staging dir, leftovers in .partial/, probe scratch dirs) may hold content a container or an
// archive chose, and something may still write into them while they go: a path-based recursive rm
// (lstat, then readdir/unlink by path) follows a directory swapped for a symlink in between and deletes
// outside the store. The shim's removeTree walks through directory fds only (see its comment in
// shim/remove_tree.c): symlinks are unlinked, never followed; mount points are not entered.
import { promises as fsp, openSync, closeSync, opendirSync, constants, type Dirent } from 'node:fs';
import { dirname, isAbsolute, join, relative, sep } from 'node:path';
import { loadShim, type ShimError } from '../native/shim.js';

const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY;

/**
 * Removes `path` and everything below it. `beneath` is a trusted ancestor (default: path's parent):
 * only it is opened by path; everything between it and `path`, and below, is resolved one name at a
 * time from a directory fd, with no symlink followed and no mount point crossed. A missing path is not
 * an error (like `rm -rf`). Fails with a Node-style error (code, errno, syscall, path naming the entry):
 * EXDEV for a mount point inside the tree (nothing below it is deleted), EBUSY for a mounted file, the
 * last errno for a name that kept changing type between attempts.
 */
export async function removeTree(path: string, beneath: string = dirname(path), walks = PARALLEL): Promise<void> {
  const rel = relativeBeneath(path, beneath);
  // A small tree is one walk, not split: a single thread-pool round trip. Never on the calling
  // thread: a few entries can still be a big file, whose unlink frees its blocks inside the syscall,
  // and on a busy disk any unlink waits for the journal (95 ms seen) — on a service's event loop
  // every other call would wait with it.
  const small = isSmallTree(join(beneath, rel));
  // open and close of a directory are one syscall each: not worth a thread-pool round trip
  let fd: number;
  try {
    fd = openSync(beneath, DIR_FLAGS);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  const shim = loadShim();
  const run = (r: string) => new Promise<void>((resolve, reject) => {
    shim.removeTree(fd, r, (err) => (err ? reject(withFullPath(err, beneath)) : resolve()));
  });
  try {
    // Subtrees first, a few at once: one walk waits on every journal stall alone. Their errors are
    // dropped because the final walk over the whole tree meets (and reports) whatever is still there.
    const subtrees = small ? [] : await splitPoints(beneath, rel);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < subtrees.length) await run(subtrees[next++]).catch(() => undefined);
    };
    await Promise.all(Array.from({ length: Math.min(Math.max(1, walks), subtrees.length) }, worker));
    await run(rel);
  } finally {
    closeSync(fd);
  }
}

/** Walks removeTree runs at once by default: the libuv pool's default size (a service that must keep
 *  threads for its other calls asks for fewer: Overlay2Driver.removeWalks). */
const PARALLEL = 4;
/** Enough subtrees to keep PARALLEL walks busy when their sizes differ. */
const SPLIT_TARGET = 16;
/** A tree of at most this many entries is deleted in one walk, without reading its subtrees first: the
 *  reads would cost more thread-pool round trips than the walk (a container's snapshot: diff/,
 *  work/work/ and the layer's small files, under ten entries). */
const SMALL_TREE = 32;

/**
 * Whether the tree at `dir` holds at most SMALL_TREE entries; reading stops at the first entry past
 * that, so a big tree costs a few small reads. By path, as splitPoints: only names are read, and the
 * deletion that follows resolves them from directory fds. A missing or unreadable tree: false (the
 * walk reports what is wrong).
 */
function isSmallTree(dir: string): boolean {
  let left = SMALL_TREE;
  const pending = [dir];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    let d;
    try {
      d = opendirSync(next, { bufferSize: 32 });
    } catch {
      return false;
    }
    try {
      for (let e = d.readSync(); e !== null; e = d.readSync()) {
        if (--left < 0) return false;
        if (e.isDirectory()) pending.push(join(next, e.name));
      }
    } catch {
      return false;
    } finally {
      d.closeSync();
    }
  }
  return true;
}

/**
 * Directories a few levels below `rel`, breadth first, until there are SPLIT_TARGET of them (empty:
 * not worth splitting). Names are read by path, which is harmless: each is then removed by the shim,
 * resolved beneath the `beneath` fd with no symlink followed and no mount crossed, so a name read
 * through a swapped symlink leads nowhere outside. The directories of a level are read at once:
 * each readdir is a thread-pool round trip.
 */
async function splitPoints(beneath: string, rel: string): Promise<string[]> {
  let level = [rel];
  for (let depth = 0; depth < 3 && level.length < SPLIT_TARGET; depth++) {
    const listed = await Promise.all(level.map((r) => fsp.readdir(join(beneath, r), { withFileTypes: true }).then(
      (es) => ({ r, es }),
      // gone, or not a directory: the final walk deals with it
      () => ({ r, es: [] as Dirent[] }))));
    const below: string[] = [];
    for (const { r, es } of listed) for (const e of es) if (e.isDirectory()) below.push(join(r, e.name));
    if (below.length === 0) break;
    level = below;
  }
  return level.length > 1 ? level : [];
}

/** removeTree on the calling thread, for the few callers that are synchronous. */
export function removeTreeSync(path: string, beneath: string = dirname(path)): void {
  const rel = relativeBeneath(path, beneath);
  let fd: number;
  try {
    fd = openSync(beneath, DIR_FLAGS);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  try {
    loadShim().removeTreeSync(fd, rel);
  } catch (e) {
    throw withFullPath(e as ShimError, beneath);
  } finally {
    closeSync(fd);
  }
}

function relativeBeneath(path: string, beneath: string): string {
  const rel = relative(beneath, path);
  if (!isAbsolute(path) || !isAbsolute(beneath) || rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    const err = new TypeError(`removeTree: ${JSON.stringify(path)} is not an absolute path strictly below ${JSON.stringify(beneath)}`) as TypeError & { code: string };
    err.code = 'ERR_INVALID_ARG_VALUE';
    throw err;
  }
  return rel;
}

/** The shim names entries relative to `beneath`; callers and people want the whole path. */
function withFullPath(err: ShimError, beneath: string): ShimError {
  if (typeof err.path === 'string' && !isAbsolute(err.path)) {
    const full = join(beneath, err.path);
    err.message = err.message.replace(`'${err.path}'`, `'${full}'`);
    err.path = full;
  }
  return err;
}
