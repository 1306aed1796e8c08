// Thin roots for the tests: layer trees as a CVMFS repository holds them (overlay's own whiteouts and
// opaque markers), on a plain directory, a read-only bind mount or a loop-mounted read-only image.
import { mkdirSync, writeFileSync, readdirSync, lstatSync, readFileSync, readlinkSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { loadShim } from '../src/native/shim.js';
import { AT_FDCWD } from '../src/native/constants.js';
import { S_IFCHR } from '../src/core/records.js';
import { serializeManifest, type ThinLayerRef } from '../src/thin/manifest.js';
import { manifestTar } from '../src/thin/manifest-tar.js';

export type TreeSpec = Record<string, string | { whiteout: true } | { opaque: true } | { symlink: string }>;

/** Writes a layer tree: "a/b" -> file content; {whiteout} -> char 0/0; {opaque} -> dir with trusted.overlay.opaque=y. */
export function writeTree(dir: string, spec: TreeSpec): void {
  const shim = loadShim();
  mkdirSync(dir, { recursive: true });
  for (const [path, what] of Object.entries(spec)) {
    const full = join(dir, path);
    mkdirSync(join(full, '..'), { recursive: true });
    if (typeof what === 'string') writeFileSync(full, what);
    else if ('whiteout' in what) shim.mknodat(AT_FDCWD, full, S_IFCHR, 0, 0);
    else if ('opaque' in what) {
      mkdirSync(full, { recursive: true });
      shim.lsetxattr(full, 'trusted.overlay.opaque', 'y', 0);
    } else symlinkSync(what.symlink, full);
  }
}

/** A digest for a test tree (any 64 hex will do; derived from its name so it is stable). */
export function digestOf(name: string): string {
  return createHash('sha256').update(name).digest('hex');
}

/** Trees base first: writes <root>/<repo>/layers/<hex> for each, returns the manifest entries. */
export function publishTrees(root: string, repo: string, trees: Array<[name: string, spec: TreeSpec]>): ThinLayerRef[] {
  return trees.map(([name, spec]) => {
    const hex = digestOf(name);
    writeTree(join(root, repo, 'layers', hex), spec);
    return { digest: `sha256:${hex}`, repo, path: `layers/${hex}` };
  });
}

export function thinTarOf(layers: ThinLayerRef[], origin?: string): Buffer {
  return manifestTar(serializeManifest({ layers, ...(origin ? { origin } : {}) }));
}

/** The three trees of the standard test image: deletions and an opaque dir in the middle layer. */
export const STANDARD_TREES: Array<[string, TreeSpec]> = [
  ['base', { 'etc/os-release': 'base\n', 'data/x': 'x\n', 'dir/old': 'old\n', 'bin/tool': '#!/bin/sh\n' }],
  ['middle', { 'data/x': { whiteout: true }, dir: { opaque: true }, 'dir/new': 'new\n', 'etc/os-release': 'middle\n' }],
  ['top', { 'etc/motd': 'top\n', 'bin/link': { symlink: 'tool' } }],
];

/** What a root with STANDARD_TREES mounted below an empty upper shows (path -> content / 'dir' / '-> target'). */
export const STANDARD_VIEW: Record<string, string> = {
  '/bin': 'dir', '/bin/link': '-> tool', '/bin/tool': '#!/bin/sh\n', '/data': 'dir', '/dir': 'dir', '/dir/new': 'new\n',
  '/etc': 'dir', '/etc/motd': 'top\n', '/etc/os-release': 'middle\n',
};

/** A tree as path -> content / 'dir' / '-> target' / 'whiteout' (for comparing mounted views). */
export function snapshot(dir: string, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    const rel = `${prefix}/${name}`;
    const st = lstatSync(p);
    if (st.isDirectory()) {
      out[rel] = 'dir';
      Object.assign(out, snapshot(p, rel));
    } else if (st.isSymbolicLink()) out[rel] = `-> ${readlinkSync(p)}`;
    else if (st.isCharacterDevice()) out[rel] = 'whiteout';
    else out[rel] = readFileSync(p, 'utf8');
  }
  return out;
}

/** Packs `src` into a read-only image and loop-mounts it at `target`; the kind says how. */
export function mountImage(kind: 'ext4' | 'erofs' | 'squashfs', src: string, image: string, target: string): void {
  mkdirSync(target, { recursive: true });
  if (kind === 'ext4') {
    execFileSync('mkfs.ext4', ['-q', '-F', '-d', src, image, '16M'], { stdio: 'pipe' });
  } else if (kind === 'erofs') {
    execFileSync('mkfs.erofs', ['--quiet', image, src], { stdio: 'pipe' });
  } else {
    execFileSync('mksquashfs', [src, image, '-quiet', '-noappend', '-xattrs'], { stdio: 'pipe' });
  }
  execFileSync('mount', ['-o', 'loop,ro', '-t', kind, image, target], { stdio: 'pipe' });
}
