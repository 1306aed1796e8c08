// dockerd on our graphdriver plugin beside dockerd on Docker's built-in overlay2, in the same run:
// `docker run --rm IMG true` latency, `docker load` of a ~200 MB image, `docker commit` of a
// container holding 50k new files, `docker diff` of ~100 changes over a 100k-file image.
//   npm run build:ts && node dist/bench/docker.js [runs=5]
// Each figure is the wall time of the docker client command (client start included on both sides),
// median of `runs` (run latency: 3 × runs), the two daemons interleaved. Data sets are generated once
// into bench/.data/docker; the daemons live in a fresh scratch dir removed at the end.
import * as fs from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { spawnSync } from 'node:child_process';
import { fillSmallFiles, generatedTree, DATA } from './lib/trees.js';
import { fmtMs, median, ratio, table } from './lib/stats.js';
import {
  whyNoDocker, startDockerd, startPluginProcess, uniquePluginName, writeBusyboxRoot, type PrivateDockerd,
} from './lib/dockerd.js';

const runs = Number(process.argv[2] ?? 5);
const data = join(DATA, 'docker');
const APPLETS = ['sh', 'cat', 'ls', 'rm', 'mkdir', 'echo', 'true', 'touch', 'seq', 'head'];
const MiB = 1 << 20;

function sh(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

/** A tar of a busybox root, optionally with `extra` dirs beneath it (as /NAME). */
function rootfsTar(name: string, fill: (root: string) => void): string {
  const tar = join(data, `${name}.tar`);
  if (fs.existsSync(`${tar}.complete`)) return tar;
  const root = join(data, `${name}-root`);
  fs.rmSync(root, { recursive: true, force: true });
  writeBusyboxRoot(root, APPLETS);
  fill(root);
  sh('tar', ['--numeric-owner', '-C', root, '-cf', tar, '.']);
  fs.rmSync(root, { recursive: true, force: true });
  fs.writeFileSync(`${tar}.complete`, '');
  return tar;
}

/** ~200 MB: 120 files of 1.5 MiB and 10k files of 1–4 KiB (Go toolchain-like mix). */
function fillBig(root: string): void {
  const chunk = Buffer.alloc(1.5 * MiB);
  for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt32LE((i * 2654435761) >>> 0, i);
  fs.mkdirSync(join(root, 'opt', 'big'), { recursive: true });
  for (let n = 0; n < 120; n++) {
    chunk.writeUInt32LE(n, 0); // no two files alike
    fs.writeFileSync(join(root, 'opt', 'big', `blob${n}`), chunk);
  }
  const small = join(root, 'opt', 'small');
  fs.mkdirSync(small);
  fillSmallFiles(small, 777);
  // fillSmallFiles makes 50k; keep 10k (the first 20 dirs).
  for (const d of fs.readdirSync(small).slice(20)) fs.rmSync(join(small, d), { recursive: true });
}

/** A tar of 50k small files, copied into a container with `docker cp -`. */
function smallFilesTar(): string {
  const tar = join(data, 'small50k.tar');
  if (fs.existsSync(`${tar}.complete`)) return tar;
  const dir = join(data, 'small50k');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  fillSmallFiles(dir, 4242);
  sh('tar', ['--numeric-owner', '-C', dir, '-cf', tar, '.']);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.writeFileSync(`${tar}.complete`, '');
  return tar;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** Runs `step` on both daemons alternately `n` times; returns [ours ms[], built-in ms[]]. */
async function interleaved(n: number, a: PrivateDockerd, b: PrivateDockerd,
  step: (d: PrivateDockerd, i: number) => Promise<number>): Promise<[number[], number[]]> {
  const ta: number[] = [], tb: number[] = [];
  for (let i = 0; i < n; i++) {
    if (i % 2 === 0) { ta.push(await step(a, i)); tb.push(await step(b, i)); }
    else { tb.push(await step(b, i)); ta.push(await step(a, i)); }
  }
  return [ta, tb];
}

async function main(): Promise<void> {
  const why = whyNoDocker();
  if (why) {
    console.error(`docker bench: cannot run here: ${why}`);
    process.exit(1);
  }
  fs.mkdirSync(data, { recursive: true });
  console.error('preparing data sets in bench/.data/docker (once) ...');
  const bbTar = rootfsTar('busybox', () => undefined);
  const bigTar = rootfsTar('big200', fillBig);
  const gen = generatedTree(100_000);
  const largeTar = rootfsTar('large100k', (root) => sh('cp', ['-a', gen.dir, join(root, 'g')]));
  const filesTar = smallFilesTar();

  const scratch = fs.mkdtempSync('/tmp/ovl2-dkb-');
  const cli = join(process.cwd(), 'dist', 'src', 'cli', 'main.js');
  const name = uniquePluginName('ovl2-bench');
  const plugin = await startPluginProcess(cli, name);
  const [ours, builtin] = await Promise.all([
    startDockerd(join(scratch, 'p'), name, { experimental: true }),
    startDockerd(join(scratch, 'b'), 'overlay2'),
  ]);
  const both = (args: string[]) => Promise.all([ours.docker(args), builtin.docker(args)]);
  const rows: (string | number)[][] = [];
  const row = (what: string, [ta, tb]: [number[], number[]]) => {
    const [ma, mb] = [median(ta), median(tb)];
    rows.push([what, fmtMs(ma), fmtMs(mb), ratio(mb, ma)]);
    console.error(`${what}: ours ${fmtMs(ma)} ms, built-in ${fmtMs(mb)} ms (${ratio(mb, ma)})`);
  };
  try {
    await both(['import', bbTar, 'bb']);
    await both(['import', largeTar, 'large']);

    // run latency
    for (let i = 0; i < 2; i++) await both(['run', '--rm', 'bb', 'true']);
    row('docker run --rm bb true', await interleaved(runs * 3, ours, builtin,
      (d) => timed(() => d.docker(['run', '--rm', 'bb', 'true']))));

    // load of a ~200 MB image (saved once from the built-in daemon)
    const imageTar = join(scratch, 'big200-image.tar');
    await builtin.docker(['import', bigTar, 'big200']);
    await builtin.docker(['save', '-o', imageTar, 'big200']);
    await builtin.docker(['rmi', 'big200']);
    const mb = (fs.statSync(imageTar).size / 1e6).toFixed(0);
    row(`docker load (${mb} MB image)`, await interleaved(runs, ours, builtin, async (d) => {
      const ms = await timed(() => d.docker(['load', '-i', imageTar]));
      await d.docker(['rmi', 'big200']);
      return ms;
    }));

    // commit of a container holding 50k new files
    const filesData = fs.readFileSync(filesTar);
    row('docker commit (50k new files)', await interleaved(runs, ours, builtin, async (d, i) => {
      await d.docker(['create', '--name', `c${i}`, 'bb', 'true']);
      // `docker cp - CTR:/` reads a tar on stdin: the 50k files land through the driver's mount.
      await d.docker(['cp', '-', `c${i}:/`], { input: filesData });
      const ms = await timed(() => d.docker(['commit', `c${i}`, `committed${i}`]));
      await d.docker(['rm', `c${i}`]);
      await d.docker(['rmi', `committed${i}`]);
      return ms;
    }));

    // diff of ~100 changes over a 100k-file image
    const changes = [
      'i=0; while [ $i -lt 40 ]; do echo x >> /g/group-1/pkg-11/file-$i.js; i=$((i+1)); done',
      'mkdir /g/new; i=0; while [ $i -lt 40 ]; do echo n > /g/new/f$i; i=$((i+1)); done',
      'i=0; while [ $i -lt 20 ]; do rm /g/group-2/pkg-12/file-$i.js; i=$((i+1)); done',
    ].join('; ');
    await both(['run', '--name', 'dchg', 'large', 'sh', '-c', changes]);
    const lines = (await ours.docker(['diff', 'dchg'])).out.split('\n').filter(Boolean).length;
    row(`docker diff (${lines} changes, 100k-file image)`, await interleaved(runs, ours, builtin,
      (d) => timed(() => d.docker(['diff', 'dchg']))));
  } finally {
    await Promise.allSettled([ours.stop(), builtin.stop()]);
    await plugin.stop();
    spawnSync('bash', ['-c', `grep -o ' ${scratch}[^ ]*' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l`]);
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  console.log(`\nmedian wall time of the docker command, ms (${runs} runs; run latency ${runs * 3}); load average ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}\n`);
  console.log(table(['step', 'ours (plugin)', 'built-in overlay2', 'built-in ÷ ours'], rows));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
