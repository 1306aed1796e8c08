// What a CLI call costs: `overlay2 exists/status/--version` beside `node -e 0` (the floor: Node's own
// start) and moby's driver CLI, and a create loop (one process per layer, as a shell script does it;
// and ours again as one `overlay2 batch`), ours beside moby's tool in the same run.
//   node dist/bench/cli.js [runs] [layers]
// Interleaved: every round runs each command once, in turn, so load that comes and goes on a shared
// machine hits all of them alike; medians of wall time. CPU time (user + sys, from the child's
// resource usage as bash's `time` reports it, to the millisecond) is the steadier figure under load.
import { mkdtempSync, readFileSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { ensurePeer } from './lib/peers.js';
import { median, fmtMs, table } from './lib/stats.js';

const runs = Number(process.argv[2] ?? 30);
const layers = Number(process.argv[3] ?? 300);
const pkg = JSON.parse(readFileSync(join(process.cwd(), 'package.json'), 'utf8')) as { bin: { overlay2: string } };
const bin = join(process.cwd(), pkg.bin.overlay2);                       // the bundled CLI users run
const unbundled = join(process.cwd(), 'dist', 'src', 'cli', 'main.js');  // tsc's module graph, for comparison
const node = process.execPath;
const base = mkdtempSync(join(tmpdir(), 'ovl2-bench-cli-'));
const ours = join(base, 'ours');
const mobyHome = join(base, 'moby');
const moby = ensurePeer('moby-ovl');

interface Sample { wall: number; cpu: number; code: number }

/** Runs argv once under bash's `time`: wall and CPU (user + sys) of the child, in ms. */
function timed(argv: string[], stdin?: string): Sample {
  const r = spawnSync('bash', ['-c', `TIMEFORMAT='%3R %3U %3S'; time "$@" >/dev/null 2>/dev/null${stdin ? ` <"${stdin}"` : ''}; echo "rc=$?" >&2`, 'bash', ...argv],
    { encoding: 'utf8' });
  const lines = r.stderr.trim().split('\n');
  const [wall, user, sys] = lines.find((l) => /^\d+\.\d+ \d+\.\d+ \d+\.\d+$/.test(l))!.split(' ').map(Number);
  const code = Number(/rc=(\d+)/.exec(r.stderr)?.[1] ?? NaN);
  return { wall: wall! * 1000, cpu: (user! + sys!) * 1000, code };
}

function must(argv: string[]): void {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: exit ${r.status}: ${r.stderr}`);
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

try {
  console.log(`load average at the start: ${loadavg().map((x) => x.toFixed(1)).join(' ')} (${runs} rounds, ${layers} layers)`);
  must([node, bin, '--home', ours, 'create', 'x']);
  if (moby) must([moby, '--home', mobyHome, 'create', 'x', '-']);

  // ---- one call ------------------------------------------------------------------------------
  const commands: [string, string[], number][] = [
    ['node -e 0', [node, '-e', '0'], 0],
    ['overlay2 --version', [node, bin, '--version'], 0],
    ['overlay2 exists x', [node, bin, '--home', ours, 'exists', 'x'], 0],
    ['overlay2 exists y (no such layer)', [node, bin, '--home', ours, 'exists', 'y'], 1],
    ['overlay2 status', [node, bin, '--home', ours, 'status'], 0],
    ['overlay2 exists x, unbundled (dist/src/cli/main.js)', [node, unbundled, '--home', ours, 'exists', 'x'], 0],
  ];
  if (moby) commands.push(['moby-ovl exists x', [moby, '--home', mobyHome, 'exists', 'x'], 0]);
  const samples = commands.map((): Sample[] => []);
  for (let round = -2; round < runs; round++) {           // two warm-up rounds
    commands.forEach(([what, argv, expect], i) => {
      const s = timed(argv);
      if (s.code !== expect) throw new Error(`${what}: exit ${s.code}, expected ${expect}`);
      if (round >= 0) samples[i]!.push(s);
    });
  }
  const floorWall = median(samples[0]!.map((s) => s.wall));
  const floorCpu = mean(samples[0]!.map((s) => s.cpu));
  const mobyRow = moby ? samples[samples.length - 1]! : null;
  const mobyWall = mobyRow ? median(mobyRow.map((s) => s.wall)) : NaN;
  console.log(`\n## One CLI call (${runs} interleaved rounds; wall: median, CPU: mean)\n`);
  console.log(table(['command', 'wall ms', 'CPU ms', 'wall − node -e 0', 'CPU − node -e 0', 'wall ÷ moby-ovl exists'],
    commands.map(([what], i) => {
      const wall = median(samples[i]!.map((s) => s.wall));
      const cpu = mean(samples[i]!.map((s) => s.cpu));
      return [what, fmtMs(wall), fmtMs(cpu), fmtMs(wall - floorWall), fmtMs(cpu - floorCpu), mobyRow ? (wall / mobyWall).toFixed(1) + '×' : '—'];
    })));

  // ---- the create loop -----------------------------------------------------------------------
  // Per call: layer i by ours, then by moby's tool, each on the same base (moby refuses chains past
  // 128, so the loop is flat for both); then the same creates as one `overlay2 batch` in a fresh home.
  const perCall: Sample[] = [];
  const mobyCall: Sample[] = [];
  for (let i = 0; i < layers; i++) {
    const o = timed([node, bin, '--home', ours, 'create', `l${i}`, '--parent', 'x']);
    if (o.code !== 0) throw new Error(`overlay2 create l${i}: exit ${o.code}`);
    perCall.push(o);
    if (moby) {
      const m = timed([moby, '--home', mobyHome, 'create', `l${i}`, 'x']);
      if (m.code !== 0) throw new Error(`moby-ovl create l${i}: exit ${m.code}`);
      mobyCall.push(m);
    }
  }
  const script = join(base, 'creates.txt');
  writeFileSync(script, Array.from({ length: layers }, (_, i) => `create l${i} --parent x\n`).join(''));
  const batches: Sample[] = [];
  for (let k = 0; k < 3; k++) {
    const home = join(base, `batch${k}`);
    must([node, bin, '--home', home, 'create', 'x']);
    const b = timed([node, bin, '--home', home, 'batch'], script);
    if (b.code !== 0) throw new Error(`overlay2 batch: exit ${b.code}`);
    batches.push(b);
  }
  const batch = batches.sort((a, b) => a.wall - b.wall)[1]!;
  const sum = (xs: Sample[], k: 'wall' | 'cpu') => xs.reduce((n, s) => n + s[k], 0);
  const rows: (string | number)[][] = [
    ['overlay2 create, one process per layer', (sum(perCall, 'wall') / 1000).toFixed(2), fmtMs(median(perCall.map((s) => s.wall))), (sum(perCall, 'cpu') / 1000).toFixed(2)],
    ['overlay2 batch, one process (median of 3)', (batch.wall / 1000).toFixed(2), fmtMs(batch.wall / layers), (batch.cpu / 1000).toFixed(2)],
  ];
  if (moby) {
    rows.push(['moby-ovl create, one process per layer', (sum(mobyCall, 'wall') / 1000).toFixed(2), fmtMs(median(mobyCall.map((s) => s.wall))), (sum(mobyCall, 'cpu') / 1000).toFixed(2)]);
    rows.push(['moby ÷ ours per call', (sum(mobyCall, 'wall') / sum(perCall, 'wall')).toFixed(2) + '×', '', (sum(mobyCall, 'cpu') / sum(perCall, 'cpu')).toFixed(2) + '×']);
    rows.push(['moby ÷ ours batch', (sum(mobyCall, 'wall') / batch.wall).toFixed(2) + '×', '', (sum(mobyCall, 'cpu') / batch.cpu).toFixed(2) + '×']);
  }
  console.log(`\n## ${layers}-layer create loop\n`);
  console.log(table(['tool', 'total wall s', 'ms per layer (median; batch: mean)', 'CPU s (user+sys)'], rows));
  console.log(`\nload average at the end: ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
} finally {
  spawnSync('umount', ['-R', '-l', base]);
  if (existsSync(base)) rmSync(base, { recursive: true, force: true });
}
