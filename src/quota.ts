// Project quotas for overlay2.size / --storage-opt size, as moby's quota.Control does them: each
// limited layer directory gets its own project id (inherited by everything created below it) and a
// block limit on that project, set through a block-device node of the home's filesystem.
// XFS (mounted with prjquota/pquota) keeps limits in its own quota manager (Q_XSETQLIM); ext4
// (mkfs -O quota,project, mounted with prjquota) in the VFS quota files (Q_SETQUOTA). Docker refuses
// ext4; containers/storage supports it, and so do we.
import { openSync, closeSync, statSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Shim } from './native/shim.js';
import { O_RDONLY, O_DIRECTORY, O_CLOEXEC } from './native/constants.js';

const FS_XFLAG_PROJINHERIT = 0x200;
const S_IFBLK = 0o060000;
/** The device node Docker keeps in its overlay2 home for quotactl. */
export const BACKING_FS_DEVICE = 'backingFsBlockDev';

function withDirFd<T>(path: string, fn: (fd: number) => T): T {
  const fd = openSync(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  try {
    return fn(fd);
  } finally {
    closeSync(fd);
  }
}

/** The backing file systems (moby's names, as in Features.backingFs) whose project quotas we drive. */
export const QUOTA_FILESYSTEMS = ['xfs', 'extfs'] as const;
export type QuotaFilesystem = (typeof QUOTA_FILESYSTEMS)[number];

export function supportsProjectQuota(backingFs: string): backingFs is QuotaFilesystem {
  return (QUOTA_FILESYSTEMS as readonly string[]).includes(backingFs);
}

export class ProjectQuota {
  private nextProjectId: number;
  private readonly projectOf = new Map<string, number>();

  private scanned = false;

  private constructor(private readonly shim: Shim, readonly device: string, private readonly baseProjectId: number,
    readonly fs: QuotaFilesystem, private readonly home: string) {
    this.nextProjectId = baseProjectId + 1;
  }

  /** Project quotas on the home's filesystem (xfs or ext4), or the reason they are not available. */
  static open(shim: Shim, home: string, fs: QuotaFilesystem = 'xfs'): ProjectQuota | Error {
    const device = join(home, BACKING_FS_DEVICE);
    try {
      // Made anew each time, in case the home was copied to another device.
      const tmp = device + '.tmp';
      rmSync(tmp, { force: true });
      const dev = statSync(home).dev;
      shim.mknodat(-100, tmp, S_IFBLK | 0o600, devMajor(dev), devMinor(dev));
      renameSync(tmp, device);
      const base = withDirFd(home, (fd) => shim.fsxattrGet(fd).projid);
      const q = new ProjectQuota(shim, device, base, fs, home);
      // Fails when project quotas are off. Probed on an id with no limit and no usage, so clearing
      // its limit changes nothing (clearing base + 1, moby's probe, wiped the limit of the first
      // layer of an earlier run). The layer dirs' ids are learned only when a quota is set: every
      // read-write open (each CLI create) runs this probe, and a scan here cost an open and an ioctl per layer.
      q.setLimit(q.peekFreeProjectId(), 0);
      return q;
    } catch (e) {
      rmSync(device, { force: true });
      return new Error(whyNoProjectQuota(e), { cause: e });
    }
  }

  /** Learns the project ids earlier runs gave to layer dirs, so new ids never collide. */
  private scanExisting(): void {
    if (this.scanned) return;
    this.scanned = true;
    const home = this.home;
    for (const e of readdirSync(home, { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      const p = join(home, e.name);
      const projid = withDirFd(p, (fd) => this.shim.fsxattrGet(fd).projid);
      if (projid > 0 && projid !== this.baseProjectId) {
        this.projectOf.set(p, projid);
        if (this.nextProjectId <= projid) this.nextProjectId = projid + 1;
      }
    }
  }

  /** Limits `dir` (and everything created below it later) to `bytes`. */
  setQuota(dir: string, bytes: number): number {
    this.scanExisting();
    let projid = this.projectOf.get(dir);
    if (projid === undefined) {
      projid = this.freeProjectId();
      withDirFd(dir, (fd) => {
        const cur = this.shim.fsxattrGet(fd);
        this.shim.fsxattrSet(fd, cur.xflags | FS_XFLAG_PROJINHERIT, projid as number);
      });
      this.projectOf.set(dir, projid);
    }
    this.setLimit(projid, bytes);
    return projid;
  }

  /** The next project id with no usage and no limit on the device: another home on the same file
   *  system numbers its projects from the same base, and two layers must never share one. */
  private peekFreeProjectId(): number {
    while (this.projectInUse(this.nextProjectId)) this.nextProjectId++;
    return this.nextProjectId;
  }

  private freeProjectId(): number {
    this.scanExisting();
    const id = this.peekFreeProjectId();
    this.nextProjectId++;
    return id;
  }

  private projectInUse(projid: number): boolean {
    try {
      const q = this.shim.xfsQuotaGet(this.device, projid);
      return q.limitBytes > 0 || q.usedBytes > 0;
    } catch {
      return false; // ENOENT: no record for that id (other errors surface when the limit is set)
    }
  }

  private setLimit(projid: number, bytes: number): void {
    if (this.fs === 'xfs') this.shim.xfsQuotaSetLimit(this.device, projid, bytes);
    else this.shim.vfsQuotaSetLimit(this.device, projid, bytes);
  }

  /** The limit and usage of the project `dir` belongs to. */
  getQuota(dir: string): { limitBytes: number; usedBytes: number } {
    const projid = withDirFd(dir, (fd) => this.shim.fsxattrGet(fd).projid);
    return this.shim.xfsQuotaGet(this.device, projid);
  }

  /** Before a limited layer dir is removed: clears its project's limit, so the id is free again
   *  once its blocks are freed. */
  release(dir: string): void {
    const projid = this.projectOf.get(dir) ?? withDirFd(dir, (fd) => this.shim.fsxattrGet(fd).projid);
    this.projectOf.delete(dir);
    if (projid > 0 && projid !== this.baseProjectId) this.setLimit(projid, 0);
  }

  /** The project id recorded for a dir that moved (create builds layers under .partial/ first). */
  moved(from: string, to: string): void {
    const projid = this.projectOf.get(from);
    if (projid === undefined) return;
    this.projectOf.delete(from);
    this.projectOf.set(to, projid);
  }
}

/** Why the probe failed, in words for the one line init's error ends with (never quotactl's errno
 *  text and the device node's path: the user asked for a size, not a syscall). */
function whyNoProjectQuota(e: unknown): string {
  switch ((e as { code?: unknown })?.code) {
    case 'ESRCH': return 'the file system keeps no project quota accounting';
    case 'ENOSYS':
    case 'EOPNOTSUPP':
    case 'ENOTSUP': return 'the kernel or the file system has no project quota support';
    case 'EPERM':
    case 'EACCES': return 'not permitted to manage quotas here';
    case 'EROFS': return 'the file system is read-only';
    case 'ENOTBLK':
    case 'ENODEV': return 'the home is not on a block device quotas can be set through';
    default: {
      const code = (e as { code?: unknown })?.code;
      return typeof code === 'string' ? `the quota probe failed (${code})` : String((e as Error)?.message ?? e).split('\n')[0]!;
    }
  }
}

/** glibc's gnu_dev_major / gnu_dev_minor of a dev_t as Node reports it. */
function devMajor(dev: number): number {
  const d = BigInt(dev);
  return Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & 0xfffff000n));
}

function devMinor(dev: number): number {
  const d = BigInt(dev);
  return Number((d & 0xffn) | ((d >> 12n) & 0xffffff00n));
}
