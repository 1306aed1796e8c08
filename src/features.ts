// What the kernel and the backing filesystem can do, found out once at init the way moby's overlay2
// Init and overlayutils find out — by trying — and reported by status().
import { promises as fsp, readFileSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { release } from 'node:os';
import { Overlay2Error, isErrno } from './errors.js';
import type { Shim } from './native/shim.js';
import { baseOptions, mountData } from './mount/data.js';
import { fsconfigOverlay, mountOverlay } from './mount/mounter.js';
import { removeTree } from './layout/remove-tree.js';
import { OPAQUE_VALUE, isOpaqueValue, opaqueXattr, redirectXattr } from './overlay-format.js';
import { FS_MAGIC, MNT_DETACH } from './native/constants.js';

export interface Features {
  backingFs: string;          // "extfs", "xfs", ... (moby's FsNames) or "<unknown>"
  backingFsMagic: number;
  supportsDType: boolean;
  indexOff: boolean;          // kernel knows overlay's index= parameter
  userxattr: boolean;         // running in a user namespace: overlay xattrs are user.overlay.*
  redirectDirOff: boolean;    // we mount with redirect_dir=off
  metacopyOff: boolean;       // we mount with metacopy=off
  usingMetacopy: boolean;     // metacopy is in effect on our mounts
  nativeDiff: boolean;        // the upper dir alone describes a layer's changes
  nativeDiffReason: string;   // why not, when not
  lowerdirPlus: boolean;      // new mount API with fsconfig("lowerdir+") works (Linux >= 6.8)
  selinuxEnabled: boolean;
  projectQuota: boolean;      // XFS project quotas usable for overlay2.size
  kernel: string;
  /** Set when the probes could not run (a full filesystem): why. Nothing above is known then. */
  unprobed?: string;
}

/** statfs magic → the name moby's graphdriver.FsNames prints. */
export const FS_NAMES: Record<number, string> = {
  [FS_MAGIC.aufs]: 'aufs',
  [FS_MAGIC.btrfs]: 'btrfs',
  [FS_MAGIC.cramfs]: 'cramfs',
  [FS_MAGIC.ecryptfs]: 'ecryptfs',
  [FS_MAGIC.ext4]: 'extfs',
  [FS_MAGIC.f2fs]: 'f2fs',
  [FS_MAGIC.gpfs]: 'gpfs',
  [FS_MAGIC.jffs2]: 'jffs2',
  [FS_MAGIC.nfs]: 'nfs',
  [FS_MAGIC.nilfs]: 'nilfs',
  [FS_MAGIC.overlay]: 'overlayfs',
  [FS_MAGIC.ramfs]: 'ramfs',
  [FS_MAGIC.squashfs]: 'squashfs',
  [FS_MAGIC.tmpfs]: 'tmpfs',
  [FS_MAGIC.vxfs]: 'vxfs',
  [FS_MAGIC.xfs]: 'xfs',
  [FS_MAGIC.zfs]: 'zfs',
  [FS_MAGIC.fuse]: 'fuseblk',
  [FS_MAGIC.cifs]: 'cifs',
  [FS_MAGIC.smb2]: 'smb2',
  [FS_MAGIC.ceph]: 'ceph',
  [FS_MAGIC.erofs]: 'erofs',
};

/** Backing filesystems overlay cannot use as upper/lower (moby's list, plus nfs). */
export function incompatibleBackingFs(magic: number, kernel: [number, number]): string | null {
  switch (magic) {
    case FS_MAGIC.overlay:
    case FS_MAGIC.aufs:
    case FS_MAGIC.ecryptfs:
    case FS_MAGIC.nfs:
    case FS_MAGIC.zfs:
      return FS_NAMES[magic];
    case FS_MAGIC.btrfs:
      // overlay on btrfs works from 4.x; the pre-4.0 kernels moby refused also lack multiple lowers
      return kernel[0] < 4 ? 'btrfs' : null;
    default:
      return null;
  }
}

export function kernelVersion(text = release()): [number, number, number] {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : [0, 0, 0];
}

/**
 * moby's SupportsOverlay, decided: the test mount is the truth; /proc/filesystems only explains a
 * failure. Returns null when overlay works, else the reason (→ ERR_NOT_SUPPORTED).
 */
export function overlayUnsupportedReason(mountError: Error | null, procFilesystems: string): string | null {
  if (!mountError) return null;
  const listed = procFilesystems.split('\n').some((l) => l.trim() === 'nodev\toverlay' || /\toverlay$/.test(l));
  return listed
    ? `overlay is listed in /proc/filesystems but a test mount failed: ${mountError.message}`
    : `'overlay' is not a supported filesystem on this host (not in /proc/filesystems): ${mountError.message}`;
}

function readParam(name: string): string | null {
  try {
    return readFileSync(`/sys/module/overlay/parameters/${name}`, 'utf8').trim();
  } catch {
    return null;
  }
}

function inUserNamespace(): boolean {
  try {
    const map = readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/);
    return !(map[0] === '0' && map[1] === '0' && map[2] === '4294967295');
  } catch {
    return false;
  }
}

function selinuxEnabled(): boolean {
  // go-selinux: enabled when selinuxfs is mounted and the process has a real context
  if (!existsSync('/sys/fs/selinux/enforce')) return false;
  try {
    return readFileSync('/proc/self/attr/current', 'utf8').replace(/\0/g, '').trim() !== 'kernel';
  } catch {
    return false;
  }
}

/** A scratch directory for probes, inside the home's own filesystem (HOME/.partial/check-*). */
async function probeDir(root: string): Promise<string> {
  await fsp.mkdir(root, { recursive: true, mode: 0o700 });
  return fsp.mkdtemp(join(root, 'check-'));
}

async function withProbe<T>(shim: Shim, root: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await probeDir(root);
  try {
    return await fn(dir);
  } finally {
    const merged = join(dir, 'merged');
    try { shim.umount2(merged, MNT_DETACH); } catch { /* not mounted */ }
    await removeTree(dir, root);
  }
}

async function mkdirs(base: string, names: string[]): Promise<void> {
  for (const n of names) await fsp.mkdir(join(base, n), { recursive: true, mode: 0o755 });
}

export interface DetectOptions {
  home: string;
  /** Where the probes make their scratch dirs: inside the home's filesystem (LayerStore.partialDir). */
  scratch: string;
  overrideKernelCheck: boolean;
}

/** Runs every probe; throws ERR_NOT_SUPPORTED / ERR_INCOMPATIBLE_FS as moby's Init does. */
export async function detectFeatures(shim: Shim, opts: DetectOptions): Promise<Features> {
  const kernel = kernelVersion();
  if (kernel[0] < 4 && !opts.overrideKernelCheck) {
    throw new Overlay2Error('ERR_NOT_SUPPORTED', `overlay2: kernel ${release()} is older than 4.0 (set overlay2.override_kernel_check=true to try anyway)`);
  }

  // Feature detection runs on the home if it exists (it may be its own mount), else on its parent.
  const testDir = existsSync(opts.home) ? opts.home : dirname(opts.home);
  const magic = shim.statfs(testDir).type >>> 0;
  const backingFs = FS_NAMES[magic] ?? '<unknown>';
  const bad = incompatibleBackingFs(magic, [kernel[0], kernel[1]]);
  if (bad) {
    throw new Overlay2Error('ERR_INCOMPATIBLE_FS', `overlay2: backing filesystem ${bad} of ${testDir} cannot hold overlay layers`, { path: testDir });
  }

  const scratch = opts.scratch;
  const indexOff = readParam('index') !== null;
  const redirectDirOff = readParam('redirect_dir') !== null;
  const metacopyOff = readParam('metacopy') !== null;
  const userxattr = inUserNamespace();
  const base = baseOptions({ indexOff, userxattr, redirectDirOff, metacopyOff });

  // 1. overlay itself, with two lower dirs (moby's SupportsOverlay(d, checkMultipleLowers=true))
  const mountError = await withProbe(shim, scratch, async (d) => {
    await mkdirs(d, ['lower1', 'lower2', 'upper', 'work', 'merged']);
    try {
      mountOverlay(shim, join(d, 'merged'),
        mountData(base, { lowers: [join(d, 'lower2'), join(d, 'lower1')], upper: join(d, 'upper'), work: join(d, 'work') }, undefined, false));
      shim.umount2(join(d, 'merged'), 0);
      return null;
    } catch (e) {
      return e as Error;
    }
  });
  let procFs = '';
  try { procFs = readFileSync('/proc/filesystems', 'utf8'); } catch { /* no procfs */ }
  const unsupported = overlayUnsupportedReason(mountError, procFs);
  if (unsupported) throw new Overlay2Error('ERR_NOT_SUPPORTED', `overlay2: ${unsupported}`, { cause: mountError });

  // 2. d_type: overlay needs readdir to report file types (xfs with ftype=0 does not)
  const supportsDType = await withProbe(shim, scratch, async (d) => {
    await fsp.writeFile(join(d, 'f'), '');
    return direntHasType(shim, d);
  });
  if (!supportsDType) {
    throw new Overlay2Error('ERR_NOT_SUPPORTED', `overlay2: the backing filesystem ${backingFs} of ${opts.home} does not support d_type (xfs needs ftype=1)`);
  }

  // 3. native diff: the opaque copy-up bug (kernels < 4.8) and directory redirects (moby's doesSupportNativeDiff)
  const nativeDiffReason = await withProbe(shim, scratch, async (d) => {
    await mkdirs(d, ['l1/d', 'l1/d1', 'l2/d', 'l3', 'work', 'merged']);
    shim.lsetxattr(join(d, 'l2', 'd'), opaqueXattr(userxattr), OPAQUE_VALUE, 0);
    mountOverlay(shim, join(d, 'merged'),
      mountData(base, { lowers: [join(d, 'l2'), join(d, 'l1')], upper: join(d, 'l3'), work: join(d, 'work') }, undefined, false));
    try {
      await fsp.writeFile(join(d, 'merged', 'd', 'f'), '');
      const opaque = shim.lgetxattr(join(d, 'l3', 'd'), opaqueXattr(userxattr));
      if (isOpaqueValue(opaque)) return 'opaque flag erroneously copied up (kernel < 4.8)';
      try {
        await fsp.rename(join(d, 'merged', 'd1'), join(d, 'merged', 'd2'));
      } catch (e) {
        if (isErrno(e, 'EXDEV')) return '';
        return `rename of a lower directory failed: ${(e as Error).message}`;
      }
      const redirect = shim.lgetxattr(join(d, 'l3', 'd2'), redirectXattr(userxattr));
      return redirect?.toString() === 'd1' ? 'the kernel writes directory redirects (redirect_dir on)' : '';
    } finally {
      shim.umount2(join(d, 'merged'), MNT_DETACH);
    }
  });

  // 4. the new mount API with lowerdir+ (no page-size limit on the lower list)
  const lowerdirPlus = await withProbe(shim, scratch, async (d) => {
    await mkdirs(d, ['lower1', 'lower2', 'merged']);
    try {
      fsconfigOverlay(shim, userxattr ? ['userxattr'] : [], [join(d, 'lower2'), join(d, 'lower1')], null, null, null);
      return true;
    } catch {
      return false;
    }
  });

  const metacopyParam = readParam('metacopy');
  return {
    backingFs,
    backingFsMagic: magic,
    supportsDType,
    indexOff,
    userxattr,
    redirectDirOff,
    metacopyOff,
    usingMetacopy: !metacopyOff && metacopyParam === 'Y',
    nativeDiff: nativeDiffReason === '',
    nativeDiffReason,
    lowerdirPlus,
    selinuxEnabled: selinuxEnabled(),
    projectQuota: false,
    kernel: release(),
  };
}

/** Whether readdir reports file types on this filesystem (fsutils.SupportsDType). */
function direntHasType(shim: Shim, dir: string): boolean {
  const types = shim.direntTypes(dir);
  return types.length > 0 && types.every((t) => t !== DT_UNKNOWN);
}

const DT_UNKNOWN = 0;
