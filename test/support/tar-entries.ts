// A tar stream as a sorted list of entries (names, types, modes, owners, sizes, link targets, devices,
// xattrs, content hashes; never mtimes), for comparing what two storage engines wrote: layers of
// `docker save`, `docker export`, containerd's walking differ.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, createReadStream } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { extract } from 'tar-stream';

export interface Entry {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  linkname: string | null;
  dev: string | null;
  xattrs: Record<string, string>;
  sha256: string;
}

/** Every entry of a tar stream, by name, without mtimes. */
export async function tarEntries(input: NodeJS.ReadableStream): Promise<Entry[]> {
  const out: Entry[] = [];
  const ex = extract();
  ex.on('entry', (h, stream, next) => {
    const hash = createHash('sha256');
    stream.on('data', (c) => hash.update(c as Buffer));
    stream.on('end', () => {
      const xattrs: Record<string, string> = {};
      for (const [k, v] of Object.entries((h as { pax?: Record<string, string> }).pax ?? {})) {
        if (k.startsWith('SCHILY.xattr.')) xattrs[k.slice(13)] = Buffer.from(v, 'latin1').toString('base64');
      }
      out.push({
        name: h.name.replace(/^\.\//, ''),
        type: h.type ?? 'file',
        mode: h.mode ?? 0,
        uid: h.uid ?? 0,
        gid: h.gid ?? 0,
        size: h.size ?? 0,
        linkname: h.linkname ?? null,
        dev: h.type === 'character-device' || h.type === 'block-device' ? `${h.devmajor}:${h.devminor}` : null,
        xattrs,
        sha256: hash.digest('hex'),
      });
      next();
    });
    stream.resume();
  });
  await new Promise<void>((resolve, reject) => {
    ex.on('finish', resolve);
    ex.on('error', reject);
    input.pipe(ex);
  });
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The layers of a `docker save` archive, in manifest order, each as its entries. */
export async function savedLayers(file: string): Promise<Entry[][]> {
  const dir = `${file}.d`;
  mkdirSync(dir, { recursive: true });
  const r = spawnSync('tar', ['-C', dir, '-xf', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tar -xf ${file}: ${r.stderr}`);
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { Layers: string[] }[];
  return Promise.all(manifest[0].Layers.map((l) => tarEntries(createReadStream(join(dir, l)))));
}
