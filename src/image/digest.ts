// Content digests as images name them ("sha256:<64 hex>"), and Docker's chain IDs.
import { createHash } from 'node:crypto';
import { Overlay2Error } from '../errors.js';

const DIGEST = /^sha256:[0-9a-f]{64}$/;

export function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** The digest, checked: only sha256 is supported (as Docker). */
export function parseDigest(d: unknown, what: string): string {
  if (typeof d !== 'string' || !DIGEST.test(d)) {
    throw new Overlay2Error('ERR_BAD_IMAGE', `overlay2: bad image: ${what} has digest ${JSON.stringify(d)}, expected sha256:<64 hex>`);
  }
  return d;
}

export function hexOf(digest: string): string {
  return digest.slice('sha256:'.length);
}

/** Docker's chain IDs: chainID(L0) = diffID(L0), chainID(Ln) = sha256(chainID(Ln-1) + " " + diffID(Ln)). */
export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) out.push(out.length === 0 ? d : sha256(`${out[out.length - 1]} ${d}`));
  return out;
}

/** Passes `chunks` through, and at their end throws ERR_DIGEST_MISMATCH unless they hash to `digest`. */
export async function* verified(chunks: AsyncIterable<Buffer>, digest: string, what: string): AsyncGenerator<Buffer> {
  const h = createHash('sha256');
  for await (const c of chunks) {
    h.update(c);
    yield c;
  }
  const got = `sha256:${h.digest('hex')}`;
  if (got !== digest) throw mismatch(what, got, digest);
}

export function mismatch(what: string, got: string, want: string): Overlay2Error {
  return new Overlay2Error('ERR_DIGEST_MISMATCH', `overlay2: digest mismatch: ${what} is ${got}, the image says ${want}`);
}

export function badImage(why: string): Overlay2Error {
  return new Overlay2Error('ERR_BAD_IMAGE', `overlay2: bad image: ${why}`);
}
