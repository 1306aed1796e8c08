// What the machine running the tests can do; tests that cannot run here are registered as skipped
// and say so loudly (a skipped test is not a pass).
import { mkdtempSync, rmSync, readFileSync, existsSync } from 'node:fs';
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

export const canMountOverlay = isRoot && overlayListed();
export const whyNotMount = !isRoot ? 'not running as root' : !overlayListed() ? 'no overlay in /proc/filesystems' : '';

type Test = typeof uvuTest;

/** `test` when overlay mounts work here, else uvu's skip — with a loud line saying why. */
export function mountTest(t: Test = uvuTest): Test {
  if (canMountOverlay) return t;
  console.error(`!! SKIPPING overlay tests: ${whyNotMount}`);
  return t.skip as unknown as Test;
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
