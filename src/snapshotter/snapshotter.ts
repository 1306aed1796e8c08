// The Snapshots service's semantics over this store: containerd's snapshotter contract
// (snapshots.Snapshotter) with containerd's own error classes, independent of gRPC. A snapshot is a
// layer of the store — active: a read-write layer, view: a read-only one, committed: a layer marked
// committed — plus a record inside it (snapshot-record.ts). So `overlay2 ls/changes/diff/diffsize` work
// on snapshots, and the graphdriver plugin can serve the same home (one service at a time: each keeps
// its own in-memory view of the home).
//
// Errors follow containerd's storage (snapshots/storage/bolt.go) and overlay snapshotter:
// missing key or parent → NOT_FOUND; a taken key or name → ALREADY_EXISTS; a parent that is not
// committed → INVALID_ARGUMENT; Commit of a non-active snapshot, Mounts of a committed one, Remove of
// one with children → FAILED_PRECONDITION; malformed arguments → INVALID_ARGUMENT.
import { randomBytes } from 'node:crypto';
import { Overlay2Error } from '../errors.js';
import type { Overlay2Driver } from '../driver.js';
import { KeyedMutex } from '../util/keyed-mutex.js';
import { LayerStore } from '../layout/store.js';
import { diskUsage } from '../size/disk-usage.js';
import { SnapshotIndex, type IndexedSnapshot } from './snapshot-index.js';
import { SNAPSHOT_RECORD_FILE, serializeRecord, writeRecord, readRecord, type SnapshotKind, type SnapshotRecord, type SnapshotUsage } from './snapshot-record.js';
import { snapshotMounts, type Mount } from './mounts.js';
import { parseFilters, FilterSyntaxError } from './filters.js';
import { remoteLayerKeys } from './remote-labels.js';

export type SnapshotErrorCode = 'NOT_FOUND' | 'ALREADY_EXISTS' | 'FAILED_PRECONDITION' | 'INVALID_ARGUMENT' | 'UNAVAILABLE' | 'INTERNAL';

/** A failed call, classed as containerd's errdefs class it maps to. */
export class SnapshotError extends Error {
  constructor(readonly code: SnapshotErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SnapshotError';
  }
}

/** containerd's snapshots.Info */
export interface SnapshotInfo {
  name: string;
  parent: string;
  kind: SnapshotKind;
  labels: Record<string, string>;
  created: Date;
  updated: Date;
}

/** containerd's labels.Validate: a label's key and value together at most 4096 bytes. */
const MAX_LABEL_BYTES = 4096;

export interface SnapshotterSettings {
  /** Read-only trees searched in order for a layer's files before it is downloaded (remote layers):
   *  CVMFS/DUCC's `.layers/<xx>/<hex>/layerfs` by blob digest, `thin make`'s `layers/<hex>` by diffID. */
  remoteLayers?: readonly string[];
  /** Told about what is worth a line (a conflict in the store, a remote tree refused). */
  log?: (line: string) => void;
}

export class Snapshotter {
  private readonly index: SnapshotIndex;
  /** Changes to the index and the records are one at a time; lookups never wait. */
  private readonly changes = new KeyedMutex();
  private readonly remoteRoots: readonly string[];
  private readonly log: (line: string) => void;

  constructor(readonly driver: Overlay2Driver, settings: SnapshotterSettings = {}) {
    this.log = settings.log ?? (() => undefined);
    this.remoteRoots = [...(settings.remoteLayers ?? [])];
    for (const root of this.remoteRoots) {
      if (!root.startsWith('/')) throw new SnapshotError('INVALID_ARGUMENT', `remote layer root ${JSON.stringify(root)} is not an absolute path`);
    }
    this.index = SnapshotIndex.build(driver.home, LayerStore.isLayerName, (name, kept, ignored) =>
      this.log(`two layers hold snapshot ${JSON.stringify(name)}: serving ${kept}, ignoring ${ignored}`));
  }

  get count(): number {
    return this.index.size;
  }

  async prepare(key: string, parent: string, labels: Record<string, string>): Promise<Mount[]> {
    return this.create('active', key, parent, labels);
  }

  async view(key: string, parent: string, labels: Record<string, string>): Promise<Mount[]> {
    return this.create('view', key, parent, labels);
  }

  private async create(kind: 'active' | 'view', key: string, parent: string, labels: Record<string, string>): Promise<Mount[]> {
    requireName(key, 'key');
    validateLabels(labels);
    await this.tryRemote(key, parent, labels);
    const snapshot = await this.changes.run('', async () => {
      if (this.index.has(key)) throw new SnapshotError('ALREADY_EXISTS', `snapshot ${key}: already exists`);
      const parentLayer = await this.parentLayer(parent);
      const now = Date.now();
      const record: SnapshotRecord = { name: key, parent, kind, labels: { ...labels }, created: now, updated: now };
      const layer = newLayerId();
      try {
        await this.driver.createWithFiles(layer, parentLayer, kind === 'active', { [SNAPSHOT_RECORD_FILE]: serializeRecord(record) });
      } catch (e) {
        throw fromStore(e, `prepare ${key}`);
      }
      const created = { layer, record };
      this.index.set(created);
      return created;
    });
    return this.mountsOf(snapshot);
  }

  /** The layer of a new snapshot's parent ('' for none): it must exist and be committed, and what its
   *  lowers need must be there (a remote tree) — refused now, not after a layer was made on it. */
  private async parentLayer(parent: string): Promise<string> {
    if (parent === '') return '';
    const p = this.index.get(parent);
    if (p === undefined) throw new SnapshotError('NOT_FOUND', `parent snapshot ${parent} does not exist`);
    if (p.record.kind !== 'committed') throw new SnapshotError('INVALID_ARGUMENT', `parent ${parent} is not a committed snapshot`);
    try {
      await this.driver.requireLowersPresent(p.layer);
    } catch (e) {
      throw fromStore(e, `prepare on ${parent}`);
    }
    return p.layer;
  }

  async mounts(key: string): Promise<Mount[]> {
    const s = this.require(key);
    if (s.record.kind === 'committed') {
      throw new SnapshotError('FAILED_PRECONDITION', `snapshot ${key} is committed: only active snapshots and views have mounts`);
    }
    return this.mountsOf(s);
  }

  private async mountsOf(s: IndexedSnapshot): Promise<Mount[]> {
    try {
      return snapshotMounts(s.record.kind, await this.driver.mountSources(s.layer), this.driver.features);
    } catch (e) {
      throw fromStore(e, `mounts of ${s.record.name}`);
    }
  }

  /**
   * containerd's remote-snapshot handshake: a Prepare that names its target (containerd.io/snapshot.ref)
   * and its layer's digest, whose files a remote root already holds, commits a snapshot under the target
   * name on that tree (nothing downloaded, copied or mounted) and answers ALREADY_EXISTS; containerd then
   * finds it by List (labels."containerd.io/snapshot.ref"==TARGET,parent==PARENT) and skips the layer's
   * download. Anything else falls through to an ordinary Prepare: no target or digest, a digest that is
   * not sha256:<64 hex>, no tree, or a tree that leads outside its root (refused, and logged).
   */
  private async tryRemote(key: string, parent: string, labels: Record<string, string>): Promise<void> {
    if (this.remoteRoots.length === 0) return;
    const wanted = remoteLayerKeys(labels);
    if (wanted === null) return;
    if ('refused' in wanted) {
      this.log(`prepare ${key}: not a remote layer: ${wanted.refused}`);
      return;
    }
    let tree;
    try {
      tree = await this.driver.findRemoteTree(this.remoteRoots, wanted.keys);
    } catch (e) {
      this.log(`prepare ${key}: remote tree refused, the layer is unpacked instead: ${(e as Error).message.replace(/^overlay2: /, '')}`);
      return;
    }
    if (tree === null) return;
    const target = wanted.target;
    await this.changes.run('', async () => {
      if (this.index.has(target)) return; // made by an earlier pull (another namespace): containerd finds it by List
      const parentLayer = await this.parentLayer(parent);
      const now = Date.now();
      const record: SnapshotRecord = {
        name: target, parent, kind: 'committed', labels: { ...labels }, created: now, updated: now, usage: { size: 0, inodes: 0 },
      };
      const layer = newLayerId();
      try {
        await this.driver.createRemote(layer, parentLayer, { ...tree, digest: wanted.digest }, { [SNAPSHOT_RECORD_FILE]: serializeRecord(record) });
      } catch (e) {
        throw fromStore(e, `prepare ${key} on the remote tree ${tree.root}/${tree.path}`);
      }
      this.index.set({ layer, record });
      this.log(`prepare ${key}: layer ${target} served from ${tree.root}/${tree.path}`);
    });
    throw new SnapshotError('ALREADY_EXISTS', `target snapshot ${target}: already exists (a remote layer)`);
  }

  /** Commits the active snapshot `key` as `name` (labels replace the active one's, as containerd's do). */
  async commit(name: string, key: string, labels: Record<string, string>, parent = ''): Promise<void> {
    requireName(name, 'name');
    requireName(key, 'key');
    validateLabels(labels);
    // Measured before the change lock: the snapshot's upper dir no longer changes (containerd has
    // unmounted it), and a big one must not hold up other calls.
    const before = this.require(key);
    let usage: SnapshotUsage | undefined;
    if (before.record.kind === 'active') usage = await this.measure(before);
    await this.changes.run('', async () => {
      if (this.index.has(name)) throw new SnapshotError('ALREADY_EXISTS', `snapshot ${name}: already exists`);
      const s = this.require(key);
      if (s.record.kind !== 'active') throw new SnapshotError('FAILED_PRECONDITION', `snapshot ${key} is not active`);
      if (parent !== '' && parent !== s.record.parent) {
        throw new SnapshotError('INVALID_ARGUMENT', `snapshot ${key} has parent ${JSON.stringify(s.record.parent)}, not ${JSON.stringify(parent)}`);
      }
      if (s !== before) usage = await this.measure(s);
      const now = Date.now();
      const record: SnapshotRecord = { name, parent: s.record.parent, kind: 'committed', labels: { ...labels }, created: now, updated: now, usage };
      try {
        this.driver.markCommitted(s.layer);
        writeRecord(this.driver.layerDir(s.layer), record);
      } catch (e) {
        throw fromStore(e, `commit ${key}`);
      }
      this.index.delete(key);
      this.index.set({ layer: s.layer, record });
    });
  }

  /**
   * Takes the snapshot out of the index under the change lock, then removes its layer outside it: a big
   * layer's files take seconds to delete (containerd's GC removes whole images), and no other call
   * waits for that — as containerd's own overlayfs deletes after its transaction. If the removal
   * fails before its layer went out of sight the snapshot is put back (unless its name was taken meanwhile).
   */
  async remove(key: string): Promise<void> {
    requireName(key, 'key');
    const s = await this.changes.run('', async () => {
      const found = this.require(key);
      if (this.index.children(key) > 0) {
        throw new SnapshotError('FAILED_PRECONDITION', `cannot remove snapshot ${key}: other snapshots are built on it`);
      }
      this.index.delete(key);
      return found;
    });
    try {
      await this.driver.remove(s.layer);
    } catch (e) {
      if (e instanceof Overlay2Error && e.code === 'ERR_LAYER_NOT_FOUND') return;
      // put back only a layer still in place: one the removal moved out of sight before it failed is
      // gone (what is left of it is in .partial/, for init to sweep)
      await this.changes.run('', async () => {
        if (!this.index.has(key) && await this.driver.exists(s.layer)) this.index.set(s);
      });
      throw fromStore(e, `remove ${key}`);
    }
  }

  stat(key: string): SnapshotInfo {
    return infoOf(this.require(key).record);
  }

  /**
   * containerd's Update: with no paths the labels are replaced; "labels" replaces them too;
   * "labels.KEY" sets (or, given no value, removes) one label. Any other path is refused.
   */
  async update(info: { name: string; labels: Record<string, string> }, paths: readonly string[]): Promise<SnapshotInfo> {
    requireName(info.name, 'name');
    validateLabels(info.labels);
    return this.changes.run('', async () => {
      const s = this.require(info.name);
      let labels = { ...s.record.labels };
      if (paths.length === 0) labels = { ...info.labels };
      for (const path of paths) {
        if (path === 'labels') labels = { ...info.labels };
        else if (path.startsWith('labels.')) {
          const k = path.slice('labels.'.length);
          const v = info.labels[k];
          if (v === undefined || v === '') delete labels[k];
          else labels[k] = v;
        } else {
          throw new SnapshotError('INVALID_ARGUMENT', `cannot update ${JSON.stringify(path)} field on snapshot ${info.name}: only labels can change`);
        }
      }
      validateLabels(labels);
      const record: SnapshotRecord = { ...s.record, labels, updated: Date.now() };
      try {
        writeRecord(this.driver.layerDir(s.layer), record);
      } catch (e) {
        throw fromStore(e, `update ${info.name}`);
      }
      this.index.set({ layer: s.layer, record });
      return infoOf(record);
    });
  }

  /** Every snapshot matching any of `filters` (containerd's filter syntax; none: all). */
  *list(filters: readonly string[]): Generator<SnapshotInfo> {
    let match: ReturnType<typeof parseFilters>;
    try {
      match = parseFilters(filters);
    } catch (e) {
      if (e instanceof FilterSyntaxError) throw new SnapshotError('INVALID_ARGUMENT', `bad filter: ${e.message}`);
      throw e;
    }
    for (const s of [...this.index.values()]) {
      const r = s.record;
      if (match({ name: r.name, parent: r.parent, kind: r.kind, labels: r.labels })) yield infoOf(r);
    }
  }

  /** An active snapshot's usage now (its upper dir walked); a committed one's as measured at Commit. */
  async usage(key: string): Promise<SnapshotUsage> {
    const s = this.require(key);
    if (s.record.kind !== 'active') return s.record.usage ?? { size: 0, inodes: 0 };
    return this.measure(s);
  }

  private async measure(s: IndexedSnapshot): Promise<SnapshotUsage> {
    try {
      return await diskUsage(this.driver.layerDir(s.layer) + '/diff');
    } catch (e) {
      throw fromStore(e, `usage of ${s.record.name}`);
    }
  }

  /**
   * Removes layers no snapshot refers to. Every layer the snapshotter makes is born with its record and
   * loses it only with the layer (kill -9 included: what an interrupted create or remove leaves under
   * .partial/ is swept when the store opens), so the one such layer is the loser of two records that
   * claim one name. A layer without a record, or with one this version cannot read, is not the
   * snapshotter's to judge (the CLI's, the plugin's): never touched.
   */
  async cleanup(): Promise<void> {
    await this.changes.run('', async () => {
      const live = this.index.layers();
      for (const id of await this.driver.list()) {
        if (live.has(id)) continue;
        const record = readRecord(this.driver.layerDir(id));
        if (record === null) continue;
        // made by another process since the index was built: not an orphan
        if (this.index.get(record.name) === undefined) continue;
        try {
          await this.driver.remove(id);
        } catch (e) {
          if (!(e instanceof Overlay2Error && e.code === 'ERR_LAYER_NOT_FOUND')) throw fromStore(e, `cleanup of layer ${id}`);
        }
      }
    });
  }

  private require(key: string): IndexedSnapshot {
    const s = this.index.get(key);
    if (s === undefined) throw new SnapshotError('NOT_FOUND', `snapshot ${key} does not exist`);
    return s;
  }
}

function infoOf(r: SnapshotRecord): SnapshotInfo {
  return { name: r.name, parent: r.parent, kind: r.kind, labels: { ...r.labels }, created: new Date(r.created), updated: new Date(r.updated) };
}

function requireName(name: unknown, what: string): asserts name is string {
  if (typeof name !== 'string' || name === '') throw new SnapshotError('INVALID_ARGUMENT', `snapshot ${what} must not be empty`);
  if (name.includes('\0')) throw new SnapshotError('INVALID_ARGUMENT', `snapshot ${what} ${JSON.stringify(name)} contains NUL`);
}

function validateLabels(labels: Record<string, string>): void {
  for (const [k, v] of Object.entries(labels)) {
    if (Buffer.byteLength(k) + Buffer.byteLength(v) > MAX_LABEL_BYTES) {
      throw new SnapshotError('INVALID_ARGUMENT', `label key and value longer than ${MAX_LABEL_BYTES} bytes: ${JSON.stringify(k.slice(0, 64))}`);
    }
  }
}

/** A fresh layer id: 64 hex characters, as Docker names its layers. */
function newLayerId(): string {
  return randomBytes(32).toString('hex');
}

/** A store error as the class containerd understands, its message without errno noise. */
function fromStore(e: unknown, what: string): SnapshotError {
  if (e instanceof SnapshotError) return e;
  if (e instanceof Overlay2Error) {
    const code: SnapshotErrorCode =
      e.code === 'ERR_LAYER_NOT_FOUND' ? 'NOT_FOUND'
        : e.code === 'ERR_LAYER_EXISTS' ? 'ALREADY_EXISTS'
          : e.code === 'ERR_LAYER_HAS_CHILDREN' || e.code === 'ERR_LAYER_BUSY' || e.code === 'ERR_MAX_DEPTH'
            || e.code === 'ERR_REMOTE_LAYER_MISSING' || e.code === 'ERR_REMOTE_UNSAFE_PATH' || e.code === 'ERR_REMOTE_READ_ONLY' ? 'FAILED_PRECONDITION'
            : e.code === 'ERR_INVALID_ID' || e.code === 'ERR_BAD_OPTION' ? 'INVALID_ARGUMENT'
              : 'INTERNAL';
    return new SnapshotError(code, `${what}: ${e.message.replace(/^overlay2: /, '')}`, { cause: e });
  }
  const err = e as NodeJS.ErrnoException;
  const why = err?.code === 'ENOSPC' || err?.code === 'EDQUOT' ? 'no space left on the store\'s filesystem'
    : err?.code === 'ENOENT' ? 'a file of the snapshot is missing'
      : err?.code === 'EACCES' || err?.code === 'EPERM' ? 'permission denied'
        : err?.code ? `the system said ${err.code}` : String(err?.message ?? e);
  return new SnapshotError(err?.code === 'ENOENT' ? 'NOT_FOUND' : 'INTERNAL', `${what}: ${why}`, { cause: e });
}
