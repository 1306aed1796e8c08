// A deterministic layer for the export tests: a lower dir, then changes made THROUGH A REAL
// OVERLAY MOUNT (so the kernel writes the whiteouts — sharing one inode — the opaque directory and
// the copy-ups), then owners, modes, xattrs and times fixed in the upper dir so that two builds on
// any machine give the same tar bytes. test/fixtures/export/regenerate.mjs builds it inside a
// moby-ovl home and has Docker's own code export it (the golden tar); export.test.ts rebuilds it
// in a temp dir and checks our export against that golden.
import * as fs from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { loadShim } from '../src/native/shim.js';
import { AT_FDCWD, AT_SYMLINK_NOFOLLOW } from '../src/native/constants.js';

export interface LayerDirs {
  lower: string;
  upper: string;
  work: string;
  merged: string;
}

const S_IFCHR = 0o020000, S_IFBLK = 0o060000, S_IFSOCK = 0o140000;

/** Bytes of a given length, the same on every run (no randomness). */
export function patternBytes(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

// Capability values: revision 2 (cap_net_raw+ep) and revision 3 (same caps, namespaced rootid 1000).
export const CAPS_V2 = Buffer.from('0100000200200000000000000000000000000000', 'hex');
export const CAPS_V3 = Buffer.from('0100000300200000000000000000000000000000e8030000', 'hex');

export const LONG_DIR = 'long-' + 'd'.repeat(60) + '/' + 'e'.repeat(70);                 // 136 bytes
export const LONG_SPLIT_FILE = LONG_DIR + '/' + 'f'.repeat(40);                           // USTAR prefix split
export const LONG_BASE_FILE = 'g'.repeat(120);                                            // one component > 100: PAX path
export const LONG_LINK_TARGET = '../' + 'target/'.repeat(20) + 'end';                      // > 100: PAX linkpath
export const NON_UTF8_NAME = Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe, 0x2e, 0x62, 0x69, 0x6e]); // "bad\xff\xfe.bin"

function sh(cmd: string, args: string[]): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function write(path: string, data: string | Buffer, mode = 0o644): void {
  fs.writeFileSync(path, data, { mode });
  fs.chmodSync(path, mode);
}

/** The parent's tree: what the layer deletes, replaces and copies up. */
function buildLower(lower: string): void {
  fs.mkdirSync(join(lower, 'etc'), { recursive: true });
  write(join(lower, 'etc/hosts'), '127.0.0.1 localhost\n');
  write(join(lower, 'etc/old.conf'), 'old\n');
  write(join(lower, 'etc/keep.conf'), 'keep\n');
  write(join(lower, 'gone.txt'), 'gone\n');
  fs.mkdirSync(join(lower, 'gonedir/sub'), { recursive: true });
  write(join(lower, 'gonedir/sub/x'), 'x\n');
  fs.mkdirSync(join(lower, 'opq'));
  write(join(lower, 'opq/was1'), '1\n');
  write(join(lower, 'opq/was2'), '2\n');
  fs.mkdirSync(join(lower, 'keep'));
  write(join(lower, 'keep/k1'), 'k1\n');
}

/** Changes made through the mounted overlay, as a container would make them. */
function changeThroughMount(m: string): void {
  // Deletions: the kernel writes char 0/0 whiteouts, all links of one inode.
  fs.rmSync(join(m, 'etc/old.conf'));
  fs.rmSync(join(m, 'gone.txt'));
  fs.rmSync(join(m, 'gonedir'), { recursive: true });
  // A directory deleted and made again: opaque.
  fs.rmSync(join(m, 'opq'), { recursive: true });
  fs.mkdirSync(join(m, 'opq'));
  write(join(m, 'opq/new'), 'new\n');
  // Copy-up of a modified file (its directory comes along).
  fs.appendFileSync(join(m, 'etc/hosts'), '10.0.0.1 db\n');

  // New content of every kind. Names chosen so walk order differs from plain path order:
  // "a" < "a-b" < "a.txt" < "a0" by name, but "a/b" sorts after "a.txt" as a whole path.
  fs.mkdirSync(join(m, 'a'));
  write(join(m, 'a/b'), 'inside a\n');
  write(join(m, 'a-b'), 'dash\n');
  write(join(m, 'a.txt'), 'dot\n');
  write(join(m, 'a0'), '');
  write(join(m, 'block-512'), patternBytes(512, 1));
  write(join(m, 'data-70k'), patternBytes(70_000, 2));
  write(join(m, 'setuid'), '#!/bin/sh\n', 0o755);
  fs.chmodSync(join(m, 'setuid'), 0o4755);
  fs.mkdirSync(join(m, 'sticky'));
  fs.chmodSync(join(m, 'sticky'), 0o1777);
  fs.mkdirSync(join(m, 'setgid'));
  fs.chmodSync(join(m, 'setgid'), 0o2775);
  write(join(m, 'setgid/file'), 'g\n', 0o640);

  fs.symlinkSync('a.txt', join(m, 'link-rel'));
  fs.symlinkSync('/etc/shadow', join(m, 'link-abs'));             // hostile: points outside
  fs.symlinkSync('../../../../../../', join(m, 'link-escape'));   // hostile: a directory outside
  fs.symlinkSync(LONG_LINK_TARGET, join(m, 'link-long'));
  fs.symlinkSync('ünïcode.txt', join(m, 'link-utf8'));

  write(join(m, 'hl1'), 'linked\n');
  fs.mkdirSync(join(m, 'sub'));
  fs.linkSync(join(m, 'hl1'), join(m, 'hl2'));
  fs.linkSync(join(m, 'hl1'), join(m, 'sub/hl3'));

  sh('mkfifo', [join(m, 'fifo')]);
  const shim = loadShim();
  shim.mknodat(AT_FDCWD, join(m, 'char-1-3'), S_IFCHR | 0o666, 1, 3);
  shim.mknodat(AT_FDCWD, join(m, 'block-7-0'), S_IFBLK | 0o660, 7, 0);
  shim.mknodat(AT_FDCWD, join(m, 'socket'), S_IFSOCK | 0o755, 0, 0); // Docker skips sockets

  fs.mkdirSync(join(m, LONG_DIR), { recursive: true });
  write(join(m, LONG_SPLIT_FILE), 'split\n');
  write(join(m, LONG_BASE_FILE), 'long base\n');
  write(join(m, 'ünïcode.txt'), 'utf8 name\n');
  fs.writeFileSync(Buffer.concat([Buffer.from(m + '/'), NON_UTF8_NAME]), 'raw bytes name\n');

  write(join(m, 'caps-v2'), 'caps\n', 0o755);
  write(join(m, 'caps-v3'), 'caps3\n', 0o755);
  fs.mkdirSync(join(m, 'caps-dir'));
  write(join(m, 'owned-daemon'), 'uid 1\n');
  write(join(m, 'owned-unnamed'), 'uid 4242\n');
  write(join(m, 'owned-big'), 'uid 3000000\n');
  write(join(m, 'time-negative'), 'before 1970\n');
  write(join(m, 'time-far'), 'after 2242\n');
}

/** Every path below dir (byte strings), children before parents. */
function allPaths(dir: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (const name of fs.readdirSync(dir, { encoding: 'buffer' })) {
    const p = Buffer.concat([dir, Buffer.from('/'), name]);
    if (fs.lstatSync(p).isDirectory()) out.push(...allPaths(p));
    out.push(p);
  }
  return out;
}

/** Owners, xattrs and times that make the upper dir the same on every build. */
function fixUpper(upper: string): void {
  const shim = loadShim();
  const u = (p: string) => join(upper, p);
  fs.lchownSync(u('owned-daemon'), 1, 1);
  fs.lchownSync(u('owned-unnamed'), 4242, 4242);
  fs.lchownSync(u('owned-big'), 3_000_000, 3_000_001);
  fs.lchownSync(u('link-rel'), 1, 4242);
  fs.lchownSync(u('sticky'), 4242, 0);
  shim.lsetxattr(u('caps-v2'), 'security.capability', CAPS_V2, 0);
  shim.lsetxattr(u('caps-v3'), 'security.capability', CAPS_V3, 0);
  shim.lsetxattr(u('caps-dir'), 'security.capability', CAPS_V2, 0);
  shim.lsetxattr(u('a.txt'), 'user.note', Buffer.from('not exported by Docker'), 0);
  // chown clears setuid/setgid bits; set modes after owners.
  fs.chmodSync(u('setuid'), 0o4755);
  fs.chmodSync(u('setgid'), 0o2775);

  // Times last: every entry a distinct whole-ish second (fractions are truncated by Docker),
  // children before parents so nothing touches a parent's mtime after it was set.
  const root = Buffer.from(upper);
  const paths = allPaths(root).map((p) => p.subarray(root.length + 1));
  const order = [...paths].sort(Buffer.compare);
  for (const rel of paths) {
    const i = order.findIndex((o) => o.equals(rel));
    const t = 1_600_000_000 + i * 3_600 + 0.75;
    fs.lutimesSync(Buffer.concat([root, Buffer.from('/'), rel]), t, t);
  }
  // Node's utimes turns negative times into "now": the shim takes seconds and nanoseconds as they are.
  shim.utimensat(AT_FDCWD, u('time-negative'), -1_000_000_001, 750_000_000, -1_000_000_001, 750_000_000, AT_SYMLINK_NOFOLLOW);
  fs.lutimesSync(u('time-far'), 8_589_934_592 + 5, 8_589_934_592 + 5);
}

/** Builds lower, mounts overlay on merged, makes the changes, unmounts, fixes the upper. */
export function buildExportLayer(d: LayerDirs): void {
  for (const p of [d.lower, d.upper, d.work, d.merged]) fs.mkdirSync(p, { recursive: true });
  const oldMask = process.umask(0o022);
  try {
    buildLower(d.lower);
    sh('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${d.lower},upperdir=${d.upper},workdir=${d.work}`, d.merged]);
    try {
      changeThroughMount(d.merged);
    } finally {
      sh('umount', [d.merged]);
    }
    fixUpper(d.upper);
  } finally {
    process.umask(oldMask);
  }
}

// ---------------------------------------------------------------------------------------------
// A small, strict tar reader for the tests (independent of src/tar): USTAR prefix, PAX records as
// bytes, and a check that the archive ends with exactly two zero blocks.

export interface TarEntry {
  name: string;       // byte string (latin1)
  linkname: string;   // byte string
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  pax: Map<string, Buffer>; // the PAX records that preceded the entry
  data: Buffer;
}

function octal(b: Buffer, off: number, len: number): number {
  const s = b.toString('latin1', off, off + len).replace(/\0.*$/s, '').trim();
  return s === '' ? 0 : parseInt(s, 8);
}

function cstring(b: Buffer, off: number, len: number): string {
  const end = b.indexOf(0, off);
  return b.toString('latin1', off, end < 0 || end > off + len ? off + len : end);
}

export function parseTar(buf: Buffer): TarEntry[] {
  const out: TarEntry[] = [];
  let pos = 0;
  let pax = new Map<string, Buffer>();
  for (;;) {
    if (pos + 512 > buf.length) throw new Error(`truncated archive at ${pos}`);
    const h = buf.subarray(pos, pos + 512);
    if (h.every((c) => c === 0)) {
      if (!buf.subarray(pos, pos + 1024).every((c) => c === 0) || buf.length !== pos + 1024) {
        throw new Error(`archive does not end with exactly two zero blocks (at ${pos} of ${buf.length})`);
      }
      return out;
    }
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
    if (sum !== octal(h, 148, 8)) throw new Error(`bad checksum at ${pos}`);
    if (h.toString('latin1', 257, 265) !== 'ustar\x0000') throw new Error(`not ustar at ${pos}`);
    const typeflag = String.fromCharCode(h[156]!);
    let size = octal(h, 124, 12);
    const headerOnly = '123456'.includes(typeflag);
    const dataLen = headerOnly ? 0 : (pax.has('size') ? Number(pax.get('size')!.toString('latin1')) : size);
    const data = buf.subarray(pos + 512, pos + 512 + dataLen);
    pos += 512 + Math.ceil(dataLen / 512) * 512;
    if (typeflag === 'x') {
      let p = 0;
      while (p < data.length) {
        const sp = data.indexOf(0x20, p);
        const len = Number(data.toString('latin1', p, sp));
        const rec = data.subarray(sp + 1, p + len - 1);
        const eq = rec.indexOf(0x3d);
        pax.set(rec.toString('latin1', 0, eq), Buffer.from(rec.subarray(eq + 1)));
        p += len;
      }
      continue;
    }
    const prefix = cstring(h, 345, 155);
    const str = (key: string, fallback: string) => (pax.has(key) ? pax.get(key)!.toString('latin1') : fallback);
    const num = (key: string, fallback: number) => (pax.has(key) ? Number(pax.get(key)!.toString('latin1')) : fallback);
    if (pax.has('size')) size = dataLen;
    out.push({
      name: str('path', prefix ? prefix + '/' + cstring(h, 0, 100) : cstring(h, 0, 100)),
      linkname: str('linkpath', cstring(h, 157, 100)),
      typeflag,
      mode: octal(h, 100, 8),
      uid: num('uid', octal(h, 108, 8)),
      gid: num('gid', octal(h, 116, 8)),
      size,
      mtime: num('mtime', octal(h, 136, 12)),
      uname: str('uname', cstring(h, 265, 32)),
      gname: str('gname', cstring(h, 297, 32)),
      devmajor: octal(h, 329, 8),
      devminor: octal(h, 337, 8),
      pax,
      data: Buffer.from(data),
    });
    pax = new Map();
  }
}

/** Collects a stream into one Buffer. */
export async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}


