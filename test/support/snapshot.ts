// Everything observable about a tree, as one string: names, types, modes, inodes, link counts,
// owners, sizes, mtimes, ctimes and contents (symlink targets). Two equal snapshots of a victim dir
// outside a layer mean nothing touched it.
import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
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

/** A digest of what a layer's content is — names, modes, file bytes, symlink targets — without
 *  inodes or times, so a layer can be compared with the tree it was imported from. */
export function contentDigest(root: string): string {
  const h = createHash('sha256');
  const walk = (d: string, rel: string): void => {
    for (const name of fs.readdirSync(d).sort()) {
      const p = join(d, name), r = `${rel}/${name}`, st = fs.lstatSync(p);
      h.update(`${r} ${st.mode}\n`);
      if (st.isDirectory()) walk(p, r);
      else if (st.isFile()) h.update(fs.readFileSync(p));
      else if (st.isSymbolicLink()) h.update(fs.readlinkSync(p));
    }
  };
  walk(root, '');
  return h.digest('hex');
}
