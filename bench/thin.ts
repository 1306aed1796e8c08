// Thin layers, in one run:
//   make     `thin make` of a three-layer chain (~200 MB) into a fresh root, beside the naive copy of
//            the same diff dirs with GNU tar (c | x, no whiteout conversion) and cp -a; then again
//            with every tree already there (reused)
//   get+put  a container on a 10-layer thin image (external root; internal, with a bind-mounting
//            command run on each first use) vs the same image as 10 ordinary layers
//   node dist/bench/thin.js [get+put iterations] [make rounds]
import { mkdtempSync, mkdirSync, writeFileSync, chmodSync, rmSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { execFileSync } from 'node:child_process';
import { Overlay2Driver } from '../src/driver.js';
import { makeThinImage } from '../src/thin/publish.js';
import { serializeManifest, type ThinLayerRef } from '../src/thin/manifest.js';
import { manifestTar } from '../src/thin/manifest-tar.js';
import { median, fmtMs, ratio, table } from './lib/stats.js';
import { timedShell } from './lib/shell.js';

const iterations = Number(process.argv[2] ?? 200);
const rounds = Number(process.argv[3] ?? 3);

/** `files` files of `size` bytes of pseudo-random data in 20 directories. */
function fill(dir: string, files: number, size: number, seed: number): void {
  let x = seed;
  const buf = Buffer.alloc(size);
  for (let i = 0; i < files; i++) {
    const d = join(dir, `d${i % 20}`);
    mkdirSync(d, { recursive: true });
    for (let j = 0; j < size; j += 4) { x = (x * 1103515245 + 12345) >>> 0; buf.writeUInt32LE(x, j); }
    writeFileSync(join(d, `f${seed}-${i}`), buf);
  }
}

async function makeBench(root: string): Promise<(string | number)[][]> {
  const d = await Overlay2Driver.init(join(root, 'home'));
  // 100 + 60 + 40 MB of 64 KiB files; the middle layer deletes 100 of the first's
  await d.create('L1');
  fill(join(d.home, 'L1', 'diff'), 1600, 65536, 1);
  await d.create('L2', 'L1');
  fill(join(d.home, 'L2', 'diff'), 960, 65536, 2);
  for (let i = 0; i < 100; i++) execFileSync('mknod', [join(d.home, 'L2', 'diff', `d${i % 20}`, `f1-${i}`), 'c', '0', '0']);
  await d.create('L3', 'L2');
  fill(join(d.home, 'L3', 'diff'), 640, 65536, 3);
  execFileSync('sync');
  // rounds of the three, in turn (a loaded machine slows them alike); medians
  const dirs = ['L1', 'L2', 'L3'].map((id) => join(d.home, id, 'diff'));
  const first: number[] = [], reused: number[] = [], tarCopy: number[] = [], cpCopy: number[] = [];
  let tar: Buffer | null = null;
  for (let round = 0; round < rounds; round++) {
    const thinRoot = join(root, `thin-root-${round}`);
    mkdirSync(thinRoot);
    execFileSync('sync');
    let a = performance.now();
    const made = await makeThinImage(d, 'L3', { repo: 'bench.example.org', root: thinRoot });
    first.push(performance.now() - a);
    a = performance.now();
    const again = await makeThinImage(d, 'L3', { repo: 'bench.example.org', root: thinRoot });
    reused.push(performance.now() - a);
    if (again.written.length !== 0 || !again.tar.equals(made.tar) || (tar && !tar.equals(made.tar))) throw new Error('thin make was not reproducible');
    tar = made.tar;
    execFileSync('sync');
    tarCopy.push(timedShell(dirs.map((s, i) => `mkdir -p ${root}/tarcopy/${i} && tar -C ${s} -cf - . | tar -C ${root}/tarcopy/${i} -xf -`).join(' && '), 'tar | tar').ms);
    execFileSync('sync');
    cpCopy.push(timedShell(dirs.map((s, i) => `cp -a ${s} ${root}/cpcopy-${i}`).join(' && '), 'cp -a').ms);
    for (const p of [thinRoot, join(root, 'tarcopy'), ...dirs.map((_, i) => join(root, `cpcopy-${i}`))]) rmSync(p, { recursive: true, force: true });
  }
  await d.cleanup();
  return [
    ['thin make (export, unpack, hash; 3 layers, 200 MiB)', fmtMs(median(first)), ''],
    ['thin make again (every tree reused)', fmtMs(median(reused)), ''],
    ['GNU tar -c piped to tar -x, the 3 diff dirs', fmtMs(median(tarCopy)), ratio(median(tarCopy), median(first))],
    ['cp -a, the 3 diff dirs', fmtMs(median(cpCopy)), ratio(median(cpCopy), median(first))],
  ];
}

type Contender = { name: string; driver: Overlay2Driver; id: string; gets: number[]; puts: number[] };

/** get+put of every contender in turn, round after round (a loaded machine slows them alike). */
async function interleaved(contenders: Contender[]): Promise<void> {
  for (const c of contenders) for (let i = 0; i < 10; i++) { await c.driver.get(c.id); await c.driver.put(c.id); }
  for (let i = 0; i < iterations; i++) {
    for (const c of contenders) {
      const a = performance.now();
      await c.driver.get(c.id);
      const b = performance.now();
      await c.driver.put(c.id);
      c.gets.push(b - a);
      c.puts.push(performance.now() - b);
    }
  }
}

async function mountBench(root: string): Promise<(string | number)[][]> {
  const src = join(root, 'trees');
  const refs: ThinLayerRef[] = [];
  for (let i = 0; i < 10; i++) {
    const path = `layers/${i.toString(16).padStart(64, '0')}`;
    fill(join(src, 'repo.example.org', path), 50, 4096, 10 + i);
    refs.push({ digest: `sha256:${i.toString(16).padStart(64, '0')}`, repo: 'repo.example.org', path });
  }
  const tar = manifestTar(serializeManifest({ layers: refs }));
  const rows: (string | number)[][] = [];
  // ordinary: the same trees copied into 10 layers' diff dirs
  const plain = await Overlay2Driver.init(join(root, 'plain'));
  let parent = '';
  for (let i = 0; i < 10; i++) {
    await plain.create(`p${i}`, parent);
    rmSync(join(plain.home, `p${i}`, 'diff'), { recursive: true });
    cpSync(join(src, 'repo.example.org', refs[i].path), join(plain.home, `p${i}`, 'diff'), { recursive: true });
    parent = `p${i}`;
  }
  await plain.createReadWrite('pc', parent);
  // thin, external: the trees already under the root
  const ext = await Overlay2Driver.init(join(root, 'ext'), [`thin.root=${src}`]);
  await ext.create('t');
  await ext.applyDiff('t', null, tar);
  await ext.create('t-init', 't');
  await ext.createReadWrite('tc', 't-init');
  // thin, internal: the repository bind-mounted by a command on first use, unmounted after the last
  const cmd = join(root, 'mount-repo');
  writeFileSync(cmd, `#!/bin/sh\nexec mount --bind "${src}/$1" "$2"\n`);
  chmodSync(cmd, 0o755);
  const int = await Overlay2Driver.init(join(root, 'int'), [`thin.root=${join(root, 'int-root')}`, `thin.mount_command=${cmd}`]);
  await int.create('t');
  await int.applyDiff('t', null, tar);
  await int.create('t-init', 't');
  await int.createReadWrite('tc', 't-init');
  // the same, with a second container holding the repository: the command runs once
  const held = await Overlay2Driver.init(join(root, 'held'), [`thin.root=${join(root, 'held-root')}`, `thin.mount_command=${cmd}`]);
  await held.create('t');
  await held.applyDiff('t', null, tar);
  await held.create('t-init', 't');
  await held.createReadWrite('tc', 't-init');
  await held.createReadWrite('holder', 't-init');
  await held.get('holder');
  const contenders: Contender[] = [
    { name: '10 ordinary layers', driver: plain, id: 'pc', gets: [], puts: [] },
    { name: '10-layer thin image, external', driver: ext, id: 'tc', gets: [], puts: [] },
    { name: '10-layer thin image, internal (the repository mounted by each get, unmounted by each put)', driver: int, id: 'tc', gets: [], puts: [] },
    { name: '10-layer thin image, internal, the repository held by another container', driver: held, id: 'tc', gets: [], puts: [] },
  ];
  await interleaved(contenders);
  await held.put('holder');
  const total = (c: Contender) => median(c.gets) + median(c.puts);
  for (const c of contenders) {
    rows.push([c.name, `${fmtMs(median(c.gets))} / ${fmtMs(median(c.puts))}`, ratio(total(contenders[0]), total(c))]);
  }
  for (const d of [plain, ext, int, held]) await d.cleanup();
  return rows;
}

async function main() {
  const root = mkdtempSync(join(tmpdir(), 'ovl2-bench-thin-'));
  try {
    console.log(`## thin make (median of ${rounds} rounds)\n`);
    console.log(table(['what', 'ms', 'peer ÷ ours'], await makeBench(root)));
    console.log(`\n## get + put of a container (median of ${iterations}, ms get / put)\n`);
    console.log(table(['image', 'get / put', 'ordinary ÷ this'], await mountBench(root)));
  } finally {
    execFileSync('sh', ['-c', `grep -o ' ${root}[^ ]*' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true`]);
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
