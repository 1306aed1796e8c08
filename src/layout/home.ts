// Opening a driver home safely. A home is a directory we created, an empty directory, or a store
// (it has l/, as every Docker overlay2 home has). Everything is checked before anything is written:
// - a home on a kernel pseudo filesystem (/proc, /sys, /dev, cgroup...) is refused from one statfs;
// - a non-empty directory that is no store is refused (ERR_NOT_A_STORE), so a typo never turns
//   someone's directory into a store; the thin root, when it lies in the home (`<home>/cvmfs` by
//   default), does not count: the repositories are naturally mounted there before the first command;
// - the mode and owner of a directory are set only when we created it (Docker's 0710), never on a
//   directory that was already there;
// - a read-only open creates nothing: a missing home is ERR_NOT_A_STORE.
import { readdirSync, statSync, lstatSync, mkdirSync, chownSync, chmodSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Overlay2Error, isErrno } from '../errors.js';
import { readMountInfo } from '../mount/mountinfo.js';
import type { Shim } from '../native/shim.js';
import { FS_MAGIC, PSEUDO_FS_MAGIC } from '../native/constants.js';
import { LINK_DIR, PARTIAL_DIR } from './store.js';

/** Entries of a directory that do not make it "someone else's": a fresh filesystem's lost+found,
 *  and our own bookkeeping (.partial, .refs, .features.json). */
const IGNORABLE = new Set(['lost+found', PARTIAL_DIR, '.refs', '.features.json']);

export interface HomeOpen {
  /** true when this call created the home directory (its mode and owner are ours to set) */
  created: boolean;
  /** st_dev of the home: the feature cache's key */
  dev: number;
}

/** The nearest existing directory at or above `path` (the home, or where it would be created). */
function nearestExisting(path: string): string {
  let p = path;
  for (;;) {
    try {
      statSync(p);
      return p;
    } catch (e) {
      if (!isErrno(e, 'ENOENT') && !isErrno(e, 'ENOTDIR')) throw e;
      const up = dirname(p);
      if (up === p) return p;
      p = up;
    }
  }
}

/** The pseudo filesystem `path` is on, or null. devtmpfs shares tmpfs's magic: mountinfo tells. */
export function pseudoFsOf(shim: Shim, path: string): string | null {
  const magic = shim.statfs(path).type >>> 0;
  const name = PSEUDO_FS_MAGIC[magic];
  if (name) return name;
  if (magic === FS_MAGIC.tmpfs && fsTypeByDevice(statSync(path).dev) === 'devtmpfs') return 'devtmpfs';
  return null;
}

function fsTypeByDevice(dev: number): string | null {
  // glibc's dev_t encoding: major in bits 8-19, minor in bits 0-7 and 20-31
  const majMin = `${Math.floor(dev / 256) & 0xfff}:${(dev & 0xff) | (Math.floor(dev / 4096) & 0xfff00)}`;
  try {
    return readMountInfo().find((m) => m.majMin === majMin)?.fstype ?? null;
  } catch { /* no procfs: cannot tell */ }
  return null;
}

function isDirectory(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;
}

export interface OpenHomeOptions {
  readOnly: boolean;
  /** owner the home and l/ get when we create them */
  uid: number;
  gid: number;
  /** an entry the home may hold before it is a store: the thin root when it lies in the home (the
   *  fork's `<home>/cvmfs`), where a user mounts the repositories before the first command */
  thinRoot?: string | null;
}

export function openHome(shim: Shim, home: string, opts: OpenHomeOptions): HomeOpen {
  const existing = nearestExisting(home);
  const pseudo = pseudoFsOf(shim, existing);
  if (pseudo) {
    throw new Overlay2Error('ERR_INCOMPATIBLE_FS',
      `overlay2: ${home} is on ${pseudo}, a kernel pseudo filesystem; a driver home needs a disk filesystem (ext4, xfs, btrfs, tmpfs...)`, { path: home });
  }
  if (existing !== home) {
    if (opts.readOnly) {
      throw new Overlay2Error('ERR_NOT_A_STORE', `overlay2: no driver home at ${home} (nothing was created; a command that writes, such as create, makes one)`, { path: home });
    }
    mkdirSync(dirname(home), { recursive: true });
    mkdirSync(home, { mode: 0o710 });
    // Docker 20.10's modes: the home 0710, group the remapped root's, so a user-namespaced
    // container can traverse it; l/ 0700.
    chownSync(home, process.getuid?.() ?? 0, opts.gid);
    chmodSync(home, 0o710);
    mkdirSync(join(home, LINK_DIR), { mode: 0o700 });
    return { created: true, dev: statSync(home).dev };
  }
  const st = statSync(home);
  if (!st.isDirectory()) {
    throw new Overlay2Error('ERR_NOT_A_STORE', `overlay2: ${home} is not a directory`, { path: home });
  }
  // a store: one lookup, not a listing of its 10,000 layers
  if (lstatSync(join(home, LINK_DIR), { throwIfNoEntry: false }) !== undefined) return { created: false, dev: st.dev };
  const entries = readdirSync(home);
  const foreign = entries.filter((e) => !IGNORABLE.has(e) && !(e === opts.thinRoot && isDirectory(join(home, e))));
  if (foreign.length > 0) {
    throw new Overlay2Error('ERR_NOT_A_STORE',
      `overlay2: ${home} is not empty and is not an overlay2 store (no ${LINK_DIR}/ directory; found ${JSON.stringify(foreign[0])}); use a new or empty directory`,
      { path: home });
  }
  if (opts.readOnly) {
    throw new Overlay2Error('ERR_NOT_A_STORE', `overlay2: ${home} is empty, not a driver home yet (a command that writes, such as create, makes one)`, { path: home });
  }
  mkdirSync(join(home, LINK_DIR), { mode: 0o700 });
  return { created: false, dev: st.dev };
}
