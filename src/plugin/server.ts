// servePlugin: the GraphDriver endpoints over HTTP on a unix socket, and the server's lifecycle —
// bodies in, JSON or tar out, status codes, in-flight calls, and a shutdown that leaves nothing
// mounted, no half layer and no socket behind.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { join } from 'node:path';
import { Overlay2Error } from '../errors.js';
import type { Overlay2Driver } from '../driver.js';
import { GraphDriverService, statusOf, type Call, type Reply } from './handlers.js';
import { BadRequest, PLUGIN_MEDIA_TYPE, PLUGIN_SOCKET_DIR, parseJsonBody } from './protocol.js';
import { listenOnSocket, releaseSocket } from '../service/socket.js';
import { streamWorkerStats } from '../stream-worker/pool.js';

/** The plugin name dockerd is started with (`--storage-driver overlay2-node`) when none is given. */
export const DEFAULT_PLUGIN_NAME = 'overlay2-node';

/** dockerd's built-in drivers win over a plugin of the same name (graphdriver.GetDriver). */
export const BUILTIN_DRIVERS: ReadonlySet<string> = new Set(['aufs', 'btrfs', 'devicemapper', 'fuse-overlayfs', 'overlay', 'overlay2', 'vfs', 'zfs']);

/** A JSON call body bigger than this is refused (dockerd's are a few hundred bytes). */
const MAX_JSON_BODY = 1 << 20;

/** The calls that run on a stream worker: their lines show the pool's counts, the one way to see
 *  from outside that finished workers are reused rather than a thread started per stream. */
const STREAM_CALLS: ReadonlySet<string> = new Set(['GraphDriver.Diff', 'GraphDriver.ApplyDiff']);

export interface PluginOptions {
  /** The name dockerd knows the driver by; default overlay2-node. */
  name?: string;
  /** Default /run/docker/plugins/NAME.sock, where dockerd discovers plugins. */
  socket?: string;
  /** Serve this home instead of the one dockerd sends in GraphDriver.Init (DATA_ROOT/NAME). */
  home?: string;
  /** Running as a managed plugin: Init's Home, beneath this propagated mount, is mapped to one
   *  directory inside it per driver name (src/plugin/managed.ts). */
  propagatedMount?: string;
  /** Driver options put before the ones dockerd sends in Init (a managed plugin's settings). */
  driverOptions?: readonly string[];
  /** How long close() lets in-flight calls finish before aborting them (ms); default 5000. */
  graceMs?: number;
  /** Told about every call that failed (one line each). */
  onError?: (line: string) => void;
  /** Told about every call once it is over, failed or not (one line each: method, layer, status,
   *  time; `overlay2 plugin --log-level debug`). */
  onCall?: (line: string) => void;
}

export interface PluginHandle {
  readonly name: string;
  readonly socket: string;
  /** The driver GraphDriver.Init opened (null before the first Init). */
  readonly driver: Overlay2Driver | null;
  /** Stops accepting calls, lets in-flight ones finish for graceMs then aborts them (an aborted
   *  ApplyDiff leaves no layer content), unmounts everything, and removes the socket. */
  close(): Promise<void>;
}

/** Throws ERR_BAD_OPTION unless `name` can be a plugin name dockerd routes to us. */
export function validatePluginName(name: string): void {
  const bad = (why: string): never => {
    throw new Overlay2Error('ERR_BAD_OPTION', `overlay2 plugin: invalid name ${JSON.stringify(name)}: ${why}`, { option: 'name' });
  };
  if (BUILTIN_DRIVERS.has(name)) bad('dockerd would use its built-in driver of that name');
  // ':' and ',' would be read as syntax by dockerd's option parsing; '/' would leave the socket dir.
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) bad('use letters, digits, ".", "_" and "-"');
  if (name.length > 64) bad('longer than 64 characters');
}

export async function servePlugin(options: PluginOptions = {}): Promise<PluginHandle> {
  const name = options.name ?? DEFAULT_PLUGIN_NAME;
  validatePluginName(name);
  const socket = options.socket ?? join(PLUGIN_SOCKET_DIR, `${name}.sock`);
  const graceMs = options.graceMs ?? 5000;
  const service = new GraphDriverService({ home: options.home, propagatedMount: options.propagatedMount, options: options.driverOptions });
  const inFlight = new Map<Promise<void>, { req: IncomingMessage; res: ServerResponse }>();
  let closing = false;

  const server = createServer((req, res) => {
    const done = respond(req, res);
    inFlight.set(done, { req, res });
    void done.finally(() => inFlight.delete(done));
  });
  // A layer tar can take longer than Node's default 5-minute request timeout; dockerd keeps idle
  // connections without a limit, so closing them here would race its next request.
  server.requestTimeout = 0;
  server.keepAliveTimeout = 0;

  async function respond(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    const url = new URL(req.url ?? '/', 'http://plugin');
    const method = url.pathname.replace(/^\//, '');
    // ApplyDiff names its layer in the query, the other calls in their JSON body
    let layer = url.searchParams.get('id') ?? '';
    let outcome: string;
    try {
      if (closing) throw new BadRequest(503, `${method}: the plugin is shutting down`);
      if (req.method !== 'POST') throw new BadRequest(405, `${method}: plugin calls are POST, got ${req.method}`);
      const endpoint = service.endpoints.get(method);
      if (!endpoint) throw new BadRequest(404, `${method || '/'}: not a GraphDriver plugin call`);
      const json = async (): Promise<Record<string, unknown>> => {
        const body = await readJson(method, req);
        if (typeof body.ID === 'string') layer = body.ID;
        return body;
      };
      const call: Call = { method, search: url.search, json, get body() { return completeBody(req); } };
      await send(res, await endpoint(call));
      outcome = String(res.statusCode);
    } catch (e) {
      const status = statusOf(e);
      const message = oneLine(e);
      if (status >= 500) options.onError?.(`${method}: ${message}`);
      if (res.headersSent) {
        // Mid-stream: cut the connection so dockerd reads a truncated body, never a clean end.
        res.destroy();
        outcome = `cut after ${res.statusCode}: ${message}`;
      } else if (!res.destroyed) {
        sendJson(res, status, { Err: message });
        outcome = `${status}: ${message}`;
      } else {
        outcome = `client gone: ${message}`;
      }
    }
    // after the answer, so the line never delays a call; and after the stream's worker went back to
    // the pool or was ended (a Diff cut mid-answer: maybe just before), so its counts are the ones
    // the next stream finds
    if (options.onCall) options.onCall(callLine(method, layer, outcome, started));
  }

  function sendJson(res: ServerResponse, status: number, body: object): void {
    const text = JSON.stringify(body) + '\n';
    res.writeHead(status, {
      'Content-Type': PLUGIN_MEDIA_TYPE,
      'Content-Length': Buffer.byteLength(text),
      ...(closing ? { Connection: 'close' } : {}),
    });
    res.end(text);
  }

  async function send(res: ServerResponse, reply: Reply): Promise<void> {
    if ('json' in reply) {
      sendJson(res, 200, reply.json);
      return;
    }
    if ('jsonStream' in reply) {
      res.writeHead(200, { 'Content-Type': PLUGIN_MEDIA_TYPE, ...(closing ? { Connection: 'close' } : {}) });
      // chunked; pipeline waits for the socket to drain between pieces and cuts it on a failure
      await pipeline(Readable.from(reply.jsonStream), res);
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/x-tar' });
    // pipeline destroys the export when dockerd hangs up, and the connection when the export fails.
    await pipeline(reply.tar, res);
  }

  const ino = await listenOnSocket(server, socket);

  let closed: Promise<void> | null = null;
  async function close(): Promise<void> {
    closing = true;
    const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const pending = () => Promise.allSettled([...inFlight.keys()]);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([pending(), new Promise((r) => { timer = setTimeout(r, graceMs); })]);
    clearTimeout(timer);
    for (const { req, res } of inFlight.values()) {
      req.destroy(new Error('the plugin is shutting down'));
      res.destroy();
    }
    await pending();
    server.closeAllConnections();
    await serverClosed;
    await service.cleanup();
    await releaseSocket(socket, ino);
  }

  return {
    name,
    socket,
    get driver() { return service.current; },
    close: () => (closed ??= close()),
  };
}

async function readJson(method: string, req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_JSON_BODY) throw new BadRequest(413, `${method}: body larger than ${MAX_JSON_BODY} bytes`);
    chunks.push(chunk);
  }
  return parseJsonBody(method, Buffer.concat(chunks));
}

/** A coalesced body chunk is handed on once it reaches this size (else at the end of the I/O turn). */
const BODY_CHUNK = 1 << 20;

/**
 * The request body as a stream that errors, rather than ends, when the client goes away mid-body:
 * a truncated tar that happens to stop between two members would otherwise parse as a whole (short)
 * layer. Node reports the abort too; `complete` is checked as well so this never rests on that.
 *
 * Chunks are coalesced: dockerd's HTTP client flushes every write of its tar-split pipe as a chunk
 * of its own (512-byte headers, file data in ≤ 32 KiB pieces), and each chunk costs a trip through
 * the stream machinery and the apply's input generators. What one I/O turn delivers is handed on
 * as one buffer (at most ~BODY_CHUNK), which costs one copy of the bytes.
 */
function completeBody(req: IncomingMessage): Readable {
  let parts: Buffer[] = [];
  let size = 0;
  let scheduled: NodeJS.Immediate | null = null;
  const body = new Readable({
    highWaterMark: BODY_CHUNK,
    read() {
      req.resume();
    },
    destroy(err, callback) {
      if (scheduled) clearImmediate(scheduled);
      parts = [];
      req.destroy();
      callback(err);
    },
  });
  const handOn = (): void => {
    scheduled = null;
    if (size === 0 || body.destroyed) return;
    const chunk = parts.length === 1 ? parts[0] : Buffer.concat(parts, size);
    parts = [];
    size = 0;
    if (!body.push(chunk)) req.pause();
  };
  req.on('data', (chunk: Buffer) => {
    parts.push(chunk);
    size += chunk.length;
    if (size >= BODY_CHUNK) {
      if (scheduled) clearImmediate(scheduled);
      handOn();
    } else {
      scheduled ??= setImmediate(handOn);
    }
  });
  req.on('end', () => {
    if (scheduled) clearImmediate(scheduled);
    handOn();
    if (body.destroyed) return;
    if (req.complete) body.push(null);
    else body.destroy(new Error('the client closed the connection before the body ended'));
  });
  req.on('error', (e) => body.destroy(e));
  req.on('close', () => {
    if (!req.complete && !body.destroyed) body.destroy(new Error('the client closed the connection before the body ended'));
  });
  return body;
}

function callLine(method: string, layer: string, outcome: string, started: bigint): string {
  const ms = (Number(process.hrtime.bigint() - started) / 1e6).toFixed(1);
  const line = `${method}${layer ? ` ${layer}` : ''}: ${outcome} (${ms} ms)`;
  if (!STREAM_CALLS.has(method)) return line;
  const pool = streamWorkerStats();
  return `${line}; stream workers: started ${pool.started}, reused ${pool.reused}, idle ${pool.idle}`;
}

function oneLine(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  return message.replace(/\s*\n\s*/g, ' ');
}
