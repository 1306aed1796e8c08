// What the machine running the tests can do; tests that cannot run here are registered as skipped
// and say so loudly (a skipped test is not a pass).
import { mkdtempSync, mkdirSync, rmSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { test as uvuTest, suite } from 'uvu';
import type { Features } from '../../src/features.js';

export const isRoot = process.getuid?.() === 0;

function overlayListed(): boolean {
  try {
    return readFileSync('/proc/filesystems', 'utf8').includes('\toverlay');
  } catch {
    return false;
  }
}

export const hasOverlay = overlayListed();
export const canMountOverlay = isRoot && hasOverlay;
export const whyNotMount = !isRoot ? 'not running as root' : !hasOverlay ? 'no overlay in /proc/filesystems' : '';

type Test = typeof uvuTest;

/**
 * The one way a test is skipped: `t` when `can`, else uvu's skip (counted as skipped) with a loud
 * `!! SKIPPING what: why` on stderr. A test that cannot run here never passes silently.
 */
export function testIf(can: boolean, what: string, why: string, t: Test = uvuTest): Test {
  if (can) return t;
  console.error(`!! SKIPPING ${what}: ${why}`);
  // A whole file may register its hooks on the returned value: those hooks belong to tests that
  // will not run, so they do nothing (a before hook that mounts would fail here); run() still runs.
  const noHook = Object.assign(() => undefined, { each: () => undefined });
  const skipping = ((name: string, fn: Parameters<Test>[1]) => t.skip(name, fn)) as unknown as Test;
  return Object.assign(skipping, { before: noHook, after: noHook, skip: t.skip, only: t.skip, run: t.run }) as Test;
}

/** `test` when overlay mounts work here, else skipped with the reason. */
export function mountTest(t: Test = uvuTest): Test {
  return testIf(canMountOverlay, 'overlay tests', whyNotMount, t);
}

export { suite };

export function tempDir(prefix = 'ovl2-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** The mount points at or below `dir` (this process's mount namespace), deepest first. */
export function mountsBelow(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean)
    .map((l) => l.split(' ')[4]).filter((p) => p === dir || p.startsWith(dir + '/'))
    .sort((a, b) => b.length - a.length);
}

/** Unmounts anything left below `dir`, then removes it. */
export function removeTree(dir: string): void {
  for (const m of mountsBelow(dir)) {
    try { execFileSync('umount', ['-l', m]); } catch { /* gone */ }
  }
  if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
}

/** A scratch root for one test file: fresh() makes a new empty dir in it; remove() unmounts anything
 *  left below it and deletes it (for test.after). */
export function scratchRoot(prefix: string): { root: string; fresh(): string; remove(): void } {
  const root = tempDir(prefix);
  let n = 0;
  return {
    root,
    fresh() {
      const d = join(root, `t${n++}`);
      mkdirSync(d);
      return d;
    },
    remove: () => removeTree(root),
  };
}

export function isMounted(path: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === path);
}

/** Runs `fn` expecting it to reject with an error whose code is `code`; returns the error. */
export async function rejectsWithCode(fn: () => Promise<unknown>, code: string): Promise<Error & { code: string }> {
  try {
    await fn();
  } catch (e) {
    const err = e as Error & { code: string };
    if (err.code !== code) throw new Error(`expected code ${code}, got ${err.code}: ${err.message}`);
    return err;
  }
  throw new Error(`expected a rejection with code ${code}, but it resolved`);
}

/** Whether a command is on PATH. */
export function have(cmd: string): boolean {
  try { execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'pipe' }); return true; } catch { return false; }
}

let probed: Promise<Features | null> | undefined;

/**
 * What the driver detects on this kernel (a throwaway home under the temp dir), for gating tests on
 * the feature itself rather than on a kernel version: `lowerdirPlus` (fsconfig "lowerdir+", Linux >= 6.8)
 * decides whether chains past 128 lowers mount. Null when overlay cannot be mounted here.
 * Use at module top level: `const features = await detectedFeatures();`.
 */
export function detectedFeatures(): Promise<Features | null> {
  probed ??= (async () => {
    if (!canMountOverlay) return null;
    const { Overlay2Driver } = await import('../../src/driver.js');
    const dir = tempDir('ovl2-probe-');
    try {
      const d = await Overlay2Driver.init(join(dir, 'home'));
      return { ...d.features };
    } finally {
      removeTree(dir);
    }
  })();
  return probed;
}

/** Why a test that needs fsconfig "lowerdir+" cannot run here ('' when it can). */
export function whyNoLowerdirPlus(f: Features | null): string {
  if (!f) return whyNotMount || 'overlay cannot be mounted here';
  return f.lowerdirPlus ? '' : 'this kernel has no fsconfig "lowerdir+" (Linux < 6.8): chains stop at 128 lowers and mount(2) answers the 6.1 errnos';
}
