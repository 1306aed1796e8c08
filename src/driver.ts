// Overlay2Driver: moby's overlay2 graphdriver in camelCase, over a Docker-compatible store.
import { promises as fsp, readFileSync, readlinkSync, existsSync, mkdirSync, mkdtempSync, chownSync, chmodSync, rmdirSync, rmSync, readdirSync, statSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, dirname, resolve, basename } from 'node:path';
import type { Readable } from 'node:stream';
import { Overlay2Error, isErrno } from './errors.js';
import { loadShim, type Shim } from './native/shim.js';
import { FS_MAGIC, MNT_DETACH, RENAME_NOREPLACE, AT_FDCWD } from './native/constants.js';
import type { Features } from './features.js';
import type { LayerContext } from './context.js';
import { parseDriverOptions, parseStorageOpt, type DriverOptions } from './options.js';
import { IdMappings, type IdMapOptions } from './idmap.js';
import { generateLinkId, validateId } from './layout/ids.js';
import { LayerStore } from './layout/store.js';
import { removeTree, removeTreeSync } from './layout/remove-tree.js';
import { checkRemovable, requireParentSync } from './layout/layer-guard.js';
import { arrive, leaveAtExit, type InFlight } from './layout/home-users.js';
import { ChildIndex } from './layout/child-index.js';
import { mountLayer, type MountMethod, type MountStrategy } from './mount/mounter.js';
import { detachMount, type SuperblockRelease } from './mount/detach.js';
import { validateMountLabel } from './mount/data.js';
import { SharedRefs, totalRefs, type RefScope } from './mount/shared-refs.js';
import { unmountStale } from './mount/stale.js';
import { readMountInfo } from './mount/mountinfo.js';
import { openHome } from './layout/home.js';
import { cachedFeatures, writeFeatureCache, isOutOfSpace } from './feature-cache.js';
import { KeyedMutex } from './util/keyed-mutex.js';
import type { Change } from './changes/change.js';
import { ChangeStream, within } from './changes/change-stream.js';
import { ProjectQuota, supportsProjectQuota } from './quota.js';
import { removeStaleStaging, isEmptyDir, STAGING_PREFIX } from './apply/staging.js';
import { withApplyMarker, recoverInterruptedApply, requireComplete, APPLYING_FILE } from './apply/marker.js';
import { cleanupAfter } from './apply/errors.js';
import { ProgressCounter, type Control } from './progress.js';
import type { LayerSource } from './apply/input.js';
import type { LoadOptions, LoadResult, ImageSource } from './image/load.js';
import type { SaveOptions } from './image/save.js';
import { ThinLayers, THIN_PENDING_FILE } from './thin/thin-layers.js';
import { LayerSources, type RemoteRecord } from './sources/layer-sources.js';
import { checkRemoteTree, findRemoteTree, type LayerKeys, type RemoteTree } from './remote/remote-trees.js';
import { thinRootEntryIn } from './thin/options.js';

export interface CreateOpts {
  /** per-layer storage options; only "size" (read-write layers, XFS project quota) */
  storageOpt?: Record<string, string>;
  mountLabel?: string;
}

/** What the library's own callers may add to a create (not part of the public CreateOpts). */
interface InternalCreateOpts {
  /** files written into the layer's directory before it appears (createWithFiles) */
  files?: Record<string, string>;
  /** a remote layer: its diff/ is a symlink to this tree, and it is committed from birth */
  remote?: RemoteRecord;
}

export interface InitOptions extends IdMapOptions {
  /** Open an existing store without writing to it: no home is created, nothing is cleaned up
   *  (status, ls, exists, metadata, changes, diffsize and diff need no more). Default false. */
  readOnly?: boolean;
  /**
   * Who holds the references get() takes: 'process' (default) — this process, so they drop when it
   * exits or dies; 'persistent' — kept in the home until a put() from any process releases them
   * (the CLI's `mount`/`unmount`, whose process exits right after mounting).
   */
  mountReferences?: RefScope;
}

export interface RemoveOptions {
  /** Remove the layer even when other layers are built on it (they break, as with moby). */
  force?: boolean;
}

/** One row of layers(): what `overlay2 ls --json` prints. */
export interface LayerInfo {
  id: string;
  /** the parent's id, '' for a base layer */
  parent: string;
  /** bytes of the layer's own content (its diff dir, hardlinked inodes once) */
  size: number;
  /** whether HOME/<id>/merged is an overlay mount now */
  mounted: boolean;
}

export interface DiffOptions extends Control {
  /** which xattrs an exported tar carries: Docker's 'docker' (security.capability only) or 'all' */
  xattrs?: 'docker' | 'all';
  /** Read the layer on a worker thread of its own (src/stream-worker/), so this process's event
   *  loop never waits behind the stream's reads: what the plugin asks for its Diff. The native
   *  export only; the naive one (a mounted tree and a change list) stays on the event loop. */
  offThread?: boolean;
}

export interface ApplyDiffOptions extends Control {
  /** Create the layer's files on a worker thread of its own (src/stream-worker/): the plugin's
   *  ApplyDiff, so other layers' calls are answered while a big layer is written. */
  offThread?: boolean;
  /** load: the diffID the tar must have; checked before the layer's content is swapped in. */
  expectDiffId?: string;
  /** false: keep neither the tar-split record nor the diffID `save` uses to hand the layer back byte
   *  for byte, and skip the sha256 they need. For callers that keep their own (dockerd keeps
   *  tar-split data for every layer a plugin imports); default true. */
  layerRecord?: boolean;
}

/** moby's maxDepth: the lower file of a layer holds at most this many entries without lowerdir+. */
export const LEGACY_MAX_DEPTH = 128;
/** The kernel's OVL_MAX_STACK is 500; a committed layer mounts its own diff plus its lowers. */
export const KERNEL_MAX_DEPTH = 499;

export class Overlay2Driver {
  readonly home: string;
  readonly features: Features;
  readonly options: DriverOptions;
  readonly idMappings: IdMappings;
  /** How get() mounts: 'auto' (absolute, else relative, else fsconfig) or one method forced. */
  mountStrategy: MountStrategy = 'auto';
  /** @internal How many walks a remove() deletes a layer's files with at once (each holds a libuv pool
   *  thread; the pool has 4): a service lowers it so other calls are not queued behind a big removal. */
  removeWalks = 4;
  /** The method the last mount of each id used (for status and benchmarks). */
  readonly lastMountMethod = new Map<string, MountMethod>();

  private readonly shim: Shim;
  private readonly store: LayerStore;
  private readonly children: ChildIndex;
  private readonly refs: SharedRefs;
  /** References this driver instance holds per id (its process's hold in the shared file is one). */
  private readonly held = new Map<string, number>();
  private readonly locks = new KeyedMutex();
  private applying = 0;
  /** Whether an operation that can leave interrupted work behind is running (src/layout/home-users.ts). */
  private readonly inFlight: InFlight = ((driver) => ({ get busy() { return driver.locks.busy || driver.applying > 0; } }))(this);
  private readonly referenceScope: RefScope;
  /** Where each layer's content and lowers come from: chain, thin, remote (src/sources/). */
  private readonly sources: LayerSources;

  /** What the driver hands the rooms it delegates to (src/context.ts). */
  private get context(): LayerContext {
    return { shim: this.shim, userxattr: this.features.userxattr, idMappings: this.idMappings };
  }

  private constructor(home: string, shim: Shim, features: Features, options: DriverOptions, idMappings: IdMappings,
    private readonly quota: ProjectQuota | null, referenceScope: RefScope) {
    this.home = home;
    this.shim = shim;
    this.features = features;
    this.options = options;
    this.idMappings = idMappings;
    this.store = new LayerStore(home);
    this.children = new ChildIndex(this.store);
    this.refs = new SharedRefs(shim, home);
    this.referenceScope = referenceScope;
    this.sources = new LayerSources(shim, home, new ThinLayers(shim, home, options.thin));
  }

  /**
   * Opens a driver home (creating it unless `readOnly`): checks it is safe to use (not a pseudo
   * filesystem, a store or an empty/new directory), parses options, detects what the kernel and the
   * backing filesystem support (cached in the home per kernel and filesystem), and clears what an
   * interrupted create/remove/applyDiff left behind.
   */
  static async init(home: string, options: readonly string[] | Record<string, string> = [], settings: InitOptions = {}): Promise<Overlay2Driver> {
    if (typeof home !== 'string' || !home.startsWith('/')) {
      throw new Overlay2Error('ERR_BAD_OPTION', `overlay2: home must be an absolute path, got ${JSON.stringify(home)}`, { path: String(home) });
    }
    if (/[,:\\\n\0]/.test(home)) {
      throw new Overlay2Error('ERR_BAD_OPTION', `overlay2: home ${JSON.stringify(home)} contains a character overlay mount options cannot carry (, : \\ newline)`, { path: home });
    }
    const opts = parseDriverOptions(options);
    const idMappings = new IdMappings(settings);
    const readOnly = settings.readOnly ?? false;
    const scope = settings.mountReferences ?? 'process';
    if (scope !== 'process' && scope !== 'persistent') {
      throw new Overlay2Error('ERR_BAD_OPTION', `overlay2: mountReferences must be 'process' or 'persistent', got ${JSON.stringify(scope)}`, { option: 'mountReferences' });
    }
    requireSysAdmin(home);
    const shim = loadShim();
    const root = idMappings.root();
    const { dev } = openHome(shim, home, { readOnly, uid: process.getuid?.() ?? 0, gid: root.gid, thinRoot: thinRootEntryIn(home, opts.thin) });

    const store = new LayerStore(home);
    const partialExisted = existsSync(store.partialDir());
    // Cached, probed, or — on a full filesystem — unprobed (see feature-cache.ts): a full disk must
    // not keep remove() from freeing space. The probes load only on a cache miss: a CLI call on a
    // known home never parses them.
    const features = await cachedFeatures(shim, home, dev, readOnly,
      async () => (await import('./features.js')).detectFeatures(shim, { home, scratch: store.partialDir(), overrideKernelCheck: opts.overrideKernelCheck }));
    // the probes' scratch dir: a read-only open leaves the home as it found it
    if (readOnly && !partialExisted) removeTreeSync(store.partialDir(), home);
    let quota: ProjectQuota | null = null;
    let quotaWhyNot = `${home} is on ${features.backingFs}, not xfs or ext4`;
    if (supportsProjectQuota(features.backingFs) && !readOnly) {
      const q = ProjectQuota.open(shim, home, features.backingFs);
      if (q instanceof ProjectQuota) quota = q;
      else quotaWhyNot = `project quotas are not enabled on ${home} (mount xfs with prjquota, or ext4 made with -O quota,project and mounted with prjquota): ${q.message}`;
    }
    features.projectQuota = quota !== null;
    if (opts.quotaSize > 0 && !quota) {
      throw new Overlay2Error('ERR_NOT_SUPPORTED',
        `overlay2: option overlay2.size needs project quotas (xfs or ext4); ${quotaWhyNot}`, { option: 'overlay2.size' });
    }

    const driver = new Overlay2Driver(home, shim, features, opts, idMappings, quota, scope);
    if (!readOnly) await driver.recover();
    return driver;
  }

  /**
   * The features an operation needs, probed again if init could not (a full filesystem); while the
   * probes still fail, ERR_NO_SPACE saying why. Operations that free space never call this.
   */
  private async requireFeatures(what: string, id?: string): Promise<void> {
    if (!this.features.unprobed) return;
    try {
      const { detectFeatures } = await import('./features.js');
      const fresh = await detectFeatures(this.shim, { home: this.home, scratch: this.store.partialDir(), overrideKernelCheck: this.options.overrideKernelCheck });
      fresh.projectQuota = this.quota !== null;
      Object.assign(this.features, fresh, { unprobed: undefined });
      delete this.features.unprobed;
      writeFeatureCache(this.home, this.features);
    } catch (e) {
      if (!isOutOfSpace(this.shim, this.home, e)) throw e;
      throw new Overlay2Error('ERR_NO_SPACE',
        `overlay2: cannot ${what}: ${this.features.unprobed}; remove layers to free space`, { id, cause: e });
    }
  }

  /**
   * Removes what interrupted operations left: partial layers, staging dirs, dangling links. Runs at
   * every read-write init (every CLI call that writes), so it is synchronous: a readdir per layer
   * costs microseconds, a thread-pool round trip per layer would cost more than the work. The walk
   * over every layer dir runs only after a user of the home died mid-work (src/layout/home-users.ts):
   * an init after clean exits does not grow with the home.
   */
  private async recover(): Promise<void> {
    // Only when no other live process uses the home: .partial/ holds its work in progress too.
    const { afterCrash } = await arrive(this.refs, () => {
      if (existsSync(this.store.partialDir())) removeTreeSync(this.store.partialDir(), this.home);
    });
    leaveAtExit(this.refs, this.inFlight);
    // Made again at once (best effort): on a full filesystem the inode just freed is the one that
    // remove() needs to move a layer out of sight.
    try { mkdirSync(this.store.partialDir(), { mode: 0o700 }); } catch { /* full, or there */ }
    if (afterCrash) await this.sweepLayers();
    // Layers a killed load() created but never finished (src/image/load-journal.ts).
    if (existsSync(this.store.loadsDir())) {
      await (await import('./image/load-journal.js')).recoverInterruptedLoads(this.store, (id) => this.remove(id));
    }
  }

  /** What a process that died mid-work can have left in layer dirs and l/. */
  private async sweepLayers(): Promise<void> {
    for (const e of readdirSync(this.home, { withFileTypes: true })) {
      if (!e.isDirectory() || !LayerStore.isLayerName(e.name)) continue;
      let names: string[];
      try { names = readdirSync(this.store.dir(e.name)); } catch { continue; }
      if (names.some((n) => n.startsWith(STAGING_PREFIX))) await removeStaleStaging(this.store.dir(e.name));
      if (names.includes(APPLYING_FILE)) {
        recoverInterruptedApply(this.store.dir(e.name), () => {
          try { this.shim.umount2(this.store.mergedDir(e.name), MNT_DETACH); } catch { /* not mounted */ }
        });
      }
      if (names.includes(THIN_PENDING_FILE)) this.sources.thin.recover(e.name);
      if (names.some((n) => n.startsWith('ovl2-') && n.includes('.tmp-'))) {
        (await import('./image/layer-record.js')).removeStaleRecordTemps(this.store.dir(e.name));
      }
    }
    for (const name of readdirSync(this.store.linkDir())) {
      const link = join(this.store.linkDir(), name);
      if (statSync(link, { throwIfNoEntry: false }) === undefined && !this.sources.keepsDanglingLink(readlinkSync(link))) rmSync(link, { force: true });
    }
  }

  /** Rebuilds the child index (O(layers): a home Docker wrote, or one a crash left it stale in);
   *  false when it cannot be made (a full disk: remove() then reads every lower file). Under the
   *  refs lock. */
  private rebuildChildIndex(): boolean {
    try {
      this.children.rebuild();
      return true;
    } catch (e) {
      if (isOutOfSpace(this.shim, this.home, e)) return false;
      throw e;
    }
  }

  /** Applies `change` to the child index and stamps it current, if it was; a change that fails
   *  (a full disk) leaves it stale for the next remove() to rebuild. Under the refs lock. */
  private keepChildIndex(wasCurrent: boolean, change: () => void): void {
    try {
      change();
      if (wasCurrent) this.children.stamp();
    } catch {
      this.children.invalidate();
    }
  }

  /** The deepest chain create() accepts: the kernel's 500-layer limit with lowerdir+, else moby's 128. */
  get maxDepth(): number {
    return this.features.lowerdirPlus ? KERNEL_MAX_DEPTH : LEGACY_MAX_DEPTH;
  }

  toString(): string {
    return 'overlay2';
  }

  // ---- layers -------------------------------------------------------------------------------

  /** Creates a read-only (image) layer. */
  async create(id: string, parent?: string | null, opts: CreateOpts = {}): Promise<void> {
    if (hasSizeOpt(opts.storageOpt)) {
      throw new Overlay2Error('ERR_BAD_OPTION', 'overlay2: --storage-opt size is only supported for read-write layers', { id, option: 'size' });
    }
    await this.createLayer(id, parent ?? '', opts);
  }

  /** Creates a read-write (container) layer; honours a size quota where XFS project quotas exist. */
  async createReadWrite(id: string, parent?: string | null, opts: CreateOpts = {}): Promise<void> {
    const storageOpt = { ...(opts.storageOpt ?? {}) };
    if (!hasSizeOpt(storageOpt) && this.options.quotaSize > 0) {
      storageOpt.size = String(this.options.quotaSize);
    }
    await this.createLayer(id, parent ?? '', { ...opts, storageOpt });
  }

  /**
   * @internal A layer born with `files` inside it (name → content, written before the layer is
   * renamed into place): the snapshotter's record is never missing from a layer it made, even across
   * a kill -9. Read-write (a container layer) or not, as create/createReadWrite.
   */
  async createWithFiles(id: string, parent: string, readWrite: boolean, files: Record<string, string>): Promise<void> {
    if (readWrite) await this.createReadWrite(id, parent, { files } as CreateOpts);
    else await this.createLayer(id, parent, { files } as CreateOpts & InternalCreateOpts);
  }

  /**
   * @internal A committed layer whose content is a read-only tree that already holds its files (a
   * remote layer, src/sources/): nothing is copied, its diff/ is a symlink to the tree. The tree is
   * checked beneath its root first; `files` as for createWithFiles.
   */
  async createRemote(id: string, parent: string, record: RemoteRecord, files: Record<string, string>): Promise<void> {
    checkRemoteTree(this.shim, record);
    const all = { ...files, ...this.sources.remoteLayerFiles(record) };
    await this.createLayer(id, parent, { files: all, remote: record });
  }

  /** @internal The first tree under `roots` that holds the layer `keys` name, checked beneath its root
   *  (null: none; throws ERR_REMOTE_UNSAFE_PATH for one that leads out). src/remote/remote-trees.ts. */
  async findRemoteTree(roots: readonly string[], keys: LayerKeys): Promise<RemoteTree | null> {
    return findRemoteTree(this.shim, roots, keys);
  }

  /** @internal The remote record of a layer (null: not a remote layer). */
  remoteRecord(id: string): RemoteRecord | null {
    validateId(id);
    return this.sources.remoteRecord(id);
  }

  /** @internal Marks a layer committed (read-only from now on): the snapshotter's Commit. */
  markCommitted(id: string): void {
    validateId(id);
    this.store.markCommitted(id);
  }

  /** @internal What another mounter (containerd) mounts for a layer: its own diff and work dirs, and its
   *  lowers (topmost first) as the store's absolute short links and as the diff dirs they point at. */
  async mountSources(id: string): Promise<{ diff: string; work: string; lowerLinks: string[]; topLowerDir: string | null }> {
    const lower = await this.requireLowersPresent(id);
    return {
      diff: this.store.diffDir(id),
      work: this.store.workDir(id),
      lowerLinks: lower.map((entry) => join(this.home, entry)),
      topLowerDir: lower.length === 0 ? null : resolve(this.store.linkDir(), readlinkSync(join(this.home, lower[0]!))),
    };
  }

  /** @internal The layer's lower entries, once every tree they and the layer need is there (a remote
   *  layer's: ERR_REMOTE_LAYER_MISSING otherwise): what a new snapshot on it is checked by. */
  async requireLowersPresent(id: string): Promise<string[]> {
    validateId(id);
    await this.store.requireLayer(id);
    const lower = this.store.readLowerSync(id);
    this.sources.checkRemoteLowers(id, lower);
    return lower;
  }

  private async createLayer(id: string, parent: string, opts: CreateOpts & InternalCreateOpts): Promise<void> {
    validateId(id);
    if (parent !== '') validateId(parent, 'parent id');
    const { size } = parseStorageOpt(opts.storageOpt);
    await this.requireFeatures(`create layer ${id}`, id);
    if (size > 0 && !this.features.projectQuota) {
      throw new Overlay2Error('ERR_NOT_SUPPORTED',
        `overlay2: --storage-opt size is supported only for overlay over xfs with 'pquota' mount option, or ext4 with project quotas (${this.home} is on ${this.features.backingFs})`,
        { id, option: 'size' });
    }
    await this.locks.run(id, async () => {
      if (await this.store.exists(id)) {
        throw new Overlay2Error('ERR_LAYER_EXISTS', `overlay2: layer ${id} already exists`, { id });
      }
      let lower: string[] = [];
      let thinParent: string | null = null;
      if (parent !== '') {
        await this.store.requireLayer(parent, 'parent layer');
        try {
          ({ lower, thinParent } = this.sources.of(parent).childLower(parent, this.store.lowerForChild(parent)));
        } catch (e) {
          if (!isErrno(e, 'ENOENT')) throw e;
          // removed (by another process) since requireLayer
          throw new Overlay2Error('ERR_LAYER_NOT_FOUND', `overlay2: parent layer ${parent} does not exist in ${this.home}`, { id });
        }
        if (lower.length > this.maxDepth) {
          throw new Overlay2Error('ERR_MAX_DEPTH',
            `overlay2: max depth exceeded: layer ${id} would have ${lower.length} lower layers (limit ${this.maxDepth})`, { id });
        }
      }

      // Build the layer under .partial/ and rename it into place: a crash leaves no half layer.
      // Synchronous, a dozen small syscalls: each awaited one would cost a thread-pool round trip
      // (more than the syscall itself), and a snapshotter's Prepare waits for all of them.
      const root = this.idMappings.root();
      const me = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
      let tmp: string;
      try {
        mkdirSync(this.store.partialDir(), { recursive: true, mode: 0o700 });
        tmp = mkdtempSync(join(this.store.partialDir(), `${id}.`));
      } catch (e) {
        throw noSpace(e, `create layer ${id}`, id);
      }
      const linkId = generateLinkId();
      let linkPath = '';
      try {
        setOwnerMode(tmp, 0o710, me.uid, root.gid);
        // The project id is set before anything is created inside, so diff/ and work/ inherit it.
        if (size > 0 && this.quota) this.quota.setQuota(tmp, size);
        // A remote layer's content is its tree: diff/ is a symlink to it (src/sources/).
        if (opts.remote) symlinkSync(join(opts.remote.root, opts.remote.path), join(tmp, 'diff'));
        else ensureDir(join(tmp, 'diff'), 0o755, root.uid, root.gid);
        if (parent !== '') ensureDir(join(tmp, 'work'), 0o700, root.uid, root.gid);
        this.store.writeLayerFiles(tmp, linkId, lower);
        for (const [name, content] of Object.entries(opts.files ?? {})) writeFileSync(join(tmp, name), content, { mode: 0o600 });
        this.sources.thin.recordThinParent(tmp, thinParent);
        if (opts.remote) this.store.markCommittedIn(tmp);
        // One step for every process on the home: the parent is still there when the child appears
        // (a remove() of it in between would strand the child; src/layout/layer-guard.ts), and the
        // link, the layer and its entry in the child index appear together (src/layout/child-index.ts).
        await this.refs.lockedAsync(() => {
          if (parent !== '') {
            requireParentSync(this.store, parent, thinParent === null ? lower[0]! : null, id);
          }
          const indexCurrent = this.children.current();
          linkPath = this.store.createLinkSync(id, linkId);
          // a stat, not a rewrite: truncating the existing marker is a journalled inode update per child
          if (parent !== '' && !this.store.isCommitted(parent)) this.store.markCommitted(parent);
          try {
            this.shim.renameat2(AT_FDCWD, tmp, AT_FDCWD, this.store.dir(id), RENAME_NOREPLACE);
            this.quota?.moved(tmp, this.store.dir(id));
          } catch (e) {
            if (isErrno(e, 'EEXIST') || isErrno(e, 'ENOTEMPTY')) {
              throw new Overlay2Error('ERR_LAYER_EXISTS', `overlay2: layer ${id} already exists`, { id });
            }
            throw e;
          }
          this.keepChildIndex(indexCurrent, () => this.children.add(id, lower));
        });
      } catch (e) {
        // The failure wins over anything cleanup runs into (attached as cleanupErrors).
        throw await cleanupAfter(noSpace(e, `create layer ${id}`, id), async () => {
          if (linkPath !== '') await fsp.rm(linkPath, { force: true });
          await removeTree(tmp, this.home);
        });
      }
    });
  }

  /**
   * Removes a layer, its link and (after unmounting it) everything it holds. Refused, unless
   * `force`: a layer other layers are built on (ERR_LAYER_HAS_CHILDREN), and one another live process
   * holds mounted — a library user's get(), or `overlay2 mount` (ERR_LAYER_BUSY, naming them). This
   * process's own references do not stop it (moby's Remove unmounts and deletes what its own process
   * still holds). `force` removes it anyway: the children break and the other holders' mounts are
   * detached under them, as with moby.
   */
  async remove(id: string, opts: RemoveOptions = {}): Promise<void> {
    validateId(id);
    await this.locks.run(id, async () => {
      await this.store.requireLayer(id);
      const merged = this.store.mergedDir(id);
      const heldHere = (this.held.get(id) ?? 0) > 0;
      // The checks and the move out of sight are one step for every process on the home (under the
      // refs lock): no child created, nor mount taken, in between (src/layout/layer-guard.ts).
      const source = this.sources.of(id);
      const ownLinks = source.ownLinks(id);
      let superblock: SuperblockRelease = Promise.resolve();
      const { doomed } = await this.refs.updateAsync(id, (state) => {
        // The child index answers which layers are built on this one; stale (Docker wrote the home,
        // a process died mid-change), it is made again from the lower files first.
        const indexCurrent = this.children.current() || this.rebuildChildIndex();
        // a thin layer's children list its trees, not its link: they name it in thin_parent
        const unlisted = () => source.unlistedChildren(id, () => this.store.layerNamesSync());
        const linkId = checkRemovable(this.store, id, state, opts.force === true,
          (link) => (indexCurrent ? this.children.layersAbove(link) : this.store.layersAboveSync(id, link)), unlisted);
        const lower = this.store.readLowerSync(id);
        if (heldHere || totalRefs(state) > 0 || this.isOverlayMount(merged)) {
          try { superblock = detachMount(this.shim, merged); } catch { /* already gone */ }
        }
        state.persistent = 0;
        state.pids = {};
        this.quota?.release(this.store.dir(id));
        // Move it out of sight first, so a crash mid-delete never leaves a layer that looks whole.
        let doomed = join(this.store.partialDir(), `${id}.removing.${process.pid}.${Date.now()}`);
        try {
          mkdirSync(this.store.partialDir(), { recursive: true, mode: 0o700 });
          renameSync(this.store.dir(id), doomed);
        } catch (e) {
          // A full filesystem has no inode for .partial/: then out of sight means without its link
          // file (a dir without one is not a layer), deleted where it is.
          if (!isOutOfSpace(this.shim, this.home, e)) throw e;
          doomed = this.store.dir(id);
          this.store.dropLinkFileSync(doomed);
        }
        if (linkId !== '' && !linkId.includes('/')) rmSync(this.store.linkPath(linkId), { force: true });
        for (const entry of ownLinks) rmSync(join(this.home, entry), { force: true });
        this.keepChildIndex(indexCurrent, () => this.children.forget(id, linkId, lower));
        return { doomed };
      });
      // the detached overlay's shutdown (its sync) on the pool, before its files go
      await superblock;
      this.held.delete(id);
      this.lastMountMethod.delete(id);
      await removeTree(doomed, this.home, this.removeWalks);
    });
  }

  /**
   * Mounts the layer (reference-counted across processes, see src/mount/shared-refs.ts) and returns
   * the path of its root filesystem.
   */
  async get(id: string, mountLabel?: string): Promise<string> {
    return this.acquire(id, mountLabel, this.referenceScope);
  }

  /** Drops one reference; the last one (of any process) unmounts (detached) and removes the mount point. */
  async put(id: string): Promise<void> {
    return this.release(id, this.referenceScope);
  }

  private async acquire(id: string, mountLabel: string | undefined, scope: RefScope): Promise<string> {
    validateId(id);
    validateMountLabel(mountLabel);
    await this.requireFeatures(`mount layer ${id}`, id);
    // Sync metadata calls on purpose: each is microseconds, while a thread-pool round trip per
    // call would double the latency of a short-chain mount.
    return this.locks.run(id, async () => {
      const lowerEntries = this.store.mountLowerSync(id);
      requireComplete(this.store.dir(id), id);
      const unmounted = this.sources.of(id).unmountedRoot(id);
      if (unmounted !== null) return unmounted;
      if (lowerEntries === null) {
        this.sources.checkRemoteLowers(id, []);
        return this.store.diffDir(id);
      }
      const merged = this.store.mergedDir(id);
      const held = this.held.get(id) ?? 0;
      if (scope === 'process' && held > 0) {
        this.held.set(id, held + 1);
        return merged;
      }
      // The 0→1 reference mounts under the home's refs lock: no other process counts on the mount
      // before it exists (src/mount/shared-refs.ts).
      // Thin trees among the lowers: their repositories are mounted first (src/thin/), outside the
      // refs lock.
      const entries = await this.sources.prepareMount(id, lowerEntries);
      let mountedHere = false;
      try {
        await this.refs.acquireAsync(id, scope, async () => { await this.mountFirst(id, entries, mountLabel); mountedHere = true; });
      } catch (e) {
        await this.sources.afterUnmount(id);
        throw e;
      }
      // Another process's mount serves this reference: the repositories are counted for that mount.
      if (!mountedHere) await this.sources.afterUnmount(id);
      if (scope === 'process') this.held.set(id, 1);
      return merged;
    });
  }

  /** The mount the first reference of any process makes (under the refs lock; its mkdir and mount
   *  run on the libuv pool, where they may wait for the filesystem's journal). */
  private async mountFirst(id: string, lowerEntries: string[], mountLabel: string | undefined): Promise<void> {
    const merged = this.store.mergedDir(id);
    // removed by another process since this get() read the layer
    if (!existsSync(this.store.dir(id))) {
      throw new Overlay2Error('ERR_LAYER_NOT_FOUND', `overlay2: layer ${id} does not exist in ${this.home}`, { id });
    }
    // No live reference, of any process (the shared records drop dead holders): whatever overlay
    // is mounted here is stale — a crashed holder's, maybe stacked by repeated crashes. All of it
    // goes, and the layer is mounted afresh (src/mount/stale.ts).
    unmountStale(this.shim, merged);
    try {
      const readonly = this.store.isCommitted(id);
      const root = this.idMappings.root();
      await makeMountPoint(merged, root.uid, root.gid);
      const method = await mountLayer(this.shim, this.features,
        { id, paths: this.store.mountPaths(id), lowerEntries, readonly, mountLabel }, this.mountStrategy);
      this.lastMountMethod.set(id, method);
      // Overlay inside a user namespace needs work/work owned by the remapped root (moby does this).
      if (!readonly && !this.idMappings.empty) chownSync(join(this.store.workDir(id), 'work'), root.uid, root.gid);
    } catch (e) {
      try { this.shim.umount2(merged, MNT_DETACH); } catch { /* never mounted */ }
      await fsp.rmdir(merged).catch(() => undefined); // not there
      throw e;
    }
  }

  private async release(id: string, scope: RefScope): Promise<void> {
    validateId(id);
    await this.locks.run(id, async () => {
      const merged = this.store.mergedDir(id);
      const held = this.held.get(id) ?? 0;
      if (scope === 'process' && held > 1) {
        this.held.set(id, held - 1);
        return;
      }
      // A held reference proves the layer has a lower file; only an unknown mount needs the read.
      if (held === 0 && (this.store.mountLowerSync(id) === null || this.sources.of(id).unmountedRoot(id) !== null)) return;
      if (scope === 'process') this.held.delete(id);
      // A process-scope put without a get releases nothing of anyone else's; a persistent one takes
      // one persistent reference. Either way the mount goes when nobody holds it any more — under
      // the refs lock, so no other process's get() counts on it meanwhile.
      let unmounted = false;
      let superblock: SuperblockRelease = Promise.resolve();
      await this.refs.releaseAsync(id, scope === 'process' && held === 0 ? null : scope, async () => {
        try {
          superblock = detachMount(this.shim, merged);
        } catch (e) {
          if (!isErrno(e, 'EINVAL') && !isErrno(e, 'ENOENT')) throw e;
        }
        // Removing the mount point also drops copies of the mount in other mount namespaces.
        await fsp.rmdir(merged).catch(() => undefined); // busy elsewhere or gone
        unmounted = true;
      });
      // The overlay's shutdown (its sync of the upper filesystem) runs on the libuv pool; this layer's
      // next call waits for it under the layer's lock, no other layer's call does (src/mount/detach.ts).
      await superblock;
      if (unmounted) await this.sources.afterUnmount(id);
    });
  }

  async exists(id: string): Promise<boolean> {
    validateId(id);
    return this.store.exists(id);
  }

  /** moby's Status(): [key, value] pairs, the same keys in the same order, then ours. */
  status(): [string, string][] {
    const f = this.features;
    return [
      ['Backing Filesystem', f.backingFs],
      ['Supports d_type', String(f.supportsDType)],
      ['Using metacopy', String(f.usingMetacopy)],
      ['Native Overlay Diff', String(f.nativeDiff)],
      ['userxattr', String(f.userxattr)],
      ['Redirect Dir', f.redirectDirOff ? 'off' : 'kernel default'],
      ['Mount API', f.lowerdirPlus ? 'mount(2), fsconfig lowerdir+' : 'mount(2)'],
      ['Max Depth', String(this.maxDepth)],
      ...(f.unprobed ? [['Features', `unknown: ${f.unprobed}`] as [string, string]] : []),
    ];
  }

  /** LowerDir (resolved, parent first), UpperDir, WorkDir, MergedDir — as moby reports them. */
  async getMetadata(id: string): Promise<Record<string, string>> {
    validateId(id);
    await this.store.requireLayer(id);
    const meta: Record<string, string> = {
      WorkDir: this.store.workDir(id),
      MergedDir: this.store.mergedDir(id),
      UpperDir: this.store.diffDir(id),
    };
    const lowers = await this.store.lowerDiffDirs(id);
    if (lowers.length > 0) meta.LowerDir = lowers.join(':');
    return meta;
  }

  /** The size limit and usage of a layer with a quota (XFS project quotas), else null. */
  async getQuota(id: string): Promise<{ limitBytes: number; usedBytes: number } | null> {
    validateId(id);
    await this.store.requireLayer(id);
    if (!this.quota) return null;
    const q = this.quota.getQuota(this.store.dir(id));
    return q.limitBytes > 0 ? q : null;
  }

  /** Unmounts every mount under the home (deepest first) and forgets all reference counts. */
  async cleanup(): Promise<void> {
    const prefix = this.home.endsWith('/') ? this.home : this.home + '/';
    const points = mountPoints().filter((p) => p.startsWith(prefix) && this.sources.thin.sweeps(p)).sort((a, b) => b.length - a.length);
    for (const p of points) {
      try { this.shim.umount2(p, MNT_DETACH); } catch { /* raced */ }
      if (p.endsWith('/merged')) await fsp.rmdir(p).catch(() => undefined);
    }
    this.held.clear();
    await this.refs.forgetAllAsync();
    this.sources.thin.cleanup();
  }

  /** Every layer id in the home. */
  async list(): Promise<string[]> {
    return this.store.listLayers();
  }

  /** Every layer with its parent, size and whether it is mounted (what `overlay2 ls --json` prints). */
  async layers(): Promise<LayerInfo[]> {
    const ids = await this.store.listLayers();
    const mounts = new Set(mountPoints());
    const { directorySize } = await import('./size/directory-size.js');
    // The parents from synchronous reads (a lower file and a readlink each); the sizes eight walks at
    // a time, so the pool's threads overlap them (one at a time, 10,000 layers took seconds).
    const rows: LayerInfo[] = ids.map((id) => ({ id, parent: this.parentOfSync(id), size: 0, mounted: mounts.has(this.store.mergedDir(id)) }));
    let next = 0;
    const walker = async (): Promise<void> => {
      for (let i = next++; i < rows.length; i = next++) rows[i]!.size = await directorySize(this.store.diffDir(rows[i]!.id));
    };
    await Promise.all(Array.from({ length: Math.min(8, rows.length) }, walker));
    return rows;
  }

  /** parentOf of a layer known to be there, synchronous: a lower file and a readlink, each quicker
   *  than a round trip to the thread pool. */
  private parentOfSync(id: string): string {
    const lower = this.store.readLowerSync(id);
    const known = this.sources.parentOf(id, lower);
    if (known !== null) return known;
    return lower.length === 0 ? '' : basename(dirname(readlinkSync(join(this.home, lower[0]!))));
  }


  /** The parent id recorded in a layer's lower file ('' for a base layer). */
  async parentOf(id: string): Promise<string> {
    validateId(id);
    await this.store.requireLayer(id);
    return this.parentOfSync(id);
  }

  // ---- diffs --------------------------------------------------------------------------------

  /** moby's isParent: is `parent` the layer directly below `id` ('' for none)? */
  async isParent(id: string, parent: string): Promise<boolean> {
    const known = this.sources.parentOf(id, this.store.readLowerSync(id));
    if (known !== null) return known === parent;
    const lowers = await this.store.lowerDiffDirs(id);
    if (parent === '' ) return lowers.length === 0;
    return lowers.length > 0 && dirname(lowers[0]) === this.store.dir(parent);
  }

  private async useNative(id: string, parent: string): Promise<boolean> {
    return this.features.nativeDiff && (await this.isParent(id, parent));
  }

  private async checkPair(id: string, parent: string | null | undefined): Promise<string> {
    validateId(id);
    await this.store.requireLayer(id);
    requireComplete(this.store.dir(id), id);
    await this.requireFeatures(`diff or apply layer ${id}`, id);
    const p = parent ?? '';
    if (p !== '') {
      validateId(p, 'parent id');
      await this.store.requireLayer(p, 'parent layer');
    }
    return p;
  }

  /** Bytes the layer adds over `parent`: its upper dir's size, or (naive) the size of its changes. */
  async diffSize(id: string, parent?: string | null): Promise<number> {
    const p = await this.checkPair(id, parent);
    const own = this.sources.of(id).ownContent(id);
    if (own !== null) return own.size();
    if (await this.useNative(id, p)) {
      const { directorySize } = await import('./size/directory-size.js');
      return directorySize(this.store.diffDir(id));
    }
    const changes = await this.changesNaive(id, p);
    const { changesSize } = await import('./size/changes-size.js');
    return this.withMounted(id, (root) => changesSize(root, changes));
  }

  /** Paths that differ between the layer and `parent`, sorted, as `docker diff` lists them. */
  async changes(id: string, parent?: string | null): Promise<Change[]> {
    const p = await this.checkPair(id, parent);
    const own = this.sources.of(id).ownContent(id);
    if (own !== null) return own.changes();
    if (await this.useNative(id, p)) {
      const { changesNative, NeedsNaive } = await import('./changes/native.js');
      try {
        // The lowers are read directly: what they need (a thin layer's repositories) is mounted meanwhile.
        return await this.sources.withLowers(id, async () =>
          changesNative(this.store.diffDir(id), await this.store.lowerDiffDirs(id), this.context));
      } catch (e) {
        if (!(e instanceof NeedsNaive)) throw e;
      }
    }
    return this.changesNaive(id, p);
  }

  /** changes() handed out as the walk finds them, same order and content: the native walk in memory
   *  bounded by the layer's depth and widest directory, the naive list whole (README: changesStream). */
  changesStream(id: string, parent?: string | null): ChangeStream {
    return new ChangeStream(async () => {
      const p = await this.checkPair(id, parent);
      if (this.sources.of(id).ownContent(id) !== null || !(await this.useNative(id, p))) return { native: null, whole: () => this.changes(id, p) };
      const { changesNativeStream } = await import('./changes/native.js');
      const lowers = await this.store.lowerDiffDirs(id);
      return {
        native: () => within((body) => this.sources.withLowers(id, body),
          () => changesNativeStream(this.store.diffDir(id), lowers, this.context)),
        whole: () => this.changesNaive(id, p),
      };
    });
  }

  /** The naive comparison of the layer's mount with its parent's (moby's NaiveDiffDriver.Changes). */
  async changesNaive(id: string, parent?: string | null): Promise<Change[]> {
    const p = await this.checkPair(id, parent);
    const { changesNaive } = await import('./changes/naive.js');
    return this.withMounted(id, (layerRoot) =>
      p === '' ? changesNaive(layerRoot, null) : this.withMounted(p, (parentRoot) => changesNaive(layerRoot, parentRoot)));
  }

  /** The layer's changes over `parent` as an (uncompressed) tar stream in Docker's layer format. */
  async diff(id: string, parent?: string | null, opts: DiffOptions = {}): Promise<Readable> {
    opts.signal?.throwIfAborted();
    const stream = await this.diffStream(id, parent, opts);
    if (!opts.onProgress && !opts.signal) return stream;
    const { watchOutput } = await import('./image/watch-output.js');
    return watchOutput(stream, opts);
  }

  private async diffStream(id: string, parent: string | null | undefined, opts: DiffOptions): Promise<Readable> {
    const p = await this.checkPair(id, parent);
    const own = this.sources.of(id).ownContent(id);
    if (own !== null) return own.diff();
    const exportOpts = { ...this.context, xattrs: opts.xattrs ?? 'docker' as const };
    const { exportLayer, exportChanges } = await import('./export/export.js');
    if (await this.useNative(id, p)) {
      if (!opts.offThread) return exportLayer(this.store.diffDir(id), exportOpts);
      const { exportInWorker } = await import('./stream-worker/host.js');
      return exportInWorker(this.store.diffDir(id), exportOpts);
    }
    const changes = await this.changesNaive(id, p);
    const root = await this.acquire(id, undefined, 'process');
    const stream = exportChanges(root, changes, exportOpts);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.release(id, 'process').catch(() => undefined);
    };
    stream.once('close', release);
    stream.once('error', release);
    return stream;
  }

  /**
   * Extracts a layer tar (plain, gzip or zstd; a Readable, web ReadableStream, async iterable of
   * bytes, Buffer or file path) into the layer; returns the layer's size after. Into an empty layer
   * it also records the tar's diffID and tar-split (so save() can give the same bytes back). An
   * image archive is refused (use load()); an abort or error leaves the layer as it was.
   */
  async applyDiff(id: string, parent: string | null | undefined, tar: LayerSource, opts: ApplyDiffOptions = {}): Promise<number> {
    // Counted as work in flight: an apply through a mount runs outside the layer's lock.
    this.applying++;
    try {
      return await this.applyDiffCounted(id, parent, tar, opts);
    } finally {
      this.applying--;
    }
  }

  private async applyDiffCounted(id: string, parent: string | null | undefined, tar: LayerSource, opts: ApplyDiffOptions): Promise<number> {
    const { normalizeLayerSource } = await import('./apply/input.js');
    const { input, totalBytes } = normalizeLayerSource(tar);
    let p: string;
    try {
      opts.signal?.throwIfAborted();
      p = await this.checkPair(id, parent);
      this.sources.of(id).requireWritable(id);
    } catch (e) {
      (input as Partial<Readable>).destroy?.(); // the input is ours to end, as when it is read
      throw e;
    }
    const { applyLayer, applyThroughMount } = await import('./apply/apply.js');
    const { LayerTap } = await import('./apply/tap.js');
    const { TarSplitRecorder, TAR_SPLIT_FILE } = await import('./tar-split/record.js');
    const { dropLayerRecord, writeLayerRecord } = await import('./image/layer-record.js');
    const layerDir = this.store.dir(id);
    const run = async (apply: (applyOpts: import('./apply/apply.js').ApplyOptions) => Promise<number>, thinCandidate = false): Promise<number> => {
      // Only a tar applied to an empty layer describes the whole layer.
      const whole = isEmptyDir(this.store.diffDir(id));
      dropLayerRecord(layerDir);
      const recorder = whole && opts.layerRecord !== false ? new TarSplitRecorder(join(layerDir, TAR_SPLIT_FILE)) : null;
      const digest = recorder !== null || opts.expectDiffId !== undefined;
      const tap = new LayerTap(new ProgressCounter(opts, totalBytes), recorder, true, opts.expectDiffId, digest);
      // A whole-layer tar of one manifest file makes a thin layer (src/thin/apply.ts).
      const thin = whole && thinCandidate ? this.sources.thin.detector(id, tap, this.maxDepth) : null;
      let size: number;
      try {
        size = await apply({ ...this.context, tap: thin ?? tap, layer: id, offThread: opts.offThread });
      } catch (e) {
        recorder?.discard();
        thin?.abandon();
        // The abort itself, whatever the extractor made of it on the way out.
        if (opts.signal?.aborted) throw opts.signal.reason;
        throw e;
      }
      if (recorder && tap.result) {
        recorder.commit();
        writeLayerRecord(layerDir, { diffId: tap.result.diffId, tarSize: tap.result.tarSize, tarSplit: true });
      }
      if (thin?.manifest) {
        // its links into the thin root go into l/ under the refs lock, the child index kept current
        // with them (src/layout/child-index.ts); else the next remove() would rebuild the index
        await this.refs.lockedAsync(() => {
          const indexCurrent = this.children.current();
          thin.complete();
          if (indexCurrent) this.children.stamp();
        });
        this.sources.thin.applied();
      }
      return size;
    };
    if (await this.useNative(id, p)) {
      // Under the layer's lock: no get() can mount it mid-apply, no second apply can swap at once.
      return this.locks.run(id, async () => {
        // The native apply swaps a new diff/ in; a live mount would keep writing to the old one.
        const merged = this.store.mergedDir(id);
        if ((this.held.get(id) ?? 0) > 0 || this.isOverlayMount(merged)) {
          throw new Overlay2Error('ERR_LAYER_BUSY', `overlay2: layer ${id} is mounted; put() it before applyDiff`, { id });
        }
        return run((applyOpts) => applyLayer(layerDir, input, applyOpts), true);
      });
    }
    // Written into the live diff/ through a mount: marked while it runs, so a crash cannot leave a
    // half-applied layer that looks complete (see src/apply/marker.ts).
    return withApplyMarker(this.store.dir(id), () =>
      this.withMounted(id, (root) => run((applyOpts) => applyThroughMount(root, input, applyOpts))));
  }

  // ---- images ---------------------------------------------------------------------------------

  /**
   * Loads an image: a `docker save` archive (legacy or OCI-style), an OCI image layout (directory
   * or tar), or a directory holding an unpacked docker save. Blob digests and diffIDs are verified
   * while streaming; layers are stored under their chain IDs and reused when already complete.
   * On any failure or abort, the layers this call created are removed.
   */
  async load(source: ImageSource, opts: LoadOptions = {}): Promise<LoadResult[]> {
    const { loadImage } = await import('./image/load.js');
    return loadImage(this, source, opts);
  }

  /** Writes the chain ending at `top` as an image archive (docker-archive or OCI layout tar) to
   *  `output`, each layer with the exact bytes (and diffID) it was applied from where known. */
  async save(top: string, output: string, opts: SaveOptions = {}): Promise<{ configDigest: string; diffIds: string[] }> {
    const { saveImage } = await import('./image/save.js');
    return saveImage(this, top, output, opts);
  }

  /** @internal The thin-layer side (src/thin/), for the `thin` commands. */
  get thinLayers(): ThinLayers {
    return this.sources.thin;
  }

  /** @internal The layer's directory (HOME/<id>), for the image code. */
  layerDir(id: string): string {
    return this.store.dir(id);
  }

  /** Internal mounts are held by this process whatever mountReferences says: a crash drops them. */
  private async withMounted<T>(id: string, fn: (root: string) => Promise<T>): Promise<T> {
    const root = await this.acquire(id, undefined, 'process');
    try {
      return await fn(root);
    } finally {
      await this.release(id, 'process');
    }
  }

  private isOverlayMount(path: string): boolean {
    try {
      return (this.shim.statfs(path).type >>> 0) === FS_MAGIC.overlay && isMountPoint(path);
    } catch {
      return false;
    }
  }
}

const CAP_SYS_ADMIN = 21;

/** Overlay mounts need CAP_SYS_ADMIN (root, or root of a user namespace): say so in one line up front. */
function requireSysAdmin(home: string): void {
  let capEff: bigint;
  try {
    const line = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (!line) return;
    capEff = BigInt('0x' + line[1]);
  } catch {
    return; // no procfs: let the mount itself tell
  }
  if ((capEff >> BigInt(CAP_SYS_ADMIN)) & 1n) return;
  throw new Overlay2Error('ERR_NEEDS_ROOT',
    `overlay2: needs root (CAP_SYS_ADMIN) to manage the overlay layers in ${home}; run it as root`, { path: home });
}

/** ENOSPC / EDQUOT as ERR_NO_SPACE naming what could not be done; any other error as it is. */
function noSpace(e: unknown, what: string, id: string): unknown {
  if (!isErrno(e, 'ENOSPC') && !isErrno(e, 'EDQUOT')) return e;
  return new Overlay2Error('ERR_NO_SPACE', `overlay2: cannot ${what}: ${(e as Error).message}`, { id, cause: e });
}

/** Storage-option keys are case-insensitive, as dockerd reads them. */
function hasSizeOpt(storageOpt: Record<string, string> | undefined): boolean {
  return Object.keys(storageOpt ?? {}).some((k) => k.toLowerCase() === 'size');
}

/** moby's MkdirAndChown(merged, 0700, root), without a syscall where nothing would change. */
async function makeMountPoint(path: string, uid: number, gid: number): Promise<void> {
  try {
    await fsp.mkdir(path, { mode: 0o700 });
    if (uid !== (process.getuid?.() ?? 0) || gid !== (process.getgid?.() ?? 0)) await fsp.chown(path, uid, gid);
  } catch (e) {
    if (!isErrno(e, 'EEXIST')) throw e;
    await fsp.chown(path, uid, gid);
    await fsp.chmod(path, 0o700);
  }
}

function ensureDir(path: string, mode: number, uid: number, gid: number): void {
  try {
    mkdirSync(path, { mode });
  } catch (e) {
    if (!isErrno(e, 'EEXIST')) throw e;
  }
  setOwnerMode(path, mode, uid, gid);
}

function setOwnerMode(path: string, mode: number, uid: number, gid: number): void {
  chownSync(path, uid, gid);
  chmodSync(path, mode);
}

/** Mount points of this process's mount namespace, unescaped from /proc/self/mountinfo. */
export function mountPoints(): string[] {
  return readMountInfo().map((m) => m.point);
}

function isMountPoint(path: string): boolean {
  return mountPoints().includes(path);
}
