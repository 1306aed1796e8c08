// Feature detection, cached in the home and unblockable by a full disk.
// - What moby's probes (test mounts for overlay, d_type, native diff, lowerdir+) found is kept in
//   HOME/.features.json, so a CLI call does not pay the test mounts every time. The answers depend on
//   the kernel, the filesystem the home is on, overlay's module parameters, whether we run in a user
//   namespace, and our own probe code: the key holds exactly those, revalidated from what init has in
//   hand plus a few small reads. Any mismatch, or an unreadable file, re-runs the probes.
// - The probes need a few inodes and blocks in the home (HOME/.partial/check-*). With no valid cache
//   and probes that fail because the filesystem is full (ENOSPC/EDQUOT, or no free block or inode per
//   statfs), init still succeeds with the features marked unprobed: list, exists, status, remove, put
//   and cleanup work; what needs the features (create, get, applyDiff, diff, changes, diffSize) probes
//   again and, while that still fails, is ERR_NO_SPACE. Otherwise nothing — not even remove — could
//   free space through the driver.
import { readFileSync, writeFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import type { Features } from './features.js';
import { isErrno } from './errors.js';
import type { Shim } from './native/shim.js';
import { packageVersion } from './version.js';

export const FEATURE_CACHE_FILE = '.features.json';

export interface FeatureCacheKey {
  kernel: string;
  dev: number;
  version: string;
  params: string;
  uidMap: string;
}

function readSmall(path: string): string {
  try { return readFileSync(path, 'utf8').replace(/\s+/g, ' ').trim(); } catch { return ''; }
}

export function featureCacheKey(dev: number): FeatureCacheKey {
  const params = ['index', 'redirect_dir', 'metacopy'].map((n) => `${n}=${readSmall(`/sys/module/overlay/parameters/${n}`)}`).join(',');
  return { kernel: release(), dev, version: packageVersion(), params, uidMap: readSmall('/proc/self/uid_map') };
}

function sameKey(a: FeatureCacheKey, b: unknown): boolean {
  const k = b as Partial<FeatureCacheKey> | null;
  return !!k && k.kernel === a.kernel && k.dev === a.dev && k.version === a.version && k.params === a.params && k.uidMap === a.uidMap;
}

export function readFeatureCache(home: string, key: FeatureCacheKey): Features | null {
  try {
    const saved = JSON.parse(readFileSync(join(home, FEATURE_CACHE_FILE), 'utf8')) as { key?: unknown; features?: Features };
    return sameKey(key, saved.key) && saved.features ? saved.features : null;
  } catch {
    return null;
  }
}

/** Best effort: a read-only home or a full disk only costs the next init its probes. */
export function writeFeatureCache(home: string, features: Features, dev: number = statSync(home).dev): void {
  if (features.unprobed) return;
  const file = join(home, FEATURE_CACHE_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, JSON.stringify({ key: featureCacheKey(dev), features }) + '\n', { mode: 0o600 });
    renameSync(tmp, file);
  } catch {
    try { rmSync(tmp, { force: true }); } catch { /* nothing to remove */ }
  }
}

/** Whether `e`, raised by a probe in `home`, means the filesystem is full. */
export function isOutOfSpace(shim: Shim, home: string, e: unknown): boolean {
  if (isErrno(e, 'ENOSPC') || isErrno(e, 'EDQUOT')) return true;
  // Node's recursive mkdir reports a full filesystem as ENOENT; statfs says what it really was.
  try {
    const st = shim.statfs(home);
    return st.bavail === 0 || (st.files > 0 && st.ffree === 0);
  } catch {
    return false;
  }
}

/**
 * The features of `home`: from the cache when its key matches, else from `detect` (then saved unless
 * readOnly), else — when the probes fail on a full filesystem — unprobed.
 */
export async function cachedFeatures(shim: Shim, home: string, dev: number, readOnly: boolean,
  detect: () => Promise<Features>): Promise<Features> {
  const key = featureCacheKey(dev);
  const hit = readFeatureCache(home, key);
  if (hit) return hit;
  try {
    const features = await detect();
    if (!readOnly) writeFeatureCache(home, features, dev);
    return features;
  } catch (e) {
    if (!isOutOfSpace(shim, home, e)) throw e;
    return unprobedFeatures(shim, home, e as Error);
  }
}

async function unprobedFeatures(shim: Shim, home: string, e: Error): Promise<Features> {
  const { FS_NAMES } = await import('./features.js');
  const magic = shim.statfs(home).type >>> 0;
  const why = `no space left on ${home} to probe overlay's features (${e.message})`;
  return {
    backingFs: FS_NAMES[magic] ?? '<unknown>',
    backingFsMagic: magic,
    supportsDType: false,
    indexOff: false,
    userxattr: false,
    redirectDirOff: false,
    metacopyOff: false,
    usingMetacopy: false,
    nativeDiff: false,
    nativeDiffReason: why,
    lowerdirPlus: false,
    selinuxEnabled: false,
    projectQuota: false,
    kernel: release(),
    unprobed: why,
  };
}
