// The end-to-end tests' image: a busybox-static root with the cases a storage engine gets wrong
// (hardlinks, a symlink, a fifo, an xattr, nested dirs), a second layer made by running CHANGES on it
// (whiteouts, an opaque dir, chmod/chown, hardlinks, a device, long names) and, for the containerd tests,
// a third image whose one layer adds ~5,000 files. Layers are made by a real dockerd on its built-in
// overlay2 driver, so their whiteouts and opaque markers are Docker's own.
import { mkdirSync, writeFileSync, symlinkSync, linkSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { loadShim } from '../../src/native/shim.js';
import { startDockerd, writeBusyboxRoot } from '../../bench/lib/dockerd.js';

export const APPLETS = ['sh', 'cat', 'ls', 'rm', 'mkdir', 'chmod', 'chown', 'ln', 'mknod', 'mkfifo', 'mv', 'dd', 'touch',
  'echo', 'true', 'stat', 'sort', 'find'];
export const LONG = 'a-directory-name-long-enough-that-its-path-needs-a-pax-or-gnu-long-name-header-in-any-tar-archive-xyz';

/** Run in a container on the base root: deletes, replaces a dir, chmod/chown, hardlinks, mknod, fifo, rename, long names. */
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

/** Run in a container on the base root: one layer of 50 dirs × 100 small files. */
export const MANY_FILES = [
  'set -e',
  'mkdir /many',
  'i=0; while [ $i -lt 50 ]; do mkdir /many/d$i; j=0; while [ $j -lt 100 ]; do echo "$i.$j" > /many/d$i/f$j; j=$((j+1)); done; i=$((i+1)); done',
].join('\n');
export const MANY_FILES_COUNT = 5000;

/** Writes the base root into `dir/rootfs` and tars it (numeric owners, xattrs) to `dir/base.tar`; returns the tar. */
export function writeBaseRootTar(dir: string, applets: readonly string[] = APPLETS): string {
  const rootfs = join(dir, 'rootfs');
  writeBusyboxRoot(rootfs, applets);
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
  return baseTar;
}

export interface TestImages {
  /** A `docker save` archive holding the images (the base layer once). */
  archive: string;
  /** A `docker save` archive of the changed image alone (two layers, a few dozen files). */
  changedArchive: string;
  /** Repository tags as dockerd wrote them: base layer + CHANGES; base layer + MANY_FILES (when built). */
  changed: string;
  big: string;
}

/**
 * Builds the test images with a private dockerd on its built-in overlay2 (docker import, run, commit,
 * save) in `dir`, and stops that dockerd again. `applets`: the busybox applets the tests run. `big: false`
 * leaves out the 5,000-file image (most of the ~15 s this takes on a slow disk).
 */
export async function buildTestImages(dir: string, applets: readonly string[] = APPLETS, opts: { big?: boolean } = {}): Promise<TestImages> {
  const big = opts.big ?? true;
  mkdirSync(dir, { recursive: true });
  const baseTar = writeBaseRootTar(dir, applets);
  const images = { archive: join(dir, 'images.tar'), changedArchive: join(dir, 'changed.tar'), changed: 'ovl2-e2e:changed', big: 'ovl2-e2e:big' };
  const dockerd = await startDockerd(join(dir, 'dockerd'), 'overlay2');
  try {
    await dockerd.docker(['import', '--change', 'ENV PATH=/bin', baseTar, 'ovl2-e2e:base']);
    await Promise.all([
      dockerd.docker(['run', '--name', 'changed', 'ovl2-e2e:base', 'sh', '-c', CHANGES])
        .then(() => dockerd.docker(['commit', 'changed', images.changed])),
      big && dockerd.docker(['run', '--name', 'big', 'ovl2-e2e:base', 'sh', '-c', MANY_FILES])
        .then(() => dockerd.docker(['commit', 'big', images.big])),
    ]);
    await Promise.all([
      dockerd.docker(['save', '-o', images.archive, images.changed, ...(big ? [images.big] : [])]),
      dockerd.docker(['save', '-o', images.changedArchive, images.changed]),
    ]);
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${dockerd.log().slice(-2000)}`);
  } finally {
    await dockerd.stop();
  }
  return images;
}
