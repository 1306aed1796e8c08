// Read-only trees that already hold a layer's files, so the layer need not be downloaded or unpacked:
// CVMFS/DUCC's `unpacked.cern.ch` layout, `DIR/.layers/<hex[0:2]>/<hex>/layerfs` keyed by the layer's
// compressed blob digest (what containerd's CRI sends as containerd.io/snapshot/cri.layer-digest), and
// the layout `overlay2 thin make` publishes, `DIR/layers/<hex>` keyed by the layer's diffID
// (containerd.io/snapshot/diff-id, sent by containerd ≥ 2.3). Several roots are searched in order.
//
// A tree is opened beneath its root, fd by fd: the root's first component (".layers", "layers") is a
// directory of the root itself, never a symlink; below it symlinks are followed only while they stay
// beneath the root (openat2 RESOLVE_BENEATH). Nothing under a root is ever written or deleted.
import { closeSync } from 'node:fs';
import { join } from 'node:path';
import { Overlay2Error, isErrno } from '../errors.js';
import type { Shim } from '../native/shim.js';
import {
  AT_FDCWD, O_CLOEXEC, O_DIRECTORY, O_PATH, RESOLVE_BENEATH, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS,
} from '../native/constants.js';

/** Where a remote layer's tree is: `root` (one of the configured roots) and a path beneath it. */
export interface RemoteTree {
  root: string;
  path: string;
}

/** What a tree is looked up by. */
export interface LayerKeys {
  /** the compressed blob digest, "sha256:<64 hex>" */
  blobDigest?: string;
  /** the uncompressed layer's digest, "sha256:<64 hex>" */
  diffId?: string;
}

const SHA256 = /^sha256:([0-9a-f]{64})$/;

/** The hex of a "sha256:<64 hex>" digest; ERR_BAD_OPTION naming `what` for anything else. */
export function digestHex(digest: string, what: string): string {
  const m = SHA256.exec(digest);
  if (!m) throw new Overlay2Error('ERR_BAD_OPTION', `overlay2: ${what} ${JSON.stringify(digest.slice(0, 80))} is not sha256:<64 hex>`, { option: what });
  return m[1]!;
}

/** The candidate trees for a layer, in the order they are tried: per root, the CVMFS layout by blob
 *  digest, then the thin make layout by diffID. */
export function candidateTrees(roots: readonly string[], keys: LayerKeys): RemoteTree[] {
  const blob = keys.blobDigest === undefined ? null : digestHex(keys.blobDigest, 'layer digest');
  const diff = keys.diffId === undefined ? null : digestHex(keys.diffId, 'diff id');
  const out: RemoteTree[] = [];
  for (const root of roots) {
    if (blob !== null) out.push({ root, path: `.layers/${blob.slice(0, 2)}/${blob}/layerfs` });
    if (diff !== null) out.push({ root, path: `layers/${diff}` });
  }
  return out;
}

/** Why a remote tree cannot serve as a layer, as an Overlay2Error (the snapshotter's FAILED_PRECONDITION). */
function explain(e: unknown, tree: RemoteTree): Overlay2Error {
  const full = join(tree.root, tree.path);
  if (isErrno(e, 'EXDEV') || isErrno(e, 'ELOOP')) {
    return new Overlay2Error('ERR_REMOTE_UNSAFE_PATH', `overlay2: the remote layer tree ${full} leads outside ${tree.root} (a symlink out of the root)`, { path: full, cause: e });
  }
  return new Overlay2Error('ERR_REMOTE_LAYER_MISSING',
    `overlay2: the remote layer tree ${full} is not there (is ${tree.root} mounted?)`, { path: full, cause: e });
}

/** Throws unless `tree` is a directory beneath its root now (ERR_REMOTE_LAYER_MISSING, ERR_REMOTE_UNSAFE_PATH). */
export function checkRemoteTree(shim: Shim, tree: RemoteTree): void {
  const slash = tree.path.indexOf('/');
  const first = slash < 0 ? tree.path : tree.path.slice(0, slash);
  const rest = slash < 0 ? '.' : tree.path.slice(slash + 1);
  const fds: number[] = [];
  try {
    fds.push(shim.openat2(AT_FDCWD, tree.root, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, 0));
    fds.push(shim.openat2(fds[0]!, first, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS));
    fds.push(shim.openat2(fds[0]!, join(first, rest), O_PATH | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS));
  } catch (e) {
    throw explain(e, tree);
  } finally {
    for (const fd of fds.reverse()) closeSync(fd);
  }
}

/** The first candidate tree present beneath its root, else null. A tree that is there but leads
 *  out of its root is refused (ERR_REMOTE_UNSAFE_PATH), never skipped for a later one. */
export function findRemoteTree(shim: Shim, roots: readonly string[], keys: LayerKeys): RemoteTree | null {
  for (const tree of candidateTrees(roots, keys)) {
    try {
      checkRemoteTree(shim, tree);
      return tree;
    } catch (e) {
      if (e instanceof Overlay2Error && e.code === 'ERR_REMOTE_LAYER_MISSING') continue;
      throw e;
    }
  }
  return null;
}
