// get+put latency by chain depth, ours (each mount method) beside moby's driver in the same run.
//   node dist/bench/mount.js [iterations]
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Overlay2Driver } from '../src/driver.js';
import type { MountStrategy } from '../src/mount/mounter.js';
import { ensurePeer, runPeer } from './lib/peers.js';
import { median, fmtMs, ratio, table } from './lib/stats.js';

const DEPTHS = [1, 10, 128, 300];
const iterations = Number(process.argv[2] ?? 200);

async function buildChain(driver: Overlay2Driver, depth: number): Promise<string> {
  let parent = '';
  for (let i = 0; i < depth; i++) {
    const id = `d${depth}-${i}`;
    await driver.create(id, parent);
    writeFileSync(join(driver.home, id, 'diff', `f${i}`), String(i));
    parent = id;
  }
  const top = `d${depth}-ctr`;
  await driver.createReadWrite(top, parent);
  return top;
}

async function ours(driver: Overlay2Driver, id: string, strategy: MountStrategy): Promise<{ get: number; put: number; method: string }> {
  driver.mountStrategy = strategy;
  for (let i = 0; i < 10; i++) { await driver.get(id); await driver.put(id); } // warm the dentry cache
  const gets: number[] = [], puts: number[] = [];
  let method = '';
  for (let i = 0; i < iterations; i++) {
    const a = performance.now();
    await driver.get(id);
    const b = performance.now();
    await driver.put(id);
    const c = performance.now();
    gets.push(b - a);
    puts.push(c - b);
    method = driver.lastMountMethod.get(id) ?? '';
  }
  return { get: median(gets), put: median(puts), method };
}

function mobyChain(bin: string, home: string, depth: number): string | null {
  let parent = '-';
  for (let i = 0; i < depth; i++) {
    const r = runPeer(bin, home, ['create', `d${depth}-${i}`, parent]);
    if (r.code !== 0) return null; // moby refuses chains deeper than 128
    parent = `d${depth}-${i}`;
  }
  const r = runPeer(bin, home, ['--rw', 'create', `d${depth}-ctr`, parent]);
  return r.code === 0 ? `d${depth}-ctr` : null;
}

function moby(bin: string, home: string, id: string): { get: number; put: number } {
  const r = runPeer(bin, home, ['getput', id, String(iterations)]);
  const m = /get_ms median=([0-9.]+).*put_ms median=([0-9.]+)/.exec(r.out);
  return m ? { get: Number(m[1]), put: Number(m[2]) } : { get: NaN, put: NaN };
}

async function main() {
  const root = mkdtempSync(join(tmpdir(), 'ovl2-bench-mount-'));
  const driver = await Overlay2Driver.init(join(root, 'ours'));
  const peer = ensurePeer('moby-ovl');
  const rows: (string | number)[][] = [];
  try {
    for (const depth of DEPTHS) {
      const id = await buildChain(driver, depth);
      const auto = await ours(driver, id, 'auto');
      const rel = depth <= 128 ? await ours(driver, id, 'relative') : null;
      const fsc = await ours(driver, id, 'fsconfig');
      let m = { get: NaN, put: NaN };
      let mobyNote = 'peer not built';
      if (peer) {
        const mid = mobyChain(peer, join(root, 'moby'), depth);
        if (mid) { m = moby(peer, join(root, 'moby'), mid); mobyNote = ''; } else mobyNote = 'cannot create (max depth 128)';
      }
      rows.push([depth, `${fmtMs(auto.get)} / ${fmtMs(auto.put)} (${auto.method})`,
        rel ? `${fmtMs(rel.get)} / ${fmtMs(rel.put)}` : '— (data > page)',
        `${fmtMs(fsc.get)} / ${fmtMs(fsc.put)}`,
        mobyNote || `${fmtMs(m.get)} / ${fmtMs(m.put)}`,
        ratio(m.get + m.put, auto.get + auto.put)]);
      await driver.cleanup();
    }
  } finally {
    await driver.cleanup();
    if (peer) runPeer(peer, join(root, 'moby'), ['cleanup']);
    rmSync(root, { recursive: true, force: true });
  }
  console.log(`get / put latency, median of ${iterations} in-process iterations, ms (kernel ${driver.features.kernel})`);
  console.log(table(['lowers', 'ours auto', 'ours relative (mountAt)', 'ours fsconfig lowerdir+', 'moby 20.10', 'moby ÷ ours'], rows));
}

main().catch((e) => { console.error(e); process.exit(1); });
