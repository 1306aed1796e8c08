// Thin-layer manifests: the cvmfs/docker-graphdriver fork's thin.json (and its earlier `.thin`),
// parsed strictly. The fork unmarshals with errors ignored and splices whatever it finds into paths
// and a `bash -c` line; here every field is checked before it names anything on disk:
//   thin.json  {"version":"1.0","min_version":…,"origin":…,"comment":…,
//               "layers":[{"digest":"sha256:…","url":"cvmfs://REPO/PATH"}]}   (base first;
//               the fork's tools and DUCC write the digest as bare hex, which the fork never reads)
//   .thin      {"version":…,"layers":[{"digest":…,"repo":…,"location":…}]}  -> REPO/layers/DIGEST
//              (top first: that version of the fork used the list as its branch order unreversed)
// Deviations from the fork: a second listing of a digest is dropped (the kernel refuses a repeated
// lower dir, so the fork's mount fails there); a manifest that asks for a newer reader
// (min_version) is refused instead of half-understood.
import { Overlay2Error } from '../errors.js';

/** The manifest file names, in the order a layer's diff dir is searched. */
export const MANIFEST_NAMES = ['thin.json', '.thin'] as const;
export type ManifestName = (typeof MANIFEST_NAMES)[number];

/** The format version this reader implements (the fork writes "1.0"). */
export const THIN_FORMAT_VERSION = '1.0';
/** A manifest is small; anything larger is not one (and is not read whole into memory). */
export const MANIFEST_MAX_BYTES = 1 << 20;

/** One lower layer of a thin image, resolved to a directory beneath the thin root. */
export interface ThinLayerRef {
  /** "sha256:<64 hex>" (a bare 64-hex digest, as the fork's tools and DUCC write it, is given the prefix). */
  digest: string;
  /** the repository: the first directory below the root (a CVMFS repository name) */
  repo: string;
  /** the layer tree's path inside the repository, "/"-separated, no empty, "." or ".." parts */
  path: string;
}

export interface ThinManifest {
  version: string;
  minVersion?: string;
  origin?: string;
  comment?: string;
  /** base first, as the file lists them; duplicates (by digest) already dropped, the topmost kept */
  layers: ThinLayerRef[];
  /** which of the two forms it was read from */
  form: ManifestName;
}

/** CVMFS repository names are host-like (`docker2cvmfs-ci.cern.ch`); nothing else reaches argv or a path. */
const REPO_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,253}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const BARE_HEX = /^[0-9a-f]{64}$/;
/** Characters overlay mount data and the lower file read as syntax, and control characters. */
const PATH_UNSAFE = /[,:\\\x00-\x1f\x7f]/;

function manifestError(where: string, why: string): Overlay2Error {
  return new Overlay2Error('ERR_THIN_MANIFEST', `overlay2: thin manifest ${where}: ${why}`, { path: where });
}

function unsafePath(where: string, why: string): Overlay2Error {
  return new Overlay2Error('ERR_THIN_UNSAFE_PATH', `overlay2: thin manifest ${where}: ${why}`, { path: where });
}

/** Throws ERR_THIN_MANIFEST for a manifest of more than MANIFEST_MAX_BYTES (before it is read). */
export function checkManifestSize(size: number, where: string): void {
  if (size > MANIFEST_MAX_BYTES) throw manifestError(where, `${size} bytes, over the ${MANIFEST_MAX_BYTES}-byte limit`);
}

/** Compares dotted numeric versions ("1.0" < "1.10"); a non-numeric one is a manifest error. */
export function compareVersions(a: string, b: string, where: string): number {
  const parse = (v: string): number[] => {
    if (!/^\d{1,9}(\.\d{1,9}){0,3}$/.test(v)) throw manifestError(where, `version ${JSON.stringify(v)} is not of the form 1.0`);
    return v.split('.').map(Number);
  };
  const x = parse(a), y = parse(b);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

/** Throws ERR_THIN_UNSAFE_PATH unless `repo` is a repository name that is safe as a path part and an argv word. */
export function validateRepoName(repo: unknown, where: string): string {
  if (typeof repo !== 'string') throw manifestError(where, 'the repository is not a string');
  if (repo === '.' || repo === '..' || !REPO_NAME.test(repo)) {
    throw unsafePath(where, `repository ${JSON.stringify(repo)} is not a repository name (letters, digits, "." "_" "-", not starting with "." or "-")`);
  }
  return repo;
}

/** Throws ERR_THIN_UNSAFE_PATH for a path that is absolute, climbs, is empty or carries NUL,
 *  control characters or mount-data syntax; returns it with no trailing "/". */
export function validateLayerPath(path: string, where: string): string {
  if (path.startsWith('/')) throw unsafePath(where, `path ${JSON.stringify(path)} has an absolute part`);
  const unsafe = PATH_UNSAFE.exec(path);
  if (unsafe) throw unsafePath(where, `path ${JSON.stringify(path)} contains ${JSON.stringify(unsafe[0])}`);
  const parts = path.replace(/\/+$/, '').split('/');
  for (const p of parts) {
    if (p === '..') throw unsafePath(where, `path ${JSON.stringify(path)} climbs out with ".."`);
    if (p === '' || p === '.') throw unsafePath(where, `path ${JSON.stringify(path)} has an empty or "." part`);
    if (Buffer.byteLength(p) > 255) throw unsafePath(where, `path ${JSON.stringify(path)} has a part over 255 bytes`);
  }
  if (Buffer.byteLength(path) > 4000) throw unsafePath(where, 'path is longer than 4000 bytes');
  return parts.join('/');
}

function optionalString(obj: Record<string, unknown>, key: string, where: string): string | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw manifestError(where, `"${key}" is not a string`);
  return v;
}

/** Both forms as written in the wild: "sha256:<64 hex>", or the bare 64 hex the fork's tools and
 *  DUCC put in thin.json; anything else (another algorithm, upper case, a short hex) is refused. */
function normalizeDigest(d: unknown, where: string): string {
  if (typeof d !== 'string') throw manifestError(where, '"digest" is not a string');
  if (DIGEST.test(d)) return d;
  if (BARE_HEX.test(d)) return `sha256:${d}`;
  throw manifestError(where, `digest ${JSON.stringify(d.slice(0, 80))} is neither sha256:<64 hex> nor <64 hex>`);
}

/** Splits "cvmfs://REPO/PATH"; any other scheme is a manifest error. */
export function parseLayerUrl(url: unknown, where: string): { repo: string; path: string } {
  if (typeof url !== 'string') throw manifestError(where, '"url" is not a string');
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(.*)$/s.exec(url);
  if (!m) throw manifestError(where, `url ${JSON.stringify(url.slice(0, 200))} is not of the form cvmfs://REPO/PATH`);
  if (m[1] !== 'cvmfs') throw manifestError(where, `url scheme "${m[1].slice(0, 40)}" is not supported (only cvmfs://)`);
  const rest = m[2];
  if (rest.includes('\0')) throw unsafePath(where, 'url contains NUL');
  if (rest.startsWith('/')) throw unsafePath(where, `url ${JSON.stringify(url)} names an absolute path`);
  const slash = rest.indexOf('/');
  if (slash < 0 || slash === rest.length - 1) throw manifestError(where, `url ${JSON.stringify(url)} names no path inside the repository`);
  const repo = validateRepoName(rest.slice(0, slash), where);
  return { repo, path: validateLayerPath(rest.slice(slash + 1), where) };
}

/**
 * Parses and checks a manifest's bytes. `name` says which form (thin.json or .thin); `where` names
 * the layer or file in errors. Throws ERR_THIN_MANIFEST, ERR_THIN_VERSION or ERR_THIN_UNSAFE_PATH.
 */
export function parseManifest(bytes: Buffer | string, name: ManifestName, where: string): ThinManifest {
  checkManifestSize(typeof bytes === 'string' ? Buffer.byteLength(bytes) : bytes.length, where);
  let doc: unknown;
  try {
    doc = JSON.parse(typeof bytes === 'string' ? bytes : new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw manifestError(where, `not JSON (${(e as Error).message.slice(0, 120)})`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw manifestError(where, 'not a JSON object');
  const obj = doc as Record<string, unknown>;
  if (typeof obj.version !== 'string') throw manifestError(where, '"version" is missing or not a string');
  compareVersions(obj.version, THIN_FORMAT_VERSION, where);
  const minVersion = optionalString(obj, 'min_version', where);
  if (minVersion !== undefined && minVersion !== '' && compareVersions(minVersion, THIN_FORMAT_VERSION, where) > 0) {
    throw new Overlay2Error('ERR_THIN_VERSION',
      `overlay2: thin manifest ${where}: needs a reader of version ${minVersion}; this one reads ${THIN_FORMAT_VERSION}`, { path: where });
  }
  if (!Array.isArray(obj.layers)) throw manifestError(where, '"layers" is missing or not an array');
  if (obj.layers.length === 0) throw manifestError(where, '"layers" is empty');
  const listed: ThinLayerRef[] = obj.layers.map((raw: unknown, i: number) => {
    const at = `${where} layers[${i}]`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw manifestError(at, 'not a JSON object');
    const l = raw as Record<string, unknown>;
    if (name === 'thin.json') {
      const digest = normalizeDigest(l.digest, at);
      return { digest, ...parseLayerUrl(l.url, at) };
    }
    // The earlier form: the fork resolved every entry to REPO/layers/DIGEST (location unused).
    const digest = normalizeDigest(l.digest, at);
    optionalString(l, 'location', at);
    const repo = validateRepoName(l.repo, at);
    return { digest, repo, path: `layers/${digest.slice('sha256:'.length)}` };
  });
  if (name === '.thin') listed.reverse();
  return {
    version: obj.version,
    ...(minVersion !== undefined ? { minVersion } : {}),
    ...(optionalString(obj, 'origin', where) !== undefined ? { origin: obj.origin as string } : {}),
    ...(optionalString(obj, 'comment', where) !== undefined ? { comment: obj.comment as string } : {}),
    layers: dropRepeats(listed),
    form: name,
  };
}

/** Base first in, base first out; of a digest listed more than once only the topmost listing stays
 *  (the lower copy is hidden by the upper one wherever the two agree, and they are the same tree). */
function dropRepeats(layers: ThinLayerRef[]): ThinLayerRef[] {
  const seen = new Set<string>();
  const topFirst: ThinLayerRef[] = [];
  for (let i = layers.length - 1; i >= 0; i--) {
    const key = layers[i].digest;
    const loc = `${layers[i].repo}/${layers[i].path}`;
    if (seen.has(key) || seen.has(loc)) continue;
    seen.add(key);
    seen.add(loc);
    topFirst.push(layers[i]);
  }
  return topFirst.reverse();
}

/** The thin.json this package writes: fixed key order, two-space indent, a final newline, so the same
 *  chain gives the same bytes (and the same layer diffID) every time. */
export function serializeManifest(m: { origin?: string; comment?: string; layers: ThinLayerRef[] }): Buffer {
  const doc: Record<string, unknown> = { version: THIN_FORMAT_VERSION, min_version: THIN_FORMAT_VERSION };
  if (m.origin !== undefined) doc.origin = m.origin;
  if (m.comment !== undefined) doc.comment = m.comment;
  doc.layers = m.layers.map((l) => ({ digest: l.digest, url: `cvmfs://${l.repo}/${l.path}` }));
  return Buffer.from(JSON.stringify(doc, null, 2) + '\n');
}
