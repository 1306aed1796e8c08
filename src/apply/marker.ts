// Crash safety for imports written through a mount (applyDiff against a parent that is not the
// layer's direct parent): those write into the live diff/ and cannot be staged and swapped, so the
// layer carries a marker while one runs. HOME/<id>/.applying is written (and fsync'd, with the layer
// dir) before the first byte lands and removed (the dir fsync'd again) after the last. A marker found
// by a later init means the import died part-way: a diff/ that was empty before is emptied back (the
// layer is as create() left it, as the staged path leaves it); one that had content cannot be put
// back, so the layer is marked incomplete (.incomplete) and refused with ERR_LAYER_INCOMPLETE until
// it is removed. No half-applied layer looks complete.
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Overlay2Error } from '../errors.js';
import { isEmptyDir } from './staging.js';
import { removeTree, removeTreeSync } from '../layout/remove-tree.js';
import { processStart } from '../mount/shared-refs.js';
import { writeDurablyAsync } from '../util/durable-write.js';

export const APPLYING_FILE = '.applying';
export const INCOMPLETE_FILE = '.incomplete';

interface ApplyingRecord {
  /** diff/ had no entries when the import began: emptying it restores the layer exactly. */
  diffWasEmpty: boolean;
  pid: number;
  /** the process's start time (/proc/PID/stat): a pid reused by another process is not the importer */
  start?: string;
}

function fsyncPath(path: string): void {
  const fd = fs.openSync(path, fs.constants.O_RDONLY);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

async function fsyncPathAsync(path: string): Promise<void> {
  const fh = await fs.promises.open(path, fs.constants.O_RDONLY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Empties a directory through the store's one removal primitive (fd-relative, beneath `dir`). */
function emptyDir(dir: string): void {
  for (const name of fs.readdirSync(dir)) removeTreeSync(join(dir, name), dir);
}

async function emptyDirAsync(dir: string): Promise<void> {
  for (const name of await fs.promises.readdir(dir)) await removeTree(join(dir, name), dir);
}

/**
 * Runs `write` (an import into layerDir's diff/ through a mount) under the marker. When `write`
 * fails, what it wrote is taken out again (diff/ was empty) or the layer is marked incomplete.
 * The marker's writes and fsyncs run on the libuv pool (a service's event loop must not wait for
 * the disk), in the same order: the marker is durable before `write` starts, gone after it ends.
 */
export async function withApplyMarker<T>(layerDir: string, write: () => Promise<T>): Promise<T> {
  const diffDir = join(layerDir, 'diff');
  const record: ApplyingRecord = { diffWasEmpty: isEmptyDir(diffDir), pid: process.pid, start: processStart(process.pid) };
  const marker = join(layerDir, APPLYING_FILE);
  await writeDurablyAsync(marker, JSON.stringify(record));
  await fsyncPathAsync(layerDir);
  let result: T;
  try {
    result = await write();
  } catch (e) {
    await settleAsync(layerDir, record);
    throw e;
  }
  await fs.promises.rm(marker, { force: true });
  await fsyncPathAsync(layerDir);
  return result;
}

/** settle() on the libuv pool, for a failed import of a running service. */
async function settleAsync(layerDir: string, record: ApplyingRecord): Promise<void> {
  const marker = join(layerDir, APPLYING_FILE);
  if (record.diffWasEmpty) {
    await emptyDirAsync(join(layerDir, 'diff'));
    await fsyncPathAsync(join(layerDir, 'diff'));
    await fs.promises.rm(marker, { force: true });
    await fsyncPathAsync(layerDir);
    return;
  }
  await fs.promises.rename(marker, join(layerDir, INCOMPLETE_FILE));
  await fsyncPathAsync(layerDir);
}

/** What an interrupted import leaves (found by init): emptied back, or marked incomplete. */
function settle(layerDir: string, record: ApplyingRecord): 'emptied' | 'incomplete' {
  const marker = join(layerDir, APPLYING_FILE);
  if (record.diffWasEmpty) {
    emptyDir(join(layerDir, 'diff'));
    fsyncPath(join(layerDir, 'diff'));
    fs.rmSync(marker, { force: true });
    fsyncPath(layerDir);
    return 'emptied';
  }
  fs.renameSync(marker, join(layerDir, INCOMPLETE_FILE));
  fsyncPath(layerDir);
  return 'incomplete';
}

/**
 * At init: settles an import a dead process left in layerDir. `unmount` takes away a stale mount of
 * the layer first (the dead process's mount outlives it). Returns what was found.
 */
export function recoverInterruptedApply(layerDir: string, unmount: () => void): 'none' | 'emptied' | 'incomplete' {
  let text: string;
  try {
    text = fs.readFileSync(join(layerDir, APPLYING_FILE), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'none';
    throw e;
  }
  let record: ApplyingRecord;
  try {
    record = JSON.parse(text) as ApplyingRecord;
  } catch {
    // A torn marker: the process died before the marker was durable, so before the import began.
    fs.rmSync(join(layerDir, APPLYING_FILE), { force: true });
    return 'none';
  }
  // Another process's init (any CLI call that writes) must not settle an import that is still running.
  if (typeof record.pid === 'number' && isAlive(record)) return 'none';
  unmount();
  return settle(layerDir, { diffWasEmpty: record.diffWasEmpty === true, pid: record.pid });
}

/** Whether the import that wrote layerDir's .applying marker may still be running (a torn marker:
 *  its process died before the import began, so no). */
export function applyingOwnerAlive(layerDir: string): boolean {
  try {
    const record = JSON.parse(fs.readFileSync(join(layerDir, APPLYING_FILE), 'utf8')) as ApplyingRecord;
    return typeof record.pid === 'number' && isAlive(record);
  } catch {
    return false;
  }
}

function isAlive(record: ApplyingRecord): boolean {
  const start = processStart(record.pid);
  return start !== '' && (record.start === undefined || start === record.start);
}

/** Refuses a layer an import left half-written (ERR_LAYER_INCOMPLETE). */
export function requireComplete(layerDir: string, id: string): void {
  if (fs.existsSync(join(layerDir, INCOMPLETE_FILE))) {
    throw new Overlay2Error('ERR_LAYER_INCOMPLETE',
      `overlay2: layer ${id} is incomplete: an import through its mount was interrupted after it had content; remove it and create it again`, { id });
  }
}
