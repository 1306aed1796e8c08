// Where a layer's content and its lowers come from. Three sources:
//   chain   Docker's layer: its content is its diff dir, its lowers its parents' links (`lower`);
//   thin    the CVMFS fork's thin layer: a manifest whose trees, in a thin root, are its children's
//           lowers (src/thin/);
//   remote  a layer whose content is a read-only tree that already holds its files (CVMFS/DUCC's
//           unpacked layers, a `thin make` repository): its diff dir is a symlink to the tree, so its
//           children list its link like any parent's, and nothing is copied (src/remote/).
// The driver asks `of(id)` once per step and then only that source: no branch per step per feature.
// What depends on a layer's lowers rather than on the layer (repositories to mount first, trees that
// must still be there) is asked of the sources together: prepareMount / afterUnmount / withLowers.
import { existsSync, lstatSync, readFileSync, readlinkSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { Overlay2Error, isErrno } from '../errors.js';
import type { Shim } from '../native/shim.js';
import type { Change } from '../changes/change.js';
import type { ThinLayers } from '../thin/thin-layers.js';
import { checkRemoteTree, type RemoteTree } from '../remote/remote-trees.js';

/** A layer's own content when its source answers diff/changes/diffSize itself (a thin layer: its
 *  manifest), instead of the upper-dir walk over its diff dir. */
export interface OwnContent {
  size(): number;
  changes(): Change[];
  diff(): Promise<Readable>;
}

export interface LayerSource {
  readonly kind: 'chain' | 'thin' | 'remote';
  /** get(): a path handed out without mounting (a thin layer's own diff dir), or null: mount it. */
  unmountedRoot(id: string): string | null;
  /** create(): the lower of a new child of this layer (`ordinary`: the layer's link, then its lowers),
   *  and the layer the child records as its thin_parent. */
  childLower(parent: string, ordinary: string[]): { lower: string[]; thinParent: string | null };
  /** remove(): the l/ entries besides its own link that go with it. */
  ownLinks(id: string): string[];
  /** remove(): layers built on it that its lower file does not name. */
  unlistedChildren(id: string, candidates: () => string[]): string[];
  /** diff/changes/diffSize: the source's own answers, or null for the walk over the diff dir. */
  ownContent(id: string): OwnContent | null;
  /** applyDiff(): throws when the layer's content is not the store's to write. */
  requireWritable(id: string): void;
}

/** The record a remote layer carries (and its marker: a layer with this file is a remote one). */
export const REMOTE_RECORD_FILE = 'ovl2-remote.json';
/** In the home once it holds a remote layer: until then no step looks for remote lowers. */
const REMOTE_HOME_MARKER = '.remote-layers';

export interface RemoteRecord extends RemoteTree {
  /** the digest the tree was found by (blob digest or diffID) */
  digest: string;
}

const chain: LayerSource = {
  kind: 'chain',
  unmountedRoot: () => null,
  childLower: (_parent, ordinary) => ({ lower: ordinary, thinParent: null }),
  ownLinks: () => [],
  unlistedChildren: () => [],
  ownContent: () => null,
  requireWritable: () => undefined,
};

const remote: LayerSource = {
  ...chain,
  kind: 'remote',
  requireWritable(id) {
    throw new Overlay2Error('ERR_REMOTE_READ_ONLY', `overlay2: layer ${id} is a remote layer: its tree is read-only and not this store's to write`, { id });
  },
};

export class LayerSources {
  private readonly thinSource: LayerSource;
  private remoteSeen: boolean;

  constructor(private readonly shim: Shim, private readonly home: string, readonly thin: ThinLayers) {
    this.remoteSeen = existsSync(join(home, REMOTE_HOME_MARKER));
    this.thinSource = {
      kind: 'thin',
      unmountedRoot: (id) => join(home, id, 'diff'),
      childLower: (parent, ordinary) => ({ lower: ordinary.slice(1), thinParent: parent }),
      ownLinks: (id) => thin.ownLinks(id),
      unlistedChildren: (id, candidates) => thin.childrenOf(id, candidates()),
      ownContent: (id) => ({ size: () => thin.ownDiffSize(id), changes: () => thin.ownChanges(id), diff: () => thin.ownDiff(id) }),
      requireWritable: () => undefined,
    };
  }

  /** The source of layer `id`: remote (its record), thin (its manifest), else chain. */
  of(id: string): LayerSource {
    if (this.remoteSeen && this.remoteRecord(id) !== null) return remote;
    if (this.thin.isThin(id)) return this.thinSource;
    return chain;
  }

  // ---- remote layers --------------------------------------------------------------------------

  /** The remote record of layer `id`, null for any other layer. */
  remoteRecord(id: string): RemoteRecord | null {
    let text: string;
    try {
      text = readFileSync(join(this.home, id, REMOTE_RECORD_FILE), 'utf8');
    } catch (e) {
      if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) return null;
      throw e;
    }
    const r = JSON.parse(text) as Partial<RemoteRecord>;
    if (typeof r.root !== 'string' || typeof r.path !== 'string' || typeof r.digest !== 'string') {
      throw new Overlay2Error('ERR_NOT_A_STORE', `overlay2: layer ${id} has a malformed ${REMOTE_RECORD_FILE}`, { id });
    }
    return { root: r.root, path: r.path, digest: r.digest };
  }

  /** The files a remote layer is born with (written into it before it is renamed into place), and the
   *  home marked as holding remote layers. */
  remoteLayerFiles(record: RemoteRecord): Record<string, string> {
    if (!this.remoteSeen) {
      const marker = join(this.home, REMOTE_HOME_MARKER);
      writeFileSync(`${marker}.tmp-${process.pid}`, '', { mode: 0o600 });
      renameSync(`${marker}.tmp-${process.pid}`, marker);
      this.remoteSeen = true;
    }
    return { [REMOTE_RECORD_FILE]: JSON.stringify(record) + '\n' };
  }

  /** The remote trees among a layer's lowers (and the layer itself when `self`), each checked to be
   *  there beneath its root: ERR_REMOTE_LAYER_MISSING / ERR_REMOTE_UNSAFE_PATH otherwise. */
  checkRemoteLowers(id: string, lowerEntries: readonly string[], self = true): void {
    if (!this.remoteSeen) return;
    const ids = lowerEntries.map((e) => this.layerOfEntry(e)).filter((l): l is string => l !== null);
    if (self) ids.unshift(id);
    for (const layer of ids) {
      const record = this.remoteRecord(layer);
      if (record === null) continue;
      try {
        checkRemoteTree(this.shim, record);
      } catch (e) {
        if (e instanceof Overlay2Error) {
          throw new Overlay2Error(e.code, `${e.message.replace(/^overlay2: /, `overlay2: layer ${id}: `)}`, { id, path: e.path, cause: e });
        }
        throw e;
      }
    }
  }

  /** The layer a Docker link entry ("l/X" -> "../<id>/diff") names, null for a thin tree's link. */
  private layerOfEntry(entry: string): string | null {
    try {
      const m = /^\.\.\/([^/]+)\/diff$/.exec(readlinkSync(join(this.home, entry)));
      return m ? m[1]! : null;
    } catch {
      return null;
    }
  }

  // ---- what a layer's lowers need -------------------------------------------------------------

  /** Before the overlay of `id` is mounted: its thin repositories mounted (internal) and trees checked,
   *  its remote trees checked; returns the lower entries to mount. */
  async prepareMount(id: string, lowerEntries: string[]): Promise<string[]> {
    const entries = await this.thin.prepareMount(id, lowerEntries);
    try {
      this.checkRemoteLowers(id, entries);
    } catch (e) {
      await this.thin.afterUnmount(id);
      throw e;
    }
    return entries;
  }

  /** After the overlay of `id` is unmounted (or its mount failed). */
  async afterUnmount(id: string): Promise<void> {
    await this.thin.afterUnmount(id);
  }

  /** Runs `fn`, which reads `id`'s lower dirs directly, with what they need mounted meanwhile. */
  async withLowers<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return this.thin.withRepositories(id, fn);
  }

  /** The parent a layer's lower names when a source knows better than its first entry (a child of a
   *  thin layer), else null. */
  parentOf(id: string, lowerEntries: readonly string[]): string | null {
    return this.thin.parentOf(id, lowerEntries);
  }

  // ---- init and cleanup -----------------------------------------------------------------------

  /** init's sweep of dangling links: a link into a thin root, or to a remote layer's diff (a symlink
   *  to a tree that dangles while its root is not mounted), is not init's to remove. */
  keepsDanglingLink(target: string): boolean {
    if (this.thin.keepsDanglingLink(target)) return true;
    const m = /^\.\.\/([^/]+)\/diff$/.exec(target);
    if (m === null || !this.remoteSeen) return false;
    try {
      return lstatSync(join(this.home, m[1]!, 'diff')).isSymbolicLink();
    } catch {
      return false;
    }
  }
}
