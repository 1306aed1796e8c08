// What the driver knows about a layer's tar beside the layer: HOME/<id>/ovl2-layer.json, written
// (temp name, then rename) only once the layer's content is complete, so its presence is what makes
// a loaded layer count as complete. Docker's overlay2 never reads unknown names in a layer dir.
import * as fs from 'node:fs';
import { join } from 'node:path';
import { TAR_SPLIT_FILE } from '../tar-split/record.js';

export const LAYER_RECORD_FILE = 'ovl2-layer.json';

export interface LayerRecord {
  /** "sha256:<hex>" of the uncompressed tar the layer was applied from. */
  diffId: string;
  /** That tar's length in bytes. */
  tarSize: number;
  /** A tar-split file beside it can rebuild that tar byte for byte. */
  tarSplit: boolean;
}

export function readLayerRecord(layerDir: string): LayerRecord | null {
  let text: string;
  try {
    text = fs.readFileSync(join(layerDir, LAYER_RECORD_FILE), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  try {
    const r = JSON.parse(text) as LayerRecord;
    if (typeof r.diffId === 'string' && /^sha256:[0-9a-f]{64}$/.test(r.diffId) && Number.isSafeInteger(r.tarSize)) return r;
  } catch {
    // a torn or foreign file: as if there were none
  }
  return null;
}

export function writeLayerRecord(layerDir: string, record: LayerRecord): void {
  const file = join(layerDir, LAYER_RECORD_FILE);
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(record) + '\n', { mode: 0o600 });
  fs.renameSync(tmp, file);
}

/** The layer's content is about to change: what was recorded no longer describes it. */
export function dropLayerRecord(layerDir: string): void {
  fs.rmSync(join(layerDir, LAYER_RECORD_FILE), { force: true });
  fs.rmSync(join(layerDir, TAR_SPLIT_FILE), { force: true });
}

/** Removes the temp files an apply or load interrupted by a crash left in a layer dir. */
export function removeStaleRecordTemps(layerDir: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(layerDir);
  } catch {
    return;
  }
  for (const n of names) if (/^ovl2-.*\.tmp-\d+$/.test(n)) fs.rmSync(join(layerDir, n), { force: true });
}
