// The Docker end-to-end scenario shared by the tests that run a real dockerd on this driver (the
// plugin beside dockerd, the managed plugin): the base image's root filesystem, the changes a
// container makes to it, and the comparisons with Docker's built-in overlay2 — tar entries by name
// without mtimes, a `docker save` archive's layers, `docker diff` lines as sets.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, createReadStream, symlinkSync, linkSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { extract } from 'tar-stream';
import { loadShim } from '../../src/native/shim.js';
import { writeBusyboxRoot } from '../../bench/lib/dockerd.js';

export const APPLETS = ['sh', 'cat', 'ls', 'rm', 'mkdir', 'chmod', 'chown', 'ln', 'mknod', 'mkfifo', 'mv', 'dd', 'touch',
  'echo', 'true', 'stat', 'sort', 'find'];
export const LONG = 'a-directory-name-long-enough-that-its-path-needs-a-pax-or-gnu-long-name-header-in-any-tar-archive-xyz';

/** The base image as a layer tar in `dir`: a busybox root with files of every kind the changes touch
 *  (a hardlink, a symlink, a fifo, a user xattr); and a file carrying security.capability to `docker
 *  cp` in (the one xattr Docker's exports keep). */
export function writeBaseImage(dir: string): { baseTar: string; capFile: string } {
  const rootfs = join(dir, 'rootfs');
  writeBusyboxRoot(rootfs, APPLETS);
  mkdirSync(join(rootfs, 'd', 'gone', 'inner'), { recursive: true });
  mkdirSync(join(rootfs, 'd', 'sub'), { recursive: true });
  mkdirSync(join(rootfs, 'd', 'old'), { recursive: true });
  writeFileSync(join(rootfs, 'd', 'keep'), 'keep\n');
  writeFileSync(join(rootfs, 'd', 'gone', 'inner', 'x'), 'x\n');
  writeFileSync(join(rootfs, 'd', 'sub', 'f'), 'old f\n');
  writeFileSync(join(rootfs, 'd', 'old', 'y'), 'y\n');
  writeFileSync(join(rootfs, 'd', 'a'), 'hardlinked\n');
  writeFileSync(join(rootfs, 'etc', 'motd'), 'hello\n');
  writeFileSync(join(rootfs, 'bin', 'tool'), '#!/bin/sh\necho tool\n', { mode: 0o755 });
  symlinkSync('sub/f', join(rootfs, 'd', 'lnk'));
  linkSync(join(rootfs, 'd', 'a'), join(rootfs, 'd', 'a2'));
  spawnSync('mkfifo', [join(rootfs, 'd', 'fifo')]);
  loadShim().lsetxattr(join(rootfs, 'etc', 'motd'), 'user.origin', 'base-image', 0);
  const baseTar = join(dir, 'base.tar');
  const tar = spawnSync('tar', ['--numeric-owner', '--xattrs', '--xattrs-include=*', '-C', rootfs, '-cf', baseTar, '.'], { encoding: 'utf8' });
  if (tar.status !== 0) throw new Error(`tar: ${tar.stderr}`);
  const capFile = join(dir, 'capfile');
  writeFileSync(capFile, 'capable\n', { mode: 0o755 });
  const cap = Buffer.alloc(20);
  cap.writeUInt32LE(0x02000001, 0); // VFS_CAP_REVISION_2
  cap.writeUInt32LE(1 << 13, 4);    // cap_net_raw
  loadShim().lsetxattr(capFile, 'security.capability', cap, 0);
  return { baseTar, capFile };
}

/** The script of `docker run`: deletes, replaces a dir, chmod/chown, hardlinks, mknod, fifo, rename, long names. */
export const CHANGES = [
  'set -e',
  'rm /d/keep',
  'rm -rf /d/gone',
  'rm -rf /d/sub && mkdir /d/sub && echo new > /d/sub/g',
  'chmod 4711 /bin/tool',
  'chmod 700 /d/old',
  'chown 12:34 /etc/motd',
  'chown -h 5:6 /d/lnk',
  'ln /d/a /d/a-hard',
  'echo two > /d/n1 && ln /d/n1 /d/n2',
  'mknod /d/null c 1 3',
  'mkfifo /d/fifo2',
  'ln -s /d/sub/g /d/lnk2',
  'echo more >> /etc/motd',
  'mv /d/old /d/renamed',
  `mkdir -p /d/${LONG}/deep && echo deep > /d/${LONG}/deep/file`,
  'dd if=/dev/zero of=/d/big bs=65536 count=16 2>/dev/null',
  'touch /d/empty && mkdir /d/emptydir',
].join('\n');

/** What a container of the committed image prints: contents, then each /d entry's type, mode, owner, size, links. */
export const SHOW_COMMITTED = 'cat /d/sub/g /d/n2 /d/a-hard /etc/motd; cd /d && stat -c "%n %F %a %u:%g %s %h" * | sort; ls /d/sub';

/** dockerd prints `docker diff` in Go map order (built-in overlay2: random from run to run): compare as sets. */
export function sortedLines(text: string): string[] {
  return text.split('\n').filter(Boolean).sort();
}

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

/** The entries of a file's tar. */
export function fileEntries(file: string): Promise<Entry[]> {
  return tarEntries(createReadStream(file));
}
