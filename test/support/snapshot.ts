// Everything observable about a tree, as one string: names, types, modes, inodes, link counts,
// owners, sizes, mtimes, ctimes and contents (symlink targets). Two equal snapshots of a victim dir
// outside a layer mean nothing touched it.
import * as fs from 'node:fs';
import { join } from 'node:path';

export function snapshot(path: string): string {
  const out: string[] = [];
  const visit = (p: string, rel: string): void => {
    const st = fs.lstatSync(p, { bigint: true });
    const content = st.isFile() ? fs.readFileSync(p).toString('base64') : st.isSymbolicLink() ? fs.readlinkSync(p) : '';
    out.push([rel, st.mode, st.ino, st.nlink, st.uid, st.gid, st.size, st.mtimeNs, st.ctimeNs, content].join(' '));
    if (st.isDirectory()) for (const n of fs.readdirSync(p).sort()) visit(join(p, n), `${rel}/${n}`);
  };
  visit(path, '.');
  return out.join('\n');
}
