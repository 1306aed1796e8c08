// Which layers are built on a layer, without reading every layer's lower file.
//
// remove() refuses a layer others are built on. The only record of that in Docker's layout is each
// child's lower file, so the check read all of them: O(layers) per remove, 0.5 s at 10,000 layers.
// This index answers it with one readdir:
//   HOME/.children/<link id>/<child id>   (an empty symlink: one syscall to make)
// lists the layers whose lower file names l/<link id> first of the links still present — their
// parent's. Every layer with a lower file has one entry. A child stays listed when its parent is
// removed with force: its entry moves to the parent's parent (it names that layer's link too), so a
// layer keeps refusing removal while anything is built on it, as the full read did.
//
// It is kept under the refs lock by every process of this project, in the same step as the change
// it follows (create's rename into place, remove's move out of sight). Anything else that changes l/
// — Docker writing the home, a version of this project before the index, a thin layer's links, the
// sweep of a dead process's dangling links — makes it stale, and a stale index is rebuilt from the
// lower files before it answers. Stale is told by l/ itself: every layer made or removed, by anyone,
// adds or takes a link there, so l/'s inode, mtime and ctime are stamped (HOME/.children/.stamp)
// after each change made here, and any other change leaves them different. (Two writers in the same
// clock tick could hide one from the other; only a writer outside this project, Docker, running at
// the same time as this one, could be that other writer, and the two never share a home at once.)
import { closeSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { isErrno } from '../errors.js';
import { removeTreeSync } from './remove-tree.js';
import { LINK_DIR, LINK_FILE, LOWER_FILE, LayerStore } from './store.js';

export const CHILDREN_DIR = '.children';
const STAMP_FILE = '.stamp';

/** The link id an `l/<id>` lower entry names, or null for any other entry (a thin tree's). */
function linkIdOf(entry: string): string | null {
  return entry.startsWith(`${LINK_DIR}/`) && !entry.includes('/', LINK_DIR.length + 1) ? entry.slice(LINK_DIR.length + 1) : null;
}

export class ChildIndex {
  private readonly root: string;

  constructor(private readonly store: LayerStore) {
    this.root = join(store.home, CHILDREN_DIR);
  }

  /** What l/ looks like now; '' when it cannot be told. */
  private linkDirStamp(): string {
    try {
      const st = statSync(this.store.linkDir(), { bigint: true });
      return `${st.ino}:${st.mtimeNs}:${st.ctimeNs}`;
    } catch {
      return '';
    }
  }

  /** Whether the index holds every child: nothing but this index's keepers changed l/ since its
   *  last stamp. Under the refs lock. */
  current(): boolean {
    let stamp: string;
    try {
      stamp = readFileSync(join(this.root, STAMP_FILE), 'utf8');
    } catch {
      return false;
    }
    const now = this.linkDirStamp();
    return now !== '' && stamp === now;
  }

  /** Records that the index is current with l/ as it is now (after a change made under the lock
   *  while it was current). A torn or failed write only makes the next check rebuild. */
  stamp(): void {
    const now = this.linkDirStamp();
    if (now === '') return;
    try {
      const fd = openSync(join(this.root, STAMP_FILE), 'w', 0o600);
      try { writeSync(fd, now); } finally { closeSync(fd); }
    } catch {
      // full, or gone: stale at the next check
    }
  }

  /** Makes the index stale: the next check rebuilds it. */
  invalidate(): void {
    rmSync(join(this.root, STAMP_FILE), { force: true });
  }

  /** Makes the index again from every layer's lower file (O(layers); after Docker or a crash). */
  rebuild(): void {
    const fresh = `${this.root}.rebuild-${process.pid}`;
    removeTreeSync(fresh, this.store.home);
    mkdirSync(fresh, { mode: 0o700 });
    const linkPresent = new Map<string, boolean>();
    const present = (link: string): boolean => {
      let known = linkPresent.get(link);
      if (known === undefined) linkPresent.set(link, known = lstatSync(this.store.linkPath(link), { throwIfNoEntry: false }) !== undefined);
      return known;
    };
    const made = new Set<string>();
    for (const e of readdirSync(this.store.home, { withFileTypes: true })) {
      if (!e.isDirectory() || !LayerStore.isLayerName(e.name)) continue;
      let lower: string;
      try {
        if (lstatSync(join(this.store.dir(e.name), LINK_FILE), { throwIfNoEntry: false }) === undefined) continue;
        lower = readFileSync(join(this.store.dir(e.name), LOWER_FILE), 'utf8').trim();
      } catch {
        continue; // a base layer
      }
      const link = lower.split(':').map(linkIdOf).find((l) => l !== null && present(l));
      if (link === undefined || link === null) continue;
      if (!made.has(link)) {
        mkdirSync(join(fresh, link), { mode: 0o700 });
        made.add(link);
      }
      symlinkSync('.', join(fresh, link, e.name));
    }
    removeTreeSync(this.root, this.store.home);
    renameSync(fresh, this.root);
    this.stamp();
  }

  /** Lists `child` (its lower entries `lower`) under its parent's link. */
  add(child: string, lower: readonly string[]): void {
    const link = lower.map(linkIdOf).find((l) => l !== null);
    if (link === undefined || link === null) return;
    const dir = join(this.root, link);
    try {
      symlinkSync('.', join(dir, child));
    } catch (e) {
      if (isErrno(e, 'EEXIST')) return;
      if (!isErrno(e, 'ENOENT')) throw e;
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      symlinkSync('.', join(dir, child));
    }
  }

  /** The layers built on the layer whose link is `linkId`: its children (those still there and
   *  still naming it) and, through theirs, every layer above them. */
  layersAbove(linkId: string): string[] {
    const entry = `${LINK_DIR}/${linkId}`;
    const found: string[] = [];
    let level = this.listed(linkId).filter((child) => this.lowerOf(child)?.includes(entry) === true);
    while (level.length > 0) {
      found.push(...level);
      const next: string[] = [];
      for (const child of level) {
        const own = this.linkOf(child);
        if (own !== null) next.push(...this.listed(own).filter((c) => this.lowerOf(c)?.includes(`${LINK_DIR}/${own}`) === true));
      }
      level = next;
    }
    return [...new Set(found)].sort();
  }

  private listed(linkId: string): string[] {
    try {
      return readdirSync(join(this.root, linkId));
    } catch (e) {
      if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) return [];
      throw e;
    }
  }

  /** A listed layer's lower entries; null when it is gone (removed by a process that died before
   *  it could take it off the list). */
  private lowerOf(id: string): string[] | null {
    try {
      return readFileSync(join(this.store.dir(id), LOWER_FILE), 'utf8').trim().split(':');
    } catch {
      return null;
    }
  }

  private linkOf(id: string): string | null {
    try {
      return readFileSync(join(this.store.dir(id), LINK_FILE), 'utf8').trim();
    } catch {
      return null;
    }
  }

  /** `id` (link `linkId`, lower entries `lower`) is gone: it leaves its parent's list, and the
   *  layers listed under its own link, if it was removed with force, move to its parent's. */
  forget(id: string, linkId: string, lower: readonly string[]): void {
    for (const l of lower) {
      const link = linkIdOf(l);
      if (link === null) continue;
      try {
        rmSync(join(this.root, link, id));
        break;
      } catch (e) {
        if (!isErrno(e, 'ENOENT') && !isErrno(e, 'ENOTDIR')) throw e;
      }
    }
    if (linkId === '') return;
    const own = join(this.root, linkId);
    let orphans: string[];
    try {
      orphans = readdirSync(own);
    } catch {
      return;
    }
    for (const child of orphans) this.add(child, lower);
    removeTreeSync(own, this.store.home);
  }
}
