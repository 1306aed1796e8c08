// The files that make a layer thin, as the fork lays them out: HOME/<id>/diff/ holding the manifest
// and nothing else (thin.json, or .thin of the earlier form), HOME/<id>/lower listing the layer trees
// first, and HOME/<child>/thin_parent naming the thin layer in each of its direct children (whose
// lower lists the thin layer's lowers, not the thin layer's own diff dir: that holds only the manifest).
import { lstatSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MANIFEST_NAMES, checkManifestSize, parseManifest, type ManifestName, type ThinManifest } from './manifest.js';
import { validateId } from '../layout/ids.js';
import { isErrno } from '../errors.js';

export const THIN_PARENT_FILE = 'thin_parent';

/** The manifest's file name when diff/ holds exactly one entry, a regular file called thin.json or
 *  .thin; null for every other layer (one that ships a /thin.json among other files is ordinary). */
export function manifestFileOf(layerDir: string): ManifestName | null {
  const diff = join(layerDir, 'diff');
  let name: ManifestName | null = null;
  for (const n of MANIFEST_NAMES) {
    try {
      if (lstatSync(join(diff, n)).isFile()) { name = n; break; }
    } catch (e) {
      if (!isErrno(e, 'ENOENT') && !isErrno(e, 'ENOTDIR')) throw e;
    }
  }
  if (name === null) return null;
  return readdirSync(diff).length === 1 ? name : null;
}

/** The layer's manifest, or null when the layer is not thin; a malformed one throws its ERR_THIN_* error. */
export function readManifest(layerDir: string, id: string): ThinManifest | null {
  const name = manifestFileOf(layerDir);
  if (name === null) return null;
  const file = join(layerDir, 'diff', name);
  checkManifestSize(lstatSync(file).size, `of layer ${id}`);
  return parseManifest(readFileSync(file), name, `of layer ${id}`);
}

/** The thin layer a direct child was made on (its thin_parent file), or null. */
export function readThinParent(layerDir: string): string | null {
  let text: string;
  try {
    text = readFileSync(join(layerDir, THIN_PARENT_FILE), 'utf8').trim();
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return null;
    throw e;
  }
  validateId(text, 'thin_parent id');
  return text;
}

/** The layer's lower entries as its lower file lists them ([] when it has none), read synchronously. */
export function readLowerSync(layerDir: string): string[] {
  try {
    const text = readFileSync(join(layerDir, 'lower'), 'utf8');
    return text === '' ? [] : text.split(':');
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return [];
    throw e;
  }
}

export function writeThinParent(layerDir: string, parent: string): void {
  writeFileSync(join(layerDir, THIN_PARENT_FILE), parent, { mode: 0o644 });
}
