// The O_PATH fds of the directories an apply (apply.ts) creates entries in, cached by their path
// beneath the root. Every open resolves beneath the root and never through a symlink.
import * as fs from 'node:fs';
import { Overlay2Error, isErrno } from '../errors.js';
import type { Shim } from '../native/shim.js';
import { O_CLOEXEC, O_DIRECTORY, O_PATH } from '../native/constants.js';
import { RESOLVE, bad, unsafe } from '../tar/archive-safety.js';
import { displayName, osName } from '../util/byte-names.js';

export const DIR_PATH_FLAGS = O_PATH | O_DIRECTORY | O_CLOEXEC;
const PARENT_CACHE_LIMIT = 128;

export class DirFdCache {
  private readonly parents = new Map<string, number>();
  private lastParent: string | null = null;
  private lastParentFd = -1;
  /** Cached dir fds whose directory is setgid: what is created there takes the dir's group. */
  private readonly sgidFds = new Set<number>();

  /** `madeDir(pfd, name, path)` runs after makeParents creates a missing directory, to own it;
   *  `beforeClose()` before cached fds are closed (work queued elsewhere may still use them). */
  constructor(
    private readonly shim: Shim,
    private readonly rootFd: number,
    private readonly madeDir: (pfd: number, name: string, path: string) => void,
    private readonly beforeClose: () => void = () => {},
  ) {}

  /** The cached fd of directory `dir` ('' is the root), without a syscall; undefined when not cached. */
  cached(dir: string): number | undefined {
    if (dir === '') return this.rootFd;
    if (dir === this.lastParent) return this.lastParentFd;
    return this.parents.get(dir);
  }

  /** An O_PATH fd of directory `parent` beneath the root, from the cache when possible. With
   *  create, missing directories are made (0755, owned by the mapped root), as moby does. */
  parentFd(parent: string, name: string, create: boolean): number {
    if (parent === '') return this.rootFd;
    if (parent === this.lastParent) return this.lastParentFd;
    let fd = this.parents.get(parent);
    if (fd === undefined) {
      try {
        fd = this.shim.openat2(this.rootFd, osName(parent), DIR_PATH_FLAGS, 0, RESOLVE);
      } catch (err) {
        if (create && isErrno(err, 'ENOENT')) fd = this.makeParents(parent, name);
        else throw this.resolveError(err, name, parent);
      }
      this.parents.set(parent, fd);
      this.noteSgid(fd);
    }
    this.lastParent = parent;
    this.lastParentFd = fd;
    return fd;
  }

  /** Like parentFd without creating: null when the directory does not exist. */
  lookupDir(dir: string, name: string): number | null {
    try {
      return this.parentFd(dir, name, false);
    } catch (err) {
      if (err instanceof Overlay2Error && err.code === 'ERR_BAD_ARCHIVE' && (err.cause as { code?: string })?.code === 'ENOENT') return null;
      throw err;
    }
  }

  /** The fd of a hardlink target's directory: it must exist. */
  existingDirFd(dir: string, name: string, target: string): number {
    const fd = this.lookupDir(dir, name);
    if (fd === null) throw bad(name, `hardlink target ${JSON.stringify(displayName(target))} does not exist`);
    return fd;
  }

  private makeParents(parent: string, name: string): number {
    let fd = this.rootFd;
    let prefix = '';
    for (const comp of parent.split('/')) {
      prefix = prefix === '' ? comp : `${prefix}/${comp}`;
      const cached = this.parents.get(prefix);
      if (cached !== undefined) {
        fd = cached;
        continue;
      }
      let next: number;
      try {
        next = this.shim.openat2(fd, osName(comp), DIR_PATH_FLAGS, 0, RESOLVE);
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw this.resolveError(err, name, prefix);
        this.shim.mkdirat(fd, osName(comp), 0o755);
        this.madeDir(fd, comp, prefix);
        next = this.shim.openat2(fd, osName(comp), DIR_PATH_FLAGS, 0, RESOLVE);
      }
      if (prefix !== parent) this.parents.set(prefix, next);
      this.noteSgid(next);
      fd = next;
    }
    return fd;
  }

  private resolveError(err: unknown, name: string, dir: string): unknown {
    if (isErrno(err, 'ELOOP')) return unsafe(name, `path goes through a symlink (${JSON.stringify(displayName(dir))})`);
    if (isErrno(err, 'EXDEV')) return unsafe(name, `path leaves the layer (${JSON.stringify(displayName(dir))})`);
    if (isErrno(err, 'ENOTDIR')) return Object.assign(bad(name, `${JSON.stringify(displayName(dir))} is not a directory`), { cause: err });
    if (isErrno(err, 'ENOENT')) return new Overlay2Error('ERR_BAD_ARCHIVE', `overlay2: bad archive: ${JSON.stringify(displayName(dir))} does not exist (entry ${JSON.stringify(displayName(name))})`, { path: displayName(name), cause: err });
    return err;
  }

  /** Past PARENT_CACHE_LIMIT fds, closes the oldest down to half of it. */
  trimParents(): void {
    if (this.parents.size <= PARENT_CACHE_LIMIT) return;
    this.beforeClose();
    for (const [p, fd] of this.parents) {
      if (this.parents.size <= PARENT_CACHE_LIMIT / 2) break;
      this.closeDirFd(fd);
      this.parents.delete(p);
    }
    this.lastParent = null;
  }

  /** Drops cached fds of `path` and everything below it (about to be removed or replaced). */
  forgetBelow(path: string): void {
    const prefix = `${path}/`;
    this.beforeClose();
    for (const [p, fd] of this.parents) {
      if (p === path || p.startsWith(prefix)) {
        this.closeDirFd(fd);
        this.parents.delete(p);
      }
    }
    this.lastParent = null;
  }

  isSgid(fd: number): boolean {
    return this.sgidFds.has(fd);
  }

  noteSgid(fd: number): void {
    if ((fs.fstatSync(fd).mode & 0o2000) !== 0) this.sgidFds.add(fd);
    else this.sgidFds.delete(fd);
  }

  refreshSgid(path: string): void {
    const fd = this.parents.get(path);
    if (fd !== undefined) this.noteSgid(fd);
  }

  private closeDirFd(fd: number): void {
    this.sgidFds.delete(fd);
    fs.closeSync(fd);
  }

  close(): void {
    for (const fd of this.parents.values()) this.closeDirFd(fd);
    this.parents.clear();
    this.lastParent = null;
  }
}
