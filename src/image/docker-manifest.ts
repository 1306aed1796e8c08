// docker save's manifest.json: [{ Config, RepoTags, Layers }], one entry per image. The same file
// serves the legacy layout (<v1 id>/layer.tar, <hex>.json) and the OCI-style one of Docker 25+
// (blobs/sha256/<hex>), whose index.json we then do not need.
import { badImage } from './digest.js';
import { digestFromName, type ImagePlan } from './plan.js';
import type { BlobSource } from './blob-source.js';

export const DOCKER_MANIFEST = 'manifest.json';

export async function dockerPlans(src: BlobSource): Promise<ImagePlan[]> {
  const manifest = await src.readJson(DOCKER_MANIFEST);
  if (!Array.isArray(manifest) || manifest.length === 0) throw badImage(`${DOCKER_MANIFEST} in ${src.where} lists no image`);
  return manifest.map((entry: unknown, i) => {
    const e = entry as { Config?: unknown; RepoTags?: unknown; Layers?: unknown };
    if (typeof e?.Config !== 'string' || !Array.isArray(e.Layers) || !e.Layers.every((l) => typeof l === 'string')) {
      throw badImage(`${DOCKER_MANIFEST} entry ${i} in ${src.where} needs Config (a name) and Layers (names)`);
    }
    return {
      config: { name: e.Config, digest: digestFromName(e.Config) },
      layers: (e.Layers as string[]).map((name) => ({ name, digest: digestFromName(name) })),
      names: Array.isArray(e.RepoTags) ? e.RepoTags.filter((t): t is string => typeof t === 'string') : [],
    };
  });
}
