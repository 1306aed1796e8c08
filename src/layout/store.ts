// The on-disk layout of a driver home, identical to Docker's overlay2:
//   HOME/l/<link id>      -> ../<id>/diff
//   HOME/<id>/link        the layer's link id (no newline)
//   HOME/<id>/lower       "l/A:l/B:..." the parent's link first (absent for a base layer)
//   HOME/<id>/diff/       the layer's own content (the overlay upper dir)
//   HOME/<id>/work/       overlay's work dir (layers with a parent)
//   HOME/<id>/merged/     the mount point, present while mounted
//   HOME/<id>/committed   the layer has a child, so it mounts read-only
// Ours alone: HOME/.partial/ holds layers being created or removed (and the feature probes'
// scratch dirs), HOME/.loads/ the journals of loads in progress, HOME/<id>/.staging-diff-* holds an applyDiff in progress (src/apply/staging.ts);
// init empties both. This class is the one place those names are joined into paths.
import { promises as fsp, readFileSync, existsSync, statSync, writeFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { Overlay2Error, isErrno } from '../errors.js';
import { validateId, validateLowerEntry } from './ids.js';
import { presentUnder } from './present-paths.js';

export const LINK_DIR = 'l';
export const LOWER_FILE = 'lower';
export const LINK_FILE = 'link';
export const COMMITTED_FILE = 'committed';
export const DIFF_DIR = 'diff';
export const WORK_DIR = 'work';
export const MERGED_DIR = 'merged';
export const PARTIAL_DIR = '.partial';
/** load()'s journals of the layers it creates (src/image/load-journal.ts). */
export const LOADS_DIR = '.loads';

export class LayerStore {
  constructor(readonly home: string) {}

  dir(id: string): string { return join(this.home, id); }
  diffDir(id: string): string { return join(this.home, id, DIFF_DIR); }
  workDir(id: string): string { return join(this.home, id, WORK_DIR); }
  mergedDir(id: string): string { return join(this.home, id, MERGED_DIR); }
  linkDir(): string { return join(this.home, LINK_DIR); }
  partialDir(): string { return join(this.home, PARTIAL_DIR); }
  loadsDir(): string { return join(this.home, LOADS_DIR); }
  /** HOME/l/<link id>, the short name of a layer's diff dir. */
  linkPath(linkId: string): string { return join(this.home, LINK_DIR, linkId); }

  /** What the mounter needs of layer `id`: its dirs, absolute and relative to the home (the
   *  'relative' mount method chdirs there to keep the mount data short). */
  mountPaths(id: string): LayerMountPaths {
    return {
      home: this.home,
      diff: this.diffDir(id),
      work: this.workDir(id),
      merged: this.mergedDir(id),
      relative: { diff: join(id, DIFF_DIR), work: join(id, WORK_DIR), merged: join(id, MERGED_DIR) },
    };
  }

  /** A layer with a child mounts read-only (its committed file). */
  isCommitted(id: string): boolean {
    return existsSync(join(this.dir(id), COMMITTED_FILE));
  }

  // The small files of a layer are read and written synchronously: a thread-pool round trip costs
  // more than the syscalls (see Overlay2Driver.createLayer).

  /** The lower file of a new child of `parent`: the parent's link first, then the parent's lowers. */
  lowerForChild(parent: string): string[] {
    return [lowerEntry(this.readLinkId(parent)), ...this.readLowerSync(parent)];
  }

  /** Writes the files of a layer being built in `dir` (not yet in place): its link id and, for a
   *  layer with a parent, its lower file. */
  writeLayerFiles(dir: string, linkId: string, lower: string[]): void {
    writeFileSync(join(dir, LINK_FILE), linkId, { mode: 0o644 });
    if (lower.length > 0) writeFileSync(join(dir, LOWER_FILE), lower.join(':'), { mode: 0o666 });
  }

  /** Creates HOME/l/<link id> -> ../<id>/diff; returns its path. Synchronous: create() makes the
   *  link under the refs lock, in the step that puts the layer in place (src/layout/child-index.ts). */
  createLinkSync(id: string, linkId: string): string {
    const path = this.linkPath(linkId);
    symlinkSync(join('..', id, DIFF_DIR), path);
    return path;
  }

  /** The lower entries of a layer's lower file ([] for a base layer); synchronous, as a small file's read
   *  is quicker than a round trip to the thread pool (and remove() reads it under the refs lock). */
  readLowerSync(id: string): string[] {
    try {
      return parseLower(readFileSync(join(this.dir(id), LOWER_FILE), 'utf8'), id);
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return [];
      throw e;
    }
  }

  /** A layer being built in `dir` (not yet in place) is committed from birth (a remote layer). */
  markCommittedIn(dir: string): void {
    writeFileSync(join(dir, COMMITTED_FILE), '', { mode: 0o600 });
  }

  /** The layer has a child now (synchronous: create()'s last step runs under the refs lock). */
  markCommitted(id: string): void {
    writeFileSync(join(this.dir(id), COMMITTED_FILE), '', { mode: 0o600 });
  }

  /** The layer's link id; null when it has no link file (or no dir). Synchronous: for the checks
   *  made under the refs lock (src/layout/layer-guard.ts). */
  readLinkIdSync(id: string): string | null {
    try {
      return readFileSync(join(this.dir(id), LINK_FILE), 'utf8').trim();
    } catch (e) {
      if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) return null;
      throw e;
    }
  }

  /** The names of the layer directories in the home, synchronous (for checks under the refs lock). */
  layerNamesSync(): string[] {
    return readdirSync(this.home, { withFileTypes: true })
      .filter((e) => e.isDirectory() && LayerStore.isLayerName(e.name)).map((e) => e.name);
  }

  /** Layers whose lower file names link `linkId` of layer `id` (its children and their descendants),
   *  read from every lower file: what remove() checks with when the child index cannot be made (a
   *  full disk; src/layout/child-index.ts). Synchronous: under the refs lock. */
  layersAboveSync(id: string, linkId: string): string[] {
    const entry = lowerEntry(linkId);
    const found: string[] = [];
    for (const e of readdirSync(this.home, { withFileTypes: true })) {
      if (!e.isDirectory() || !LayerStore.isLayerName(e.name) || e.name === id) continue;
      let lower: string;
      try {
        lower = readFileSync(join(this.dir(e.name), LOWER_FILE), 'utf8');
      } catch {
        continue; // a base layer, or not a layer
      }
      if (lower.trim().split(':').includes(entry)) found.push(e.name);
    }
    return found.sort();
  }

  /** dropLinkFile, synchronous (remove() on a full file system, under the refs lock). */
  dropLinkFileSync(dir: string): void {
    rmSync(join(dir, LINK_FILE), { force: true });
  }

  /** Takes away the link file of a layer dir: a dir without one is not a layer (listLayers). */
  async dropLinkFile(dir: string): Promise<void> {
    await fsp.rm(join(dir, LINK_FILE), { force: true });
  }

  /** Whether `name` (an entry of the home) can be a layer dir: not l/, not a dot-dir of ours. */
  static isLayerName(name: string): boolean {
    return name !== LINK_DIR && !name.startsWith('.');
  }

  async exists(id: string): Promise<boolean> {
    // one stat, synchronous: fs.promises alone would add ~5 ms of module loading to `overlay2 exists`
    try {
      return statSync(this.dir(id), { throwIfNoEntry: false }) !== undefined;
    } catch {
      return false;
    }
  }

  /** Throws ERR_LAYER_NOT_FOUND unless the layer directory exists. */
  async requireLayer(id: string, what = 'layer'): Promise<void> {
    validateId(id, `${what} id`);
    if (!(await this.exists(id))) {
      throw new Overlay2Error('ERR_LAYER_NOT_FOUND', `overlay2: ${what} ${id} does not exist in ${this.home}`, { id });
    }
  }

  readLinkId(id: string): string {
    return readFileSync(join(this.dir(id), LINK_FILE), 'utf8').trim();
  }

  /**
   * The lower entries for mounting, read synchronously (get/put are latency-bound): null for a
   * base layer, ERR_LAYER_NOT_FOUND when the layer does not exist.
   */
  mountLowerSync(id: string): string[] | null {
    try {
      const text = readFileSync(join(this.dir(id), LOWER_FILE), 'utf8');
      return parseLower(text, id);
    } catch (e) {
      if (!isErrno(e, 'ENOENT')) throw e;
      if (existsSync(this.dir(id))) return null;
      throw new Overlay2Error('ERR_LAYER_NOT_FOUND', `overlay2: layer ${id} does not exist in ${this.home}`, { id });
    }
  }

  /** Absolute diff dirs of the lower layers, parent first (moby's getLowerDirs, links resolved). */
  async lowerDiffDirs(id: string): Promise<string[]> {
    const lowers = this.readLowerSync(id);
    return Promise.all(lowers.map(async (entry) => {
      const target = await fsp.readlink(join(this.home, entry));
      return resolve(this.linkDir(), target);
    }));
  }

  /** Every layer id in the home (directories with a link file), sorted. */
  async listLayers(): Promise<string[]> {
    // synchronous, and one batched lookup: a thread-pool round trip a layer was 50 ms per 1,000 layers
    const dirs = this.layerNamesSync();
    // a dir without a link file is not a layer (a feature-check leftover, or something of someone else's)
    const linked = presentUnder(this.home, dirs.map((id) => `${id}/${LINK_FILE}`));
    return dirs.filter((_, i) => linked[i]).sort();
  }
}

/** Paths of one layer for mounting it (see LayerStore.mountPaths). */
export interface LayerMountPaths {
  home: string;
  diff: string;
  work: string;
  merged: string;
  relative: { diff: string; work: string; merged: string };
}

/** A lower file's entry for the layer whose link id is `linkId`. */
function lowerEntry(linkId: string): string {
  return `${LINK_DIR}/${linkId}`;
}

/** A lower file's entries, each checked: they go into mount data verbatim. */
function parseLower(text: string, id: string): string[] {
  if (text.length === 0) return [];
  const entries = text.split(':');
  for (const e of entries) validateLowerEntry(e, id);
  return entries;
}
