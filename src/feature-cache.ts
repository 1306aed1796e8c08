// Feature detection that a full disk cannot block. The probes of features.ts need a few inodes and
// blocks in the home (HOME/.partial/check-*): with none free, init used to fail, and so nothing —
// not even remove — could free space through the driver. So:
// - What the probes found is kept in HOME/.features.json, valid while the kernel release, the home's
//   filesystem (st_dev), the overlay module parameters and the user namespace are the same; a valid
//   cache is used without probing.
// - With no valid cache and probes that fail because the filesystem is full (ENOSPC/EDQUOT, or no
//   free block or inode per statfs), init still succeeds with the features marked unprobed:
//   list, exists, status, remove, put and cleanup work; what needs the features (create, get,
//   applyDiff, diff, changes, diffSize) probes again and, while that still fails, is ERR_NO_SPACE.
import * as fs from 'node:fs';
import { join } from 'node:path';
import { release } from 'node:os';
import { detectFeatures, FS_NAMES, type DetectOptions, type Features } from './features.js';
import { isErrno } from './errors.js';
import type { Shim } from './native/shim.js';

export const FEATURE_CACHE = '.features.json';
const VERSION = 1;

interface CacheKey { version: number; kernel: string; dev: number; params: string; uidMap: string }

function cacheKey(home: string): CacheKey {
  const read = (p: string) => { try { return fs.readFileSync(p, 'utf8').trim(); } catch { return ''; } };
  const params = ['index', 'redirect_dir', 'metacopy'].map((n) => `${n}=${read(`/sys/module/overlay/parameters/${n}`)}`).join(',');
  return { version: VERSION, kernel: release(), dev: fs.statSync(home).dev, params, uidMap: read('/proc/self/uid_map').replace(/\s+/g, ' ') };
}

function readCache(home: string, key: CacheKey): Features | null {
  try {
    const cached = JSON.parse(fs.readFileSync(join(home, FEATURE_CACHE), 'utf8')) as { key: CacheKey; features: Features };
    const k = cached.key;
    if (k.version !== key.version || k.kernel !== key.kernel || k.dev !== key.dev || k.params !== key.params || k.uidMap !== key.uidMap) return null;
    return cached.features;
  } catch {
    return null;
  }
}

/** Best effort: a full disk or a read-only home only costs the next init its probes. */
export function writeFeatureCache(home: string, features: Features): void {
  if (features.unprobed) return;
  const tmp = join(home, `${FEATURE_CACHE}.${process.pid}.tmp`);
  try {
    fs.writeFileSync(tmp, JSON.stringify({ key: cacheKey(home), features }), { mode: 0o600 });
    fs.renameSync(tmp, join(home, FEATURE_CACHE));
  } catch {
    try { fs.rmSync(tmp, { force: true }); } catch { /* nothing to remove */ }
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

/** The features of `home`: cached, probed, or (on a full filesystem) unprobed. */
export async function loadFeatures(shim: Shim, opts: DetectOptions): Promise<Features> {
  const key = cacheKey(opts.home);
  const cached = readCache(opts.home, key);
  if (cached) return cached;
  try {
    const features = await detectFeatures(shim, opts);
    writeFeatureCache(opts.home, features);
    return features;
  } catch (e) {
    if (!isOutOfSpace(shim, opts.home, e)) throw e;
    return unprobedFeatures(shim, opts.home, e as Error);
  }
}

function unprobedFeatures(shim: Shim, home: string, e: Error): Features {
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
