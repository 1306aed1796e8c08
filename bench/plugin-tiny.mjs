// A tiny layer (3 files of 300 bytes) through the plugin bin, sequential, as dockerd pulls and
// commits its many small layers: each round a Diff of it and an ApplyDiff of that tar into a new
// layer; the first call, the median and the max of the rest. What a per-stream cost (a worker
// thread's start) shows as. Prints the load average with the figures.
//   node bench/plugin-tiny.mjs [bin=dist/cli/overlay2.cjs] [rounds=30]
// Run it with </dev/null and a timeout: the plugin child shares this process's stderr.
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { existsSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadavg } from 'node:os';
const [bin = 'dist/cli/overlay2.cjs', n = '30'] = process.argv.slice(2);
const root = mkdtempSync('/var/tmp/tinyb-');
const home = join(root, 'home'), sock = join(root, 'p.sock');
const child = spawn(process.execPath, [bin, '--home', home, 'plugin', '--socket', sock], { stdio: ['ignore', 'ignore', 'inherit'] });
function call(path, body) {
  return new Promise((res, rej) => {
    const req = request({ socketPath: sock, path, method: 'POST', agent: false }, (r) => {
      const c = []; r.on('data', (d) => c.push(d)); r.on('end', () => res({ status: r.statusCode, body: Buffer.concat(c) }));
    });
    req.on('error', rej); req.end(body);
  });
}
const j = (o) => JSON.stringify(o);
while (!existsSync(sock)) await new Promise((r) => setTimeout(r, 10));
await call('/GraphDriver.Init', j({ Home: home, Opts: [], UIDMaps: null, GIDMaps: null }));
await call('/GraphDriver.Create', j({ ID: 'base', Parent: '' }));
await call('/GraphDriver.CreateReadWrite', j({ ID: 'src', Parent: 'base' }));
const dir = JSON.parse((await call('/GraphDriver.Get', j({ ID: 'src' }))).body).Dir;
for (let i = 0; i < 3; i++) writeFileSync(join(dir, `f${i}`), 'x'.repeat(300));
await call('/GraphDriver.Put', j({ ID: 'src' }));
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
const diffT = [], applyT = [];
let tar;
for (let i = 0; i < Number(n); i++) {
  let t0 = performance.now();
  const d = await call('/GraphDriver.Diff', j({ ID: 'src', Parent: 'base' }));
  diffT.push(performance.now() - t0);
  if (d.status !== 200) throw new Error('Diff ' + d.status);
  tar = d.body;
  await call('/GraphDriver.Create', j({ ID: `l${i}`, Parent: 'base' }));
  t0 = performance.now();
  const a = await call(`/GraphDriver.ApplyDiff?id=l${i}&parent=base`, tar);
  applyT.push(performance.now() - t0);
  if (a.status !== 200) throw new Error('ApplyDiff ' + a.status + a.body);
}
const f = (a) => `first ${a[0].toFixed(1)} p50 ${med(a).toFixed(1)} max ${Math.max(...a.slice(1)).toFixed(1)}`;
console.log(`${bin}\n  Diff:      ${f(diffT)} ms\n  ApplyDiff: ${f(applyT)} ms  (n=${n}, load ${loadavg().map((x) => x.toFixed(2)).join(' ')})`);
child.kill('SIGTERM');
await new Promise((r) => child.once('exit', r));
rmSync(root, { recursive: true, force: true });
