// Mounts one layer's overlay. Three ways, tried in moby's order of preference:
//  absolute  mount(2) with absolute paths, when the data fits a page (moby's normal path);
//  relative  mount(2) with "l/<link>" paths from a native thread that unshare(CLONE_FS)s and chdirs
//            to the home (moby re-execs a child for this; a thread costs microseconds);
//  fsconfig  the new mount API, one fsconfig("lowerdir+") per layer: no page limit at all, so chains
//            reach the kernel's own limit of 500 layers (Linux >= 6.8).
import { closeSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { Overlay2Error } from '../errors.js';
import type { Shim } from '../native/shim.js';
import {
  AT_FDCWD, FSCONFIG_CMD_CREATE, FSCONFIG_SET_FLAG, FSCONFIG_SET_STRING, FSMOUNT_CLOEXEC,
  FSOPEN_CLOEXEC, MOVE_MOUNT_F_EMPTY_PATH,
} from '../native/constants.js';
import type { LayerMountPaths } from '../layout/store.js';
import { baseOptions, mountData, pathFitsMountData, type BaseOptionChoices } from './data.js';

/** What a mount needs of the probed features (src/features.ts). */
export interface MountFeatures extends BaseOptionChoices {
  selinuxEnabled: boolean;
  lowerdirPlus: boolean;
}

export type MountMethod = 'absolute' | 'relative' | 'fsconfig';
export type MountStrategy = 'auto' | MountMethod;

export interface LayerMountRequest {
  id: string;
  /** the layer's dirs (LayerStore.mountPaths) */
  paths: LayerMountPaths;
  /** the layer's lower entries as in its lower file ("l/<link id>"), parent first */
  lowerEntries: string[];
  readonly: boolean;
  mountLabel?: string;
}

/** The kernel refuses mount data of a page or more (moby compares against pageSize - 1). */
const PAGE_SIZE = 4096;

/** Mounts the layer at its merged dir; returns the method that worked. The usual way (absolute) runs
 *  on the libuv pool: overlay's mount makes its work dir on the upper filesystem, which waits while the
 *  journal commits another layer's sync — a service's other calls must not wait with it. */
export async function mountLayer(shim: Shim, features: MountFeatures, req: LayerMountRequest, strategy: MountStrategy = 'auto'): Promise<MountMethod> {
  const { id, paths } = req;
  const { home, diff, work, merged } = paths;
  const base = baseOptions(features);

  const absLowers = req.lowerEntries.map((l) => join(home, l));
  const abs = req.readonly
    ? mountData(base, { lowers: [diff, ...absLowers] }, req.mountLabel, features.selinuxEnabled)
    : mountData(base, { lowers: absLowers, upper: diff, work }, req.mountLabel, features.selinuxEnabled);
  const rel = req.readonly
    ? mountData(base, { lowers: [paths.relative.diff, ...req.lowerEntries] }, req.mountLabel, features.selinuxEnabled)
    : mountData(base, { lowers: req.lowerEntries, upper: paths.relative.diff, work: paths.relative.work }, req.mountLabel, features.selinuxEnabled);

  // Ids and lower entries are validated where they enter; checked again here because this is where
  // a separator would become syntax.
  const legacyOk = pathFitsMountData(home) && pathFitsMountData(id) && req.lowerEntries.every(pathFitsMountData);
  const choose = (): MountMethod => {
    if (strategy !== 'auto') return strategy;
    if (legacyOk && abs.length < PAGE_SIZE) return 'absolute';
    if (legacyOk && rel.length < PAGE_SIZE) return 'relative';
    if (features.lowerdirPlus) return 'fsconfig';
    throw new Overlay2Error('ERR_MAX_DEPTH',
      `overlay2: cannot mount layer ${id}: ${req.lowerEntries.length} lower layers do not fit one page of mount data and this kernel has no fsconfig lowerdir+`,
      { id });
  };
  const method = choose();
  try {
    switch (method) {
      case 'absolute':
        await new Promise<void>((resolve, reject) => shim.mountAsync('overlay', merged, 'overlay', 0, abs, (e) => (e ? reject(e) : resolve())));
        break;
      case 'relative':
        if (rel.length >= PAGE_SIZE) {
          throw new Overlay2Error('ERR_MAX_DEPTH', `overlay2: cannot mount layer ${id}: mount data too large ${rel.length}`, { id });
        }
        shim.mountAt(home, 'overlay', paths.relative.merged, 'overlay', 0, rel);
        break;
      case 'fsconfig':
        fsconfigOverlay(shim, base, req.readonly ? [diff, ...absLowers] : absLowers,
          req.readonly ? null : { upper: diff, work }, merged, features.selinuxEnabled && req.mountLabel ? req.mountLabel : null);
        break;
    }
  } catch (e) {
    if (e instanceof Overlay2Error) throw e;
    throw new Overlay2Error('ERR_MOUNT_FAILED',
      `overlay2: error creating overlay mount of ${id} at ${merged} (${method}, ${req.lowerEntries.length} lowers): ${(e as Error).message}`,
      { id, path: merged, cause: e });
  }
  return method;
}

/** mount(2) of an overlay with `data` (mountData) at `target`. */
export function mountOverlay(shim: Shim, target: string, data: string): void {
  shim.mount('overlay', target, 'overlay', 0, data);
}

/** An overlay built with the new mount API — one fsconfig per option and per lower ("lowerdir+") —
 *  attached at `target`, or (target null) only created: what the lowerdir+ feature probe asks. */
export function fsconfigOverlay(shim: Shim, base: string[], lowers: string[],
  rw: { upper: string; work: string } | null, target: string | null, context: string | null): void {
  let fsfd = -1, mfd = -1;
  try {
    fsfd = shim.fsopen('overlay', FSOPEN_CLOEXEC);
    const set = (key: string, value: string) => {
      try {
        shim.fsconfig(fsfd, FSCONFIG_SET_STRING, key, value, 0);
      } catch (e) {
        throw withKernelLog(e as Error, fsfd, `${key}=${value}`);
      }
    };
    for (const opt of base) {
      const eq = opt.indexOf('=');
      if (eq < 0) shim.fsconfig(fsfd, FSCONFIG_SET_FLAG, opt, null, 0);
      else set(opt.slice(0, eq), opt.slice(eq + 1));
    }
    for (const l of lowers) set('lowerdir+', l);
    if (rw) {
      set('upperdir', rw.upper);
      set('workdir', rw.work);
    }
    if (context !== null) set('context', context);
    try {
      shim.fsconfig(fsfd, FSCONFIG_CMD_CREATE, null, null, 0);
    } catch (e) {
      throw withKernelLog(e as Error, fsfd, 'create');
    }
    mfd = shim.fsmount(fsfd, FSMOUNT_CLOEXEC, 0);
    if (target !== null) shim.moveMount(mfd, '', AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH);
  } finally {
    if (mfd >= 0) closeSync(mfd);
    if (fsfd >= 0) closeSync(fsfd);
  }
}

/** The kernel explains fsconfig failures in the fs context's log, readable from the fd. */
function withKernelLog(e: Error, fsfd: number, what: string): Error {
  const lines: string[] = [];
  const buf = Buffer.alloc(1024);
  for (let i = 0; i < 8; i++) {
    try {
      const n = readSync(fsfd, buf, 0, buf.length, null);
      if (n <= 0) break;
      lines.push(buf.subarray(0, n).toString().trim());
    } catch {
      break;
    }
  }
  e.message += ` (fsconfig ${what}${lines.length ? ': ' + lines.join('; ') : ''})`;
  return e;
}
