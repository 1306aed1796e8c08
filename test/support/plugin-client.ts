// A minimal client of the graphdriver plugin protocol, framed the way dockerd's pkg/plugins client
// frames it: POST /<Method>, Accept application/vnd.docker.plugins.v1.2+json, JSON or raw tar body.
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { CLI_BIN } from './cli.js';

export interface PluginReply {
  status: number;
  /** The raw response body (the JSON text, or a Diff's tar). */
  body: Buffer;
  text: string;
  json: Record<string, unknown>;
}

/** Opens a POST to `path` on the plugin socket; the caller writes the body and ends it. */
export function openCall(socket: string, path: string, method = 'POST'): { req: ClientRequest; reply: Promise<PluginReply> } {
  const req = request({
    socketPath: socket,
    path: path.startsWith('/') ? path : `/${path}`,
    method,
    headers: { Accept: 'application/vnd.docker.plugins.v1.2+json' },
    // One connection per call: a test that kills a connection must not hit another call's.
    agent: false,
  });
  const reply = new Promise<PluginReply>((resolve, reject) => {
    req.once('error', reject);
    req.once('response', (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('error', reject);
      res.once('end', () => {
        const body = Buffer.concat(chunks);
        const text = body.toString('utf8');
        let json: Record<string, unknown> = {};
        try { json = JSON.parse(text); } catch { /* a tar, or not JSON */ }
        resolve({ status: res.statusCode ?? 0, body, text, json });
      });
    });
  });
  return { req, reply };
}

/** One call with a JSON (object), raw (string/Buffer) or empty body. */
export function pluginCall(socket: string, path: string, body?: object | string | Buffer): Promise<PluginReply> {
  const { req, reply } = openCall(socket, path);
  if (body === undefined) req.end();
  else if (typeof body === 'string' || Buffer.isBuffer(body)) req.end(body);
  else req.end(JSON.stringify(body));
  return reply;
}

/** GraphDriver.METHOD with `body`, which must answer 200: its JSON. */
export async function graphDriverCall(socket: string, method: string, body: object): Promise<PluginReply['json']> {
  const r = await pluginCall(socket, `/GraphDriver.${method}`, body);
  if (r.status !== 200) throw new Error(`${method} ${JSON.stringify(body)}: ${r.status} ${r.text}`);
  return r.json;
}

export interface PluginProcess {
  child: ChildProcess;
  socket: string;
  /** everything it wrote to stderr so far */
  stderr(): string;
  /** SIGTERM (or `signal`); resolves when it exited. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** How the plugin is started beyond what a user does: more of its own options (args), and a bench's
 *  probes (node flags, environment). */
export interface PluginSpawnOptions {
  /** more options of `overlay2 plugin` (e.g. --log-level debug) */
  args?: readonly string[];
  /** node options before the bin (e.g. --expose-gc, --require a probe) */
  nodeArgs?: string[];
  /** added to this process's environment */
  env?: Record<string, string>;
}

/** `overlay2 --home HOME plugin --socket SOCKET [ARGS]` as a user starts it (`cli`: another build's
 *  bin), then GraphDriver.Init as dockerd sends it. */
export async function startPluginProcess(home: string, socket: string, cli = CLI_BIN, spawnOptions: PluginSpawnOptions = {}): Promise<PluginProcess> {
  const child = spawn(process.execPath, [...(spawnOptions.nodeArgs ?? []), cli, '--home', home, 'plugin', '--socket', socket, ...(spawnOptions.args ?? [])],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...spawnOptions.env } });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  for (let i = 0; !existsSync(socket); i++) {
    if (child.exitCode !== null || i > 2000) throw new Error(`the plugin did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  const init = await pluginCall(socket, '/GraphDriver.Init', { Home: home, Opts: [], UIDMaps: null, GIDMaps: null });
  if (init.status !== 200) {
    // nobody gets a handle to stop it with: a plugin left serving would outlive the bench or test
    child.kill('SIGTERM');
    await exited;
    throw new Error(`GraphDriver.Init: ${init.status} ${init.text}`);
  }
  return {
    child, socket, stderr: () => err,
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}
