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
import { generatedTree } from './lib/trees.js';
import { DOCKER_DATA, fillBig, rootfsTar, sh, smallFilesTar } from './lib/docker-data.js';
import { fmtMs, median, ratio, table } from './lib/stats.js';
import { mountFreshExt4 } from './lib/fresh-ext4.js';
import {
  whyNoDocker, startDockerd, startPluginProcess, uniquePluginName, type PrivateDockerd,
} from './lib/dockerd.js';

const runs = Number(process.argv[2] ?? 5);
/** Which steps to run (default all): run,load,commit,diff. */
const steps = new Set((process.argv[3] ?? 'run,load,commit,diff').split(','));
/** Extra node flags for the plugin process, e.g. PLUGIN_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/p'. */
const pluginNodeArgs = (process.env.PLUGIN_NODE_ARGS ?? '').split(' ').filter(Boolean);

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
  fs.mkdirSync(DOCKER_DATA, { recursive: true });
  console.error('preparing data sets in bench/.data/docker (once) ...');
  const bbTar = rootfsTar('busybox', () => undefined);
  const bigTar = steps.has('load') ? rootfsTar('big200', fillBig) : '';
  const largeTar = steps.has('diff')
    ? rootfsTar('large100k', (root) => sh('cp', ['-a', generatedTree(100_000).dir, join(root, 'g')])) : '';
  const filesTar = steps.has('commit') ? smallFilesTar() : '';

  const scratch = fs.mkdtempSync('/tmp/ovl2-dkb-');
  // Both daemons on one fresh ext4: on the shared disk ext4's inode allocator crawls after anyone
  // removes many files (see applyDiff above), which swamps what either driver does.
  const ext4 = mountFreshExt4(scratch, 24, 'disk');
  const cli = join(process.cwd(), 'dist', 'src', 'cli', 'main.js');
  const name = uniquePluginName('ovl2-bench');
  const plugin = await startPluginProcess(cli, name, pluginNodeArgs);
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
    if (steps.has('diff')) await both(['import', largeTar, 'large']);

    // run latency
    if (steps.has('run')) for (let i = 0; i < 2; i++) await both(['run', '--rm', 'bb', 'true']);
    if (steps.has('run')) row('docker run --rm bb true', await interleaved(runs * 3, ours, builtin,
      (d) => timed(() => d.docker(['run', '--rm', 'bb', 'true']))));

    // load of a ~200 MB image (saved once from the built-in daemon)
    if (steps.has('load')) {
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
    }

    // commit of a container holding 50k new files
    const filesData = steps.has('commit') ? fs.readFileSync(filesTar) : Buffer.alloc(0);
    if (steps.has('commit')) row('docker commit (50k new files)', await interleaved(runs, ours, builtin, async (d, i) => {
      await d.docker(['create', '--name', `c${i}`, 'bb', 'true']);
      // `docker cp - CTR:/` reads a tar on stdin: the 50k files land through the driver's mount.
      await d.docker(['cp', '-', `c${i}:/`], { input: filesData });
      const ms = await timed(() => d.docker(['commit', `c${i}`, `committed${i}`]));
      await d.docker(['rm', `c${i}`]);
      await d.docker(['rmi', `committed${i}`]);
      return ms;
    }));

    // diff of ~100 changes over a 100k-file image
    if (steps.has('diff')) {
      const changes = [
        'i=0; while [ $i -lt 40 ]; do echo x >> /g/group-1/pkg-11/file-$i.js; i=$((i+1)); done',
        'mkdir /g/new; i=0; while [ $i -lt 40 ]; do echo n > /g/new/f$i; i=$((i+1)); done',
        'i=0; while [ $i -lt 20 ]; do rm /g/group-2/pkg-12/file-$i.js; i=$((i+1)); done',
      ].join('; ');
      await both(['run', '--name', 'dchg', 'large', 'sh', '-c', changes]);
      const lines = (await ours.docker(['diff', 'dchg'])).out.split('\n').filter(Boolean).length;
      row(`docker diff (${lines} changes, 100k-file image)`, await interleaved(runs, ours, builtin,
        (d) => timed(() => d.docker(['diff', 'dchg']))));
    }
  } finally {
    await Promise.allSettled([ours.stop(), builtin.stop()]);
    const { stderr } = await plugin.stop();
    // PLUGIN_LOG=FILE keeps what the plugin process printed (its errors; a profile's path).
    if (process.env.PLUGIN_LOG) fs.writeFileSync(process.env.PLUGIN_LOG, stderr);
    spawnSync('bash', ['-c', `grep -o ' ${scratch}/[^ ]*' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l`]);
    ext4.remove();
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  console.log(`\nmedian wall time of the docker command, ms (${runs} runs; run latency ${runs * 3}); load average ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}\n`);
  console.log(table(['step', 'ours (plugin)', 'built-in overlay2', 'built-in ÷ ours'], rows));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
