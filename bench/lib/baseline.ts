// Another build of this project measured beside the current one in the same run (before/after a
// change on a shared machine, where only figures from one run compare): OVERLAY2_BASELINE=DIR, a
// built checkout (e.g. `git archive main | tar -x -C DIR`, node_modules linked, `npm run build`).
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

export const BASELINE_DIR = process.env.OVERLAY2_BASELINE ? resolve(process.env.OVERLAY2_BASELINE) : null;

/** The baseline's compiled module `rel` (a path under its dist/, e.g. 'src/size/directory-size.js'), or null. */
export async function baselineModule<T>(rel: string): Promise<T | null> {
  if (!BASELINE_DIR) return null;
  return await import(pathToFileURL(join(BASELINE_DIR, 'dist', rel)).href) as T;
}
