// cvmfsMountMethod=internal: the driver mounts each repository at <root>/<repo> on its first use by
// running `thin.mount_command REPO TARGET` — as an argv, never through a shell (the fork builds a
// `bash -c` line with the repository name in it), with a timeout — and unmounts it after its last
// user. Users are counted per repository in this process; before unmounting, `stillUsed` is asked
// whether a mount made by another process (the CLI's persistent mounts) still needs it. One repository
// at a time (a keyed lock), so two first users do not both run the command.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { Overlay2Error, isErrno } from '../errors.js';
import type { Shim } from '../native/shim.js';
import { MNT_DETACH } from '../native/constants.js';
import { readMountInfo } from '../mount/mountinfo.js';
import { KeyedMutex } from '../util/keyed-mutex.js';

/** How long the mount command may take before it is killed and the mount fails. */
export const MOUNT_COMMAND_TIMEOUT_MS = 60_000;

export interface RepoMountsOptions {
  root: string;
  command: string;
  timeoutMs?: number;
  /** whether a repository is still used by a mount this process does not count */
  stillUsed?: (repo: string) => boolean;
}

export function isMountPoint(path: string): boolean {
  return readMountInfo().some((m) => m.point === path);
}

export class RepoMounts {
  private readonly users = new Map<string, number>();
  private readonly locks = new KeyedMutex();

  constructor(private readonly shim: Shim, private readonly opts: RepoMountsOptions) {}

  /** Users this process counts for a repository. */
  count(repo: string): number {
    return this.users.get(repo) ?? 0;
  }

  /** One more user of each repository; the first mounts it unless it is mounted already. All or none. */
  async acquire(repos: readonly string[]): Promise<void> {
    const done: string[] = [];
    try {
      for (const repo of repos) {
        await this.locks.run(repo, () => this.acquireOne(repo));
        done.push(repo);
      }
    } catch (e) {
      await this.release(done).catch(() => undefined);
      throw e;
    }
  }

  private async acquireOne(repo: string): Promise<void> {
    const n = this.count(repo);
    const target = join(this.opts.root, repo);
    if (n === 0 && !isMountPoint(target)) await this.mount(repo, target);
    this.users.set(repo, n + 1);
  }

  private async mount(repo: string, target: string): Promise<void> {
    mkdirSync(target, { recursive: true, mode: 0o755 });
    const timeout = this.opts.timeoutMs ?? MOUNT_COMMAND_TIMEOUT_MS;
    // loaded on the first repository mount, not with the driver: node:child_process costs every CLI call
    // ~3 ms. require, not import(): the bundled bin runs in a vm.Script, which has no dynamic import.
    const { execFile } = createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process');
    await new Promise<void>((resolve, reject) => {
      execFile(this.opts.command, [repo, target], { timeout, killSignal: 'SIGKILL', shell: false, maxBuffer: 1 << 20 },
        (err, _stdout, stderr) => {
          if (!err) return resolve();
          const last = String(stderr).trim().split('\n').pop() ?? '';
          const why = (err as { killed?: boolean }).killed ? `timed out after ${timeout} ms` : `failed (${err.message.split('\n')[0]})`;
          reject(new Overlay2Error('ERR_THIN_ROOT_NOT_MOUNTED',
            `overlay2: mounting repository ${repo} at ${target}: ${this.opts.command} ${why}${last ? ': ' + last : ''}`, { path: target, cause: err }));
        });
    });
    if (!isMountPoint(target)) {
      throw new Overlay2Error('ERR_THIN_ROOT_NOT_MOUNTED',
        `overlay2: mounting repository ${repo}: ${this.opts.command} exited 0 but nothing is mounted at ${target}`, { path: target });
    }
  }

  /** One user fewer of each; a repository nobody uses any more is unmounted. */
  async release(repos: readonly string[]): Promise<void> {
    for (const repo of repos) {
      await this.locks.run(repo, async () => {
        const n = this.count(repo);
        if (n > 1) {
          this.users.set(repo, n - 1);
          return;
        }
        this.users.delete(repo);
        if (this.opts.stillUsed?.(repo)) return;
        this.unmount(repo);
      });
    }
  }

  private unmount(repo: string): void {
    const target = join(this.opts.root, repo);
    try {
      this.shim.umount2(target, 0);
    } catch (e) {
      if (isErrno(e, 'EINVAL') || isErrno(e, 'ENOENT')) return; // not mounted
      // busy (a process still inside): gone from the namespace now, freed when the last one leaves
      this.shim.umount2(target, MNT_DETACH);
    }
  }

  /** cleanup(): every repository mounted at <root>/<repo>, counted or not, is unmounted. */
  unmountAll(): void {
    this.users.clear();
    const prefix = this.opts.root + '/';
    for (const m of readMountInfo()) {
      const rest = m.point.startsWith(prefix) ? m.point.slice(prefix.length) : '';
      if (rest === '' || rest.includes('/')) continue;
      try { this.shim.umount2(m.point, MNT_DETACH); } catch { /* raced */ }
    }
  }
}
