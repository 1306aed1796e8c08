// What the snapshotter knows of a snapshot beyond its layer: its containerd name, kind, parent,
// labels and times, in one small JSON file inside the layer's own directory. The file is part of the
// layer from birth (written into the layer before the layer is renamed into place, see
// Overlay2Driver.createSnapshotLayer) and replaced by rename afterwards, so a kill -9 at any point
// leaves a layer with a whole record, old or new — and removing the layer removes its record in the
// same rename that takes the layer out of sight. The store's own files (link, lower, committed) stay
// exactly Docker's; a home served by the snapshotter is still a home the CLI and the plugin can open.
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isErrno } from '../errors.js';

/** The record's file in HOME/<layer id>/. The "ovl2-" prefix and ".tmp-PID" temps are the store's
 *  own convention: an init removes a killed writer's temp (removeStaleRecordTemps). */
export const SNAPSHOT_RECORD_FILE = 'ovl2-snapshot.json';

export type SnapshotKind = 'view' | 'active' | 'committed';

export interface SnapshotUsage {
  /** bytes of the blocks the snapshot's own inodes hold (st_blocks × 512, each inode once) */
  size: number;
  inodes: number;
}

export interface SnapshotRecord {
  /** the key of an active or view snapshot, the committed name of a committed one */
  name: string;
  /** the parent's committed name, '' for none */
  parent: string;
  kind: SnapshotKind;
  labels: Record<string, string>;
  /** milliseconds since the epoch */
  created: number;
  updated: number;
  /** measured once at Commit (committed snapshots only) */
  usage?: SnapshotUsage;
}

const KINDS: ReadonlySet<string> = new Set(['view', 'active', 'committed']);

export function serializeRecord(record: SnapshotRecord): string {
  return JSON.stringify({ v: 1, ...record }) + '\n';
}

/** The record of the layer in `layerDir`; null when the layer is not a snapshot (no record file) or
 *  the file is not a record this version reads (then the layer is left alone, never guessed at). */
export function readRecord(layerDir: string): SnapshotRecord | null {
  let text: string;
  try {
    text = readFileSync(join(layerDir, SNAPSHOT_RECORD_FILE), 'utf8');
  } catch (e) {
    if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) return null;
    throw e;
  }
  return parseRecord(text);
}

export function parseRecord(text: string): SnapshotRecord | null {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof raw !== 'object' || raw === null) return null;
  const r = raw as Record<string, unknown>;
  if (r.v !== 1 || typeof r.name !== 'string' || r.name === '' || typeof r.parent !== 'string') return null;
  if (typeof r.kind !== 'string' || !KINDS.has(r.kind)) return null;
  if (typeof r.created !== 'number' || typeof r.updated !== 'number') return null;
  if (typeof r.labels !== 'object' || r.labels === null || Array.isArray(r.labels)) return null;
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(r.labels as Record<string, unknown>)) {
    if (typeof v !== 'string') return null;
    labels[k] = v;
  }
  const record: SnapshotRecord = {
    name: r.name, parent: r.parent, kind: r.kind as SnapshotKind, labels, created: r.created, updated: r.updated,
  };
  const u = r.usage as Record<string, unknown> | undefined;
  if (u !== undefined) {
    if (typeof u !== 'object' || u === null || typeof u.size !== 'number' || typeof u.inodes !== 'number') return null;
    record.usage = { size: u.size, inodes: u.inodes };
  }
  return record;
}

/** Replaces the record of the layer in `layerDir` at once (temp file + rename). */
export function writeRecord(layerDir: string, record: SnapshotRecord): void {
  const file = join(layerDir, SNAPSHOT_RECORD_FILE);
  const temp = `${file}.tmp-${process.pid}`;
  try {
    writeFileSync(temp, serializeRecord(record), { mode: 0o600 });
    renameSync(temp, file);
  } catch (e) {
    rmSync(temp, { force: true });
    throw e;
  }
}
