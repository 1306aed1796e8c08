// Feature detection cached in the home (HOME/.features.json), so a CLI call does not pay moby's
// test mounts every time. The probes' answers depend on the kernel, the filesystem the home is on,
// whether we run in a user namespace, and our own probe code; the key holds exactly those, and a
// hit is revalidated from what init already has in hand (uname, the home's st_dev), no syscall
// beyond one small read. Any mismatch, or an unreadable file, re-runs the probes.
import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import type { Features } from './features.js';
import { packageVersion } from './version.js';

export const FEATURE_CACHE_FILE = '.features.json';

export interface FeatureCacheKey {
  kernel: string;
  dev: number;
  version: string;
  uidMap: string;
}

export function featureCacheKey(dev: number): FeatureCacheKey {
  let uidMap = '';
  try { uidMap = readFileSync('/proc/self/uid_map', 'utf8').replace(/\s+/g, ' ').trim(); } catch { /* no procfs */ }
  return { kernel: release(), dev, version: packageVersion(), uidMap };
}

function sameKey(a: FeatureCacheKey, b: unknown): boolean {
  const k = b as Partial<FeatureCacheKey> | null;
  return !!k && k.kernel === a.kernel && k.dev === a.dev && k.version === a.version && k.uidMap === a.uidMap;
}

export function readFeatureCache(home: string, key: FeatureCacheKey): Features | null {
  try {
    const saved = JSON.parse(readFileSync(join(home, FEATURE_CACHE_FILE), 'utf8')) as { key?: unknown; features?: Features };
    return sameKey(key, saved.key) && saved.features ? saved.features : null;
  } catch {
    return null;
  }
}

/** Best effort: a home we cannot write to simply probes next time. */
export function writeFeatureCache(home: string, key: FeatureCacheKey, features: Features): void {
  const file = join(home, FEATURE_CACHE_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, JSON.stringify({ key, features }) + '\n', { mode: 0o600 });
    renameSync(tmp, file);
  } catch { /* read-only home, full disk: not worth failing init for */ }
}

/** The features of `home`: from the cache when its key matches, else from `detect` (then saved unless readOnly). */
export async function cachedFeatures(home: string, dev: number, readOnly: boolean,
  detect: () => Promise<Features>): Promise<Features> {
  const key = featureCacheKey(dev);
  const hit = readFeatureCache(home, key);
  if (hit) return hit;
  const features = await detect();
  if (!readOnly) writeFeatureCache(home, key, features);
  return features;
}
