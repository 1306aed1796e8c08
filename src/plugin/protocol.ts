// The graphdriver plugin protocol as dockerd 20.10 speaks it (moby daemon/graphdriver/proxy.go,
// pkg/plugins/client.go, docs/extend/plugins_graphdriver.md): every call is a POST to /<Method> with a
// JSON body (Content-Type application/vnd.docker.plugins.v1.2+json), answered with a JSON object whose
// `Err` is empty on success. Field names here are proxy.go's, byte for byte. Two calls stream:
// GraphDriver.Diff answers with the raw layer tar as its body, and GraphDriver.ApplyDiff sends the raw
// tar as its request body, with `id` and `parent` in the query string (unescaped by dockerd).
import type { Change, ChangeKind } from '../changes/change.js';
import type { IdMap } from '../idmap.js';

/** The media type dockerd sends in Accept; ours answer with it. */
export const PLUGIN_MEDIA_TYPE = 'application/vnd.docker.plugins.v1.2+json';

/** Where dockerd looks for plugin sockets (pkg/plugins/discovery.go socketsPath). */
export const PLUGIN_SOCKET_DIR = '/run/docker/plugins';

/** What /Plugin.Activate answers: the one subsystem this plugin implements. */
export const ACTIVATE_RESPONSE = { Implements: ['GraphDriver'] } as const;

/**
 * What /GraphDriver.Capabilities answers. ReproducesExactDiffs is false: dockerd then keeps the
 * tar-split data of every layer it imports and rebuilds the original bytes itself on `docker save`
 * and `docker push` (layer_store.go: useTarSplit = !caps.ReproducesExactDiffs). No exporter can
 * re-create a layer made by GNU tar or another builder byte for byte (header order, PAX records,
 * padding, mtimes), and with `true` dockerd checks Diff's output against the stored diffID, so
 * saving an imported image would fail.
 */
export const CAPABILITIES_RESPONSE = { Capabilities: { ReproducesExactDiffs: false } } as const;

/** proxy.go graphDriverRequest: every call but Init and ApplyDiff sends this (zero fields omitted). */
export interface GraphDriverRequest {
  ID?: string;
  Parent?: string;
  MountLabel?: string;
  StorageOpt?: Record<string, string>;
}

/** proxy.go graphDriverInitRequest; idtools.IDMap is {container_id, host_id, size}. */
export interface GraphDriverInitRequest {
  Home: string;
  Opts: string[];
  UIDMaps: IdMap[];
  GIDMaps: IdMap[];
}

/** proxy.go graphDriverResponse (dockerd reads only the field of the call it made, and Err). */
export interface GraphDriverResponse {
  Err?: string;
  Dir?: string;
  Exists?: boolean;
  Status?: [string, string][];
  Changes?: { Path: string; Kind: number }[];
  Size?: number;
  Metadata?: Record<string, string>;
  Capabilities?: { ReproducesExactDiffs: boolean };
}

/** A request the plugin rejects before touching the driver: answered with `status` and {"Err"}. */
export class BadRequest extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'BadRequest';
  }
}

/** archive.ChangeType: ChangeModify = 0, ChangeAdd = 1, ChangeDelete = 2. */
const CHANGE_KIND: Record<ChangeKind, number> = { C: 0, A: 1, D: 2 };

export function changesToWire(changes: readonly Change[]): { Path: string; Kind: number }[] {
  return changes.map((c) => ({ Path: c.path, Kind: CHANGE_KIND[c.kind] }));
}

/** GraphDriver.Changes' response body, `{"Changes":[{"Path":…,"Kind":…},…]}` and a newline (the
 *  bytes JSON.stringify gives for the whole list), as text pieces written while `chunks` are made. */
export async function* changesBody(chunks: AsyncIterable<readonly Change[]>): AsyncGenerator<string> {
  let first = true;
  for await (const chunk of chunks) {
    if (chunk.length === 0) continue;
    let text = first ? '{"Changes":[' : ',';
    text += changesToWire(chunk).map((w) => JSON.stringify(w)).join(',');
    first = false;
    yield text;
  }
  yield first ? '{"Changes":[]}\n' : ']}\n';
}

/** Parses a JSON call body: empty (Go sends nothing for nil args) is {}, anything but an object is a 400. */
export function parseJsonBody(method: string, body: Buffer): Record<string, unknown> {
  if (body.length === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw new BadRequest(400, `${method}: malformed JSON body: ${(e as Error).message}`);
  }
  // Go's encoder writes `null` for a nil pointer; treat it like an empty body.
  if (value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new BadRequest(400, `${method}: the body must be a JSON object, got ${Array.isArray(value) ? 'an array' : typeof value}`);
  }
  return value as Record<string, unknown>;
}

function optionalString(method: string, body: Record<string, unknown>, field: string): string {
  const v = body[field];
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new BadRequest(400, `${method}: ${field} must be a string, got ${JSON.stringify(v)}`);
  return v;
}

export function readDriverRequest(method: string, body: Record<string, unknown>): GraphDriverRequest {
  const req: GraphDriverRequest = {
    ID: optionalString(method, body, 'ID'),
    Parent: optionalString(method, body, 'Parent'),
    MountLabel: optionalString(method, body, 'MountLabel'),
  };
  const opt = body.StorageOpt;
  if (opt !== undefined && opt !== null) {
    if (typeof opt !== 'object' || Array.isArray(opt) || Object.values(opt).some((v) => typeof v !== 'string')) {
      throw new BadRequest(400, `${method}: StorageOpt must be an object of strings, got ${JSON.stringify(opt)}`);
    }
    req.StorageOpt = opt as Record<string, string>;
  }
  return req;
}

/** The ID of a call that names a layer; a missing or empty one is a 400. */
export function requireId(method: string, req: { ID?: string }): string {
  if (!req.ID) throw new BadRequest(400, `${method}: missing ID`);
  return req.ID;
}

function readIdMaps(method: string, value: unknown, field: string): IdMap[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new BadRequest(400, `${method}: ${field} must be an array, got ${JSON.stringify(value)}`);
  return value.map((m: unknown) => {
    const o = (m ?? {}) as Record<string, unknown>;
    const n = (k: string): number => {
      const v = o[k];
      if (typeof v !== 'number' || !Number.isInteger(v)) {
        throw new BadRequest(400, `${method}: ${field} entry ${JSON.stringify(m)} needs an integer ${k}`);
      }
      return v;
    };
    return { containerId: n('container_id'), hostId: n('host_id'), size: n('size') };
  });
}

export function readInitRequest(method: string, body: Record<string, unknown>): GraphDriverInitRequest {
  const home = optionalString(method, body, 'Home');
  if (home === '') throw new BadRequest(400, `${method}: missing Home`);
  const opts = body.Opts ?? [];
  if (!Array.isArray(opts) || opts.some((o) => typeof o !== 'string')) {
    throw new BadRequest(400, `${method}: Opts must be an array of strings, got ${JSON.stringify(body.Opts)}`);
  }
  return {
    Home: home,
    Opts: opts as string[],
    UIDMaps: readIdMaps(method, body.UIDMaps, 'UIDMaps'),
    GIDMaps: readIdMaps(method, body.GIDMaps, 'GIDMaps'),
  };
}

/** ApplyDiff's query: `id` and `parent`, parsed as Go's url.ParseQuery would. */
export function readApplyDiffQuery(method: string, search: string): { id: string; parent: string } {
  const q = new URLSearchParams(search);
  const id = q.get('id') ?? '';
  if (id === '') throw new BadRequest(400, `${method}: missing id in the query string`);
  return { id, parent: q.get('parent') ?? '' };
}
