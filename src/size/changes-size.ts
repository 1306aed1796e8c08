// The size of a change list, moby's archive.ChangesSize: for every A and C change, lstat
// root + path; non-directories add st_size, an inode with more than one link only once.
// A path that cannot be stat'ed is skipped (moby logs it and goes on).
import { lstatSync } from 'node:fs';
import type { Change } from '../changes/change.js';

export async function changesSize(root: string, changes: Change[]): Promise<number> {
  let size = 0n;
  const seen = new Set<string>();
  for (const change of changes) {
    if (change.kind === 'D') continue;
    let st;
    try {
      st = lstatSync(Buffer.concat([Buffer.from(root + '/'), change.pathBytes]), { bigint: true });
    } catch {
      continue;
    }
    if (st.isDirectory()) continue;
    if (st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`;
      if (seen.has(key)) continue;
      seen.add(key);
    }
    size += st.size;
  }
  return Number(size);
}
