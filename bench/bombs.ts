// Peak memory of decompression under hostile and honest input: a zstd stream whose frames declare
// 2,000,000,000 bytes each, a 1000:1 (or better) bomb in every supported format, and a 4 GiB honest
// zstd layer through applyDiff. Each case runs in a process of its own (bench/bomb-child.ts); peak
// RSS is VmHWM of that process and, sampled, of the decoder command it runs. The peer is the system
// decoder alone (and GNU tar for the honest layer), measured the same way in the same run.
// Run: npm run build && node dist/bench/bombs.js [WORD]   (only the cases whose input names WORD;
// data cached in bench/.data/bombs, ~4 GiB)
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { join } from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import tarStream from 'tar-stream';
import { DATA } from './lib/trees.js';
import { peakRss } from './lib/peak-rss.js';
import { zstdRleFrame } from '../test/support/bombs.js';

const dir = join(DATA, 'bombs');
fs.mkdirSync(dir, { recursive: true });
const CHILD = join(process.cwd(), 'dist', 'bench', 'bomb-child.js');
const GiB = 1 << 30;

function ensure(path: string, make: () => void | Promise<void>): Promise<void> | void {
  if (fs.existsSync(path)) return;
  console.error(`making ${path} ...`);
  return make();
}

const claim = join(dir, 'claim-2g-x20.zst');
await ensure(claim, () => fs.writeFileSync(claim, Buffer.concat(Array.from({ length: 20 }, () => zstdRleFrame(2_000_000_000, 600)))));

const bombs: Array<[string, string, string[]]> = [
  ['gzip', 'zeros-1g.gz', ['gzip', '-9', '-c']],
  ['zstd', 'zeros-1g.zst', ['zstd', '-19', '-c', '-q']],
  ['xz', 'zeros-1g.xz', ['xz', '-9', '-c', '-q']],
  ['bzip2', 'zeros-1g.bz2', ['bzip2', '-9', '-c', '-q']],
];
for (const [, name, cmd] of bombs) {
  const path = join(dir, name);
  await ensure(path, () => { execFileSync('bash', ['-c', `head -c ${GiB} /dev/zero | ${cmd.join(' ')} > ${path}.tmp && mv ${path}.tmp ${path}`]); });
}

// 4 GiB honest layer: 64 files of 64 MiB, each MiB half fresh random bytes, half a repeated pattern
// (compresses about 2:1 with zstd -3).
const honest = join(dir, 'honest-4g-2to1.tar.zst');
await ensure(honest, async () => {
  const pack = tarStream.pack();
  const zstd = spawn('zstd', ['-3', '-T2', '-q', '-c'], { stdio: ['pipe', fs.openSync(`${honest}.tmp`, 'w'), 'inherit'] });
  pack.pipe(zstd.stdin!);
  const pattern = Buffer.alloc(512 * 1024, 'layer data ');
  for (let f = 0; f < 64; f++) {
    const entry = pack.entry({ name: `data/f${f}`, size: 64 << 20 });
    for (let mib = 0; mib < 64; mib++) {
      if (!entry.write(Buffer.concat([randomBytes(512 * 1024), pattern]))) await new Promise<void>((r) => entry.once('drain', () => r()));
    }
    (entry as unknown as { end(): void }).end();
  }
  pack.finalize();
  await new Promise((r) => zstd.once('exit', r));
  fs.renameSync(`${honest}.tmp`, honest);
});

const only = process.argv[2];
const wanted = (label: string) => !only || label.includes(only);
const rows: string[] = [];
const mib = (n: number) => n.toFixed(0);
const row = (input: string, size: number, ours: string, r: Awaited<ReturnType<typeof peakRss>>, peer: string) => {
  rows.push(`| ${input} | ${(size / 1024).toFixed(1)} KiB | ${ours} | ${mib(r.selfMiB)} | ${r.childMiB ? mib(r.childMiB) : '—'} | ${(r.ms / 1000).toFixed(1)} s | ${peer} |`);
  console.error(rows[rows.length - 1]);
};
const outcome = (r: Awaited<ReturnType<typeof peakRss>>) => {
  const j = JSON.parse(r.stdout.trim().split('\n').pop() || '{}');
  return j.ok ? `ok, ${(j.bytes / GiB).toFixed(2)} GiB out` : `${j.code}`;
};
const peerOf = async (cmd: string) => {
  const p = await peakRss('bash', ['-c', `${cmd} > /dev/null 2>&1; true`]);
  return `${mib(p.childMiB)} MiB (${cmd.split(' ')[0]} alone)`;
};

const hasNative = typeof (zlib as unknown as { createZstdDecompress?: unknown }).createZstdDecompress === 'function';
const zstdDecoders = ['fzstd', 'command', ...(hasNative ? ['zlib'] : [])];
const size = (p: string) => fs.statSync(p).size;

for (const dec of wanted('declaring') ? zstdDecoders : []) {
  const r = await peakRss(process.execPath, [CHILD, 'decode', claim, dec]);
  row(`20 zstd frames declaring 2,000,000,000 bytes each`, size(claim), `${dec}: ${outcome(r)}`, r, await peerOf(`zstd -dc ${claim}`));
}
for (const [format, name] of bombs.filter(([f]) => wanted(`${f} bomb`))) {
  const path = join(dir, name);
  for (const dec of format === 'zstd' ? zstdDecoders : ['auto']) {
    const r = await peakRss(process.execPath, [CHILD, 'decode', path, dec]);
    const peer = { gzip: 'gzip -dc', zstd: 'zstd -dc', xz: 'xz -dc', bzip2: 'bzip2 -dc' }[format]!;
    row(`${format} bomb, 1 GiB of zeros (${Math.round(GiB / size(path))}:1)`, size(path), `${format === 'zstd' ? dec : 'auto'}: ${outcome(r)}`, r, await peerOf(`${peer} ${path}`));
  }
}
const home = join(dir, 'home');
for (const dec of wanted('honest') ? ['auto'] : []) {
  const r = await peakRss(process.execPath, [CHILD, 'apply', home, honest]);
  const target = join(dir, 'gnu-tar-out');
  fs.rmSync(target, { recursive: true, force: true });
  fs.mkdirSync(target);
  const peer = await peakRss('bash', ['-c', `zstd -dc ${honest} | tar -x -C ${target}`]);
  fs.rmSync(target, { recursive: true, force: true });
  row('4 GiB honest layer (zstd -3, 2:1) through applyDiff', size(honest), `${dec}: ${outcome(r)}`, r, `${mib(peer.childMiB)} MiB (zstd -dc \\| tar -x)`);
}
console.log(`| input | compressed | decoder: outcome | peak RSS, node (MiB) | peak RSS, decoder command (MiB) | time | peer peak RSS |`);
console.log(`|---|---|---|---|---|---|---|`);
for (const r of rows) console.log(r);
