// What an apply reports when the system says no: one Overlay2Error line naming the layer and the
// archive entry, with a documented code, the errno kept as `cause`. And the rule for cleanup after a
// failure: the original error wins; what cleanup could not undo rides along on it.
import { Overlay2Error, type Overlay2ErrorCode } from '../errors.js';

/** errno → (code, what it means here). Anything else stays the system error, annotated. */
const ERRNO_CODES: Record<string, [Overlay2ErrorCode, string]> = {
  ENOSPC: ['ERR_NO_SPACE', 'no space left on the layer\'s filesystem'],
  EDQUOT: ['ERR_NO_SPACE', 'the disk quota of the layer\'s filesystem is exhausted'],
  ENAMETOOLONG: ['ERR_BAD_ARCHIVE', 'bad archive: a name is too long for the filesystem'],
  // With every path resolved beneath the root and the archive's own contradictions refused as
  // ERR_BAD_ARCHIVE, these mean something else changed the tree while the archive was applied.
  ENOTDIR: ['ERR_LAYER_BUSY', 'the layer\'s tree changed while the archive was applied'],
  ENOTEMPTY: ['ERR_LAYER_BUSY', 'the layer\'s tree changed while the archive was applied'],
  ENOENT: ['ERR_LAYER_BUSY', 'the layer\'s tree changed while the archive was applied'],
  EBUSY: ['ERR_LAYER_BUSY', 'a path in the layer is in use (a mount point?)'],
  // An entry the kernel refuses outright, e.g. a device entry whose mode names no file type
  // (mknodat): found by the fuzzer (seeds 48 and 958).
  EINVAL: ['ERR_BAD_ARCHIVE', 'bad archive: the kernel refused an entry as invalid'],
};

/** The error an apply of `layer` reports for `e`, raised while `entry` ('' for none) was applied.
 *  Overlay2Errors gain the layer's name; known errnos become Overlay2Errors; other system errors
 *  keep their code and gain the layer and entry in their message. */
export function applyFailure(e: unknown, layer: string, entry: string): unknown {
  const where = `${layer ? `layer ${layer}` : 'the layer'}${entry ? `, entry ${JSON.stringify(entry)}` : ''}`;
  if (e instanceof Overlay2Error) {
    if (layer && e.id === undefined) {
      (e as { id?: string }).id = layer;
      e.message = `${e.message} in layer ${layer}`;
    }
    return e;
  }
  // An abort is the caller's own reason: passed through as it is (a DOMException's message cannot be set).
  if (!(e instanceof Error) || e.name === 'AbortError' || e instanceof DOMException) return e;
  const errno = (e as NodeJS.ErrnoException).code ?? '';
  // ENOENT or EINVAL before the first entry is about the call's own paths or arguments, not the archive.
  const known = (errno === 'ENOENT' || errno === 'EINVAL') && !entry ? undefined : ERRNO_CODES[errno];
  if (known) {
    return new Overlay2Error(known[0], `overlay2: ${known[1]} (${where}): ${oneLine(e.message)}`,
      { id: layer || undefined, path: entry || undefined, cause: e });
  }
  const err = e as Error & { entry?: string; id?: string };
  if (err.entry === undefined) {
    err.entry = entry;
    err.id = layer;
    err.message = `${oneLine(err.message)} (${where})`;
  }
  return err;
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, '; ');
}

/** Cleanup errors that could not be undone, attached to the error that made cleanup necessary. */
export interface WithCleanupErrors {
  cleanupErrors?: unknown[];
}

const CLEANUP_TRIES = 3;

/**
 * Runs `cleanup` after `primary` failed an operation, up to three times (a racer may still be
 * adding to what is being removed), and returns `primary`: a cleanup failure never replaces the
 * error that made cleanup necessary. If every try failed, the failures are on `primary.cleanupErrors`
 * (one per try) and reported through `warn`.
 */
export async function cleanupAfter(primary: unknown, cleanup: () => Promise<void> | void, warn?: (msg: string) => void): Promise<unknown> {
  const failures: unknown[] = [];
  for (let attempt = 1; attempt <= CLEANUP_TRIES; attempt++) {
    try {
      await cleanup();
      return primary;
    } catch (e) {
      failures.push(e);
      warn?.(`overlay2: cleanup after a failed operation failed (try ${attempt} of ${CLEANUP_TRIES}): ${(e as Error).message}`);
      if (attempt < CLEANUP_TRIES) await new Promise((r) => setTimeout(r, 10 * attempt * attempt));
    }
  }
  if (typeof primary === 'object' && primary !== null) {
    const p = primary as WithCleanupErrors;
    p.cleanupErrors = [...(p.cleanupErrors ?? []), ...failures];
  }
  return primary;
}
