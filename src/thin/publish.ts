// Making thin images (what the fork's docker2cvmfs did, done here): every layer of a chain is
// unpacked into <root>/<repo>/layers/<hex of its diffID> — staged beside it and renamed in, an
// existing tree reused — and a manifest listing them (base first) is written with its one-file tar.
// The trees are written the way overlay reads them (whiteouts as 0/0 character devices, opaque dirs
// marked with the overlay xattr: the importer of src/apply/apply.ts converts Docker's .wh. entries),
// so a deletion in a layer stays deleted when the tree is mounted as a lower. The fork's published
// trees kept the .wh. files, so deleted files came back. A layer goes out with every xattr it holds
// (not Docker's security.capability alone: the tree is the layer itself, not an image to ship) and
// the tar's full metadata (owner, mode, mtime, links, devices), so the thin image mounts as the chain.
//   make    the chain ending at TOP; a thin layer in it contributes its manifest's layers
//   commit  make of the container's parent chain, plus the container's own diff as a new layer on
//           top (the fork prepends, which buries the change at the bottom)
import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { Overlay2Error, isErrno } from '../errors.js';
import type { Overlay2Driver } from '../driver.js';
import { loadShim } from '../native/shim.js';
import { AT_FDCWD, RENAME_NOREPLACE } from '../native/constants.js';
import { removeTreeSync } from '../layout/remove-tree.js';
import { serializeManifest, validateRepoName, type ThinLayerRef } from './manifest.js';
import { manifestTar } from './manifest-tar.js';
import { writingSync } from '../image/file-paths.js';

export interface PublishOptions {
  repo: string;
  /** the root the trees go under (default: the driver's thin root) */
  root?: string;
  origin?: string;
}

export interface PublishResult {
  /** base first */
  layers: ThinLayerRef[];
  manifest: Buffer;
  /** the thin image's layer: apply it (in a home whose root holds the trees) to get the image back */
  tar: Buffer;
  /** trees written by this call (the others were there already, or belong to a thin layer) */
  written: string[];
}

/** The export a published tree is unpacked from: every xattr the layer holds (user.*, trusted.*,
 *  security.*), overlay's own bookkeeping aside (whiteouts and opaque dirs are carried as such). */
const EVERY_XATTR = { xattrs: 'all' } as const;

/** The layers that make up `top`, base first: a thin layer's manifest layers stand for it. */
async function chainOf(driver: Overlay2Driver, top: string): Promise<Array<{ id: string; parent: string } | { thin: ThinLayerRef[] }>> {
  const topFirst: Array<{ id: string; parent: string } | { thin: ThinLayerRef[] }> = [];
  for (let id = top, n = 0; id !== ''; n++) {
    if (n > 1000) throw new Overlay2Error('ERR_MAX_DEPTH', `overlay2: the chain below ${top} does not end`, { id: top });
    const parent = await driver.parentOf(id);
    const manifest = driver.thinLayers.manifestOf(id);
    topFirst.push(manifest ? { thin: manifest.layers } : { id, parent });
    id = parent;
  }
  return topFirst.reverse();
}

/** The sha256 of a stream, read to its end. */
async function digestOf(tar: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of tar) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

/** Unpacks one layer tar into <root>/<repo>/layers/<hex of its diffID>, unless that tree exists. A
 *  layer without a recorded diffID is hashed first when trees are there already (a second make of
 *  the same chain reads each layer once and writes nothing). */
async function publishLayer(driver: Overlay2Driver, exportTar: () => Promise<Readable>, root: string, repo: string,
  knownDiffId: string | null, written: string[]): Promise<ThinLayerRef> {
  const layersDir = join(root, repo, 'layers');
  fs.mkdirSync(layersDir, { recursive: true, mode: 0o755 });
  if (knownDiffId === null && fs.readdirSync(layersDir).some((n) => !n.startsWith('.'))) knownDiffId = await digestOf(await exportTar());
  if (knownDiffId !== null) {
    const hex = knownDiffId.slice('sha256:'.length);
    if (fs.existsSync(join(layersDir, hex))) return { digest: knownDiffId, repo, path: `layers/${hex}` };
  }
  const tar = await exportTar();
  const staging = fs.mkdtempSync(join(layersDir, `.staging-${process.pid}-`));
  try {
    fs.mkdirSync(join(staging, 'diff'), { mode: 0o755 });
    const hash = createHash('sha256');
    const hashing = new Transform({ transform(chunk: Buffer, _enc, cb) { hash.update(chunk); cb(null, chunk); } });
    tar.on('error', (e) => hashing.destroy(e));
    const { applyLayer } = await import('../apply/apply.js');
    await applyLayer(staging, tar.pipe(hashing), { userxattr: driver.features.userxattr, idMappings: driver.idMappings, layer: `${repo}/layers` });
    // The layer's diffID names its tree: the recorded one (the tar it was applied from) when known,
    // else that of the export just unpacked.
    const digest = knownDiffId ?? `sha256:${hash.digest('hex')}`;
    const hex = digest.slice('sha256:'.length);
    try {
      loadShim().renameat2(AT_FDCWD, join(staging, 'diff'), AT_FDCWD, join(layersDir, hex), RENAME_NOREPLACE);
      written.push(join(layersDir, hex));
    } catch (e) {
      if (!isErrno(e, 'EEXIST') && !isErrno(e, 'ENOTEMPTY')) throw e;
      // made by someone else meanwhile: the same digest is the same tree
    }
    return { digest, repo, path: `layers/${hex}` };
  } finally {
    removeTreeSync(staging);
  }
}

async function publishChain(driver: Overlay2Driver, top: string, opts: PublishOptions, written: string[]): Promise<ThinLayerRef[]> {
  const root = opts.root ?? driver.thinLayers.root;
  const repo = validateRepoName(opts.repo, '--repo');
  const { readLayerRecord } = await import('../image/layer-record.js');
  const layers: ThinLayerRef[] = [];
  for (const item of await chainOf(driver, top)) {
    if ('thin' in item) {
      layers.push(...item.thin);
      continue;
    }
    // A recorded diffID names the tree before any byte is exported; else the export is hashed.
    const known = readLayerRecord(driver.layerDir(item.id))?.diffId ?? null;
    layers.push(await publishLayer(driver, () => driver.diff(item.id, item.parent || null, EVERY_XATTR), root, repo, known, written));
  }
  return layers;
}

function result(layers: ThinLayerRef[], origin: string | undefined, written: string[]): PublishResult {
  const manifest = serializeManifest({ layers, ...(origin !== undefined ? { origin } : {}) });
  return { layers, manifest, tar: manifestTar(manifest), written };
}

/** `thin make TOP`: the chain ending at TOP published under <root>/<repo>. */
export async function makeThinImage(driver: Overlay2Driver, top: string, opts: PublishOptions): Promise<PublishResult> {
  const written: string[] = [];
  const layers = await publishChain(driver, top, opts, written);
  return result(layers, opts.origin, written);
}

/** `thin commit ID --parent P`: P's chain, then ID's changes over P as the topmost layer. */
export async function commitThinLayer(driver: Overlay2Driver, id: string, parent: string, opts: PublishOptions): Promise<PublishResult> {
  const written: string[] = [];
  const layers = await publishChain(driver, parent, opts, written);
  const root = opts.root ?? driver.thinLayers.root;
  layers.push(await publishLayer(driver, () => driver.diff(id, parent, EVERY_XATTR), root, validateRepoName(opts.repo, '--repo'), null, written));
  return result(layers, opts.origin, written);
}

/** Writes `bytes` to `file` through a temp name and a rename: a reader never sees half a tar. A
 *  failure names `file` (never the temp name) and leaves no temp file. */
export function writeFileAtomically(file: string, bytes: Buffer): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    writingSync(file, () => {
      fs.writeFileSync(tmp, bytes, { mode: 0o644 });
      fs.renameSync(tmp, file);
    });
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}
