// Issue #24 part 3, the soak: hours of a daemon's calls in minutes. Through each service (the
// installed bin, a fresh home on /var/tmp), CYCLES create/get/put/remove cycles — the plugin's
// CreateReadWrite + Get + Exists + Put + Remove, the snapshotter's Prepare + Mounts + Stat + Remove —
// 4 at a time, and one stream every CYCLES/STREAMS cycles: the plugin's Diff of a 300-file layer piped
// into ApplyDiff of a new layer (then removed), the snapshotter's Prepare + files written into its
// upperdir (what containerd's applier does) + Usage + Commit + Remove. Every SAMPLE cycles the
// service's RSS and open fds are read (/proc/PID/status, /proc/PID/fd); after a warm-up the
// least-squares slope of each is printed per 1,000 cycles beside the residual spread (the noise it is
// read against). At the end: mounts left under the home (0 expected) and failed calls (0 expected).
//   npm run build:ts && node dist/bench/services-soak.js [cycles=10000] [streams=500] [which=both|plugin|snapshotter]
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { table } from './lib/stats.js';
import {
  loadAverage, mountsUnder, openFds, pluginSoakWork, rssKiB, slope, slopeError, startPlugin, startSnapshotter, SnapshotsClient, upperOf,
} from './lib/services.js';

const CYCLES = Number(process.argv[2] ?? 10_000);
const STREAMS = Number(process.argv[3] ?? 500);
const which = process.argv[4] ?? 'both';
const CONCURRENCY = 4;
const SAMPLE = Math.max(50, Math.floor(CYCLES / 40));
const WARMUP = Math.floor(CYCLES / 10);
const scratch = mkdtempSync('/var/tmp/ovl2-soak-');
const rows: string[][] = [];

interface Soak { cycles: number; streams: number; failed: number; errors: string[]; samples: { at: number; rss: number; fds: number }[] }

/** Runs `cycle(i)` CYCLES times, CONCURRENCY at a time, `stream(k)` after every CYCLES/STREAMS-th; samples `pid`. */
async function soak(pid: number, cycle: (i: number) => Promise<void>, stream: (k: number) => Promise<void>): Promise<Soak> {
  const s: Soak = { cycles: 0, streams: 0, failed: 0, errors: [], samples: [] };
  const every = Math.max(1, Math.floor(CYCLES / STREAMS));
  let next = 0;
  const attempt = async (what: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (e) {
      s.failed++;
      if (s.errors.length < 5) s.errors.push(`${what}: ${(e as Error).message}`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < CYCLES) {
      const i = next++;
      await attempt(`cycle ${i}`, () => cycle(i));
      s.cycles++;
      if ((i + 1) % every === 0 && s.streams < STREAMS) {
        const k = s.streams++;
        await attempt(`stream ${k}`, () => stream(k));
      }
      if ((i + 1) % SAMPLE === 0) s.samples.push({ at: i + 1, rss: rssKiB(pid), fds: openFds(pid) });
    }
  }));
  return s;
}

/** The table row of a soak: first → last, and the slopes per 1,000 cycles (± standard error) after
 *  the warm-up and over the second half alone (what is left once the heap has found its size). */
function soakRow(service: string, s: Soak, mountsLeft: number): string[] {
  const kept = s.samples.filter((x) => x.at > WARMUP).sort((a, b) => a.at - b.at);
  const half = kept.filter((x) => x.at > CYCLES / 2);
  const fmt = (v: number) => (Math.abs(v) < 10 ? v.toFixed(2) : v.toFixed(0));
  const fit = (pts: typeof kept, y: (x: (typeof kept)[number]) => number) => {
    const xs = pts.map((x) => x.at / 1000), ys = pts.map(y);
    return `${fmt(slope(xs, ys))} ± ${fmt(slopeError(xs, ys))}`;
  };
  const first = kept[0], last = kept[kept.length - 1];
  return [service, String(s.cycles), String(s.streams),
    `${first?.rss ?? '—'} → ${last?.rss ?? '—'}`, fit(kept, (x) => x.rss), fit(half, (x) => x.rss),
    `${first?.fds ?? '—'} → ${last?.fds ?? '—'}`, fit(kept, (x) => x.fds), String(mountsLeft), String(s.failed)];
}

function report(service: string, s: Soak, mountsLeft: number): void {
  rows.push(soakRow(service, s, mountsLeft));
  if (s.errors.length) console.log(`${service}: failures: ${s.errors.join(' | ')}`);
  console.log(`${service}: samples (cycle: RSS KiB / fds): ${s.samples.map((x) => `${x.at}: ${x.rss}/${x.fds}`).join(', ')}`);
}

async function soakPlugin(): Promise<void> {
  const home = join(scratch, 'plugin-home');
  const plugin = await startPlugin(home, join(scratch, 'plugin.sock'));
  const c = plugin.client;
  try {
    const work = await pluginSoakWork(c);
    const s = await soak(plugin.child.pid!, work.cycle, work.stream);
    report('plugin', s, mountsUnder(home).length);
  } finally {
    await plugin.stop();
    const left = mountsUnder(home);
    if (left.length) console.log(`plugin: ${left.length} mounts left after its shutdown: ${left.slice(0, 3).join(' ')}`);
  }
}

async function soakSnapshotter(): Promise<void> {
  const home = join(scratch, 'snap-home');
  const svc = await startSnapshotter(home, join(scratch, 'snap.sock'));
  const c = new SnapshotsClient(svc.socket);
  try {
    const m = await c.prepare('base-a', '');
    writeFileSync(join(upperOf(m), 'base-file'), 'base\n');
    await c.commit('base', 'base-a');
    const s = await soak(svc.child.pid!, async (i) => {
      const key = `c${i}`;
      await c.prepare(key, 'base');
      await c.mounts(key);
      await c.stat(key);
      await c.remove(key);
    }, async (k) => {
      const key = `x${k}`;
      const mounts = await c.prepare(key, 'base');
      const upper = upperOf(mounts);
      for (let d = 0; d < 3; d++) {
        mkdirSync(join(upper, `d${d}`));
        for (let f = 0; f < 100; f++) writeFileSync(join(upper, `d${d}`, `f${f}`), `soak ${d}/${f}\n`.repeat(1 + (f % 40)));
      }
      const u = await c.usage(key);
      if (u.inodes < 300) throw new Error(`Usage ${key}: ${JSON.stringify(u)}`);
      await c.commit(`xc${k}`, key);
      await c.remove(`xc${k}`);
    });
    report('snapshotter', s, mountsUnder(home).length);
  } finally {
    c.close();
    await svc.stop();
  }
}

try {
  console.log(`soak: ${CYCLES} cycles, ${STREAMS} streams per service, ${CONCURRENCY} at a time, a sample every ${SAMPLE} cycles, slopes after ${WARMUP}; load average ${loadAverage()}`);
  const started = Date.now();
  if (which === 'both' || which === 'plugin') {
    await soakPlugin();
    console.log(`after the plugin: load average ${loadAverage()}, ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
  if (which === 'both' || which === 'snapshotter') await soakSnapshotter();
  console.log(`\nload average ${loadAverage()}; ${((Date.now() - started) / 1000).toFixed(0)} s in all; RSS in KiB; slopes per 1,000 cycles ± their standard error\n`);
  console.log(table(['service', 'cycles', 'streams', 'RSS first → last', 'RSS slope', 'RSS slope, 2nd half', 'fds first → last', 'fd slope', 'mounts left', 'failed'], rows));
} finally {
  spawnSync('sh', ['-c', `grep ' ${scratch}' /proc/self/mounts | cut -d' ' -f2 | sort -r | xargs -r -n1 umount -l`]);
  rmSync(scratch, { recursive: true, force: true });
}
