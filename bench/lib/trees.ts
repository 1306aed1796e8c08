// Data sets for the diff-engine benchmarks (cached in bench/.data, gitignored) and moby layers made
// from them without copying: moby's layer diff dir is bind-mounted onto the data set.
import * as fs from 'node:fs';
import { join, resolve } from 'node:path';
import { spawnSync, execFileSync } from 'node:child_process';
import { runPeer } from './peers.js';

export const DATA = resolve(process.cwd(), 'bench', '.data');

export interface DataSet {
  name: string;
  dir: string;
  note: string;
}

function ready(marker: string): boolean {
  return fs.existsSync(marker);
}

/** ≥150k entries: 300 directories of 500 small files (0–4 KiB), every 10th entry a hardlink. */
export function generatedTree(entries = 150_000): DataSet {
  const dir = join(DATA, `generated-${entries}`);
  const marker = `${dir}.complete`;
  const note = `${entries} entries: 300 dirs of small files (0–4 KiB), 10% hardlinks`;
  if (ready(marker)) return { name: 'generated', dir, note };
  fs.rmSync(dir, { recursive: true, force: true });
  console.error(`generating ${dir} (inode creation is slow here: a minute or two, once) ...`);
  const perDir = Math.ceil(entries / 300) - 1;
  let made = 0, seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) / (1 << 24);
  for (let d = 0; d < 300 && made < entries; d++) {
    const sub = join(dir, `group-${d % 10}`, `pkg-${d}`);
    fs.mkdirSync(sub, { recursive: true });
    made += d < 10 ? 2 : 1;
    for (let i = 0; i < perDir && made < entries; i++, made++) {
      const p = join(sub, `file-${i}.js`);
      if (i % 10 === 9) fs.linkSync(join(sub, `file-${i - 1}.js`), p);
      else fs.writeFileSync(p, Buffer.alloc(Math.floor(rand() * 4096), 97));
    }
  }
  fs.writeFileSync(marker, `${made}\n`);
  return { name: 'generated', dir, note };
}

/** `dirs` directories of `perDir` small files each (0–4 KiB), or with dirs = 0 one flat directory
 *  of `perDir` files: the shapes where a walk is all fstatat (one huge directory, many small ones). */
export function smallFilesTree(dirs: number, perDir: number): DataSet {
  const name = dirs === 0 ? `flat ${perDir / 1000}k files` : `${dirs} dirs × ${perDir} files`;
  const dir = join(DATA, dirs === 0 ? `flat-${perDir}` : `dirs-${dirs}x${perDir}`);
  const marker = `${dir}.complete`;
  const note = `${name} of 0–4 KiB`;
  if (ready(marker)) return { name, dir, note };
  fs.rmSync(dir, { recursive: true, force: true });
  console.error(`generating ${dir} ...`);
  let seed = 4242;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) / (1 << 24);
  const block = Buffer.alloc(4096, 97);
  for (let d = 0; d < Math.max(1, dirs); d++) {
    const sub = dirs === 0 ? dir : join(dir, `d${String(d).padStart(3, '0')}`);
    fs.mkdirSync(sub, { recursive: true });
    for (let i = 0; i < perDir; i++) fs.writeFileSync(join(sub, `f${i}`), block.subarray(0, Math.floor(rand() * 4096)));
  }
  fs.writeFileSync(marker, '');
  return { name, dir, note };
}

/** Three files of 300 MiB (fillLargeFiles): a layer where a walk has almost nothing to stat. */
export function largeFilesTree(): DataSet {
  const name = '3 × 300 MiB files';
  const dir = join(DATA, 'large-3x300');
  const marker = `${dir}.complete`;
  if (!ready(marker)) {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    fillLargeFiles(dir);
    fs.writeFileSync(marker, '');
  }
  return { name, dir, note: 'three files of 300 MiB' };
}

/** A Debian bookworm minbase from debootstrap (installed with apt when missing), or null. */
export function debianMinbase(): DataSet | null {
  const dir = join(DATA, 'debian-bookworm-minbase');
  const note = 'debootstrap --variant=minbase bookworm';
  if (fs.existsSync(join(dir, 'etc', 'debian_version')) && fs.existsSync(join(dir, 'usr', 'bin', 'apt-get'))) {
    return { name: 'debian-minbase', dir, note };
  }
  if (spawnSync('which', ['debootstrap']).status !== 0) {
    spawnSync('apt-get', ['install', '-y', '-qq', 'debootstrap'], { stdio: 'inherit' });
  }
  fs.rmSync(dir, { recursive: true, force: true });
  console.error(`debootstrap into ${dir} ...`);
  const r = spawnSync('debootstrap', ['--variant=minbase', 'bookworm', dir, 'http://deb.debian.org/debian'], { stdio: 'inherit' });
  return r.status === 0 ? { name: 'debian-minbase', dir, note } : null;
}

/** This machine's /usr, read in place (never written): a large real tree. */
export function systemUsr(): DataSet {
  return { name: 'host /usr', dir: '/usr', note: "this machine's /usr (read-only, in place)" };
}

export function countEntries(dir: string): number {
  const out = execFileSync('find', [dir, '-mindepth', '1', '-printf', '.'], { maxBuffer: 1 << 28 });
  return out.length;
}

/** A moby home whose layers' diff dirs are bind mounts of existing trees. */
export class MobyHome {
  readonly home: string;

  constructor(readonly bin: string, tag: string) {
    this.home = fs.mkdtempSync(join(DATA, `moby-${tag}-`));
  }

  run(args: string[], input?: string): { out: string; opMs: number } {
    const r = runPeer(this.bin, this.home, args, input);
    if (r.code !== 0) throw new Error(`moby-ovl ${args.join(' ')}: ${r.err}`);
    return { out: r.out, opMs: r.opMs };
  }

  diffDir(id: string): string {
    return join(this.home, id, 'diff');
  }

  /** `moby-ovl create id parent`, then (optionally) its diff dir replaced by a bind mount of `tree`. */
  create(id: string, parent: string | null, tree?: string, readOnly = false): void {
    this.run(['create', id, parent ?? '-']);
    if (tree) {
      execFileSync('mount', ['--bind', tree, this.diffDir(id)]);
      if (readOnly) execFileSync('mount', ['-o', 'remount,bind,ro', this.diffDir(id)]);
    }
  }

  private readonly adopted: Array<{ from: string; to: string }> = [];

  /** `moby-ovl create id parent`, then its (empty) diff dir replaced by `tree` itself — renamed in,
   *  renamed back by dispose(). For an upper dir: overlay wants upper and work on one mount, so a
   *  bind mount will not do. */
  createAdopting(id: string, parent: string | null, tree: string): void {
    this.run(['create', id, parent ?? '-']);
    fs.rmdirSync(this.diffDir(id));
    fs.renameSync(tree, this.diffDir(id));
    this.adopted.push({ from: this.diffDir(id), to: tree });
  }

  /** Mounts layer `id` (moby's Get), runs `edit` in the merged dir, unmounts (Put). */
  edit(id: string, edit: (merged: string) => void): void {
    const merged = this.run(['get', id]).out.trim();
    try {
      edit(merged);
    } finally {
      this.run(['put', id]);
    }
  }

  private mountsLeft(): string[] {
    return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '')
      .filter((p) => p === this.home || p.startsWith(this.home + '/')).sort((a, b) => b.length - a.length);
  }

  /** Unmounts everything under the home, then removes it — never while a bind mount of a data set
   *  (or of /usr) is still there, or rm would walk into it. */
  dispose(): void {
    spawnSync(this.bin, ['--home', this.home, 'cleanup']);
    for (const m of this.mountsLeft()) spawnSync('umount', [m]);
    for (const a of this.adopted.splice(0)) fs.renameSync(a.from, a.to);
    const left = this.mountsLeft();
    if (left.length > 0) {
      console.error(`!! not removing ${this.home}: still mounted: ${left.join(', ')}`);
      return;
    }
    fs.rmSync(this.home, { recursive: true, force: true });
  }
}

/** Up to `count` entries of `root` matching find(1) `tests`, in byte order, spread evenly. */
export function pickPaths(root: string, tests: string[], count: number, maxDepth = 4): string[] {
  const out = execFileSync('find', [root, '-mindepth', '2', '-maxdepth', String(maxDepth), ...tests, '-printf', '%P\\0'], { maxBuffer: 1 << 28 })
    .toString().split('\0').filter(Boolean).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  if (out.length <= count) return out;
  const step = out.length / count;
  return Array.from({ length: count }, (_, i) => out[Math.floor(i * step)]!);
}

/** An upper dir of `files` new files over `base`, made once: 80% in new directories, 20% spread
 *  over existing directories of the base (created in the upper the way a copy-up would). */
export function manyNewFilesUpper(base: DataSet, files = 50_000): string {
  const dir = join(DATA, `upper-${files}-${base.name.replace(/[^a-z0-9]+/gi, '-')}`);
  const marker = `${dir}.complete`;
  if (ready(marker)) return dir;
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir);
  console.error(`generating ${dir} (${files} new files, once) ...`);
  const fresh = Math.floor(files * 0.8);
  for (let i = 0; i < fresh; i++) {
    const d = join(dir, `bench-many-${String(Math.floor(i / 1000)).padStart(2, '0')}`);
    if (i % 1000 === 0) fs.mkdirSync(d);
    fs.writeFileSync(join(d, `new-${i}`), 'n');
  }
  const spread = files - fresh;
  const dirs = pickPaths(base.dir, ['-type', 'd', '-not', '-path', '*/proc*'], 200, 3);
  for (let i = 0; i < spread; i++) {
    const rel = dirs[i % dirs.length]!;
    const target = join(dir, rel);
    if (!fs.existsSync(target)) {
      // every missing component made with the lower's mode and owner, like a copy-up
      const parts = rel.split('/');
      for (let k = 1; k <= parts.length; k++) {
        const p = parts.slice(0, k).join('/');
        if (fs.existsSync(join(dir, p))) continue;
        const st = fs.lstatSync(join(base.dir, p));
        fs.mkdirSync(join(dir, p), { mode: st.mode & 0o7777 });
        fs.chmodSync(join(dir, p), st.mode & 0o7777);
        fs.chownSync(join(dir, p), st.uid, st.gid);
      }
    }
    fs.writeFileSync(join(target, `bench-spread-${i}`), 's');
  }
  fs.writeFileSync(marker, `${files}\n`);
  return dir;
}

/** 100 directories of 500 files of 1–4 KiB (pseudo-random bytes from `seed`): the small-file layer
 *  of the tar benchmarks. */
export function fillSmallFiles(dir: string, seed: number): void {
  let state = seed >>> 0;
  const rnd = () => (state = (state * 1103515245 + 12345) >>> 0);
  const block = Buffer.alloc(4096);
  for (let i = 0; i < block.length; i++) block[i] = rnd() & 0xff;
  for (let d = 0; d < 100; d++) {
    const sub = join(dir, `d${String(d).padStart(3, '0')}`);
    fs.mkdirSync(sub);
    for (let f = 0; f < 500; f++) fs.writeFileSync(join(sub, `f${String(f).padStart(3, '0')}`), block.subarray(0, 1024 + (rnd() % 3073)));
  }
}

/** Three files of 300 MiB of patterned bytes: the large-file layer of the tar benchmarks. */
export function fillLargeFiles(dir: string): void {
  const MiB = 1 << 20;
  const chunk = Buffer.alloc(4 * MiB);
  for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt32LE((i * 2654435761) >>> 0, i);
  for (let n = 0; n < 3; n++) {
    const fd = fs.openSync(join(dir, `big${n}`), 'w');
    for (let written = 0; written < 300 * MiB; written += chunk.length) fs.writeSync(fd, chunk);
    fs.closeSync(fd);
  }
}
