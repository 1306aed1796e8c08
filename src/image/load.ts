// driver.load(): an image archive or layout in, its layers stored under their chain IDs. Each layer
// blob streams from the source (verified against its digest where the format names one) into
// applyDiff (which checks the diffID before the layer's content is swapped in). An archive given as
// a file is read in place, by offset (any member order); a stream is first spooled to a file in
// HOME/.partial/ (removed after, and by init after a crash).
import * as fs from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { LayerDriver } from './layer-driver.js';
import { Overlay2Error } from '../errors.js';
import { LOADS_DIR, PARTIAL_DIR } from '../layout/store.js';
import type { Control } from '../progress.js';
import { isCompressedFile, spool } from './archive-index.js';
import { openSource, type BlobSource } from './blob-source.js';
import { badImage, chainIds, hexOf, parseDigest, sha256, mismatch, verified } from './digest.js';
import { DOCKER_MANIFEST, dockerPlans } from './docker-manifest.js';
import { OCI_INDEX, OCI_LAYOUT, ociPlans } from './oci-layout.js';
import type { ImagePlan } from './plan.js';
import { readLayerRecord } from './layer-record.js';
import { LoadJournal } from './load-journal.js';
import { statInput } from './file-paths.js';

export const IMAGE_CONFIG_FILE = 'ovl2-image-config.json';

/** A path (archive file or directory), or a stream of an archive. */
export type ImageSource = string | Readable | AsyncIterable<Uint8Array>;

export type LoadOptions = Control;

export interface LoadResult {
  /** The top layer's id (its chain ID's hex): mount it, or create a container layer on it. */
  top: string;
  /** "sha256:..." of the image config blob (Docker's image ID). */
  configDigest: string;
  /** Layer ids, base first. */
  layers: string[];
  diffIds: string[];
  /** How many of those were already here (complete) and reused. */
  reused: number;
  /** RepoTags / ref names the archive gave the image. */
  names: string[];
}

export async function loadImage(driver: LayerDriver, source: ImageSource, opts: LoadOptions): Promise<LoadResult[]> {
  opts.signal?.throwIfAborted();
  const temps: string[] = [];
  try {
    let path: string;
    if (typeof source === 'string') {
      path = source;
      if (statInput(path, 'source').isFile() && isCompressedFile(path)) path = await spoolTemp(driver, fs.createReadStream(path), temps, opts);
    } else if (source !== null && typeof source === 'object' && Symbol.asyncIterator in source) {
      path = await spoolTemp(driver, source, temps, opts);
    } else {
      throw new Overlay2Error('ERR_INVALID_ARG_TYPE', `overlay2: load takes a path or a stream of an image archive, got ${typeof source}`);
    }
    const src = await openSource(path);
    const plans = await plansOf(src);
    const results: LoadResult[] = [];
    const created: string[] = [];
    const total = totalOf(src, plans);
    const progress = { bytes: 0, entries: 0 };
    // What this load creates, for the init after a crash (load-journal.ts).
    const journal = new LoadJournal(join(driver.home, LOADS_DIR));
    try {
      for (const plan of plans) results.push(await loadOne(driver, src, plan, created, progress, total, opts, journal));
    } catch (e) {
      // Nothing this call created survives it (newest first: children before parents).
      let left = 0;
      for (const id of created.reverse()) await driver.remove(id).catch(() => { left++; });
      if (left === 0) journal.close();
      throw e;
    }
    journal.close();
    return results;
  } finally {
    for (const t of temps) fs.rmSync(t, { force: true });
  }
}

async function plansOf(src: BlobSource): Promise<ImagePlan[]> {
  if (src.has(DOCKER_MANIFEST)) return dockerPlans(src);
  if (src.has(OCI_LAYOUT) && src.has(OCI_INDEX)) return ociPlans(src);
  throw badImage(`${src.where} is neither a docker save archive (no ${DOCKER_MANIFEST}) nor an OCI layout (no ${OCI_LAYOUT} + ${OCI_INDEX})`);
}

function totalOf(src: BlobSource, plans: ImagePlan[]): number {
  let total = 0;
  for (const p of plans) for (const l of p.layers) if (src.has(l.name)) total += src.size(l.name);
  return total;
}

async function loadOne(driver: LayerDriver, src: BlobSource, plan: ImagePlan, created: string[],
  progress: { bytes: number; entries: number }, total: number, opts: LoadOptions, journal: LoadJournal): Promise<LoadResult> {
  const configBytes = await readAll(src, plan.config.name);
  const configDigest = sha256(configBytes);
  if (plan.config.digest && plan.config.digest !== configDigest) throw mismatch(`config ${plan.config.name}`, configDigest, plan.config.digest);
  let config: { rootfs?: { type?: unknown; diff_ids?: unknown } };
  try {
    config = JSON.parse(configBytes.toString('utf8'));
  } catch (e) {
    throw badImage(`config ${plan.config.name} is not JSON: ${(e as Error).message}`);
  }
  const rawIds = config?.rootfs?.diff_ids;
  if (!Array.isArray(rawIds)) throw badImage(`config ${plan.config.name} has no rootfs.diff_ids`);
  const diffIds = rawIds.map((d, i) => parseDigest(d, `rootfs.diff_ids[${i}]`));
  if (diffIds.length !== plan.layers.length) {
    throw badImage(`config ${plan.config.name} lists ${diffIds.length} diff_ids for ${plan.layers.length} layers`);
  }
  if (diffIds.length === 0) throw badImage(`image ${plan.config.name} has no layers`);
  const ids = chainIds(diffIds).map(hexOf);
  let reused = 0;
  for (let i = 0; i < ids.length; i++) {
    opts.signal?.throwIfAborted();
    const id = ids[i];
    const parent = i === 0 ? '' : ids[i - 1];
    const layer = plan.layers[i];
    if (!src.has(layer.name)) throw badImage(`${src.where} has no layer ${layer.name}`);
    const blobSize = src.size(layer.name);
    if (await isComplete(driver, id, parent, diffIds[i])) {
      reused++;
      progress.bytes += blobSize;
      opts.onProgress?.({ ...progress, totalBytes: total });
      continue;
    }
    if (await driver.exists(id)) await driver.remove(id); // an earlier load that did not finish
    journal.willCreate(id);
    await driver.create(id, parent || null);
    created.push(id);
    const blob = layer.digest ? verified(src.read(layer.name), layer.digest, `layer ${layer.name}`) : src.read(layer.name);
    const base = { ...progress };
    await driver.applyDiff(id, parent || null, blob, {
      expectDiffId: diffIds[i],
      signal: opts.signal,
      onProgress: (p) => {
        progress.bytes = base.bytes + p.bytes;
        progress.entries = base.entries + p.entries;
        opts.onProgress?.({ ...progress, totalBytes: total });
      },
    }).catch((e: unknown) => { throw inLayer(e, i, layer.name); });
    progress.bytes = base.bytes + blobSize;
    if (!readLayerRecord(driver.layerDir(id))) throw new Error(`overlay2: internal: layer ${id} was applied without a record`);
  }
  const top = ids[ids.length - 1];
  // The config travels with the top layer, so save() can give the image back as it came.
  const configFile = join(driver.layerDir(top), IMAGE_CONFIG_FILE);
  fs.writeFileSync(`${configFile}.tmp-${process.pid}`, configBytes, { mode: 0o600 });
  fs.renameSync(`${configFile}.tmp-${process.pid}`, configFile);
  return { top, configDigest, layers: ids, diffIds, reused, names: plan.names };
}

/** A layer's errors say which layer. */
function inLayer(e: unknown, i: number, name: string): unknown {
  if (!(e instanceof Overlay2Error)) return e;
  const err = new Overlay2Error(e.code, `${e.message} (layer ${i}: ${name})`, { id: e.id, path: e.path, cause: e });
  return err;
}

/** A layer a previous load finished: its record names the same diffID, and it sits on `parent`. */
async function isComplete(driver: LayerDriver, id: string, parent: string, diffId: string): Promise<boolean> {
  if (!(await driver.exists(id))) return false;
  const record = readLayerRecord(driver.layerDir(id));
  if (!record || record.diffId !== diffId) return false;
  return (await driver.parentOf(id)) === parent;
}

async function readAll(src: BlobSource, name: string): Promise<Buffer> {
  if (!src.has(name)) throw badImage(`${src.where} has no ${name}`);
  const parts: Buffer[] = [];
  for await (const c of src.read(name)) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

async function spoolTemp(driver: LayerDriver, input: AsyncIterable<Uint8Array>, temps: string[], opts: LoadOptions): Promise<string> {
  const dir = join(driver.home, PARTIAL_DIR);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `load-${process.pid}-${randomBytes(6).toString('hex')}.tar`);
  temps.push(file);
  await spool(input, file, opts.signal);
  return file;
}
