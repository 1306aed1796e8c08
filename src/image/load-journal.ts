// Crash safety for load(): a loaded layer is complete once its record (layer-record.ts) is written,
// but the layer exists from its create() on — empty, or (killed between the content swap and the
// record) full but unrecorded. Without a trace of who made it, such a layer looks like any other. So
// a load journals the ids it is about to create, in HOME/.loads/<pid>.json, before each create():
//   { "pid": 4242, "start": "123456", "ids": ["<chain id>", ...] }
// and removes the journal when it ends (success, or failure after its own cleanup). A later
// read-write init that finds the journal of a process that is gone removes the layers it lists that
// have no record (newest first: children before parents), then the journal: every layer a killed
// load touched is then fully there (recorded, content complete) or absent.
import * as fs from 'node:fs';
import { join } from 'node:path';
import { processStart } from '../mount/shared-refs.js';
import { readLayerRecord } from './layer-record.js';
import { validateId } from '../layout/ids.js';
import type { LayerStore } from '../layout/store.js';

interface JournalRecord { pid: number; start: string; ids: string[] }

export class LoadJournal {
  private readonly file: string;
  private readonly record: JournalRecord;

  constructor(loadsDir: string) {
    this.file = join(loadsDir, `${process.pid}.json`);
    this.record = { pid: process.pid, start: processStart(process.pid), ids: [] };
  }

  /** Notes `id` before it is created (replaced by rename: a kill never leaves half a journal). */
  willCreate(id: string): void {
    this.record.ids.push(id);
    fs.mkdirSync(join(this.file, '..'), { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(this.record), { mode: 0o600 });
    fs.renameSync(tmp, this.file);
  }

  /** The load is over: its layers are complete, or it removed them itself. */
  close(): void {
    fs.rmSync(this.file, { force: true });
  }
}

/**
 * At a read-write init: settles the loads of processes that are gone. `remove` removes a layer (the
 * driver's remove(): unmounted, out of sight, deleted); a layer it cannot remove (another process has
 * built on it or holds it since) is left, and so is the journal, to be tried again. Returns the ids removed.
 */
export async function recoverInterruptedLoads(store: LayerStore, remove: (id: string) => Promise<void>): Promise<string[]> {
  const dir = store.loadsDir();
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  // The ids a running load journals are its own, even where a dead load listed them too (a second
  // load of the same image, started after the first was killed): those are left to it.
  const live = new Set<string>();
  const records = new Map<string, JournalRecord>();
  for (const name of names) {
    if (name.endsWith('.tmp')) continue;
    try {
      const record = JSON.parse(fs.readFileSync(join(dir, name), 'utf8')) as JournalRecord;
      records.set(name, record);
      const start = processStart(record.pid);
      if (start !== '' && start === record.start && Array.isArray(record.ids)) for (const id of record.ids) live.add(id);
    } catch {
      // unreadable: handled below
    }
  }
  const removed: string[] = [];
  for (const name of names) {
    const file = join(dir, name);
    if (name.endsWith('.tmp')) {
      // a journal update cut short: the pid is in the name
      const pid = Number(name.split('.')[0]);
      if (!(pid > 0) || processStart(pid) === '') fs.rmSync(file, { force: true });
      continue;
    }
    const record = records.get(name);
    if (!record) {
      fs.rmSync(file, { force: true }); // not ours to read: nothing to settle
      continue;
    }
    const start = processStart(record.pid);
    if (start !== '' && start === record.start) continue; // that load is still running
    let settled = true;
    for (const id of [...(Array.isArray(record.ids) ? record.ids : [])].reverse()) {
      try { validateId(id); } catch { continue; } // not a journal this driver wrote
      if (live.has(id)) continue;
      if (!fs.existsSync(store.dir(id))) continue;
      if (readLayerRecord(store.dir(id)) !== null) continue; // finished: complete
      try {
        await remove(id);
        removed.push(id);
      } catch {
        settled = false;
      }
    }
    if (settled) fs.rmSync(file, { force: true });
  }
  return removed;
}
