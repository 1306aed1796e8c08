// What a CLI call costs: `overlay2 exists ID` beside `node -e 0` (the floor: Node's own start) and
// moby's driver CLI, and a 300-layer create loop (one process per layer, as a shell script does it),
// ours beside moby's tool in the same run. hyperfine when installed, else a spawnSync timer.
//   node dist/bench/cli.js [runs] [layers]
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { ensurePeer } from './lib/peers.js';
import { median, fmtMs, table } from './lib/stats.js';

const runs = Number(process.argv[2] ?? 40);
const layers = Number(process.argv[3] ?? 300);
const cli = join(process.cwd(), 'dist', 'src', 'cli', 'main.js');
const node = process.execPath;
const base = mkdtempSync(join(tmpdir(), 'ovl2-bench-cli-'));
const ours = join(base, 'ours');
const mobyHome = join(base, 'moby');
const moby = ensurePeer('moby-ovl');

/** CPU seconds of the children this process has waited for (/proc/self/stat cutime + cstime). */
function childCpuMs(): number {
  const f = readFileSync('/proc/self/stat', 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[13]) + Number(rest[14])) * 10; // clock ticks of 10 ms
}

function must(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
}

interface Row { what: string; median: number; min: number; cpu: number }

function hyperfine(commands: [string, string][]): Row[] | null {
  if (spawnSync('hyperfine', ['--version']).status !== 0) return null;
  const out = join(base, 'hf.json');
  const args = ['-N', '--warmup', '3', '--runs', String(runs), '--export-json', out];
  for (const [, c] of commands) args.push(c);
  const r = spawnSync('hyperfine', args, { stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) return null;
  const res = JSON.parse(readFileSync(out, 'utf8')).results as { median: number; min: number; user: number; system: number }[];
  return res.map((x, i) => ({ what: commands[i]![0], median: x.median * 1000, min: x.min * 1000, cpu: (x.user + x.system) * 1000 }));
}

function timer(commands: [string, string][]): Row[] {
  return commands.map(([what, c]) => {
    const [cmd, ...args] = c.split(' ');
    const times: number[] = [];
    const cpu0 = childCpuMs();
    for (let i = 0; i < runs + 3; i++) {
      const t = performance.now();
      spawnSync(cmd!, args);
      if (i >= 3) times.push(performance.now() - t);
    }
    return { what, median: median(times), min: Math.min(...times), cpu: (childCpuMs() - cpu0) / (runs + 3) };
  });
}

try {
  must(node, [cli, '--home', ours, 'create', 'x']);
  const commands: [string, string][] = [
    ['node -e 0', `${node} -e 0`],
    ['overlay2 exists x', `${node} ${cli} --home ${ours} exists x`],
    ['overlay2 --version', `${node} ${cli} --version`],
  ];
  if (moby) {
    must(moby, ['--home', mobyHome, 'create', 'x', '-']);
    commands.push(['moby-ovl exists x', `${moby} --home ${mobyHome} exists x`]);
  }
  const rows = hyperfine(commands) ?? timer(commands);
  const floor = rows[0]!;
  console.log(`\n## One CLI call (${runs} runs; ${spawnSync('hyperfine', ['--version']).status === 0 ? 'hyperfine -N' : 'spawnSync timer'})\n`);
  console.log(table(['command', 'median ms', 'min ms', 'CPU ms (user+sys)', 'median − node -e 0', 'CPU − node -e 0'],
    rows.map((r) => [r.what, fmtMs(r.median), fmtMs(r.min), fmtMs(r.cpu), fmtMs(r.median - floor.median), fmtMs(r.cpu - floor.cpu)])));

  // N layers, one process each, every one on the same base (moby's tool refuses chains past 128)
  const loop = (bin: string, args: (i: number) => string[]): { wall: number; cpu: number } => {
    const cpu0 = childCpuMs();
    const t = performance.now();
    for (let i = 0; i < layers; i++) must(bin, args(i));
    return { wall: performance.now() - t, cpu: childCpuMs() - cpu0 };
  };
  const loopRows: (string | number)[][] = [];
  const o = loop(node, (i) => [cli, '--home', ours, 'create', `l${i}`, '--parent', 'x']);
  loopRows.push(['overlay2 create', (o.wall / 1000).toFixed(2), fmtMs(o.wall / layers), (o.cpu / 1000).toFixed(2)]);
  if (moby) {
    const m = loop(moby, (i) => ['--home', mobyHome, 'create', `l${i}`, 'x']);
    loopRows.push(['moby-ovl create', (m.wall / 1000).toFixed(2), fmtMs(m.wall / layers), (m.cpu / 1000).toFixed(2)]);
    loopRows.push(['ratio moby/ours', (m.wall / o.wall).toFixed(2) + '×', '', (m.cpu / o.cpu).toFixed(2) + '×']);
  }
  console.log(`\n## ${layers}-layer create loop (one process per layer)\n`);
  console.log(table(['tool', 'total s', 'ms per layer', 'CPU s (user+sys)'], loopRows));
} finally {
  spawnSync('umount', ['-R', '-l', base]);
  if (existsSync(base)) rmSync(base, { recursive: true, force: true });
}
