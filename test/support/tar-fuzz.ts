// A seeded fuzzer over the tar reader and extractor (applyLayer: decompression, tar parsing, PAX/GNU
// records, whiteouts, links): valid layers mutated — header fields, sizes, checksums, PAX records,
// truncation, duplicated blocks, gzip/zstd framing. The only acceptable outcomes are success or an
// Overlay2Error with a documented code; anything else, a hang, or a write outside the layer (a victim
// dir beside it is checked) is a finding. Used by test/fuzz.test.ts (bounded) and bench/fuzz.ts.
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { execFileSync } from 'node:child_process';
import { applyLayer } from '../../src/apply/apply.js';
import { IdMappings } from '../../src/idmap.js';
import { Overlay2Error } from '../../src/errors.js';
import { rng } from './rng.js';
import { dir, file, symlink, hardlink, pax, gnuLong, tarOf, member } from '../apply-tar.js';
import { snapshot } from './snapshot.js';

/** Codes an import may end with (README, "Error codes"). ERR_NO_SPACE: an xattr value larger than
 *  the file system stores (ENOSPC from fsetxattr, fixture seed-1014). */
export const DOCUMENTED_CODES = new Set(['ERR_BAD_ARCHIVE', 'ERR_UNSAFE_ARCHIVE', 'ERR_NO_SPACE']);

/**
 * Raw errnos an import may still end with unwrapped: none. The extractor maps every errno an archive
 * can provoke to an Overlay2Error naming the layer and entry (src/apply/errors.ts); one that
 * slips through is a finding.
 */
export const KNOWN_RAW_ERRNOS = new Set<string>();

export interface FuzzTotals {
  cases: number;
  ok: number;
  refused: Record<string, number>;
  knownRaw: Record<string, number>;
  findings: Array<{ seed: number; kind: string; detail: string; input: Buffer }>;
}

/** The valid layers the mutations start from; symlinks and links aim at the victim beside the layer. */
export function seedLayers(): Buffer[] {
  const long = 'long-'.repeat(30);
  return [
    tarOf(dir('etc/'), file('etc/hosts', '127.0.0.1 localhost\n'), file('etc/empty'), symlink('etc/link', 'hosts'),
      hardlink('etc/hard', 'etc/hosts'), dir('usr/bin/'), file('usr/bin/tool', Buffer.alloc(1500, 7), { mode: 0o755 })),
    tarOf(dir('a/'), file('a/.wh.gone'), dir('b/'), file('b/.wh..wh..opq'), file('b/new', 'n'), file('.wh.top')),
    tarOf(pax([['path', `pax/${long}`], ['SCHILY.xattr.user.test', 'v'], ['mtime', '1600000000.5']]), file('placeholder', 'p'),
      gnuLong('L', `gnu/${long}`), file('short', 'g'), gnuLong('K', `../../victim/${long}`), symlink('gnulink', 'x')),
    tarOf(symlink('up', '../victim'), file('up-file', 'x'), symlink('abs', '/etc'), hardlink('hl', 'up-file'),
      dir('d/'), symlink('d/loop', '.'), file('d/f', 'f')),
    tarOf(member({ name: 'dev/null', type: '3', devmajor: 1, devminor: 3, mode: 0o666 }),
      member({ name: 'fifo', type: '6', mode: 0o644 }), file('sparse-ish', Buffer.alloc(4096)), pax([['size', '3']]), file('sz', 'abc')),
  ];
}

type Mutator = (b: Buffer, r: () => number) => Buffer;
const int = (r: () => number, n: number): number => Math.floor(r() * n);

function headerOffsets(b: Buffer): number[] {
  const out: number[] = [];
  for (let off = 0; off + 512 <= b.length && out.length < 64;) {
    const blk = b.subarray(off, off + 512);
    if (blk.every((x) => x === 0)) break;
    out.push(off);
    const size = parseInt(blk.toString('latin1', 124, 136).replace(/\0.*$/, '').trim() || '0', 8) || 0;
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out.length ? out : [0];
}

function fixChecksum(b: Buffer, off: number): void {
  if (off + 512 > b.length) return;
  b.fill(0x20, off + 148, off + 156);
  let sum = 0;
  for (let i = off; i < off + 512; i++) sum += b[i]!;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', off + 148, 8, 'latin1');
}

const FIELDS: Array<[number, number]> = [[0, 100], [100, 8], [108, 8], [116, 8], [124, 12], [136, 12], [156, 1], [157, 100], [257, 6], [329, 8], [337, 8], [345, 155]];
const HOSTILE = ['../victim/x', '/victim', '..', '.', '', 'a/../../victim', '\0', '77777777777', '-1', '\x80\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff',
  '99999999999', 'ustar', '.wh..wh..opq', '.wh...', 'etc/hosts', 'x'.repeat(100), '0', '1', '2', '5', '7', 'L', 'K', 'x', 'g', 'S', 'V'];

const MUTATORS: Array<[string, Mutator]> = [
  ['byte-flips', (b, r) => { const o = Buffer.from(b); for (let i = 0, n = 1 + int(r, 8); i < n; i++) o[int(r, o.length)] ^= 1 << int(r, 8); return o; }],
  ['header-field', (b, r) => {
    const o = Buffer.from(b); const offs = headerOffsets(o); const h = offs[int(r, offs.length)]!;
    if (h + 512 > o.length) return o;
    const [fo, fl] = FIELDS[int(r, FIELDS.length)]!;
    const v = r() < 0.5 ? HOSTILE[int(r, HOSTILE.length)]! : String(int(r, 1 << 30).toString(8));
    o.fill(0, h + fo, h + fo + fl); o.write(v, h + fo, fl, 'latin1');
    if (r() < 0.85) fixChecksum(o, h);
    return o;
  }],
  ['size-field', (b, r) => {
    const o = Buffer.from(b); const offs = headerOffsets(o); const h = offs[int(r, offs.length)]!;
    if (h + 512 > o.length) return o;
    const sizes = [0, 1, 511, 512, 513, 1 << 20, 0o77777777777, int(r, 5000)];
    o.write(sizes[int(r, sizes.length)]!.toString(8).padStart(11, '0') + '\0', h + 124, 12, 'latin1');
    fixChecksum(o, h);
    return o;
  }],
  ['checksum', (b, r) => { const o = Buffer.from(b); const offs = headerOffsets(o); const h = offs[int(r, offs.length)]!; if (h + 512 > o.length) return o; o.write(int(r, 0o777777).toString(8).padStart(6, '0') + '\0 ', h + 148, 8, 'latin1'); return o; }],
  ['truncate', (b, r) => b.subarray(0, int(r, b.length))],
  ['duplicate-blocks', (b, r) => {
    const blocks = Math.floor(b.length / 512); const s = int(r, blocks); const n = 1 + int(r, 3);
    return Buffer.concat([b.subarray(0, (s + n) * 512), b.subarray(s * 512, Math.min(blocks, s + n) * 512), b.subarray((s + n) * 512)]);
  }],
  ['drop-blocks', (b, r) => { const blocks = Math.floor(b.length / 512); const s = int(r, blocks); return Buffer.concat([b.subarray(0, s * 512), b.subarray((s + 1 + int(r, 2)) * 512)]); }],
  ['pax-records', (b, r) => {
    const keys = ['path', 'linkpath', 'size', 'uid', 'gid', 'mtime', 'SCHILY.xattr.user.k', 'SCHILY.xattr.trusted.overlay.opaque',
      'SCHILY.xattr.security.capability', 'GNU.sparse.map', 'hdrcharset', 'comment', 'SCHILY.xattr.' + 'n'.repeat(300)];
    const vals = ['../victim/p', '/abs', '', '-5', '1e30', '18446744073709551616', 'y', 'x'.repeat(5000), '\0', 'ok', '0,0,1,1'];
    const recs: Array<[string, string]> = [];
    for (let i = 0, n = 1 + int(r, 3); i < n; i++) recs.push([keys[int(r, keys.length)]!, vals[int(r, vals.length)]!]);
    let p = pax(recs, r() < 0.2 ? 'g' : 'x');
    if (r() < 0.3) { p = Buffer.from(p); const at = 512 + int(r, Math.max(1, p.length - 512)); p[at] = 0x30 + int(r, 10); }
    const offs = headerOffsets(b); const h = offs[int(r, offs.length)]!;
    return Buffer.concat([b.subarray(0, h), p, b.subarray(h)]);
  }],
  ['gzip-framing', (b, r) => {
    const g = Buffer.from(zlib.gzipSync(b));
    const what = int(r, 3);
    if (what === 0) return g.subarray(0, int(r, g.length));
    if (what === 1) { g[int(r, g.length)] ^= 1 << int(r, 8); return g; }
    return Buffer.concat([g, r() < 0.5 ? g : Buffer.from('trailing garbage')]);
  }],
  ['zstd-framing', (b, r) => {
    const z = zstdOf(b);
    if (!z) return b;
    const what = int(r, 3);
    if (what === 0) return z.subarray(0, int(r, z.length));
    if (what === 1) { const o = Buffer.from(z); o[int(r, o.length)] ^= 1 << int(r, 8); return o; }
    return Buffer.concat([z, z]);
  }],
];

let zstdWorks: boolean | undefined;
function zstdOf(b: Buffer): Buffer | null {
  if (zstdWorks === false) return null;
  try {
    const z = execFileSync('zstd', ['-q', '-c', '-1'], { input: b, maxBuffer: 64 << 20 });
    zstdWorks = true;
    return z;
  } catch {
    zstdWorks = false;
    return null;
  }
}

/** The case for one seed: which valid layer, which 1-3 mutations. Deterministic. */
export function makeCase(seed: number, seeds: Buffer[]): { input: Buffer; kind: string } {
  const r = rng(seed);
  let input = seeds[int(r, seeds.length)]!;
  const kinds: string[] = [];
  for (let i = 0, n = 1 + int(r, 3); i < n; i++) {
    // framing last: a compressed stream mutated again as a tar would be meaningless
    const [name, m] = MUTATORS[int(r, MUTATORS.length - (i < n - 1 ? 2 : 0))]!;
    kinds.push(name);
    input = m(input, r);
  }
  return { input, kind: kinds.join('+') };
}

/** A scratch area: root/layer (diff/ inside) and root/victim (must never change). */
export function fuzzArea(root: string): { layer: string; victimBefore: string; check(): string } {
  const layer = join(root, 'layer'), victim = join(root, 'victim');
  fs.mkdirSync(join(layer, 'diff'), { recursive: true });
  fs.mkdirSync(victim, { recursive: true });
  fs.writeFileSync(join(victim, 'x'), 'victim');
  fs.mkdirSync(join(victim, 'sub'), { recursive: true });
  const victimBefore = snapshot(victim);
  const rootBefore = fs.readdirSync(root).sort().join(',');
  return {
    layer, victimBefore,
    check() {
      if (snapshot(victim) !== victimBefore) return 'the victim dir beside the layer changed';
      if (fs.readdirSync(root).sort().join(',') !== rootBefore) return `something was created beside the layer: ${fs.readdirSync(root).join(',')}`;
      return '';
    },
  };
}

const HANG_MS = 10_000;

/** Runs one case into `layer` (emptied first); returns the outcome. */
export async function runCase(layer: string, input: Buffer): Promise<{ outcome: 'ok' | 'refused' | 'known-raw' | 'finding'; detail: string }> {
  const diff = join(layer, 'diff');
  for (const n of fs.readdirSync(diff)) fs.rmSync(join(diff, n), { recursive: true, force: true });
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`hang: no outcome in ${HANG_MS} ms`)), HANG_MS); });
  try {
    await Promise.race([applyLayer(layer, Readable.from([input]), { userxattr: false, idMappings: new IdMappings(), onWarning: () => undefined }), hang]);
    return { outcome: 'ok', detail: '' };
  } catch (e) {
    if (e instanceof Overlay2Error && DOCUMENTED_CODES.has(e.code)) return { outcome: 'refused', detail: e.code };
    const code = (e as { code?: string }).code ?? '';
    if (!(e instanceof Overlay2Error) && KNOWN_RAW_ERRNOS.has(code)) return { outcome: 'known-raw', detail: `${code}: ${(e as Error).message}` };
    return { outcome: 'finding', detail: `${(e as Error).name} ${code}: ${(e as Error).message}` };
  } finally {
    clearTimeout(timer);
  }
}

/** Runs cases seed0 .. seed0+n-1 in `root`; collects outcomes and findings. */
export async function fuzz(root: string, seed0: number, n: number, onFinding?: (f: FuzzTotals['findings'][number]) => void): Promise<FuzzTotals> {
  const seeds = seedLayers();
  const area = fuzzArea(root);
  const totals: FuzzTotals = { cases: 0, ok: 0, refused: {}, knownRaw: {}, findings: [] };
  for (let s = seed0; s < seed0 + n; s++) {
    const { input, kind } = makeCase(s, seeds);
    const res = await runCase(area.layer, input);
    const escaped = area.check();
    totals.cases++;
    if (escaped) {
      const f = { seed: s, kind, detail: escaped, input };
      totals.findings.push(f); onFinding?.(f);
      break; // the area is no longer trustworthy
    }
    if (res.outcome === 'ok') totals.ok++;
    else if (res.outcome === 'refused') totals.refused[res.detail] = (totals.refused[res.detail] ?? 0) + 1;
    else if (res.outcome === 'known-raw') { const c = res.detail.split(':')[0]!; totals.knownRaw[c] = (totals.knownRaw[c] ?? 0) + 1; }
    else { const f = { seed: s, kind, detail: res.detail, input }; totals.findings.push(f); onFinding?.(f); }
  }
  return totals;
}
