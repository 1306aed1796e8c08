// File names are bytes (Linux, tar, Go's strings). Inside the host a name is a "byte string": the
// bytes decoded as latin1, one char per byte, so every name round-trips, '/' and '.' are the
// characters they look like (every path rule works unchanged on bytes), and JS string order is
// byte order. The conversions happen at the edges only: a syscall takes the bytes (osName), a
// person reads the UTF-8 decoding (displayName), and nothing in between "repairs" a name.

import { isUtf8 } from 'node:buffer';

const NON_ASCII = /[^\x00-\x7f]/;

/** The byte string of `bytes` (or of bytes[start, end)). */
export function byteString(bytes: Buffer, start = 0, end = bytes.length): string {
  return bytes.toString('latin1', start, end);
}

/** The bytes a byte string stands for. */
export function nameBytes(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}

/** The byte string of a JS (UTF-16) string: its UTF-8 bytes, as a path given by a caller is meant. */
export function utf8ByteString(s: string): string {
  return isAscii(s) ? s : Buffer.from(s, 'utf8').toString('latin1');
}

/** True when every char is < 0x80: such a byte string is the same text in every encoding. */
export function isAscii(s: string): boolean {
  return !NON_ASCII.test(s);
}

/** What a syscall takes for a byte string: the string itself when it is ASCII (no copy), else
 *  its bytes. Node's fs and the shim accept both. */
export function osName(s: string): string | Buffer {
  return isAscii(s) ? s : Buffer.from(s, 'latin1');
}

/** A byte string for messages and display: its UTF-8 decoding, each byte that is not UTF-8 shown as
 *  U+FFFD (goDisplay). Never used to name a file. */
export function displayName(s: string): string {
  return isAscii(s) ? s : goDisplay(Buffer.from(s, 'latin1'));
}

/** Bytes as text the way Go's encoding/json coerces a string (and so `docker diff` shows a path):
 *  valid UTF-8 as it is, each byte that does not start a valid sequence as U+FFFD. */
export function goDisplay(bytes: Buffer): string {
  return decodeEach(bytes, () => 0xfffd);
}

/** Bytes as a string that JSON can carry and give back exactly: valid UTF-8 as it is, each byte that
 *  does not start a valid sequence as the lone surrogate U+DC00 + byte (U+DC80..U+DCFF, Python's
 *  "surrogateescape", PEP 383). No valid UTF-8 text contains a lone surrogate, so it is reversible
 *  (unescapeBytes). */
export function escapeBytes(bytes: Buffer): string {
  return decodeEach(bytes, (b) => 0xdc00 + b);
}

/** The bytes escapeBytes was given. */
export function unescapeBytes(s: string): Buffer {
  const parts: Buffer[] = [];
  let from = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xdc80 || c > 0xdcff) continue;
    // a low surrogate that follows a high one is half of a real character (not from escapeBytes)
    if (i > 0 && s.charCodeAt(i - 1) >= 0xd800 && s.charCodeAt(i - 1) <= 0xdbff) continue;
    parts.push(Buffer.from(s.slice(from, i), 'utf8'), Buffer.of(c - 0xdc00));
    from = i + 1;
  }
  parts.push(Buffer.from(s.slice(from), 'utf8'));
  return Buffer.concat(parts);
}

/** UTF-8 decoding with Go's rule for bad input (utf8.DecodeRune: one byte at a time). */
function decodeEach(bytes: Buffer, bad: (byte: number) => number): string {
  if (isUtf8(bytes)) return bytes.toString('utf8');
  let out = '';
  let i = 0;
  let from = 0;
  const n = bytes.length;
  while (i < n) {
    const len = validSequence(bytes, i, n);
    if (len > 0) {
      i += len;
      continue;
    }
    out += bytes.toString('utf8', from, i) + String.fromCharCode(bad(bytes[i]!));
    from = ++i;
  }
  return out + bytes.toString('utf8', from, n);
}

/** The length of the valid UTF-8 sequence at bytes[i], or 0 (Go's and Unicode's rules: no
 *  overlong forms, no surrogates, nothing above U+10FFFF). */
function validSequence(b: Buffer, i: number, n: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf) => i + k < n && b[i + k]! >= lo && b[i + k]! <= hi;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c === 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  if ((c >= 0xe1 && c <= 0xec) || c === 0xee || c === 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (c === 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
  if (c === 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xf1 && c <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c === 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}
