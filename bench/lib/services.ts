// The two long-lived services as a user starts them (the installed bin, a fresh home) and what the
// service benches read of them from outside: call latency percentiles, the process's RSS and open
// fds, mounts left under the home, and the least-squares slope of a sampled series.
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import { performance } from 'node:perf_hooks';
import { CLI_BIN } from '../../test/support/cli.js';
import { join } from 'node:path';
import { startPluginProcess, type PluginProcess, type PluginSpawnOptions } from '../../test/support/plugin-client.js';

export { startSnapshotter, SnapshotsClient, type RunningSnapshotter } from '../../test/support/snapshots-client.js';

/** Where containerd's applier writes into an active snapshot: the bind mount's source (no parent),
 *  else the overlay's upperdir. */
export function upperOf(mounts: { type: string; source: string; options: string[] }[]): string {
  const m = mounts[0];
  if (m?.type === 'bind') return m.source;
  const upper = m?.options.find((o) => o.startsWith('upperdir='))?.slice('upperdir='.length);
  if (!upper) throw new Error(`no upper dir in ${JSON.stringify(mounts)}`);
  return upper;
}

export interface PluginReply { status: number; json: Record<string, unknown>; text: string }

/** A GraphDriver client on keep-alive connections, as dockerd's (one agent shared by its calls). */
export class PluginClient {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  constructor(readonly socket: string) {}

  call(method: string, body: object | Buffer | NodeJS.ReadableStream = {}, search = ''): Promise<PluginReply> {
    return new Promise((resolve, reject) => {
      const req = http.request({ socketPath: this.socket, path: `/${method}${search}`, method: 'POST', agent: this.agent,
        headers: { Accept: 'application/vnd.docker.plugins.v1.2+json' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let json: Record<string, unknown> = {};
          try { json = JSON.parse(text); } catch { /* not JSON */ }
          resolve({ status: res.statusCode ?? 0, json, text });
        });
      });
      req.on('error', reject);
      if (Buffer.isBuffer(body)) req.end(body);
      else if (typeof (body as NodeJS.ReadableStream).pipe === 'function') (body as NodeJS.ReadableStream).pipe(req);
      else req.end(JSON.stringify(body));
    });
  }

  /** The call, or an Error naming it and its answer unless it answered 200. */
  async ok(method: string, body: object | Buffer | NodeJS.ReadableStream = {}, search = ''): Promise<Record<string, unknown>> {
    const r = await this.call(method, body, search);
    if (r.status !== 200) throw new Error(`${method} ${search}: ${r.status} ${r.text.trim()}`);
    return r.json;
  }

  /** Diff's tar, read to the end and dropped; resolves with its length. */
  diffLength(id: string, parent = ''): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = http.request({ socketPath: this.socket, path: '/GraphDriver.Diff', method: 'POST', agent: this.agent }, (res) => {
        let n = 0;
        res.on('data', (c: Buffer) => { n += c.length; });
        res.on('error', reject);
        res.on('end', () => (res.statusCode === 200 && res.complete ? resolve(n) : reject(new Error(`Diff ${id}: ${res.statusCode}`))));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ ID: id, Parent: parent }));
    });
  }

  /** Diff of `id` piped straight into ApplyDiff of `into` (both streams through the plugin at once). */
  copyLayer(id: string, parent: string, into: string): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const req = http.request({ socketPath: this.socket, path: '/GraphDriver.Diff', method: 'POST', agent: this.agent }, (res) => {
        if (res.statusCode !== 200) { res.resume(); reject(new Error(`Diff ${id}: ${res.statusCode}`)); return; }
        this.ok('GraphDriver.ApplyDiff', res, `?id=${encodeURIComponent(into)}&parent=${encodeURIComponent(parent)}`).then(resolve, reject);
      });
      req.on('error', reject);
      req.end(JSON.stringify({ ID: id, Parent: parent }));
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

export interface RunningPlugin extends PluginProcess {
  /** keep-alive calls, as dockerd makes them */
  client: PluginClient;
}

/** The plugin as a user starts it (test/support/plugin-client.ts), with a keep-alive client. */
export async function startPlugin(home: string, socket: string, cli = CLI_BIN, spawnOptions: PluginSpawnOptions = {}): Promise<RunningPlugin> {
  const p = await startPluginProcess(home, socket, cli, spawnOptions);
  const client = new PluginClient(socket);
  return { ...p, client, stop: async (signal?: NodeJS.Signals) => { client.close(); await p.stop(signal); } };
}

/** The plugin soak's work (bench/services-soak.ts, bench/plugin-memory.ts): `base`, and `src` on it
 *  holding 300 files, made first; then a cycle is CreateReadWrite + Get + Exists + Put + Remove of a
 *  fresh layer, a stream Diff of `src` piped into ApplyDiff of a fresh layer, then its Remove. */
export async function pluginSoakWork(c: PluginClient): Promise<{ cycle(i: number): Promise<void>; stream(k: number): Promise<void> }> {
  await c.ok('GraphDriver.Create', { ID: 'base', Parent: '' });
  await c.ok('GraphDriver.CreateReadWrite', { ID: 'src', Parent: 'base' });
  const dir = (await c.ok('GraphDriver.Get', { ID: 'src' })).Dir as string;
  for (let d = 0; d < 3; d++) {
    mkdirSync(join(dir, `d${d}`));
    for (let f = 0; f < 100; f++) writeFileSync(join(dir, `d${d}`, `f${f}`), `soak ${d}/${f}\n`.repeat(1 + (f % 40)));
  }
  await c.ok('GraphDriver.Put', { ID: 'src' });
  return {
    async cycle(i) {
      const id = `c${i}`;
      await c.ok('GraphDriver.CreateReadWrite', { ID: id, Parent: 'base', MountLabel: '', StorageOpt: {} });
      await c.ok('GraphDriver.Get', { ID: id, MountLabel: '' });
      const e = await c.ok('GraphDriver.Exists', { ID: id });
      if (e.Exists !== true) throw new Error(`Exists ${id}: ${JSON.stringify(e)}`);
      await c.ok('GraphDriver.Put', { ID: id });
      await c.ok('GraphDriver.Remove', { ID: id });
    },
    async stream(k) {
      const id = `s${k}`;
      await c.ok('GraphDriver.Create', { ID: id, Parent: 'base', MountLabel: '', StorageOpt: {} });
      await c.copyLayer('src', 'base', id);
      await c.ok('GraphDriver.Remove', { ID: id });
    },
  };
}

/** Latencies (ms) of one kind of call. */
export class Latencies {
  readonly ms: number[] = [];
  failed = 0;
  async time<T>(fn: () => Promise<T>): Promise<T | undefined> {
    const t = performance.now();
    try {
      return await fn();
    } catch {
      this.failed++;
      return undefined;
    } finally {
      this.ms.push(performance.now() - t);
    }
  }
  percentile(p: number): number {
    const s = [...this.ms].sort((a, b) => a - b);
    return s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]! : NaN;
  }
}

export function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

/** Mount points at or below `dir` in this mount namespace. */
export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '')
    .filter((p) => p === dir || p.startsWith(dir + '/'));
}

/** VmRSS of a process, KiB. */
export function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Least-squares slope of y over x. */
export function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n, my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0, den = 0;
  for (let i = 0; i < n; i++) { num += (xs[i]! - mx) * (ys[i]! - my); den += (xs[i]! - mx) ** 2; }
  return den === 0 ? 0 : num / den;
}

/** The standard error of the least-squares slope: a slope within ~2 of these of zero is zero within noise. */
export function slopeError(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, c) => a + c, 0) / n;
  const sxx = xs.reduce((a, x) => a + (x - mx) ** 2, 0);
  return sxx === 0 ? NaN : residualSd(xs, ys) / Math.sqrt(sxx);
}

/** The residual standard deviation of y around its least-squares line: the noise a slope is read against. */
export function residualSd(xs: number[], ys: number[]): number {
  const b = slope(xs, ys);
  const n = xs.length;
  const mx = xs.reduce((a, c) => a + c, 0) / n, my = ys.reduce((a, c) => a + c, 0) / n;
  const ss = xs.reduce((acc, x, i) => acc + (ys[i]! - (my + b * (x - mx))) ** 2, 0);
  return Math.sqrt(ss / Math.max(1, n - 2));
}
