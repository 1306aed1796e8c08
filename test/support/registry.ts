// A private image registry for the CRI test: Debian's docker-registry (distribution 2.x) on 127.0.0.1 at a
// free port, plain HTTP, no auth, its storage in a temp dir; images go in with skopeo.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync, readFileSync, openSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';
import { request } from 'node:http';
import { join } from 'node:path';
import { run, sleep } from './containerd.js';

export const REGISTRY = '/usr/bin/docker-registry';
export const SKOPEO = '/usr/bin/skopeo';

export function whyNoRegistry(): string {
  if (!existsSync(REGISTRY)) return `${REGISTRY} is missing (apt-get install docker-registry)`;
  if (!existsSync(SKOPEO)) return `${SKOPEO} is missing (apt-get install skopeo)`;
  return '';
}

export interface PrivateRegistry {
  /** host:port, as image references name it. */
  host: string;
  /** skopeo copy SOURCE docker://HOST/NAME (plain HTTP). */
  push(source: string, name: string): Promise<void>;
  stop(): Promise<void>;
  log(): string;
}

/** A port nobody listens on right now (the registry takes it a moment later). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function get(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, (res) => { res.resume(); resolve(res.statusCode ?? 0); });
    req.once('error', () => resolve(0));
    req.end();
  });
}

export async function startRegistry(dir: string): Promise<PrivateRegistry> {
  mkdirSync(join(dir, 'storage'), { recursive: true });
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const config = join(dir, 'config.yml');
  writeFileSync(config, [
    'version: 0.1',
    'log:',
    '  level: warn',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${join(dir, 'storage')}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: ${host}`,
    '',
  ].join('\n'));
  const logFile = join(dir, 'registry.log');
  const out = openSync(logFile, 'a');
  const child = spawn(REGISTRY, ['serve', config], { stdio: ['ignore', out, out] });
  closeSync(out);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  const until = Date.now() + 30_000;
  while ((await get(`http://${host}/v2/`)) !== 200) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited ${child.exitCode}:\n${log().slice(-2000)}`);
    if (Date.now() > until) {
      await stop();
      throw new Error(`docker-registry did not answer on ${host} within 30 s:\n${log().slice(-2000)}`);
    }
    await sleep(50);
  }
  const push = async (source: string, name: string) => {
    await run(SKOPEO, ['copy', '--insecure-policy', '--dest-tls-verify=false', source, `docker://${host}/${name}`], { what: 'skopeo' });
  };
  return { host, push, stop, log };
}
