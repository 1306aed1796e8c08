// driver.save(): the chain ending at a layer, out as an image archive `docker load` and skopeo take:
// 'docker' (docker save's manifest.json + <hex>/layer.tar + <hex>.json) or 'oci' (an OCI image
// layout in a tar). Each layer goes out uncompressed, with the bytes it was applied from when its
// tar-split is kept (same diffID as the image it came in: src/tar-split/assemble.ts, which fails with
// ERR_LAYER_CHANGED rather than ship other bytes), else as the driver's own diff (a layer made
// here), spooled once to learn its size and diffID. The archive is written to a temp name beside
// the output and renamed when complete: an error or abort leaves no partial file. The output path is
// checked before any layer is read, and a failure to write names it, never the temp file.
import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { dirname, basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import * as tarStream from 'tar-stream';
import type { LayerDriver } from './layer-driver.js';
import { Overlay2Error } from '../errors.js';
import { ProgressCounter, type Control } from '../progress.js';
import { TarReader } from '../tar/reader.js';
import { assembleLayer, hasTarSplit } from '../tar-split/assemble.js';
import { readLayerRecord } from './layer-record.js';
import { IMAGE_CONFIG_FILE } from './load.js';
import { hexOf, sha256 } from './digest.js';
import { blobName, ociArch } from './oci-layout.js';
import { checkOutputFile, writing, writingSync } from './file-paths.js';

export interface SaveOptions extends Control {
  format?: 'docker' | 'oci';
  /** Names for the image (docker: RepoTags such as "name:tag"; oci: ref.name annotations). */
  tags?: string[];
  /** The image config to write; default: the one the top layer was loaded with (when it lists
   *  these layers), else a minimal linux/<this arch> config. rootfs.diff_ids is always set. */
  config?: Record<string, unknown>;
}

export interface SaveResult {
  configDigest: string;
  diffIds: string[];
  /** Layer ids, base first. */
  layers: string[];
}

interface LayerOut {
  id: string;
  diffId: string;
  size: number;
  bytes: () => AsyncIterable<Buffer>;
}

const EPOCH = new Date(0);

export async function saveImage(driver: LayerDriver, top: string, output: string, opts: SaveOptions): Promise<SaveResult> {
  const format = opts.format ?? 'docker';
  if (format !== 'docker' && format !== 'oci') {
    throw new Overlay2Error('ERR_BAD_OPTION', `overlay2: save format must be docker or oci, got ${JSON.stringify(format)}`, { option: 'format' });
  }
  opts.signal?.throwIfAborted();
  checkOutputFile(output);
  if (!(await driver.exists(top))) await driver.parentOf(top); // throws ERR_LAYER_NOT_FOUND / ERR_INVALID_ID
  const chain: string[] = [];
  for (let id = top; id !== ''; id = await driver.parentOf(id)) chain.unshift(id);

  const temps: string[] = [];
  const tmpOut = join(dirname(output), `.${basename(output)}.tmp-${process.pid}`);
  temps.push(tmpOut);
  try {
    const layers: LayerOut[] = [];
    for (let i = 0; i < chain.length; i++) layers.push(await layerOut(driver, chain[i], i === 0 ? '' : chain[i - 1], output, temps, opts));
    const diffIds = layers.map((l) => l.diffId);
    const configBytes = configFor(driver, top, diffIds, opts);
    const configDigest = sha256(configBytes);
    // Progress in the vocabulary of diff and apply: bytes of the archive as written (headers and
    // padding too), entries of the layers' tars as they pass. The total is known but for the small
    // JSON members written last; the final report is exact.
    const member = (size: number) => BLOCK + Math.ceil(size / BLOCK) * BLOCK;
    const counter = new ProgressCounter(opts, [...new Set(layers.map((l) => l.diffId))].reduce((n, d) => n + member(layers.find((l) => l.diffId === d)!.size), 0)
      + member(configBytes.length) + 2 * BLOCK + SMALL_MEMBERS);

    const pack = tarStream.pack();
    // Opened here, not lazily by the stream: an early error must find the file to remove.
    const fd = writingSync(output, () => fs.openSync(tmpOut, 'w', 0o644));
    const written = writing(output, () => pipeline(pack, fs.createWriteStream('', { fd })));
    written.catch(() => undefined); // awaited below; an early error must not go unhandled
    const add = async (name: string, size: number, chunks: AsyncIterable<Buffer> | Buffer): Promise<void> => {
      const w = pack.entry({ name, size, mode: 0o644, mtime: EPOCH, type: 'file' });
      const ended = new Promise<void>((resolve, reject) => { w.once('finish', resolve); w.once('error', reject); w.once('close', resolve); });
      ended.catch(() => undefined); // an entry cut short by an error: that error is the one thrown
      counter.addBytes(BLOCK);
      if (Buffer.isBuffer(chunks)) {
        w.end(chunks);
        counter.addBytes(chunks.length);
      } else {
        const entries = entryCounter(() => { counter.entries++; });
        for await (const c of chunks) {
          opts.signal?.throwIfAborted();
          if (!w.write(c)) await once(w, 'drain');
          entries(c);
          counter.addBytes(c.length);
          counter.report();
        }
        (w as unknown as { end(): void }).end();
      }
      await ended;
      counter.addBytes((BLOCK - (size % BLOCK)) % BLOCK);
      counter.report();
    };
    try {
      if (format === 'docker') await writeDocker(add, layers, configBytes, configDigest, opts.tags ?? []);
      else await writeOci(add, layers, configBytes, configDigest, opts.tags ?? []);
      pack.finalize();
      await written;
      counter.addBytes(2 * BLOCK); // the end-of-archive blocks
      counter.totalBytes = counter.bytes;
      counter.report();
    } catch (e) {
      pack.destroy(e as Error);
      await written.catch(() => undefined);
      throw e;
    }
    writingSync(output, () => fs.renameSync(tmpOut, output));
    temps.shift();
    return { configDigest, diffIds, layers: chain };
  } finally {
    for (const t of temps) fs.rmSync(t, { force: true });
  }
}

const BLOCK = 512;
/** What the JSON members written last (manifest.json; index.json) are taken to weigh before they exist. */
const SMALL_MEMBERS = 2 * 1024;

/** Counts the entries of a layer tar passing by (the progress line's "entries"): best effort, a tar
 *  it cannot parse stops the counting, never the save. */
function entryCounter(onEntry: () => void): (chunk: Buffer) => void {
  const reader = new TarReader({ entry: onEntry, data: () => undefined, end: () => undefined });
  let parsing = true;
  return (chunk) => {
    if (!parsing) return;
    try {
      reader.push(chunk);
    } catch {
      parsing = false;
    }
  };
}

type Add = (name: string, size: number, chunks: AsyncIterable<Buffer> | Buffer) => Promise<void>;

async function writeDocker(add: Add, layers: LayerOut[], config: Buffer, configDigest: string, tags: string[]): Promise<void> {
  const names: string[] = [];
  const done = new Set<string>();
  for (const l of layers) {
    const name = `${hexOf(l.diffId)}/layer.tar`;
    names.push(name);
    if (done.has(name)) continue; // two identical layers (e.g. empty ones): one file serves both
    done.add(name);
    await add(name, l.size, l.bytes());
  }
  const configName = `${hexOf(configDigest)}.json`;
  await add(configName, config.length, config);
  const manifest = Buffer.from(JSON.stringify([{ Config: configName, RepoTags: tags, Layers: names }]));
  await add('manifest.json', manifest.length, manifest);
}

async function writeOci(add: Add, layers: LayerOut[], config: Buffer, configDigest: string, tags: string[]): Promise<void> {
  const layout = Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await add('oci-layout', layout.length, layout);
  const done = new Set<string>();
  for (const l of layers) {
    if (done.has(l.diffId)) continue;
    done.add(l.diffId);
    await add(blobName(l.diffId), l.size, l.bytes());
  }
  await add(blobName(configDigest), config.length, config);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: l.diffId, size: l.size })),
  }));
  const manifestDigest = sha256(manifest);
  await add(blobName(manifestDigest), manifest.length, manifest);
  const descriptor = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: manifestDigest, size: manifest.length };
  const manifests = tags.length === 0 ? [descriptor]
    : tags.map((t) => ({ ...descriptor, annotations: { 'org.opencontainers.image.ref.name': t } }));
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }));
  await add('index.json', index.length, index);
}

/** How one layer goes out: its original tar (tar-split), else its diff spooled to learn size and digest. */
async function layerOut(driver: LayerDriver, id: string, parent: string, output: string, temps: string[], opts: SaveOptions): Promise<LayerOut> {
  const dir = driver.layerDir(id);
  const record = readLayerRecord(dir);
  if (record?.tarSplit && hasTarSplit(dir)) {
    return { id, diffId: record.diffId, size: record.tarSize, bytes: () => assembleLayer(dir, id, record.diffId, record.tarSize) };
  }
  const tmp = join(dirname(output), `.${basename(output)}.layer-${id.slice(0, 12)}.tmp-${process.pid}`);
  temps.push(tmp);
  const hash = createHash('sha256');
  let size = 0;
  const fd = writingSync(output, () => fs.openSync(tmp, 'w', 0o600));
  try {
    for await (const c of await driver.diff(id, parent || null, { signal: opts.signal })) {
      const b = c as Buffer;
      hash.update(b);
      size += b.length;
      writingSync(output, () => { for (let off = 0; off < b.length;) off += fs.writeSync(fd, b, off); });
    }
  } finally {
    fs.closeSync(fd);
  }
  const diffId = `sha256:${hash.digest('hex')}`;
  return { id, diffId, size, bytes: () => fileChunks(tmp) };
}

async function* fileChunks(file: string): AsyncGenerator<Buffer> {
  for await (const c of fs.createReadStream(file, { highWaterMark: 1 << 20 })) yield c as Buffer;
}

function configFor(driver: LayerDriver, top: string, diffIds: string[], opts: SaveOptions): Buffer {
  let base: Record<string, unknown> | undefined = opts.config;
  if (!base) {
    try {
      const raw = fs.readFileSync(join(driver.layerDir(top), IMAGE_CONFIG_FILE));
      const stored = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
      const ids = (stored.rootfs as { diff_ids?: unknown } | undefined)?.diff_ids;
      // the very bytes it was loaded with: the same config digest (image ID) comes back
      if (Array.isArray(ids) && ids.length === diffIds.length && ids.every((d, i) => d === diffIds[i])) return raw;
    } catch {
      // none stored (a layer made here) or unreadable: a fresh config
    }
  }
  base ??= {
    architecture: ociArch(),
    os: 'linux',
    config: {},
    history: diffIds.map((_, i) => ({ created: EPOCH.toISOString(), created_by: `overlay2 layer ${i}` })),
  };
  return Buffer.from(JSON.stringify({ ...base, rootfs: { type: 'layers', diff_ids: diffIds } }));
}
