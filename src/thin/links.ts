// The l/<link id> symlinks of thin layers. Docker's links point at a layer's diff dir
// ("../<id>/diff"); a thin layer's point into the thin root: "../cvmfs/<repo>/<path>" when the root is
// the default <home>/cvmfs (byte for byte what the fork writes), an absolute path when it is elsewhere.
import { readlinkSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { validateLayerPath, validateRepoName } from './manifest.js';
import type { TreeLocation } from './tree-paths.js';

/** The target of a Docker layer link: "../<id>/diff". */
const LAYER_LINK_TARGET = /^\.\.\/[^/]+\/diff$/;

export function isLayerLinkTarget(target: string): boolean {
  return LAYER_LINK_TARGET.test(target);
}

/** What l/<link id> of a thin lower layer points at. */
export function thinLinkTarget(home: string, root: string, loc: TreeLocation): string {
  const tree = join(root, loc.repo, loc.path);
  return root.startsWith(home + '/') ? relative(join(home, 'l'), tree) : tree;
}

/** The repository and path a link target names when it points into the root, else null. A target
 *  into the root that names no valid repository/path is null too: it is not one of ours. */
export function locationOfTarget(home: string, root: string, target: string): TreeLocation | null {
  if (isLayerLinkTarget(target)) return null;
  const abs = resolve(join(home, 'l'), target);
  if (!abs.startsWith(root + '/')) return null;
  const rest = abs.slice(root.length + 1);
  const slash = rest.indexOf('/');
  if (slash <= 0) return null;
  try {
    return { repo: validateRepoName(rest.slice(0, slash), target), path: validateLayerPath(rest.slice(slash + 1), target) };
  } catch {
    return null;
  }
}

/** The location behind a lower entry ("l/<link id>") when it is a thin link, else null. */
export function locationOfEntry(home: string, root: string, entry: string): TreeLocation | null {
  let target: string;
  try {
    target = readlinkSync(join(home, entry));
  } catch {
    return null;
  }
  return locationOfTarget(home, root, target);
}
