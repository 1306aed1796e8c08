// Where a thin layer's tree is: <root>/<repo>/<path>, opened fd by fd so that nothing — a "..", an
// absolute symlink, a symlink that climbs out — leads outside <root>/<repo>. The fork joins the
// strings and lets the kernel follow whatever it finds. The kernel resolves the lower dir again at
// mount time; the trees sit on a read-only file system (CVMFS, or the stand-ins of the tests), so
// what was checked is what gets mounted.
import { closeSync } from 'node:fs';
import { join } from 'node:path';
import { Overlay2Error, isErrno } from '../errors.js';
import type { Shim } from '../native/shim.js';
import {
  AT_FDCWD, O_CLOEXEC, O_DIRECTORY, O_PATH, O_RDONLY, RESOLVE_BENEATH, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS,
} from '../native/constants.js';

export interface TreeLocation {
  repo: string;
  path: string;
}

/** What a failed open of part `what` of <root>/<repo>/<path> means for a thin layer. */
function explain(e: unknown, root: string, loc: TreeLocation, what: 'root' | 'repo' | 'path', layer: string): Overlay2Error {
  const full = what === 'root' ? root : what === 'repo' ? join(root, loc.repo) : join(root, loc.repo, loc.path);
  const tail = ` (${(e as Error).message})`;
  if (isErrno(e, 'EXDEV') || isErrno(e, 'ELOOP')) {
    return new Overlay2Error('ERR_THIN_UNSAFE_PATH',
      `overlay2: thin layer ${layer}: ${full} leads outside ${join(root, loc.repo)} (a symlink out of the repository)${tail}`, { id: layer, path: full, cause: e });
  }
  if (what === 'path') {
    return new Overlay2Error('ERR_THIN_LAYER_MISSING',
      `overlay2: thin layer ${layer}: the layer tree ${full} is not there${tail}`, { id: layer, path: full, cause: e });
  }
  if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) {
    return new Overlay2Error('ERR_THIN_ROOT_NOT_MOUNTED',
      `overlay2: thin layer ${layer}: ${what === 'root' ? 'the thin root' : 'repository ' + loc.repo} is not mounted at ${full}${tail}`, { id: layer, path: full, cause: e });
  }
  return new Overlay2Error('ERR_THIN_LAYER_MISSING', `overlay2: thin layer ${layer}: cannot open ${full}${tail}`, { id: layer, path: full, cause: e });
}

/**
 * Opens <root>/<repo>/<path> beneath <root>/<repo> and closes it again: throws
 * ERR_THIN_ROOT_NOT_MOUNTED (root or repository missing), ERR_THIN_UNSAFE_PATH (the repository
 * directory is a symlink, or the path leaves the repository) or ERR_THIN_LAYER_MISSING (no such
 * directory, or not readable when `readable`).
 */
export function checkTree(shim: Shim, root: string, loc: TreeLocation, layer: string, readable = false): void {
  const flags = (readable ? O_RDONLY : O_PATH) | O_DIRECTORY | O_CLOEXEC;
  let rootFd = -1, repoFd = -1, treeFd = -1;
  try {
    try { rootFd = shim.openat2(AT_FDCWD, root, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, 0); } catch (e) { throw explain(e, root, loc, 'root', layer); }
    // The repository is a directory (or a mount point) of the root itself, never a symlink elsewhere.
    try {
      repoFd = shim.openat2(rootFd, loc.repo, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
    } catch (e) {
      throw explain(e, root, loc, 'repo', layer);
    }
    // Inside it symlinks are followed, as far as they stay beneath it.
    try { treeFd = shim.openat2(repoFd, loc.path, flags, 0, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS); } catch (e) { throw explain(e, root, loc, 'path', layer); }
  } finally {
    for (const fd of [treeFd, repoFd, rootFd]) if (fd >= 0) closeSync(fd);
  }
}
