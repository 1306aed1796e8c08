// load/save of a ~50 MiB image (3 gzip layers: 2000 small files, 2 × 20 MiB, a few config files)
// beside the peers, interleaved in one run, median of several runs:
//   load: ours (verify + extract + tar-split) vs `skopeo copy oci:… oci:…` (copies and verifies blobs,
//         no extraction) vs `gzip -dc | tar -x` of each layer (extraction alone, no verification).
//   save: ours (docker archive rebuilt from tar-split) vs `skopeo copy oci:… docker-archive:…`.
// Each run writes into a fresh loop-mounted ext4 (as bench/apply.ts does, and for the same reason:
// the shared disk's inode allocator after others' deletions would measure the other tenants).
//   npm run build:ts && node dist/bench/image.js [runs=5]
import * as fs from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { Overlay2Driver } from '../src/driver.js';
import { applyLayer } from '../src/apply/apply.js';
import { IdMappings } from '../src/idmap.js';
import { buildOciLayout, type LayerSpec } from '../test/image-fixtures.js';
import { fmtMs, median, ratio, table } from './lib/stats.js';
import { mountFreshExt4, type FreshExt4 } from './lib/fresh-ext4.js';

const runs = Number(process.argv[2] ?? 5);
const data = join(process.cwd(), 'bench', '.data', 'image');
const layout = join(data, 'oci');

function specs(): LayerSpec[] {
  const small: Record<string, string> = {};
  for (let i = 0; i < 2000; i++) small[`usr/share/d${i % 40}/f${i}`] = `file ${i}\n`.repeat(60 + (i % 50));
  // base64 of random bytes: text (the fixture writes strings) that gzip shrinks only to ~75%
  const rnd = (n: number) => randomBytes((n * 3) / 4).toString('base64');
  return [
    { files: small, compress: 'gzip' },
    { files: { 'opt/a.bin': rnd(20 << 20), 'opt/b.bin': 'b'.repeat(20 << 20) }, compress: 'gzip' },
    { files: { 'etc/app.conf': 'x=1\n' }, remove: ['usr/share/d0'], compress: 'gzip' },
  ];
}

function ensureImage(): void {
  if (fs.existsSync(join(layout, 'index.json'))) return;
  fs.rmSync(data, { recursive: true, force: true });
  buildOciLayout(join(data, 'scratch'), layout, specs());
  fs.rmSync(join(data, 'scratch'), { recursive: true, force: true });
}

function time(fn: () => void): number {
  const t = performance.now();
  fn();
  return performance.now() - t;
}

async function timeAsync(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

const work = join(data, 'work');
ensureImage();

const index = JSON.parse(fs.readFileSync(join(layout, 'index.json'), 'utf8'));
const manifest = JSON.parse(fs.readFileSync(join(layout, 'blobs/sha256', index.manifests[0].digest.slice(7)), 'utf8'));
const blobs: string[] = manifest.layers.map((l: { digest: string }) => join(layout, 'blobs/sha256', l.digest.slice(7)));
const imageBytes = blobs.reduce((n, b) => n + fs.statSync(b).size, 0);
const tarBytes = blobs.reduce((n, b) => n + gunzipSync(fs.readFileSync(b)).length, 0);

let fresh: FreshExt4 | null = null;
function onFreshFs(): void {
  fresh = mountFreshExt4(work, 2, 'disk');
  execFileSync('sync');
}
function dropFs(): void {
  fresh?.remove();
  fresh = null;
}

const t = { raw: [] as number[], tapped: [] as number[], load: [] as number[], skopeoOci: [] as number[], untar: [] as number[], save: [] as number[], skopeoDocker: [] as number[] };
for (let r = 0; r < runs; r++) {
  onFreshFs();
  try {
    const driver = await Overlay2Driver.init(join(work, 'home'));
    let top = '';
    t.load.push(await timeAsync(async () => { [{ top }] = await driver.load(layout); }));
    // the same layers through applyLayer alone (no digest, no tar-split), and through applyDiff
    t.raw.push(await timeAsync(async () => {
      for (const [i, b] of blobs.entries()) {
        fs.mkdirSync(join(work, `raw-${i}`, 'diff'), { recursive: true });
        await applyLayer(join(work, `raw-${i}`), fs.createReadStream(b), { userxattr: false, idMappings: new IdMappings() });
      }
    }));
    t.tapped.push(await timeAsync(async () => {
      for (const [i, b] of blobs.entries()) {
        await driver.create(`tapped-${i}`);
        await driver.applyDiff(`tapped-${i}`, null, b);
      }
    }));
    t.untar.push(time(() => {
      blobs.forEach((b, i) => {
        const dir = join(work, `untar-${i}`);
        fs.mkdirSync(dir);
        execFileSync('sh', ['-c', `gzip -dc '${b}' | tar -x -C '${dir}'`]);
      });
    }));
    t.skopeoOci.push(time(() => execFileSync('skopeo', ['--insecure-policy', 'copy', '-q', `oci:${layout}:t`, `oci:${join(work, 'copy')}:t`])));
    execFileSync('sync');
    t.save.push(await timeAsync(() => driver.save(top, join(work, 'saved.tar'))));
    t.skopeoDocker.push(time(() => execFileSync('skopeo', ['--insecure-policy', 'copy', '-q', `oci:${layout}:t`, `docker-archive:${join(work, 'skopeo.tar')}`])));
  } finally {
    dropFs();
  }
}

const m = (xs: number[]) => median(xs);
console.log(`image: ${(imageBytes / (1 << 20)).toFixed(1)} MiB of gzip layers (3), ${(tarBytes / (1 << 20)).toFixed(1)} MiB of tar, ${runs} runs, median ms\n`);
console.log(table(['operation', 'ours', 'peer', 'peer ms', 'peer ÷ ours'], [
  ['load', fmtMs(m(t.load)), 'skopeo copy oci→oci (no extraction)', fmtMs(m(t.skopeoOci)), ratio(m(t.skopeoOci), m(t.load))],
  ['load', fmtMs(m(t.load)), 'gzip -dc | tar -x per layer (no verification)', fmtMs(m(t.untar)), ratio(m(t.untar), m(t.load))],
  ['applyLayer ×3 (no digest, no tar-split)', fmtMs(m(t.raw)), 'gzip -dc | tar -x per layer', fmtMs(m(t.untar)), ratio(m(t.untar), m(t.raw))],
  ['applyDiff ×3 (diffID + tar-split)', fmtMs(m(t.tapped)), 'gzip -dc | tar -x per layer', fmtMs(m(t.untar)), ratio(m(t.untar), m(t.tapped))],
  ['save (docker)', fmtMs(m(t.save)), 'skopeo copy oci→docker-archive', fmtMs(m(t.skopeoDocker)), ratio(m(t.skopeoDocker), m(t.save))],
]));
