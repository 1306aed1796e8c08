// Where the time of the plugin's GraphDriver.ApplyDiff goes: the same layer tar (the 224 MB layer of
// bench/docker.ts's `docker load`) into an empty layer, in-process from a file path, in-process
// through a PassThrough (64 KiB chunks), and POSTed to the plugin over its unix socket by curl with
// a chunked body (as dockerd sends it); beside the raw cost of that POST into a server that drops
// the body; and both again with 8 KiB chunks, as dockerd sends them. Interleaved, median of `runs`.
//   npm run build:ts && node dist/bench/plugin-apply.js [runs=5] [variants=file,piped,http,null,http8k,null8k]
import * as fs from 'node:fs';
import * as http from 'node:http';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { performance } from 'node:perf_hooks';
import { execFile, execFileSync } from 'node:child_process';
import { Overlay2Driver } from '../src/driver.js';
import { servePlugin } from '../src/plugin/index.js';
import { fillBig, rootfsTar } from './lib/docker-data.js';
import { fmtMs, median, table } from './lib/stats.js';
import { mountFreshExt4 } from './lib/fresh-ext4.js';

const runs = Number(process.argv[2] ?? 5);
const variants = (process.argv[3] ?? 'file,piped,http,null').split(',');

function curl(socket: string, path: string, tar: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-sS', '--fail-with-body', '--unix-socket', socket, '-X', 'POST', '-H', 'Transfer-Encoding: chunked',
      '-H', 'Content-Type: application/x-tar', '-T', tar, `http://plugin${path}`], (err, out, stderr) => {
      if (err) reject(new Error(`curl ${path}: ${stderr}${out}`));
      else resolve(out);
    });
  });
}

/** dockerd's way: a chunked body whose chunks are the ≤ 8 KiB writes of its tar-split pipe, each
 *  flushed on its own (Go's FlushAfterChunkWriter); a child process, as dockerd is one. */
const SMALL_CHUNK_CLIENT = `
const http = require('node:http'), fs = require('node:fs');
const [socket, path, tar] = process.argv.slice(1);
const req = http.request({ socketPath: socket, path, method: 'POST', headers: { 'Transfer-Encoding': 'chunked' } }, (res) => {
  let t = ''; res.on('data', (d) => t += d); res.on('end', () => { process.stdout.write(t); process.exit(res.statusCode === 200 ? 0 : 1); });
});
const fd = fs.openSync(tar, 'r'); const buf = Buffer.allocUnsafe(8192);
(function pump() {
  for (;;) {
    const n = fs.readSync(fd, buf, 0, buf.length, null);
    if (n === 0) return req.end();
    if (!req.write(Buffer.from(buf.subarray(0, n)))) return req.once('drain', pump);
  }
})();`;

function smallChunks(socket: string, path: string, tar: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['-e', SMALL_CHUNK_CLIENT, socket, path, tar], (err, out, stderr) => {
      if (err) reject(new Error(`client ${path}: ${stderr}${out}`));
      else resolve(out);
    });
  });
}

function post(socket: string, path: string, body: object): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: socket, path, method: 'POST' }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`${path}: ${res.statusCode} ${text}`))));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

async function main(): Promise<void> {
  const tar = rootfsTar('big200', fillBig);
  const scratch = fs.mkdtempSync('/tmp/ovl2-pab-');
  const home = join(scratch, 'home');
  // A fresh ext4 for the home: on the shared disk ext4's inode allocator crawls after anyone removes
  // many files (see applyDiff in bench/RESULTS.md), which would drown what is measured here.
  const ext4 = mountFreshExt4(home, 8, 'disk');
  const socket = join(scratch, 'plugin.sock');
  const nullSocket = join(scratch, 'null.sock');
  const sink = http.createServer((req, res) => {
    req.on('data', () => undefined);
    req.on('end', () => res.end('{}'));
  });
  let plugin: Awaited<ReturnType<typeof servePlugin>> | null = null;
  let driver: Overlay2Driver;

  let seq = 0;
  const step: Record<string, () => Promise<void>> = {
    file: async () => { await driver.applyDiff(`l${seq}`, '', tar); },
    piped: async () => { await driver.applyDiff(`l${seq}`, '', fs.createReadStream(tar).pipe(new PassThrough())); },
    http: async () => { await curl(socket, `/GraphDriver.ApplyDiff?id=l${seq}&parent=`, tar); },
    null: async () => { await curl(nullSocket, '/', tar); },
    http8k: async () => { await smallChunks(socket, `/GraphDriver.ApplyDiff?id=l${seq}&parent=`, tar); },
    null8k: async () => { await smallChunks(nullSocket, '/', tar); },
  };
  const times = new Map<string, number[]>(variants.map((v) => [v, []]));
  const cpus = new Map<string, number[]>(variants.map((v) => [v, []]));
  try {
    plugin = await servePlugin({ name: 'ovl2-bench', socket, home });
    await post(socket, '/GraphDriver.Init', { Home: home, Opts: [] });
    driver = plugin.driver as Overlay2Driver;
    await new Promise<void>((r) => sink.listen(nullSocket, r));
    for (let i = 0; i < runs + 1; i++) {
      const order = variants.map((_, k) => variants[(k + i) % variants.length]);
      for (const v of order) {
        seq++;
        if (!v.startsWith('null')) await driver.create(`l${seq}`, '');
        execFileSync('sync');
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        await step[v]();
        const ms = performance.now() - t0;
        const cpu = process.cpuUsage(c0);
        if (i === 0) continue; // warm-up round
        times.get(v)!.push(ms);
        cpus.get(v)!.push((cpu.user + cpu.system) / 1000);
        console.error(`${v}: ${fmtMs(ms)} ms (this process's CPU ${fmtMs((cpu.user + cpu.system) / 1000)} ms)`);
      }
    }
  } finally {
    await plugin?.close();
    sink.close();
    // whatever a failed run left mounted under the home, then the home itself
    execFileSync('bash', ['-c', `grep -o ' ${home}/[^ ]*' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l`]);
    ext4.remove();
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  const mb = (fs.statSync(tar).size / 1e6).toFixed(0);
  console.log(`\n${mb} MB layer tar into an empty layer, median of ${runs}, ms; load average ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}\n`);
  console.log(table(['variant', 'wall', 'CPU of the plugin process'], variants.map((v) => [v, fmtMs(median(times.get(v)!)), fmtMs(median(cpus.get(v)!))])));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
