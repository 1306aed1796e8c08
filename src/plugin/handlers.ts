// The GraphDriver endpoints: one function per call dockerd's proxy makes, each turning a parsed
// request into an Overlay2Driver call and the result into proxy.go's response fields. No HTTP here
// (server.ts owns sockets, bodies and status codes); errors propagate to the server as thrown.
import { closeStreamWorkers, prewarmStreamWorker } from '../stream-worker/pool.js';
import type { Readable } from 'node:stream';
import { Overlay2Driver } from '../driver.js';
import { Overlay2Error } from '../errors.js';
import { managedHome } from './managed.js';
import type { Change } from '../changes/change.js';
import {
  ACTIVATE_RESPONSE, BadRequest, CAPABILITIES_RESPONSE, changesBody, readApplyDiffQuery,
  readDriverRequest, readInitRequest, requireId, type GraphDriverResponse,
} from './protocol.js';

/** A JSON answer, a JSON answer written as it is made (GraphDriver.Changes: its text in pieces),
 *  or (GraphDriver.Diff) a tar stream sent as the response body. */
export type Reply = { json: GraphDriverResponse | typeof ACTIVATE_RESPONSE } | { jsonStream: AsyncIterable<string> } | { tar: Readable };

/** What a handler gets from the server for one call. */
export interface Call {
  /** "GraphDriver.Create": the request path without its slash. */
  method: string;
  /** The query string (ApplyDiff carries id and parent there). */
  search: string;
  /** The body parsed as a JSON object (400 on anything else). */
  json(): Promise<Record<string, unknown>>;
  /** The raw body (ApplyDiff's tar); it errors, rather than ends, when the client goes away mid-body. */
  body: Readable;
}

export interface ServiceOptions {
  /** Use this home instead of the Home dockerd sends in GraphDriver.Init (DATA_ROOT/NAME). */
  home?: string;
  /** A managed plugin's propagated mount: Init's Home is mapped to a directory inside it (managed.ts). */
  propagatedMount?: string;
  /** Driver options put before the ones dockerd sends in Init (which win on the same key). */
  options?: readonly string[];
}

/** Calls that name a layer answer 400 for an id that fails validation; the rest of the driver's errors are 500. */
const CLIENT_ERRORS = new Set(['ERR_INVALID_ID', 'ERR_BAD_OPTION', 'ERR_BAD_ARCHIVE', 'ERR_UNSAFE_ARCHIVE']);

/** The HTTP status an error from a handler is answered with. */
export function statusOf(e: unknown): number {
  if (e instanceof BadRequest) return e.status;
  if (e instanceof Overlay2Error && CLIENT_ERRORS.has(e.code)) return 400;
  return 500;
}

export class GraphDriverService {
  private driver: Overlay2Driver | null = null;
  readonly endpoints: ReadonlyMap<string, (call: Call) => Promise<Reply>>;

  constructor(private readonly options: ServiceOptions = {}) {
    this.endpoints = new Map<string, (call: Call) => Promise<Reply>>([
      ['Plugin.Activate', async () => ({ json: ACTIVATE_RESPONSE })],
      ['GraphDriver.Init', (c) => this.init(c)],
      ['GraphDriver.Capabilities', async () => ({ json: CAPABILITIES_RESPONSE })],
      ['GraphDriver.Create', (c) => this.create(c, false)],
      ['GraphDriver.CreateReadWrite', (c) => this.create(c, true)],
      ['GraphDriver.Remove', (c) => this.withId(c, (d, id) => d.remove(id).then(() => ({})))],
      ['GraphDriver.Get', (c) => this.withId(c, async (d, id, r) => ({ Dir: await d.get(id, r.MountLabel || undefined) }))],
      ['GraphDriver.Put', (c) => this.withId(c, (d, id) => d.put(id).then(() => ({})))],
      ['GraphDriver.Exists', (c) => this.withId(c, async (d, id) => ({ Exists: await d.exists(id) }))],
      ['GraphDriver.Status', async (c) => { await c.json(); return { json: { Status: this.ready(c).status() } }; }],
      ['GraphDriver.GetMetadata', (c) => this.withId(c, async (d, id) => ({ Metadata: await d.getMetadata(id) }))],
      ['GraphDriver.Cleanup', async (c) => { await c.json(); await this.cleanup(); return { json: {} }; }],
      ['GraphDriver.Changes', (c) => this.changes(c)],
      ['GraphDriver.DiffSize', (c) => this.withId(c, async (d, id, r) => ({ Size: await d.diffSize(id, r.Parent) }))],
      ['GraphDriver.Diff', (c) => this.diff(c)],
      ['GraphDriver.ApplyDiff', (c) => this.applyDiff(c)],
    ]);
  }

  /** The driver Init opened, if any (for tests and the server's shutdown). */
  get current(): Overlay2Driver | null {
    return this.driver;
  }

  /** Unmounts everything the driver mounted (GraphDriver.Cleanup, and the server's shutdown). */
  async cleanup(): Promise<void> {
    await this.driver?.cleanup();
    await closeStreamWorkers();
  }

  private ready(call: Call): Overlay2Driver {
    if (!this.driver) throw new BadRequest(409, `${call.method}: GraphDriver.Init has not been called`);
    return this.driver;
  }

  private async init(call: Call): Promise<Reply> {
    const req = readInitRequest(call.method, await call.json());
    // A second Init comes from a restarted dockerd: drop the old instance's mounts and counts first.
    const previous = this.driver;
    this.driver = null;
    await previous?.cleanup();
    const { home, propagatedMount, options = [] } = this.options;
    const where = home ?? (propagatedMount ? managedHome(call.method, propagatedMount, req.Home) : req.Home);
    this.driver = await Overlay2Driver.init(where, [...options, ...req.Opts], { uidMaps: req.UIDMaps, gidMaps: req.GIDMaps });
    // a big Remove's walks leave two of the libuv pool's four threads to the other calls' file work
    // (apply's staging and swap, small trees' removal), as the snapshotter's do
    this.driver.removeWalks = 2;
    // the first Diff or ApplyDiff finds a stream worker started (README: streams off the event loop)
    prewarmStreamWorker();
    return { json: {} };
  }

  private async create(call: Call, readWrite: boolean): Promise<Reply> {
    const req = readDriverRequest(call.method, await call.json());
    const id = requireId(call.method, req);
    const driver = this.ready(call);
    const opts = { storageOpt: req.StorageOpt, mountLabel: req.MountLabel || undefined };
    if (readWrite) await driver.createReadWrite(id, req.Parent, opts);
    else await driver.create(id, req.Parent, opts);
    return { json: {} };
  }

  private async withId(call: Call,
    fn: (d: Overlay2Driver, id: string, req: ReturnType<typeof readDriverRequest>) => Promise<GraphDriverResponse>): Promise<Reply> {
    const req = readDriverRequest(call.method, await call.json());
    const id = requireId(call.method, req);
    return { json: await fn(this.ready(call), id, req) };
  }

  /** Read on a worker thread, as ApplyDiff writes on one. */
  private async diff(call: Call): Promise<Reply> {
    const req = readDriverRequest(call.method, await call.json());
    const id = requireId(call.method, req);
    return { tar: await this.ready(call).diff(id, req.Parent, { offThread: true }) };
  }

  /** The list streamed: a layer of a million changes never sits whole in memory. Its first chunk is
   *  made before the answer starts, so a missing layer (or any early failure) is still an error
   *  status; a failure after it cuts the connection (dockerd then fails the call). */
  private async changes(call: Call): Promise<Reply> {
    const req = readDriverRequest(call.method, await call.json());
    const id = requireId(call.method, req);
    const chunks = this.ready(call).changesStream(id, req.Parent).chunks();
    const first = await chunks.next();
    async function* all(): AsyncGenerator<Change[]> {
      if (first.done) return;
      yield first.value;
      yield* chunks;
    }
    return { jsonStream: changesBody(all()) };
  }

  private async applyDiff(call: Call): Promise<Reply> {
    const { id, parent } = readApplyDiffQuery(call.method, call.search);
    // dockerd keeps the layer's tar-split data and diffID itself (we answer ReproducesExactDiffs:
    // false): recording and hashing them here too would only double the work. The files are made
    // on a worker thread (README: streams off the event loop): no other call waits behind them.
    return { json: { Size: await this.ready(call).applyDiff(id, parent, call.body, { layerRecord: false, offThread: true }) } };
  }
}
