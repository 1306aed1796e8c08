// The driver's thin side: what Overlay2Driver asks at each of its steps (one call each), so the
// driver stays moby's overlay2 and all of the fork's extension lives here.
//   create     a child of a thin layer lists the thin layer's lowers (not its manifest-only diff dir)
//              and records thin_parent, as the fork does
//   applyDiff  ThinApply (apply.ts): the one-file manifest tar makes the layer thin
//   get        the thin layer itself: its diff dir, unmounted (the fork's answer); any layer whose
//              lowers reach into the root: every tree checked beneath <root>/<repo>, a tree listed
//              twice mounted once, and (internal) its repositories mounted first, counted per user
//   put        the repositories it used are released (the last user unmounts)
//   diff/changes/diffSize of the thin layer: the manifest alone (diff: the bytes that were applied)
//   remove     the thin layer's own links in l/ go with it; nothing under the root is touched
// Unlike the fork, the nearest thin ancestor is found from any descendant (a container above an init
// layer above the thin layer), through the lowers themselves.
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import type { Readable } from 'node:stream';
import type { Shim } from '../native/shim.js';
import type { ApplyTap } from '../apply/tap.js';
import type { Change } from '../changes/change.js';
import { readMountInfo } from '../mount/mountinfo.js';
import { DEFAULT_THIN_ROOT_NAME, type ThinOptions } from './options.js';
import { ThinApply, recoverThinApply, THIN_PENDING_FILE } from './apply.js';
import { manifestFileOf, readLowerSync, readManifest, readThinParent, writeThinParent } from './layer-files.js';
import { isLayerLinkTarget, locationOfEntry } from './links.js';
import { checkTree, checkTrees, type TreeLocation } from './tree-paths.js';
import { RepoMounts } from './repo-mounts.js';
import { manifestTar } from './manifest-tar.js';
import type { ThinManifest } from './manifest.js';

export { THIN_PENDING_FILE };

export class ThinLayers {
  readonly root: string;
  readonly method: 'internal' | 'external';
  private readonly repoMounts: RepoMounts | null;
  /** repositories each layer mounted by this process uses */
  private readonly mountedRepos = new Map<string, string[]>();
  private seenRoot = false;
  private readonly recorded: boolean;

  constructor(private readonly shim: Shim, private readonly home: string, private readonly opts: ThinOptions) {
    // thin.root, else the root recorded by the thin apply that used one, else the fork's <home>/cvmfs
    this.root = opts.root ?? recordedRoot(home) ?? join(home, DEFAULT_THIN_ROOT_NAME);
    this.recorded = opts.root === null && this.root !== join(home, DEFAULT_THIN_ROOT_NAME);
    this.method = opts.mountMethod ?? 'external';
    this.repoMounts = this.method === 'internal' && opts.mountCommand
      ? new RepoMounts(shim, { root: this.root, command: opts.mountCommand, stillUsed: (repo) => this.usedByOtherMounts(repo) })
      : null;
  }

  /** Whether thin layers can be here at all: options name them, a root was recorded, or the root
   *  exists (one stat until it does). */
  private active(): boolean {
    if (this.seenRoot || this.opts.root !== null || this.recorded || this.opts.mountCommand !== null || this.opts.mountMethod !== null) return true;
    this.seenRoot = existsSync(this.root);
    return this.seenRoot;
  }

  private layerDir(id: string): string { return join(this.home, id); }

  /** Two lstats for an ordinary layer (no thin.json, no .thin in its diff dir). */
  isThin(id: string): boolean {
    return manifestFileOf(this.layerDir(id)) !== null;
  }

  manifestOf(id: string): ThinManifest | null {
    return readManifest(this.layerDir(id), id);
  }

  // ---- create -------------------------------------------------------------------------------

  /** The lower of a new child of `parent` (`ordinary`: the parent's link, then its lowers), and the
   *  thin layer it is made on (for its thin_parent): a thin parent's own link is left out. */
  childLower(parent: string, ordinary: string[]): { lower: string[]; thinParent: string | null } {
    if (!this.isThin(parent)) return { lower: ordinary, thinParent: null };
    return { lower: ordinary.slice(1), thinParent: parent };
  }

  recordThinParent(childDir: string, thinParent: string | null): void {
    if (thinParent !== null) writeThinParent(childDir, thinParent);
  }

  // ---- applyDiff ----------------------------------------------------------------------------

  /** The tap that turns a one-file manifest tar into a thin layer. */
  detector(id: string, inner: ApplyTap, maxDepth: number): ThinApply {
    // The default root is made on first use, as the fork makes it at init; another root is the user's.
    return new ThinApply(inner, { home: this.home, root: this.root, id, maxDepth });
  }

  /** After a thin apply: the default root is made (as the fork makes it at init), so every later
   *  open of this home checks the trees its layers reach into. */
  applied(): void {
    if (this.root === join(this.home, DEFAULT_THIN_ROOT_NAME)) mkdirSync(this.root, { recursive: true, mode: 0o755 });
    else if (recordedRoot(this.home) !== this.root) {
      const file = join(this.home, ROOT_RECORD_FILE);
      writeFileSync(`${file}.tmp-${process.pid}`, this.root + '\n', { mode: 0o644 });
      renameSync(`${file}.tmp-${process.pid}`, file);
    }
    this.seenRoot = true;
  }

  // ---- get / put ----------------------------------------------------------------------------

  /** get() of a thin layer returns its diff dir without mounting (the fork's answer). */
  getsOwnDiff(id: string): boolean {
    return this.isThin(id);
  }

  /** The thin trees among a layer's lower entries (entry -> location). */
  private thinEntries(lowerEntries: readonly string[]): Map<string, TreeLocation> {
    const found = new Map<string, TreeLocation>();
    for (const e of lowerEntries) {
      const loc = locationOfEntry(this.home, this.root, e);
      if (loc) found.set(e, loc);
    }
    return found;
  }

  /**
   * Before the overlay of `id` is mounted: mounts (internal) the repositories its thin lowers use,
   * checks each tree, and returns the lower entries to mount, each tree once (topmost kept).
   */
  async prepareMount(id: string, lowerEntries: string[]): Promise<string[]> {
    if (!this.active()) return lowerEntries;
    const thin = this.thinEntries(lowerEntries);
    if (thin.size === 0) return lowerEntries;
    const repos = [...new Set([...thin.values()].map((l) => l.repo))].sort();
    if (this.repoMounts) {
      await this.repoMounts.acquire(repos);
      this.mountedRepos.set(id, repos);
    }
    try {
      const seen = new Set<string>();
      const out: string[] = [];
      const check: TreeLocation[] = [];
      for (const e of lowerEntries) {
        const loc = thin.get(e);
        if (loc) {
          const key = `${loc.repo}/${loc.path}`;
          if (seen.has(key)) continue;
          seen.add(key);
          check.push(loc);
        }
        out.push(e);
      }
      checkTrees(this.shim, this.root, check, id);
      return out;
    } catch (e) {
      await this.afterUnmount(id);
      throw e;
    }
  }

  /** After the overlay of `id` is unmounted (or its mount failed): its repositories are released. */
  async afterUnmount(id: string): Promise<void> {
    if (!this.repoMounts) return;
    let repos = this.mountedRepos.get(id);
    this.mountedRepos.delete(id);
    if (repos === undefined) {
      // mounted by another process (the CLI's persistent references): nothing counted here, so the
      // repositories go when no other mount needs them
      repos = [...new Set([...this.thinEntries(readLower(this.layerDir(id))).values()].map((l) => l.repo))];
      for (const repo of repos) if (this.repoMounts.count(repo) === 0 && !this.usedByOtherMounts(repo, id)) await this.repoMounts.release([repo]);
      return;
    }
    await this.repoMounts.release(repos);
  }

  /** Runs `fn` (which reads `id`'s lower dirs directly, as the native changes do) with the
   *  repositories those lowers use mounted (internal), released after. */
  async withRepositories<T>(id: string, fn: () => Promise<T>): Promise<T> {
    if (!this.repoMounts || !this.active()) return fn();
    const repos = [...new Set([...this.thinEntries(readLower(this.layerDir(id))).values()].map((l) => l.repo))].sort();
    if (repos.length === 0) return fn();
    await this.repoMounts.acquire(repos);
    try {
      return await fn();
    } finally {
      await this.repoMounts.release(repos);
    }
  }

  /** Whether an overlay of this home other than `except` is mounted with a lower in `repo`. */
  private usedByOtherMounts(repo: string, except?: string): boolean {
    const prefix = this.home + '/';
    for (const m of readMountInfo()) {
      if (m.fstype !== 'overlay' || !m.point.startsWith(prefix) || !m.point.endsWith('/merged')) continue;
      const id = m.point.slice(prefix.length, -'/merged'.length);
      if (id.includes('/') || id === except || this.mountedRepos.has(id)) continue;
      for (const loc of this.thinEntries(readLower(this.layerDir(id))).values()) if (loc.repo === repo) return true;
    }
    return false;
  }

  // ---- parents ------------------------------------------------------------------------------

  /** The parent of a layer whose lower starts with a thin tree: its thin_parent (a direct child of a
   *  thin layer), else the first ordinary layer below its trees, else '' (a thin base layer). Null
   *  when the lower starts with an ordinary layer (the driver's own answer holds). */
  parentOf(id: string, lowerEntries: readonly string[]): string | null {
    if (lowerEntries.length === 0 || !this.active()) return null;
    const first = locationOfEntry(this.home, this.root, lowerEntries[0]);
    if (first === null) return null;
    const thinParent = readThinParent(this.layerDir(id));
    if (thinParent !== null) return thinParent;
    for (const e of lowerEntries) {
      if (locationOfEntry(this.home, this.root, e) !== null) continue;
      return layerOfEntry(this.home, e);
    }
    return '';
  }

  /** The nearest thin layer at or below `id` (the layer itself, its thin_parent, or up the chain). */
  nearestThin(id: string): string | null {
    let cur: string | null = id;
    for (let i = 0; cur !== null && cur !== '' && i < 1000; i++) {
      if (this.isThin(cur)) return cur;
      const tp = readThinParent(this.layerDir(cur));
      if (tp !== null) return tp;
      const lower = readLower(this.layerDir(cur));
      cur = lower.length === 0 ? null : this.parentOf(cur, lower) ?? layerOfEntry(this.home, lower[0]);
    }
    return null;
  }

  // ---- the thin layer's own diff ------------------------------------------------------------

  ownDiffSize(id: string): number {
    const name = manifestFileOf(this.layerDir(id));
    return name === null ? 0 : lstatSync(join(this.layerDir(id), 'diff', name)).size;
  }

  ownChanges(id: string): Change[] {
    const name = manifestFileOf(this.layerDir(id));
    return name === null ? [] : [{ path: `/${name}`, pathBytes: Buffer.from(`/${name}`), kind: 'A' }];
  }

  /** The tar the layer was applied from when its tar-split was kept, else the reproducible one-file tar. */
  async ownDiff(id: string): Promise<Readable> {
    const dir = this.layerDir(id);
    // node:stream is loaded here, not at the top: the driver loads this module at every CLI call.
    // require, not import(): the bundled bin runs in a vm.Script, which has no dynamic import.
    const { Readable } = createRequire(import.meta.url)('node:stream') as typeof import('node:stream');
    const { readLayerRecord } = await import('../image/layer-record.js');
    const { hasTarSplit, assembleLayer } = await import('../tar-split/assemble.js');
    const record = readLayerRecord(dir);
    if (record && hasTarSplit(dir)) return Readable.from(assembleLayer(dir, id, record.diffId, record.tarSize));
    const name = manifestFileOf(dir) ?? 'thin.json';
    return Readable.from([manifestTar(readFileSync(join(dir, 'diff', name)), name)]);
  }

  // ---- remove -------------------------------------------------------------------------------

  /** The l/ entries a thin layer made for itself (the leading trees of its lower, as many as its
   *  manifest lists): remove() deletes these links and nothing they point at. */
  ownLinks(id: string): string[] {
    if (!this.isThin(id)) return [];
    let count: number;
    try {
      count = this.manifestOf(id)?.layers.length ?? 0;
    } catch {
      count = Infinity; // a broken manifest: every leading thin link is the layer's own
    }
    const own: string[] = [];
    for (const e of readLower(this.layerDir(id))) {
      if (own.length >= count || locationOfEntry(this.home, this.root, e) === null) break;
      own.push(e);
    }
    return own;
  }

  /** Layers made directly on thin layer `id` (their lower does not name it; their thin_parent does). */
  childrenOf(id: string, candidates: readonly string[]): string[] {
    if (!this.active()) return [];
    return candidates.filter((c) => c !== id && readThinParentSafe(this.layerDir(c)) === id);
  }

  // ---- init / cleanup -----------------------------------------------------------------------

  /** init's sweep of dangling links takes only Docker's own ("../<id>/diff"): a link into a thin root
   *  dangles whenever its repository is not mounted, and is the thin layer's, not init's, to remove. */
  keepsDanglingLink(target: string): boolean {
    return !isLayerLinkTarget(target);
  }

  /** init: an apply interrupted between its swap and its lower is finished (or dropped). */
  recover(id: string): void {
    recoverThinApply(this.home, this.layerDir(id));
  }

  /** cleanup() sweeps mounts under the home: the root's are not its to take (external) or are taken here (internal). */
  sweeps(mountPoint: string): boolean {
    return !(mountPoint === this.root || mountPoint.startsWith(this.root + '/'));
  }

  cleanup(): void {
    this.mountedRepos.clear();
    this.repoMounts?.unmountAll();
  }

  /** What `thin check` reports: every thin tree a layer mounts, checked (there, readable, beneath its
   *  repository); internal repositories are mounted for the check and released after. */
  async checkLowers(id: string): Promise<Array<{ entry: string; location: TreeLocation; error: string | null }>> {
    const thin = this.thinEntries(readLower(this.layerDir(id)));
    const repos = [...new Set([...thin.values()].map((l) => l.repo))].sort();
    const rows: Array<{ entry: string; location: TreeLocation; error: string | null }> = [];
    let mountError: string | null = null;
    if (this.repoMounts && repos.length > 0) {
      try {
        await this.repoMounts.acquire(repos);
      } catch (e) {
        mountError = `${(e as { code?: string }).code}: ${(e as Error).message}`;
      }
    }
    try {
      for (const [entry, location] of thin) {
        if (mountError) {
          rows.push({ entry, location, error: mountError });
          continue;
        }
        try {
          checkTree(this.shim, this.root, location, id, true);
          rows.push({ entry, location, error: null });
        } catch (e) {
          rows.push({ entry, location, error: `${(e as { code?: string }).code}: ${(e as Error).message}` });
        }
      }
    } finally {
      if (this.repoMounts && repos.length > 0 && !mountError) await this.repoMounts.release(repos);
    }
    return rows;
  }
}

/** A home whose thin layers point into a root other than <home>/cvmfs records it here, so a later
 *  open without thin.root (a CLI call) still checks every tree against it. Docker ignores dot names. */
const ROOT_RECORD_FILE = '.thin-root';

function recordedRoot(home: string): string | null {
  try {
    const text = readFileSync(join(home, ROOT_RECORD_FILE), 'utf8').trim();
    return text.startsWith('/') && !/[,:\\\x00-\x1f\x7f]/.test(text) ? text : null;
  } catch {
    return null;
  }
}

/** A layer's lower entries; [] when there are none or they cannot be read (a layer being removed). */
function readLower(layerDir: string): string[] {
  try { return readLowerSync(layerDir); } catch { return []; }
}

function readThinParentSafe(layerDir: string): string | null {
  try { return readThinParent(layerDir); } catch { return null; }
}

/** The layer an ordinary lower entry's link points at ("l/X" -> "../<id>/diff" -> id). */
function layerOfEntry(home: string, entry: string): string {
  try {
    const target = readlinkSync(join(home, entry));
    return isLayerLinkTarget(target) ? target.split('/')[1] : '';
  } catch {
    return '';
  }
}
