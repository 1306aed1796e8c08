// `docker commit` of a container holding 5,000 new files on three private dockerd 20.10 in the same
// run: one on our managed plugin (`overlay2 plugin bundle`, `docker plugin create/enable`, dockerd
// restarted with --storage-driver NAME:latest), one on our plugin started beside dockerd (`overlay2
// plugin`), one on Docker's built-in overlay2.
//   npm run build:ts && node dist/bench/docker-managed.js [runs=5] [files=5000]
// Each figure is the wall time of `docker commit` (client start included on all sides), median of
// `runs`, the daemons taking turns. The files land in a created container with `docker cp -` first
// (untimed). All three data roots are on one fresh ext4 (a loop image), as in bench/docker.ts.
// MANAGED_NODE_ARGS='--cpu-prof --cpu-prof-dir=/var/lib/overlay2/prof' profiles the managed
// plugin (the profiles land in DATA_ROOT/plugins/ID/propagated-mount/prof, kept under PROFILE_OUT).
import * as fs from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { spawnSync } from 'node:child_process';
import { rootfsTar, sh, smallFilesTar } from './lib/docker-data.js';
import { fmtMs, median, ratio, table } from './lib/stats.js';
import { mountFreshExt4, type FreshExt4 } from './lib/fresh-ext4.js';
import {
  whyNoDocker, startDockerd, startManagedDockerd, startPluginProcess, uniquePluginName, type PrivateDockerd, type ManagedDockerd,
} from './lib/dockerd.js';

const runs = Number(process.argv[2] ?? 5);
const files = Number(process.argv[3] ?? 5000);

async function main(): Promise<void> {
  const why = whyNoDocker();
  if (why) {
    console.error(`docker-managed bench: cannot run here: ${why}`);
    process.exit(1);
  }
  console.error('preparing data sets in bench/.data/docker (once) ...');
  const bbTar = rootfsTar('busybox', () => undefined);
  const filesData = fs.readFileSync(smallFilesTar(files));

  const scratch = fs.mkdtempSync('/tmp/ovl2-dkm-');
  // SHARED_DISK=1: on the machine's own disk instead, beside whatever else writes there
  const ext4: FreshExt4 | null = process.env.SHARED_DISK === '1' ? null : mountFreshExt4(scratch, 8, 'disk');
  const cli = join(process.cwd(), 'dist', 'cli', 'overlay2.cjs');
  const name = uniquePluginName('ovl2-bm');
  const bundle = join(scratch, 'bundle');
  sh(process.execPath, [cli, 'plugin', 'bundle', '-o', bundle, '--name', name]);
  if (process.env.MANAGED_NODE_ARGS) {
    const config = JSON.parse(fs.readFileSync(join(bundle, 'config.json'), 'utf8'));
    // node's own flags, before the script (NODE_OPTIONS refuses --cpu-prof)
    config.entrypoint.splice(1, 0, ...process.env.MANAGED_NODE_ARGS.split(' ').filter(Boolean));
    fs.writeFileSync(join(bundle, 'config.json'), JSON.stringify(config));
  }
  const legacyName = uniquePluginName('ovl2-bl');
  const legacyPlugin = await startPluginProcess(cli, legacyName);
  const daemons: [string, PrivateDockerd][] = [];
  const rows: (string | number)[][] = [];
  try {
    const started = await Promise.allSettled([
      startManagedDockerd(join(scratch, 'm'), bundle, name),
      startDockerd(join(scratch, 'p'), legacyName, { experimental: true }),
      startDockerd(join(scratch, 'b'), 'overlay2'),
    ]);
    const labels = ['managed plugin', 'plugin beside dockerd', 'built-in overlay2'];
    started.forEach((r, k) => { if (r.status === 'fulfilled') daemons.push([labels[k]!, r.value]); });
    for (const r of started) if (r.status === 'rejected') throw r.reason;
    const managed = (started[0] as PromiseFulfilledResult<ManagedDockerd>).value;
    await Promise.all(daemons.map(([, d]) => d.docker(['import', bbTar, 'bb'])));
    const times = new Map<string, number[]>(daemons.map(([w]) => [w, []]));
    for (let i = 0; i < runs; i++) {
      // a different daemon goes first each round
      const order = daemons.map((_, k) => daemons[(k + i) % daemons.length]!);
      for (const [what, d] of order) {
        await d.docker(['create', '--name', `c${i}`, 'bb', 'true']);
        await d.docker(['cp', '-', `c${i}:/`], { input: filesData });
        const t0 = performance.now();
        await d.docker(['commit', `c${i}`, `committed${i}`]);
        times.get(what)!.push(performance.now() - t0);
        await d.docker(['rm', `c${i}`]);
        await d.docker(['rmi', `committed${i}`]);
      }
    }
    const builtinMs = median(times.get('built-in overlay2')!);
    for (const [what] of daemons) {
      const ms = median(times.get(what)!);
      rows.push([what, fmtMs(ms), ratio(builtinMs, ms)]);
      console.error(`${what}: ${times.get(what)!.map(fmtMs).join(', ')} ms`);
    }
    if (process.env.MANAGED_NODE_ARGS && process.env.PROFILE_OUT) {
      await managed.stop();
      fs.cpSync(join(managed.propagated, 'prof'), process.env.PROFILE_OUT, { recursive: true });
    }
  } finally {
    await Promise.allSettled(daemons.map(([, d]) => d.stop()));
    await legacyPlugin.stop();
    spawnSync('bash', ['-c', `grep -o ' ${scratch}/[^ ]*' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l`]);
    ext4?.remove();
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  console.log(`\ndocker commit of a container holding ${files} new files: median wall time, ms (${runs} runs); load average ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}\n`);
  console.log(table(['dockerd on', 'docker commit ms', 'built-in ÷ this'], rows));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
