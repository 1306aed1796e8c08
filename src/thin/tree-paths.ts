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
 * Opens each <root>/<repo>/<path> beneath <root>/<repo> and closes it again (the root once, each
 * repository once): throws ERR_THIN_ROOT_NOT_MOUNTED (root or repository missing),
 * ERR_THIN_UNSAFE_PATH (the repository directory is a symlink, or the path leaves the repository) or
 * ERR_THIN_LAYER_MISSING (no such directory, or not readable when `readable`).
 */
export function checkTrees(shim: Shim, root: string, locs: readonly TreeLocation[], layer: string, readable = false): void {
  const flags = (readable ? O_RDONLY : O_PATH) | O_DIRECTORY | O_CLOEXEC;
  if (locs.length === 0) return;
  const fds: number[] = [];
  const open = (dirfd: number, path: string, f: number, resolve: number, fail: (e: unknown) => Overlay2Error): number => {
    try {
      const fd = shim.openat2(dirfd, path, f, 0, resolve);
      fds.push(fd);
      return fd;
    } catch (e) {
      throw fail(e);
    }
  };
  try {
    const rootFd = open(AT_FDCWD, root, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, (e) => explain(e, root, locs[0], 'root', layer));
    const repoFds = new Map<string, number>();
    for (const loc of locs) {
      let repoFd = repoFds.get(loc.repo);
      if (repoFd === undefined) {
        // The repository is a directory (or a mount point) of the root itself, never a symlink elsewhere.
        repoFd = open(rootFd, loc.repo, O_PATH | O_DIRECTORY | O_CLOEXEC, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
          (e) => explain(e, root, loc, 'repo', layer));
        repoFds.set(loc.repo, repoFd);
      }
      // Inside it symlinks are followed, as far as they stay beneath it.
      closeSync(open(repoFd, loc.path, flags, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS, (e) => explain(e, root, loc, 'path', layer)));
      fds.pop();
    }
  } finally {
    for (const fd of fds.reverse()) closeSync(fd);
  }
}

export function checkTree(shim: Shim, root: string, loc: TreeLocation, layer: string, readable = false): void {
  checkTrees(shim, root, [loc], layer, readable);
}
