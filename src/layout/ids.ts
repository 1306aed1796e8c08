// Layer ids name directories in the driver home; link ids name the short symlinks in l/.
import { openSync, readSync, closeSync } from 'node:fs';
import { Overlay2Error } from '../errors.js';

/** Length of the random link names in l/: short enough that 128 of them fit a mount page (moby's idLength). */
export const LINK_ID_LENGTH = 26;

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** The kernel's random bytes, read from /dev/urandom: Web Crypto's getRandomValues loads ~10 ms of
 *  modules on first use (node:crypto more), which every CLI `create` paid. Web Crypto where there is
 *  no /dev/urandom (a bare chroot). */
function randomBytes(n: number): Uint8Array {
  const bytes = new Uint8Array(n);
  let fd: number;
  try {
    fd = openSync('/dev/urandom', 'r');
  } catch {
    return globalThis.crypto.getRandomValues(bytes);
  }
  try {
    for (let got = 0; got < n;) got += readSync(fd, bytes, got, n - got, null);
  } finally {
    closeSync(fd);
  }
  return bytes;
}

/** A fresh link id: 26 characters of RFC 4648 base32, as moby's overlayutils.GenerateID makes them. */
export function generateLinkId(): string {
  const bytes = randomBytes(Math.ceil((LINK_ID_LENGTH * 5) / 8));
  let bits = 0, value = 0, out = '';
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5 && out.length < LINK_ID_LENGTH) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out;
}

/** True for strings that look like a link id this driver or Docker wrote. */
export function isLinkId(s: string): boolean {
  return /^[A-Z2-7]{26}$/.test(s);
}

/**
 * Characters that the overlay mount data and the `lower` file treat as separators or escapes
 * ("," between options, ":" between lower dirs, "\\" escaping either), plus control characters
 * (newline ends a line of mountinfo; the rest have no business in a name). An id carrying one could
 * rewrite the mount options, e.g. "q,upperdir=.." moves the upper dir outside the store.
 */
const MOUNT_DATA_UNSAFE = /[,:\\\x00-\x1f\x7f]/;

/**
 * Throws ERR_INVALID_ID unless `id` can safely name a layer directory in the home: not empty, not
 * "." / "..", no "/", at most 255 bytes, not "l" (the link directory), not starting with "." (names
 * the driver keeps for its own bookkeeping, which Docker's ids never use), and none of the
 * characters that reach mount data as syntax (MOUNT_DATA_UNSAFE).
 */
export function validateId(id: unknown, what = 'layer id'): asserts id is string {
  const bad = (why: string): never => {
    throw new Overlay2Error('ERR_INVALID_ID', `overlay2: invalid ${what} ${JSON.stringify(id)}: ${why}`, {
      id: typeof id === 'string' ? id : String(id),
    });
  };
  if (typeof id !== 'string') bad('not a string');
  const s = id as string;
  if (s.length === 0) bad('empty');
  if (s === '.' || s === '..') bad('a dot name');
  if (s.includes('/')) bad('contains "/"');
  if (s.includes('\0')) bad('contains NUL');
  const unsafe = MOUNT_DATA_UNSAFE.exec(s);
  if (unsafe) bad(`contains ${JSON.stringify(unsafe[0])}, which overlay mount data would read as syntax`);
  if (Buffer.byteLength(s) > 255) bad('longer than 255 bytes');
  if (s === 'l') bad('"l" is the link directory');
  if (s.startsWith('.')) bad('names starting with "." are reserved');
}

/**
 * Throws ERR_INVALID_ID unless `entry` is what Docker and this driver write into a `lower` file:
 * "l/" and a link name of letters and digits. The file is read back into mount data, so a tampered
 * or foreign store must not be able to inject options through it either.
 */
export function validateLowerEntry(entry: string, id: string): void {
  if (!/^l\/[A-Za-z0-9]{1,64}$/.test(entry)) {
    throw new Overlay2Error('ERR_INVALID_ID',
      `overlay2: layer ${id} has an invalid lower entry ${JSON.stringify(entry)} (expected "l/<link id>")`, { id });
  }
}
