// What an import decides about a tree, one line per path (sorted by bytes): type and mode, owner,
// size, mtime to the nanosecond, link count, device numbers, xattrs, and a hash of the file's bytes or
// the symlink's target. Not inode numbers, atimes or ctimes: two imports of one tar that give the
// same lines wrote the same tree (tests compare lines, bench/apply.ts a digest of them).
import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import { loadShim } from '../../src/native/shim.js';

export function treeLines(root: string): string[] {
  const shim = loadShim();
  const lines: string[] = [];
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex').slice(0, 32);
  const visit = (p: Buffer, rel: string): void => {
    const st = fs.lstatSync(p, { bigint: true });
    const dir = st.isDirectory();
    let line = `${rel} mode=${st.mode.toString(8)} uid=${st.uid} gid=${st.gid} size=${dir ? '-' : st.size} mtime=${st.mtimeNs} nlink=${dir ? '-' : st.nlink} rdev=${st.rdev}`;
    for (const name of shim.llistxattr(p).sort()) line += ` ${name}=${shim.lgetxattr(p, name)?.toString('hex')}`;
    if (st.isSymbolicLink()) line += ` -> ${fs.readlinkSync(p, { encoding: 'buffer' }).toString('latin1')}`;
    else if (st.isFile()) line += ` sha=${sha(fs.readFileSync(p))}`;
    lines.push(line);
    if (dir) {
      for (const n of fs.readdirSync(p, { encoding: 'buffer' }).sort(Buffer.compare)) {
        visit(Buffer.concat([p, Buffer.from('/'), n]), `${rel}/${n.toString('latin1')}`);
      }
    }
  };
  visit(Buffer.from(root), '.');
  return lines;
}

export function treeDigest(root: string): string {
  return createHash('sha256').update(treeLines(root).join('\n')).digest('hex');
}
