// OCI image layouts: oci-layout + index.json + blobs/<alg>/<hex>. index.json points at image
// manifests, or at nested indexes (multi-platform images): there the manifest for this machine's
// platform is taken (linux/<arch>), else the only one.
import { badImage, parseDigest, hexOf } from './digest.js';
import type { BlobSource } from './blob-source.js';
import type { ImagePlan } from './plan.js';

export const OCI_LAYOUT = 'oci-layout';
export const OCI_INDEX = 'index.json';
const REF_NAME = 'org.opencontainers.image.ref.name';

interface Descriptor {
  mediaType?: string;
  digest: string;
  size?: number;
  platform?: { os?: string; architecture?: string };
  annotations?: Record<string, string>;
}

export function blobName(digest: string): string {
  return `blobs/sha256/${hexOf(digest)}`;
}

export async function ociPlans(src: BlobSource): Promise<ImagePlan[]> {
  const layout = await src.readJson(OCI_LAYOUT) as { imageLayoutVersion?: unknown };
  if (typeof layout?.imageLayoutVersion !== 'string') throw badImage(`${OCI_LAYOUT} in ${src.where} has no imageLayoutVersion`);
  const index = await src.readJson(OCI_INDEX);
  const plans: ImagePlan[] = [];
  for (const d of descriptors(index, OCI_INDEX)) {
    const name = d.annotations?.[REF_NAME];
    plans.push(await planOf(src, d, name ? [name] : [], 0));
  }
  if (plans.length === 0) throw badImage(`${OCI_INDEX} in ${src.where} lists no image`);
  return plans;
}

async function planOf(src: BlobSource, d: Descriptor, names: string[], depth: number): Promise<ImagePlan> {
  if (depth > 4) throw badImage('image indexes nest too deep');
  const doc = await verifiedJson(src, d.digest) as { mediaType?: string; manifests?: unknown; config?: unknown; layers?: unknown };
  if (Array.isArray(doc.manifests)) {
    const all = descriptors(doc, d.digest);
    const arch = ociArch();
    const pick = all.find((m) => m.platform?.os === 'linux' && m.platform.architecture === arch) ?? (all.length === 1 ? all[0] : undefined);
    if (!pick) throw badImage(`index ${d.digest} has no manifest for linux/${arch}`);
    return planOf(src, pick, names, depth + 1);
  }
  const config = doc.config as Descriptor | undefined;
  if (!config || !Array.isArray(doc.layers)) throw badImage(`manifest ${d.digest} has no config or layers`);
  parseDigest(config.digest, `manifest ${d.digest}'s config`);
  const layers = (doc.layers as Descriptor[]).map((l, i) => parseDigest(l?.digest, `manifest ${d.digest}'s layer ${i}`));
  return {
    config: { name: blobName(config.digest), digest: config.digest },
    layers: layers.map((digest) => ({ name: blobName(digest), digest })),
    names,
  };
}

function descriptors(doc: unknown, what: string): Descriptor[] {
  const list = (doc as { manifests?: unknown })?.manifests;
  if (!Array.isArray(list)) throw badImage(`${what} has no manifests list`);
  return list.map((m: Descriptor, i) => ({ ...m, digest: parseDigest(m?.digest, `${what} manifest ${i}`) }));
}

async function verifiedJson(src: BlobSource, digest: string): Promise<unknown> {
  const { sha256 } = await import('./digest.js');
  const name = blobName(digest);
  if (!src.has(name)) throw badImage(`${src.where} has no blob ${digest}`);
  const parts: Buffer[] = [];
  for await (const c of src.read(name)) parts.push(Buffer.from(c));
  const bytes = Buffer.concat(parts);
  const got = sha256(bytes);
  if (got !== digest) {
    const { mismatch } = await import('./digest.js');
    throw mismatch(name, got, digest);
  }
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw badImage(`${name} is not JSON: ${(e as Error).message}`);
  }
}

/** This machine's architecture in OCI/Go terms. */
export function ociArch(): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return map[process.arch] ?? process.arch;
}
