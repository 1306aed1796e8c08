// The one way this package deletes a directory tree. The trees it deletes (a removed layer, a refused
// import's staging dir, leftovers in .partial/, probe scratch dirs) may hold content a container or an
// archive chose, and something may still write into them while they go: a path-based recursive rm
// (lstat, then readdir/unlink by path) follows a directory swapped for a symlink in between and deletes
// outside the store. The shim's removeTree walks through directory fds only (see its comment in
// shim/overlay2_shim.c): symlinks are unlinked, never followed; mount points are not entered.
import { promises as fsp, openSync, closeSync, constants } from 'node:fs';
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
export async function removeTree(path: string, beneath: string = dirname(path)): Promise<void> {
  const rel = relativeBeneath(path, beneath);
  let dir: fsp.FileHandle;
  try {
    dir = await fsp.open(beneath, DIR_FLAGS);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  const shim = loadShim();
  try {
    await new Promise<void>((resolve, reject) => {
      shim.removeTree(dir.fd, rel, (err) => (err ? reject(withFullPath(err, beneath)) : resolve()));
    });
  } finally {
    await dir.close();
  }
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
