// changesBetween: moby's archive.ChangesDirs for any two directories — no driver, no mount, no root.
// It is also what runs where the native shim is not built: the scan then falls back to fast-glob
// (src/scan/fallback.ts), which sees no xattrs, so capability-only changes are not reported there.
import type { Change } from './change.js';

export interface ChangesBetweenOptions {
  /** 'auto' (default): the native scanner when the shim loads, else fast-glob; 'portable': fast-glob always. */
  scanner?: 'auto' | 'portable';
}

/** Paths that differ between `oldDir` (null: an empty tree) and `newDir`, sorted, as `docker diff` lists them. */
export async function changesBetween(newDir: string, oldDir: string | null, opts: ChangesBetweenOptions = {}): Promise<Change[]> {
  const { changesNaive } = await import('./naive.js');
  return changesNaive(newDir, oldDir, { fallback: opts.scanner === 'portable' });
}
