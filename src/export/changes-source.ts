// Naive export source: the changed paths, read through the layer's mounted tree.
import { lstatSync, openSync, readlinkSync } from 'node:fs';
import type { Change } from '../changes/change.js';
import { loadShim, type Shim } from '../native/shim.js';
import { TYPE_REG, cleanPath } from '../tar/header.js';
import { S_IFMT, S_IFSOCK, S_IFLNK } from '../core/records.js';
import { HeaderRules, readXattrs, shimPath, type FileFacts } from './header-rules.js';
import { O_FILE, type EntrySource, type ExportEntry } from './entry.js';
import type { ExportOptions } from './options.js';
import { byteString } from '../util/byte-names.js';

interface SortedChange {
  rel: string;      // byte string, no leading "/"
  key: string;      // rel with "/" as "\0": plain string order is then walk order
  deleted: boolean;
}

export class ChangesSource implements EntrySource {
  private readonly shim: Shim;
  private readonly rules: HeaderRules;
  private readonly rootUtf8: string;
  private readonly rootBytes: string;
  private readonly list: SortedChange[];
  private index = 0;
  private lastPath = Buffer.alloc(0);

  constructor(root: string, changes: Change[], opts: ExportOptions) {
    this.shim = opts.shim ?? loadShim();
    this.rules = new HeaderRules(opts);
    this.rootUtf8 = root.replace(/\/+$/, '') || '/';
    this.rootBytes = Buffer.from(this.rootUtf8, 'utf8').toString('latin1');
    const list: SortedChange[] = [];
    for (const c of changes) {
      const clean = cleanPath('/' + byteString(c.pathBytes));
      if (clean === '/') continue;
      const rel = clean.slice(1);
      list.push({ rel, key: rel.replaceAll('/', '\0'), deleted: c.kind === 'D' });
    }
    list.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    this.list = list.filter((c, i) => i === 0 || list[i - 1]!.key !== c.key);
  }

  next(): ExportEntry | null {
    while (this.index < this.list.length) {
      const c = this.list[this.index++]!;
      if (c.deleted) return { header: this.rules.deletedHeader(c.rel), hasData: false };
      const abs = Buffer.from(this.rootBytes + '/' + c.rel, 'latin1');
      const st = lstatSync(abs, { bigint: true });
      const mode = Number(st.mode);
      const type = mode & S_IFMT;
      if (type === S_IFSOCK) continue;
      const nsec = st.mtimeNs % 1_000_000_000n;
      const rdev = st.rdev;
      const facts: FileFacts = {
        mode,
        uid: Number(st.uid),
        gid: Number(st.gid),
        size: Number(st.size),
        mtimeSec: Number((st.mtimeNs - (nsec < 0n ? nsec + 1_000_000_000n : nsec)) / 1_000_000_000n),
        nlink: Number(st.nlink),
        inodeKey: `${st.dev}:${st.ino}`,
        devmajor: Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn)),
        devminor: Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn)),
      };
      const xattrs = readXattrs(this.shim, shimPath(this.rootUtf8, c.rel), this.rules.allXattrs, undefined);
      const link = type === S_IFLNK ? readlinkSync(abs, { encoding: 'latin1' }) : '';
      const h = this.rules.header(c.rel, facts, link, xattrs);
      if (h === null) continue;
      this.lastPath = abs;
      return { header: h, hasData: h.typeflag === TYPE_REG && h.size > 0 };
    }
    return null;
  }

  whenReady(cb: (err: Error | null) => void): void {
    setImmediate(cb, null);
  }

  openData(): number {
    return openSync(this.lastPath, O_FILE);
  }

  dataPath(): string {
    return this.lastPath.toString('utf8');
  }

  close(): void {}
}
