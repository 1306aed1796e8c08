// Deleting a layer-sized tree: our removeTree (directory fds only, beneath the home, on the libuv
// pool) beside what the driver used before (fs.promises.rm recursive), GNU `rm -rf` and moby's
// Remove (`moby-ovl remove`: system.EnsureRemoveAll of the layer dir; its op= time) in the same run.
// Every contender deletes a fresh `cp -a` copy of the same tree (copying is not timed), warm cache,
// contenders interleaved run by run; median of N.
//   node dist/bench/remove.js [runs=5] [dirs=500] [filesPerDir=100]
import * as fs from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { removeTree } from '../src/layout/remove-tree.js';
import { ensurePeer, runPeer } from './lib/peers.js';
import { median, fmtMs, ratio, table } from './lib/stats.js';
import { DATA } from './lib/trees.js';

const runs = Math.max(3, Number(process.argv[2] ?? 5));
const dirs = Number(process.argv[3] ?? 500);
const perDir = Number(process.argv[4] ?? 100);

/** dirs × perDir small files (0–2 KiB), the shape of a layer of many small packages. */
function template(): string {
  const dir = join(DATA, `remove-${dirs}x${perDir}`);
  const marker = `${dir}.complete`;
  if (fs.existsSync(marker)) return dir;
  fs.rmSync(dir, { recursive: true, force: true });
  console.error(`generating ${dir} (once) ...`);
  let seed = 4242;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) / (1 << 24);
  for (let d = 0; d < dirs; d++) {
    const sub = join(dir, `pkg-${d % 20}`, `dir-${d}`);
    fs.mkdirSync(sub, { recursive: true });
    for (let i = 0; i < perDir; i++) fs.writeFileSync(join(sub, `file-${i}`), Buffer.alloc(Math.floor(rand() * 2048), 97));
  }
  fs.writeFileSync(marker, '');
  return dir;
}

/** A real copy (not timed): each contender deletes inodes of its own. */
function copyInto(src: string, dst: string): void {
  execFileSync('cp', ['-a', `${src}/.`, dst]);
}

/** CPU seconds (user + sys) this process spent in fn, all threads: less load-sensitive than wall time. */
async function cpuOf(fn: () => Promise<unknown>): Promise<[number, number]> {
  const c = process.cpuUsage();
  const wall = await timeIt(fn);
  const d = process.cpuUsage(c);
  return [wall, (d.user + d.system) / 1000];
}

/** rm -rf under bash, whose `times` reports the child's CPU. */
function rmRf(dir: string): [number, number] {
  const t = performance.now();
  const out = execFileSync('bash', ['-c', 'rm -rf -- "$1"; times', 'bash', dir], { encoding: 'utf8' });
  const wall = performance.now() - t;
  const child = out.trim().split('\n').pop()!.match(/([0-9.]+)m([0-9.]+)s/g)!.map((x) => {
    const [, min, sec] = /([0-9.]+)m([0-9.]+)s/.exec(x)!;
    return (Number(min) * 60 + Number(sec)) * 1000;
  });
  return [wall, child[0] + child[1]];
}

async function timeIt(fn: () => Promise<unknown> | unknown): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

async function main(): Promise<void> {
  const tree = template();
  const work = fs.mkdtempSync(join(DATA, 'remove-work-'));
  const mobyBin = ensurePeer('moby-ovl');
  if (!mobyBin) console.log('peer not built: moby-ovl');
  const mobyHome = join(work, 'moby-home');
  const t: Record<'ours' | 'fsrm' | 'rmrf' | 'moby', number[]> = { ours: [], fsrm: [], rmrf: [], moby: [] };
  const cpu: Record<'ours' | 'fsrm' | 'rmrf', number[]> = { ours: [], fsrm: [], rmrf: [] };
  const push = (k: 'ours' | 'fsrm' | 'rmrf', [wall, c]: [number, number]) => { t[k].push(wall); cpu[k].push(c); };
  const fresh = (name: string): string => {
    const d = join(work, name);
    fs.mkdirSync(d);
    copyInto(tree, d);
    return d;
  };
  try {
    for (let i = 0; i < runs; i++) {
      const contenders: Array<() => Promise<void>> = [
        async () => {
          const d = fresh('ours');
          push('ours', await cpuOf(() => removeTree(d, work)));
          if (fs.existsSync(d)) throw new Error('removeTree left the tree');
        },
        async () => {
          const d = fresh('fsrm');
          push('fsrm', await cpuOf(() => fs.promises.rm(d, { recursive: true, force: true })));
        },
        async () => push('rmrf', rmRf(fresh('rmrf'))),
        async () => {
          if (!mobyBin) return;
          const c = runPeer(mobyBin, mobyHome, ['create', 'layer', '-']);
          if (c.code !== 0) throw new Error(`moby-ovl create: ${c.err}`);
          copyInto(tree, join(mobyHome, 'layer', 'diff'));
          const r = runPeer(mobyBin, mobyHome, ['remove', 'layer']);
          if (r.code !== 0) throw new Error(`moby-ovl remove: ${r.err}`);
          t.moby.push(r.opMs);
        },
      ];
      // rotate the order run by run: no contender always follows the same neighbour
      for (let k = 0; k < contenders.length; k++) await contenders[(i + k) % contenders.length]();
      console.error(`run ${i + 1}/${runs}: ours ${fmtMs(t.ours[i])}  fs.rm ${fmtMs(t.fsrm[i])}  rm -rf ${fmtMs(t.rmrf[i])}  moby ${fmtMs(t.moby[i] ?? NaN)}`);
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  const m = (xs: number[]) => median(xs);
  console.log(`\nremove a ${dirs} dirs × ${perDir} files tree (${dirs * perDir} files), median of ${runs} warm runs (ms)\n`);
  console.log(table(
    ['removeTree (ours)', 'fs.promises.rm recursive', 'rm -rf (GNU)', 'moby Remove', 'fs.rm ÷ ours', 'rm -rf ÷ ours', 'moby ÷ ours'],
    [[fmtMs(m(t.ours)), fmtMs(m(t.fsrm)), fmtMs(m(t.rmrf)), fmtMs(m(t.moby)),
      ratio(m(t.fsrm), m(t.ours)), ratio(m(t.rmrf), m(t.ours)), ratio(m(t.moby), m(t.ours))]],
  ));
  console.log(`\nCPU time, user + sys (ms): ours ${fmtMs(m(cpu.ours))}, fs.promises.rm ${fmtMs(m(cpu.fsrm))}, rm -rf ${fmtMs(m(cpu.rmrf))} (moby-ovl reports wall time only)`);
  console.log(`load average at the end: ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  console.log(`\nall runs (ms): ours ${t.ours.map(fmtMs).join(' ')} | fs.rm ${t.fsrm.map(fmtMs).join(' ')} | rm -rf ${t.rmrf.map(fmtMs).join(' ')} | moby ${t.moby.map(fmtMs).join(' ')}`);
}

await main();
