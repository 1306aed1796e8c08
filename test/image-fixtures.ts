// Images for the load/save tests, made with real tools: layer tars by GNU tar (gnu or posix format),
// compressed by gzip/zstd, put into an OCI image layout with correct digests; skopeo turns that
// layout into a docker-archive or oci-archive; umoci repacks one. Also a tree comparison.
import * as fs from 'node:fs';
import { join, dirname } from 'node:path';
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';

export const hasSkopeo = spawnSync('skopeo', ['--version']).status === 0;
export const hasUmoci = spawnSync('umoci', ['--version']).status === 0;
export const hasZstd = spawnSync('zstd', ['--version']).status === 0;

export function sha256(b: Uint8Array): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

/** A layer: files to write (path -> content, a path ending in / is a dir, '->target' a symlink), paths to
 *  delete (whiteouts), how tar writes it and how it is compressed. */
export interface LayerSpec {
  files: Record<string, string>;
  remove?: string[];
  format?: 'gnu' | 'posix';
  compress?: 'none' | 'gzip' | 'zstd';
}

export interface BuiltLayer {
  tar: Buffer;
  blob: Buffer;
  diffId: string;
  digest: string;
  mediaType: string;
}

/** Writes the layer's own tree (with .wh. files for removals) into `dir`, then tars it. */
export function buildLayer(dir: string, spec: LayerSpec): BuiltLayer {
  fs.mkdirSync(dir, { recursive: true });
  for (const [path, content] of Object.entries(spec.files)) writeEntry(dir, path, content);
  for (const r of spec.remove ?? []) {
    const p = join(dir, dirname(r), `.wh.${r.split('/').pop()}`);
    fs.mkdirSync(dirname(p), { recursive: true });
    fs.writeFileSync(p, '');
  }
  const tar = execFileSync('tar', [`--format=${spec.format ?? 'gnu'}`, '--sort=name', '--numeric-owner', '--mtime=@1700000000', '-C', dir, '-cf', '-', '.'], { maxBuffer: 1 << 30 });
  let blob = tar;
  let mediaType = 'application/vnd.oci.image.layer.v1.tar';
  if (spec.compress === 'gzip' || spec.compress === undefined) {
    blob = execFileSync('gzip', ['-c', '-n'], { input: tar, maxBuffer: 1 << 30 });
    mediaType += '+gzip';
  } else if (spec.compress === 'zstd') {
    blob = execFileSync('zstd', ['-q', '-c'], { input: tar, maxBuffer: 1 << 30 });
    mediaType += '+zstd';
  }
  return { tar, blob, diffId: sha256(tar), digest: sha256(blob), mediaType };
}

function writeEntry(root: string, path: string, content: string): void {
  const p = join(root, path);
  if (path.endsWith('/')) {
    fs.mkdirSync(p, { recursive: true });
    return;
  }
  fs.mkdirSync(dirname(p), { recursive: true });
  if (content.startsWith('->')) fs.symlinkSync(content.slice(2), p);
  else fs.writeFileSync(p, content);
}

/** Applies the specs one after the other to `dir`: what the top layer must look like mounted. */
export function expectedTree(dir: string, specs: LayerSpec[]): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const s of specs) {
    for (const r of s.remove ?? []) fs.rmSync(join(dir, r), { recursive: true, force: true });
    for (const [path, content] of Object.entries(s.files)) {
      fs.rmSync(join(dir, path), { recursive: true, force: true });
      writeEntry(dir, path, content);
    }
  }
}

export interface BuiltImage {
  layout: string;
  layers: BuiltLayer[];
  diffIds: string[];
  configDigest: string;
  config: Buffer;
}

/** An OCI image layout at `layout` (tag "t") from layer specs; work files under `scratch`. */
export function buildOciLayout(scratch: string, layout: string, specs: LayerSpec[]): BuiltImage {
  const layers = specs.map((s, i) => buildLayer(join(scratch, `layer-src-${i}`), s));
  const blobs = join(layout, 'blobs', 'sha256');
  fs.mkdirSync(blobs, { recursive: true });
  const put = (b: Buffer): string => {
    const d = sha256(b);
    fs.writeFileSync(join(blobs, d.slice(7)), b);
    return d;
  };
  for (const l of layers) put(l.blob);
  const diffIds = layers.map((l) => l.diffId);
  const config = Buffer.from(JSON.stringify({
    architecture: goArch(), os: 'linux', config: { Env: ['PATH=/bin'] },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: layers.map((_, i) => ({ created_by: `layer ${i}` })),
  }));
  const configDigest = put(config);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.blob.length })),
  }));
  const manifestDigest = put(manifest);
  fs.writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  fs.writeFileSync(join(layout, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: manifestDigest, size: manifest.length,
      annotations: { 'org.opencontainers.image.ref.name': 't' } }],
  }));
  return { layout, layers, diffIds, configDigest, config };
}

export function goArch(): string {
  return process.arch === 'x64' ? 'amd64' : process.arch;
}

export function skopeo(...args: string[]): string {
  return execFileSync('skopeo', ['--insecure-policy', ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
}

/** path -> "kind mode [content|target]" for every entry below `root` (sorted). */
export function describeTree(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, rel: string): void => {
    for (const name of fs.readdirSync(dir).sort()) {
      const p = join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(p);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isDirectory()) {
        out.push(`${r} dir ${mode}`);
        walk(p, r);
      } else if (st.isSymbolicLink()) {
        out.push(`${r} symlink -> ${fs.readlinkSync(p)}`);
      } else if (st.isFile()) {
        out.push(`${r} file ${mode} ${st.size} ${sha256(fs.readFileSync(p)).slice(7, 19)}`);
      } else {
        out.push(`${r} other ${st.mode.toString(8)}`);
      }
    }
  };
  walk(root, '');
  return out;
}
