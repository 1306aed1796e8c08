// The snapshotter's in-memory index: name → (layer, record), and how many snapshots name each one as
// their parent. Rebuilt at start from the records inside the layers (one small read per layer), then
// kept in step with every change, so no lookup by key ever scans the home.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readRecord, type SnapshotRecord } from './snapshot-record.js';

export interface IndexedSnapshot {
  /** the layer's id: HOME/<layer>/ holds it */
  layer: string;
  record: SnapshotRecord;
}

export class SnapshotIndex {
  private readonly byName = new Map<string, IndexedSnapshot>();
  private readonly childCount = new Map<string, number>();

  /** Reads every layer's record. `isLayerName` filters the home's entries (the store's rule);
   *  `onConflict` hears of two layers claiming one name (the newer record wins). */
  static build(home: string, isLayerName: (name: string) => boolean, onConflict?: (name: string, kept: string, ignored: string) => void): SnapshotIndex {
    const index = new SnapshotIndex();
    for (const entry of readdirSync(home, { withFileTypes: true })) {
      if (!entry.isDirectory() || !isLayerName(entry.name)) continue;
      const record = readRecord(join(home, entry.name));
      if (record === null) continue;
      const other = index.byName.get(record.name);
      if (other !== undefined) {
        const newer = record.updated > other.record.updated;
        onConflict?.(record.name, newer ? entry.name : other.layer, newer ? other.layer : entry.name);
        if (!newer) continue;
        index.delete(record.name);
      }
      index.set({ layer: entry.name, record });
    }
    return index;
  }

  get size(): number {
    return this.byName.size;
  }

  get(name: string): IndexedSnapshot | undefined {
    return this.byName.get(name);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  children(name: string): number {
    return this.childCount.get(name) ?? 0;
  }

  /** Adds a snapshot, or replaces the one of the same name. */
  set(snapshot: IndexedSnapshot): void {
    this.delete(snapshot.record.name);
    this.byName.set(snapshot.record.name, snapshot);
    const parent = snapshot.record.parent;
    if (parent !== '') this.childCount.set(parent, this.children(parent) + 1);
  }

  delete(name: string): void {
    const old = this.byName.get(name);
    if (old === undefined) return;
    this.byName.delete(name);
    const parent = old.record.parent;
    if (parent === '') return;
    const n = this.children(parent) - 1;
    if (n > 0) this.childCount.set(parent, n);
    else this.childCount.delete(parent);
  }

  /** The layers snapshots live in (for Cleanup: any other layer with a record is an orphan). */
  layers(): Set<string> {
    return new Set([...this.byName.values()].map((s) => s.layer));
  }

  values(): IterableIterator<IndexedSnapshot> {
    return this.byName.values();
  }
}
