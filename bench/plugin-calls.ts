// What the HTTP hop adds to the calls `docker run --rm IMG true` makes of its storage driver:
// CreateReadWrite + Get + Put of the init layer, CreateReadWrite + Get + Put of the container layer,
// Remove of both; once through the plugin over its unix socket (keep-alive, as dockerd's client),
// once as direct Overlay2Driver calls in the same process. Interleaved, median of `rounds`.
//   npm run build:ts && node dist/bench/plugin-calls.js [rounds=30]
import * as fs from 'node:fs';
import * as http from 'node:http';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Overlay2Driver } from '../src/driver.js';
import { servePlugin } from '../src/plugin/index.js';
import { fmtMs, median, ratio, table } from './lib/stats.js';

const rounds = Number(process.argv[2] ?? 30);
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function post(socket: string, path: string, body: object): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: socket, path, method: 'POST', agent,
      headers: { Accept: 'application/vnd.docker.plugins.v1.2+json', 'Content-Type': 'application/vnd.docker.plugins.v1.2+json' } }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(text)) : reject(new Error(`${path}: ${res.statusCode} ${text}`))));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

async function main(): Promise<void> {
  const scratch = fs.mkdtempSync('/tmp/ovl2-pcb-');
  const home = join(scratch, 'home');
  const socket = join(scratch, 'plugin.sock');
  const plugin = await servePlugin({ name: 'ovl2-bench', socket, home });
  await post(socket, '/GraphDriver.Init', { Home: home, Opts: [] });
  const viaPlugin = plugin.driver as Overlay2Driver;
  const direct = await Overlay2Driver.init(join(scratch, 'direct'));
  await viaPlugin.create('image', '');
  await direct.create('image', '');

  let seq = 0;
  const httpRun = async (): Promise<void> => {
    const id = `c${seq++}`;
    for (const layer of [`${id}-init`, id]) {
      await post(socket, '/GraphDriver.CreateReadWrite', { ID: layer, Parent: layer === id ? `${id}-init` : 'image', MountLabel: '', StorageOpt: {} });
      await post(socket, '/GraphDriver.Get', { ID: layer, MountLabel: '' });
      await post(socket, '/GraphDriver.Put', { ID: layer });
    }
    await post(socket, '/GraphDriver.Remove', { ID: id });
    await post(socket, '/GraphDriver.Remove', { ID: `${id}-init` });
  };
  const directRun = async (): Promise<void> => {
    const id = `c${seq++}`;
    for (const layer of [`${id}-init`, id]) {
      await direct.createReadWrite(layer, layer === id ? `${id}-init` : 'image', {});
      await direct.get(layer);
      await direct.put(layer);
    }
    await direct.remove(id);
    await direct.remove(`${id}-init`);
  };
  const t: Record<string, number[]> = { plugin: [], direct: [] };
  try {
    for (let i = 0; i < rounds + 3; i++) {
      for (const [name, run] of (i % 2 ? [['plugin', httpRun], ['direct', directRun]] : [['direct', directRun], ['plugin', httpRun]]) as [string, () => Promise<void>][]) {
        const t0 = performance.now();
        await run();
        if (i >= 3) t[name].push(performance.now() - t0);
      }
    }
  } finally {
    await plugin.close();
    await direct.cleanup();
    agent.destroy();
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  const [p, d] = [median(t.plugin), median(t.direct)];
  console.log(`\n8 driver calls of one \`docker run --rm\`, median of ${rounds}, ms; load average ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}\n`);
  console.log(table(['path', 'ms', 'per call', 'plugin ÷ direct'], [
    ['direct Overlay2Driver calls', fmtMs(d), fmtMs(d / 8), ''],
    ['through the plugin (HTTP, unix socket)', fmtMs(p), fmtMs(p / 8), ratio(p, d)],
  ]));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
