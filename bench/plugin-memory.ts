// What grows in the plugin over the soak (issue #24 part 3): the soak's plugin work (the same cycles
// and streams as bench/services-soak.ts, 4 at a time) against a plugin started with
// bench/lib/memory-probe.cjs preloaded. Every SAMPLE cycles the probe forces a full GC and reports
// the JS side (heapUsed, external, arrayBuffers, handles, listeners on process, native contexts)
// while /proc gives RSS (anonymous and file-backed), threads and fds: a JS leak shows in heapUsed
// after the GC, a native one only in RSS. At the cycles named in OVERLAY2_SNAPSHOT_AT the probe
// writes a heap snapshot (compare two with bench/heap-diff.ts). At the end, gdb asks glibc for its
// arenas (malloc_stats: system vs in-use bytes) and runs malloc_trim(0): RSS that trim gives back
// is free memory malloc was holding (fragmentation), not live data.
//   node dist/bench/plugin-memory.js [cycles=6000] [streams=300] [sample=250]
//   env: OVERLAY2_SNAPSHOT_AT=2000,6000  OVERLAY2_MEMORY_KEEP=1 (keep the scratch dir: the snapshots)
//        OVERLAY2_MALLOC_AT=2000,4000 (glibc's arenas read at those sample cycles too, untrimmed)
//        MALLOC_ARENA_MAX=2 etc. reach the plugin (it inherits the environment)
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { table } from './lib/stats.js';
import { loadAverage, mountsUnder, openFds, pluginSoakWork, slope, slopeError, startPlugin } from './lib/services.js';

const CYCLES = Number(process.argv[2] ?? 6000);
const STREAMS = Number(process.argv[3] ?? 300);
const SAMPLE = Number(process.argv[4] ?? 250);
const SNAPSHOT_AT = new Set((process.env.OVERLAY2_SNAPSHOT_AT ?? '').split(',').filter(Boolean).map(Number));
/** Sample cycles at which glibc's arenas are read too (gdb stops the plugin for about a second). */
const MALLOC_AT = new Set((process.env.OVERLAY2_MALLOC_AT ?? '').split(',').filter(Boolean).map(Number));
const CONCURRENCY = 4;
const PROBE = join(process.cwd(), 'bench', 'lib', 'memory-probe.cjs');
const scratch = mkdtempSync('/var/tmp/ovl2-memory-');
const probeDir = join(scratch, 'probe');
const probeLog = join(probeDir, 'probe.jsonl');

interface ProbeLine {
  kind: 'stats' | 'snapshot';
  memory?: NodeJS.MemoryUsage;
  heap?: { used: number; total: number; malloced: number; external: number; nativeContexts: number; detachedContexts: number };
  resources?: Record<string, number>;
  processListeners?: Record<string, number>;
  workers?: { started: number; exited: number };
  spaces?: Record<string, number>;
  file?: string;
}

function probeLines(): ProbeLine[] {
  if (!existsSync(probeLog)) return [];
  return readFileSync(probeLog, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as ProbeLine);
}

/** Signals the probe and waits for its answer (the GC and a snapshot block the plugin meanwhile). */
let probeAsks = 0;
async function ask(pid: number, signal: 'SIGWINCH' | 'SIGUSR2'): Promise<ProbeLine> {
  const want = ++probeAsks;
  process.kill(pid, signal);
  for (let i = 0; ; i++) {
    const lines = probeLines();
    if (lines.length >= want) return lines[want - 1]!;
    if (i > 6000) throw new Error(`the memory probe did not answer ${signal}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** /proc/PID/status fields, KiB (Threads: a count). */
function status(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const m = /^(VmRSS|RssAnon|RssFile|RssShmem|Threads|VmData):\s+(\d+)/.exec(line);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** glibc's own account of its arenas, printed by malloc_stats() into the plugin's stderr. */
async function mallocStats(pid: number, stderr: () => string, trim: boolean): Promise<{ text: string; total: { system: number; inUse: number } | null }> {
  const before = stderr().length;
  const args = ['-p', String(pid), '-batch', '-nx', '-ex', 'call (void)malloc_stats()'];
  if (trim) args.push('-ex', 'call (int)malloc_trim(0)');
  const r = spawnSync('gdb', args, { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) return { text: `gdb failed: ${r.stderr}`, total: null };
  // the plugin's stderr reaches this process through its pipe, read on this event loop
  for (let i = 0; i < 250 && !/Total \(incl\. mmap\)[^]*in use bytes\s*=\s*\d+\n/.test(stderr().slice(before)); i++) await new Promise((r) => setTimeout(r, 20));
  const text = stderr().slice(before);
  const m = /Total \(incl\. mmap\):\s*\n\s*system bytes\s*=\s*(\d+)\s*\n\s*in use bytes\s*=\s*(\d+)/.exec(text);
  return { text, total: m ? { system: Number(m[1]), inUse: Number(m[2]) } : null };
}

interface Sample {
  at: number; rss: number; anon: number; file: number; threads: number; fds: number;
  heapUsed: number; heapTotal: number; newSpace: number; oldSpace: number; external: number; arrayBuffers: number; nativeContexts: number;
  workers: string; handles: string; listeners: string;
}

const kib = (bytes: number) => Math.round(bytes / 1024);

async function sample(pid: number, at: number): Promise<Sample> {
  const p = await ask(pid, 'SIGWINCH');
  const s = status(pid);
  const m = p.memory!;
  return {
    at, rss: s.VmRSS!, anon: s.RssAnon!, file: s.RssFile!, threads: s.Threads!, fds: openFds(pid),
    heapUsed: kib(m.heapUsed), heapTotal: kib(m.heapTotal),
    newSpace: kib(p.spaces!.new_space ?? 0), oldSpace: kib(p.spaces!.old_space ?? 0), external: kib(m.external), arrayBuffers: kib(m.arrayBuffers),
    nativeContexts: p.heap!.nativeContexts, workers: `${p.workers!.started}/${p.workers!.exited}`,
    handles: Object.entries(p.resources!).map(([k, v]) => `${k}:${v}`).join(' '),
    listeners: Object.entries(p.processListeners!).map(([k, v]) => `${k}:${v}`).join(' '),
  };
}

try {
  console.log(`plugin memory: ${CYCLES} cycles, ${STREAMS} streams, ${CONCURRENCY} at a time, a GC'd sample every ${SAMPLE}; ` +
    `MALLOC_ARENA_MAX=${process.env.MALLOC_ARENA_MAX ?? 'unset'}; load average ${loadAverage()}`);
  const started = Date.now();
  rmSync(probeDir, { recursive: true, force: true });
  mkdirSync(probeDir);
  const home = join(scratch, 'plugin-home');
  const plugin = await startPlugin(home, join(scratch, 'plugin.sock'), undefined, {
    nodeArgs: ['--require', PROBE], env: { OVERLAY2_MEMORY_PROBE: probeDir },
  });
  const pid = plugin.child.pid!;
  const samples: Sample[] = [];
  const snapshots: string[] = [];
  const mallocSeen: { at: number; rss: number; arenas: number; system?: number; inUse?: number }[] = [];
  let failed = 0;
  const errors: string[] = [];
  try {
    const work = await pluginSoakWork(plugin.client);
    samples.push(await sample(pid, 0));
    const every = STREAMS > 0 ? Math.max(1, Math.floor(CYCLES / STREAMS)) : Infinity;
    let next = 0, streams = 0;
    // one sample or snapshot at a time, taken by whichever worker passes the mark
    let probing: Promise<void> = Promise.resolve();
    const attempt = async (what: string, fn: () => Promise<void>) => {
      try { await fn(); } catch (e) { failed++; if (errors.length < 5) errors.push(`${what}: ${(e as Error).message}`); }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < CYCLES) {
        const i = next++;
        await attempt(`cycle ${i}`, () => work.cycle(i));
        if ((i + 1) % every === 0 && streams < STREAMS) { const k = streams++; await attempt(`stream ${k}`, () => work.stream(k)); }
        const at = i + 1;
        if (at % SAMPLE === 0 || SNAPSHOT_AT.has(at)) {
          probing = probing.then(async () => {
            if (at % SAMPLE === 0) samples.push(await sample(pid, at));
            if (MALLOC_AT.has(at)) {
              const m = await mallocStats(pid, plugin.stderr, false);
              mallocSeen.push({ at, rss: status(pid).VmRSS!, arenas: (m.text.match(/^Arena \d+:/gm) ?? []).length, ...m.total });
            }
            if (SNAPSHOT_AT.has(at)) snapshots.push((await ask(pid, 'SIGUSR2')).file!);
          });
          await probing;
        }
      }
    }));
    await probing;
    const beforeTrim = status(pid).VmRSS!;
    const arenas = await mallocStats(pid, plugin.stderr, true);
    const afterTrim = status(pid).VmRSS!;
    const arenasAfter = await mallocStats(pid, plugin.stderr, false);
    const arenaCount = (arenas.text.match(/^Arena \d+:/gm) ?? []).length;
    samples.sort((a, b) => a.at - b.at);
    console.log(table(['cycle', 'RSS', 'anon', 'file', 'threads', 'fds', 'heapUsed', 'heapTotal', 'new space', 'old space', 'external', 'arrayBuffers', 'contexts', 'workers started/exited', 'handles', 'process listeners'],
      samples.map((s) => [s.at, s.rss, s.anon, s.file, s.threads, s.fds, s.heapUsed, s.heapTotal, s.newSpace, s.oldSpace, s.external, s.arrayBuffers, s.nativeContexts, s.workers, s.handles, s.listeners].map(String))));
    const fit = (pts: Sample[], y: (s: Sample) => number) => {
      const xs = pts.map((s) => s.at / 1000), ys = pts.map(y);
      return `${slope(xs, ys).toFixed(1)} ± ${slopeError(xs, ys).toFixed(1)}`;
    };
    const warm = samples.filter((s) => s.at > CYCLES / 10), half = samples.filter((s) => s.at > CYCLES / 2);
    console.log(`\nslopes per 1,000 cycles, KiB (threads, fds: counts) (after ${CYCLES / 10} | 2nd half):`);
    for (const [name, y] of [['RSS', (s: Sample) => s.rss], ['RssAnon', (s: Sample) => s.anon], ['heapUsed', (s: Sample) => s.heapUsed],
      ['heapTotal', (s: Sample) => s.heapTotal], ['RSS − heapTotal', (s: Sample) => s.rss - s.heapTotal],
      ['external', (s: Sample) => s.external], ['threads', (s: Sample) => s.threads], ['fds', (s: Sample) => s.fds]] as const) {
      console.log(`  ${name.padEnd(16)} ${fit(warm, y).padEnd(18)} | ${fit(half, y)}`);
    }
    console.log(`\nmalloc (gdb): ${arenaCount} arenas; total system ${arenas.total ? kib(arenas.total.system) : '?'} KiB, in use ` +
      `${arenas.total ? kib(arenas.total.inUse) : '?'} KiB; malloc_trim(0): RSS ${beforeTrim} → ${afterTrim} KiB; after it: system ` +
      `${arenasAfter.total ? kib(arenasAfter.total.system) : '?'} KiB, in use ${arenasAfter.total ? kib(arenasAfter.total.inUse) : '?'} KiB`);
    if (mallocSeen.length) {
      console.log(table(['cycle', 'RSS KiB', 'arenas', 'malloc system KiB', 'malloc in use KiB'],
        mallocSeen.sort((x, y) => x.at - y.at).map((m) => [m.at, m.rss, m.arenas, m.system === undefined ? '?' : kib(m.system), m.inUse === undefined ? '?' : kib(m.inUse)])));
    }
    if (process.env.OVERLAY2_BENCH_VERBOSE) console.log(arenas.text);
    console.log(`failed calls: ${failed}${errors.length ? ` (${errors.join(' | ')})` : ''}; mounts left: ${mountsUnder(home).length}`);
    if (snapshots.length) console.log(`heap snapshots: ${snapshots.join(' ')}`);
  } finally {
    await plugin.stop();
  }
  console.log(`load average ${loadAverage()}; ${((Date.now() - started) / 1000).toFixed(0)} s`);
} finally {
  spawnSync('sh', ['-c', `grep ' ${scratch}' /proc/self/mounts | cut -d' ' -f2 | sort -r | xargs -r -n1 umount -l`]);
  if (process.env.OVERLAY2_MEMORY_KEEP) {
    for (const f of readdirSync(scratch)) if (f !== 'probe') rmSync(join(scratch, f), { recursive: true, force: true });
    console.log(`kept ${probeDir}`);
  } else {
    rmSync(scratch, { recursive: true, force: true });
  }
}
