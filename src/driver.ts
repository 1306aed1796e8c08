// Overlay2Driver: moby's overlay2 graphdriver in camelCase, over a Docker-compatible store.
import { promises as fsp, readFileSync, existsSync, mkdirSync, chownSync, chmodSync, rmdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import type { Readable } from 'node:stream';
import { Overlay2Error, isErrno } from './errors.js';
import { loadShim, type Shim } from './native/shim.js';
import { FS_MAGIC, MNT_DETACH, RENAME_NOREPLACE, AT_FDCWD } from './native/constants.js';
import { detectFeatures, type Features } from './features.js';
import { loadFeatures, writeFeatureCache, isOutOfSpace } from './feature-cache.js';
import { parseDriverOptions, parseStorageOpt, type DriverOptions } from './options.js';
import { IdMappings, type IdMapOptions } from './idmap.js';
import { generateLinkId, validateId } from './layout/ids.js';
import { LayerStore, LINK_DIR, LOWER_FILE, LINK_FILE, COMMITTED_FILE } from './layout/store.js';
import { removeTree } from './layout/remove-tree.js';
import { mountLayer, type MountMethod, type MountStrategy } from './mount/mounter.js';
import { validateMountLabel } from './mount/data.js';
import { RefCounter } from './mount/refcount.js';
import { registerReferenceHolder, sweepStaleMounts } from './mount/stale.js';
import { KeyedMutex } from './util/keyed-mutex.js';
import type { Change } from './diff/types.js';
import { ProjectQuota } from './quota.js';
import { removeStaleStaging } from './diff/staging.js';
import { cleanupAfter } from './diff/apply-errors.js';

export interface CreateOpts {
  /** per-layer storage options; only "size" (read-write layers, XFS project quota) */
  storageOpt?: Record<string, string>;
  mountLabel?: string;
}

export interface DiffOptions {
  /** which xattrs an exported tar carries: Docker's 'docker' (security.capability only) or 'all' */
  xattrs?: 'docker' | 'all';
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
  /** The method the last mount of each id used (for status and benchmarks). */
  readonly lastMountMethod = new Map<string, MountMethod>();

  private readonly shim: Shim;
  private readonly store: LayerStore;
  private readonly refs: RefCounter;
  private readonly locks = new KeyedMutex();

  private constructor(home: string, shim: Shim, features: Features, options: DriverOptions, idMappings: IdMappings,
    private readonly quota: ProjectQuota | null) {
    this.home = home;
    this.shim = shim;
    this.features = features;
    this.options = options;
    this.idMappings = idMappings;
    this.store = new LayerStore(home);
    this.refs = new RefCounter((p) => this.isOverlayMount(p));
    registerReferenceHolder(this.refs);
  }

  /**
   * Opens (creating if needed) a driver home: parses options, detects what the kernel and the
   * backing filesystem support, and clears what an interrupted create/remove/applyDiff left behind.
   */
  static async init(home: string, options: readonly string[] | Record<string, string> = [], idMaps: IdMapOptions = {}): Promise<Overlay2Driver> {
    if (typeof home !== 'string' || !home.startsWith('/')) {
      throw new Overlay2Error('ERR_BAD_OPTION', `overlay2: home must be an absolute path, got ${JSON.stringify(home)}`, { path: String(home) });
    }
    if (/[,:\\\n\0]/.test(home)) {
      throw new Overlay2Error('ERR_BAD_OPTION', `overlay2: home ${JSON.stringify(home)} contains a character overlay mount options cannot carry (, : \\ newline)`, { path: home });
    }
    const opts = parseDriverOptions(options);
    const idMappings = new IdMappings(idMaps);
    const shim = loadShim();
    const root = idMappings.root();

    // Docker 20.10's modes: the home and layer dirs 0710 (owner: us, group: the remapped root's
    // group, so a user-namespaced container can traverse them), l/ 0700.
    const me = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
    await fsp.mkdir(home, { recursive: true, mode: 0o710 });
    await setOwnerMode(home, 0o710, me.uid, root.gid);
    // Cached, probed, or — on a full filesystem — unprobed (see feature-cache.ts): a full disk must
    // not keep remove() from freeing space.
    const features = await loadFeatures(shim, { home, overrideKernelCheck: opts.overrideKernelCheck });
    let quota: ProjectQuota | null = null;
    let quotaWhyNot = `${home} is on ${features.backingFs}, not xfs`;
    if (features.backingFs === 'xfs') {
      const q = ProjectQuota.open(shim, home);
      if (q instanceof ProjectQuota) quota = q;
      else quotaWhyNot = `project quotas are not enabled on ${home} (mount xfs with prjquota): ${q.message}`;
    }
    features.projectQuota = quota !== null;
    if (opts.quotaSize > 0 && !quota) {
      throw new Overlay2Error('ERR_NOT_SUPPORTED',
        `overlay2: option overlay2.size needs XFS project quotas; ${quotaWhyNot}`, { option: 'overlay2.size' });
    }
    await ensureDir(join(home, LINK_DIR), 0o700, me.uid, me.gid);

    const driver = new Overlay2Driver(home, shim, features, opts, idMappings, quota);
    await driver.recover();
    return driver;
  }

  /**
   * The features an operation needs, probed again if init could not (a full filesystem); while the
   * probes still fail, ERR_NO_SPACE saying why. Operations that free space never call this.
   */
  private async requireFeatures(what: string, id?: string): Promise<void> {
    if (!this.features.unprobed) return;
    try {
      const fresh = await detectFeatures(this.shim, { home: this.home, overrideKernelCheck: this.options.overrideKernelCheck });
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

  /** Removes what interrupted operations left: partial layers, staging dirs, dangling links. */
  private async recover(): Promise<void> {
    await removeTree(this.store.partialDir(), this.home);
    // Made again at once (best effort): on a full filesystem the inode just freed is the one that
    // remove() needs to move a layer out of sight.
    await fsp.mkdir(this.store.partialDir(), { mode: 0o700 }).catch(() => undefined);
    for (const id of await this.store.listLayers()) await removeStaleStaging(this.store.dir(id));
    for (const name of await fsp.readdir(this.store.linkDir())) {
      const link = join(this.store.linkDir(), name);
      try {
        await fsp.stat(link);
      } catch (e) {
        if (isErrno(e, 'ENOENT')) await fsp.rm(link, { force: true });
      }
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

  private async createLayer(id: string, parent: string, opts: CreateOpts): Promise<void> {
    validateId(id);
    if (parent !== '') validateId(parent, 'parent id');
    const { size } = parseStorageOpt(opts.storageOpt);
    await this.requireFeatures(`create layer ${id}`, id);
    if (size > 0 && !this.features.projectQuota) {
      throw new Overlay2Error('ERR_NOT_SUPPORTED',
        `overlay2: --storage-opt size is supported only for overlay over xfs with 'pquota' mount option (${this.home} is on ${this.features.backingFs})`,
        { id, option: 'size' });
    }
    await this.locks.run(id, async () => {
      if (await this.store.exists(id)) {
        throw new Overlay2Error('ERR_LAYER_EXISTS', `overlay2: layer ${id} already exists`, { id });
      }
      let lower: string[] = [];
      if (parent !== '') {
        await this.store.requireLayer(parent, 'parent layer');
        const parentLink = await this.store.readLinkId(parent);
        lower = [`${LINK_DIR}/${parentLink}`, ...(await this.store.readLower(parent))];
        if (lower.length > this.maxDepth) {
          throw new Overlay2Error('ERR_MAX_DEPTH',
            `overlay2: max depth exceeded: layer ${id} would have ${lower.length} lower layers (limit ${this.maxDepth})`, { id });
        }
      }

      // Build the layer under .partial/ and rename it into place: a crash leaves no half layer.
      const root = this.idMappings.root();
      const me = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
      let tmp: string;
      try {
        await fsp.mkdir(this.store.partialDir(), { recursive: true, mode: 0o700 });
        tmp = await fsp.mkdtemp(join(this.store.partialDir(), `${id}.`));
      } catch (e) {
        throw noSpace(e, `create layer ${id}`, id);
      }
      const linkId = generateLinkId();
      const linkPath = join(this.store.linkDir(), linkId);
      let linked = false;
      try {
        await setOwnerMode(tmp, 0o710, me.uid, root.gid);
        // The project id is set before anything is created inside, so diff/ and work/ inherit it.
        if (size > 0 && this.quota) this.quota.setQuota(tmp, size);
        await ensureDir(join(tmp, 'diff'), 0o755, root.uid, root.gid);
        await fsp.writeFile(join(tmp, LINK_FILE), linkId, { mode: 0o644 });
        if (parent !== '') {
          await ensureDir(join(tmp, 'work'), 0o700, root.uid, root.gid);
          await fsp.writeFile(join(tmp, LOWER_FILE), lower.join(':'), { mode: 0o666 });
        }
        await fsp.symlink(join('..', id, 'diff'), linkPath);
        linked = true;
        if (parent !== '') await fsp.writeFile(join(this.store.dir(parent), COMMITTED_FILE), '', { mode: 0o600 });
        try {
          this.shim.renameat2(AT_FDCWD, tmp, AT_FDCWD, this.store.dir(id), RENAME_NOREPLACE);
          this.quota?.moved(tmp, this.store.dir(id));
        } catch (e) {
          if (isErrno(e, 'EEXIST') || isErrno(e, 'ENOTEMPTY')) {
            throw new Overlay2Error('ERR_LAYER_EXISTS', `overlay2: layer ${id} already exists`, { id });
          }
          throw e;
        }
      } catch (e) {
        // The failure wins over anything cleanup runs into (attached as cleanupErrors).
        throw await cleanupAfter(noSpace(e, `create layer ${id}`, id), async () => {
          if (linked) await fsp.rm(linkPath, { force: true });
          await removeTree(tmp, this.home);
        });
      }
    });
  }

  /** Removes a layer, its link and (after unmounting it) everything it holds. */
  async remove(id: string): Promise<void> {
    validateId(id);
    await this.locks.run(id, async () => {
      await this.store.requireLayer(id);
      const merged = this.store.mergedDir(id);
      if (this.refs.count(merged) > 0 || this.isOverlayMount(merged)) {
        try { this.shim.umount2(merged, MNT_DETACH); } catch { /* already gone */ }
      }
      this.refs.forget(merged);
      this.lastMountMethod.delete(id);
      // Move it out of sight first, so a crash mid-delete never leaves a layer that looks whole.
      let linkId = '';
      try { linkId = await this.store.readLinkId(id); } catch { /* no link file */ }
      let doomed = join(this.store.partialDir(), `${id}.removing.${process.pid}.${Date.now()}`);
      try {
        await fsp.mkdir(this.store.partialDir(), { recursive: true, mode: 0o700 });
        await fsp.rename(this.store.dir(id), doomed);
      } catch (e) {
        // A full filesystem has no inode for .partial/: then out of sight means without its link
        // file (a dir without one is not a layer), deleted where it is.
        if (!isOutOfSpace(this.shim, this.home, e)) throw e;
        doomed = this.store.dir(id);
        await fsp.rm(join(doomed, LINK_FILE), { force: true });
      }
      if (linkId !== '' && !linkId.includes('/')) await fsp.rm(join(this.store.linkDir(), linkId), { force: true });
      await removeTree(doomed, this.home);
    });
  }

  /** Mounts the layer (reference-counted) and returns the path of its root filesystem. */
  async get(id: string, mountLabel?: string): Promise<string> {
    validateId(id);
    validateMountLabel(mountLabel);
    await this.requireFeatures(`mount layer ${id}`, id);
    // Sync metadata calls on purpose: each is microseconds, while a thread-pool round trip per
    // call would double the latency of a short-chain mount.
    return this.locks.run(id, async () => {
      const lowerEntries = this.store.mountLowerSync(id);
      if (lowerEntries === null) return this.store.diffDir(id);
      const merged = this.store.mergedDir(id);
      // First use of this layer by this driver: what a crashed process left mounted goes (stale.ts).
      if (!this.refs.seen(merged)) sweepStaleMounts(this.shim, merged, this.refs);
      if (this.refs.increment(merged) > 1) return merged;
      try {
        const readonly = existsSync(join(this.store.dir(id), COMMITTED_FILE));
        const root = this.idMappings.root();
        makeMountPoint(merged, root.uid, root.gid);
        const method = mountLayer(this.shim, this.features,
          { home: this.home, id, lowerEntries, readonly, mountLabel }, this.mountStrategy);
        this.lastMountMethod.set(id, method);
        // Overlay inside a user namespace needs work/work owned by the remapped root (moby does this).
        if (!readonly && !this.idMappings.empty) chownSync(join(this.store.workDir(id), 'work'), root.uid, root.gid);
        return merged;
      } catch (e) {
        if (this.refs.decrement(merged) <= 0) {
          try { this.shim.umount2(merged, MNT_DETACH); } catch { /* never mounted */ }
          try { rmdirSync(merged); } catch { /* not there */ }
        }
        throw e;
      }
    });
  }

  /** Drops one reference; the last one unmounts (detached) and removes the mount point. */
  async put(id: string): Promise<void> {
    validateId(id);
    await this.locks.run(id, async () => {
      const merged = this.store.mergedDir(id);
      // A held reference proves the layer has a lower file; only an unknown mount needs the read.
      if (this.refs.count(merged) === 0 && this.store.mountLowerSync(id) === null) return;
      if (this.refs.decrement(merged) > 0) return;
      try {
        this.shim.umount2(merged, MNT_DETACH);
      } catch (e) {
        if (!isErrno(e, 'EINVAL') && !isErrno(e, 'ENOENT')) throw e;
      }
      // Removing the mount point also drops copies of the mount in other mount namespaces.
      try { rmdirSync(merged); } catch { /* busy elsewhere or gone */ }
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
    const points = mountPoints().filter((p) => p.startsWith(prefix)).sort((a, b) => b.length - a.length);
    for (const p of points) {
      try { this.shim.umount2(p, MNT_DETACH); } catch { /* raced */ }
      if (p.endsWith('/merged')) await fsp.rmdir(p).catch(() => undefined);
    }
    this.refs.clear();
  }

  /** Every layer id in the home. */
  async list(): Promise<string[]> {
    return this.store.listLayers();
  }

  /** The parent id recorded in a layer's lower file ('' for a base layer). */
  async parentOf(id: string): Promise<string> {
    validateId(id);
    await this.store.requireLayer(id);
    const lower = await this.store.readLower(id);
    return lower.length === 0 ? '' : this.store.idOfLowerEntry(lower[0]);
  }

  // ---- diffs --------------------------------------------------------------------------------

  /** moby's isParent: is `parent` the layer directly below `id` ('' for none)? */
  async isParent(id: string, parent: string): Promise<boolean> {
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
    if (await this.useNative(id, p)) {
      const { directorySize } = await import('./diff/size.js');
      return directorySize(this.store.diffDir(id));
    }
    const changes = await this.changesNaive(id, p);
    const { changesSize } = await import('./diff/changes-size.js');
    return this.withMounted(id, (root) => changesSize(root, changes));
  }

  /** Paths that differ between the layer and `parent`, sorted, as `docker diff` lists them. */
  async changes(id: string, parent?: string | null): Promise<Change[]> {
    const p = await this.checkPair(id, parent);
    if (await this.useNative(id, p)) {
      const { changesNative } = await import('./diff/changes-native.js');
      try {
        return await changesNative(this.store.diffDir(id), await this.store.lowerDiffDirs(id), { userxattr: this.features.userxattr });
      } catch (e) {
        if (!isErrno(e, 'ERR_NEEDS_NAIVE')) throw e;
      }
    }
    return this.changesNaive(id, p);
  }

  /** The naive comparison of the layer's mount with its parent's (moby's NaiveDiffDriver.Changes). */
  async changesNaive(id: string, parent?: string | null): Promise<Change[]> {
    const p = await this.checkPair(id, parent);
    const { changesNaive } = await import('./diff/changes-naive.js');
    return this.withMounted(id, (layerRoot) =>
      p === '' ? changesNaive(layerRoot, null) : this.withMounted(p, (parentRoot) => changesNaive(layerRoot, parentRoot)));
  }

  /** The layer's changes over `parent` as an (uncompressed) tar stream in Docker's layer format. */
  async diff(id: string, parent?: string | null, opts: DiffOptions = {}): Promise<Readable> {
    const p = await this.checkPair(id, parent);
    const exportOpts = { userxattr: this.features.userxattr, idMappings: this.idMappings, xattrs: opts.xattrs ?? 'docker' };
    const { exportLayer, exportChanges } = await import('./diff/export.js');
    if (await this.useNative(id, p)) return exportLayer(this.store.diffDir(id), exportOpts);
    const changes = await this.changesNaive(id, p);
    const root = await this.get(id);
    const stream = exportChanges(root, changes, exportOpts);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.put(id).catch(() => undefined);
    };
    stream.once('close', release);
    stream.once('error', release);
    return stream;
  }

  /** Extracts a layer tar (plain, gzip or zstd) into the layer; returns the layer's size after. */
  async applyDiff(id: string, parent: string | null | undefined, tar: Readable): Promise<number> {
    const p = await this.checkPair(id, parent);
    const applyOpts = { userxattr: this.features.userxattr, idMappings: this.idMappings, layer: id };
    const { applyLayer, applyThroughMount } = await import('./diff/apply.js');
    if (await this.useNative(id, p)) {
      // Under the layer's lock: no get() can mount it mid-apply, no second apply can swap at once.
      return this.locks.run(id, async () => {
        // The native apply swaps a new diff/ in; a live mount would keep writing to the old one.
        const merged = this.store.mergedDir(id);
        if (this.refs.count(merged) > 0 || this.isOverlayMount(merged)) {
          throw new Overlay2Error('ERR_LAYER_BUSY', `overlay2: layer ${id} is mounted; put() it before applyDiff`, { id });
        }
        return applyLayer(this.store.dir(id), tar, applyOpts);
      });
    }
    return this.withMounted(id, (root) => applyThroughMount(root, tar, applyOpts));
  }

  private async withMounted<T>(id: string, fn: (root: string) => Promise<T>): Promise<T> {
    const root = await this.get(id);
    try {
      return await fn(root);
    } finally {
      await this.put(id);
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
function makeMountPoint(path: string, uid: number, gid: number): void {
  try {
    mkdirSync(path, { mode: 0o700 });
    if (uid !== (process.getuid?.() ?? 0) || gid !== (process.getgid?.() ?? 0)) chownSync(path, uid, gid);
  } catch (e) {
    if (!isErrno(e, 'EEXIST')) throw e;
    chownSync(path, uid, gid);
    chmodSync(path, 0o700);
  }
}

async function ensureDir(path: string, mode: number, uid: number, gid: number): Promise<void> {
  try {
    await fsp.mkdir(path, { mode });
  } catch (e) {
    if (!isErrno(e, 'EEXIST')) throw e;
  }
  await setOwnerMode(path, mode, uid, gid);
}

async function setOwnerMode(path: string, mode: number, uid: number, gid: number): Promise<void> {
  await fsp.chown(path, uid, gid);
  await fsp.chmod(path, mode);
}

/** Mount points of this process's mount namespace, unescaped from /proc/self/mountinfo. */
export function mountPoints(): string[] {
  const text = readFileSync('/proc/self/mountinfo', 'utf8');
  return text.split('\n').filter(Boolean).map((line) =>
    line.split(' ')[4].replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8))));
}

function isMountPoint(path: string): boolean {
  return mountPoints().includes(path);
}
