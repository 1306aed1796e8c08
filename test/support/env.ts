// What the machine running the tests can do; tests that cannot run here are registered as skipped
// and say so loudly (a skipped test is not a pass).
import { mkdtempSync, mkdirSync, rmSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { test as uvuTest, suite } from 'uvu';

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

/** Unmounts anything left below `dir`, then removes it. */
export function removeTree(dir: string): void {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean)
    .map((l) => l.split(' ')[4]).filter((p) => p === dir || p.startsWith(dir + '/'))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) {
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
