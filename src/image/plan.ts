// What loading one image means, whatever the format it came in: where its config and layer blobs
// are, and the digests they must have when the format names them.
export interface BlobRef {
  /** The file's name in the image (archive member or path under the directory). */
  name: string;
  /** "sha256:..." the bytes must hash to, when the format says (OCI descriptors, blobs/sha256/ names). */
  digest?: string;
}

export interface ImagePlan {
  config: BlobRef;
  layers: BlobRef[];
  /** Names the image was saved under (docker save's RepoTags, OCI's ref.name annotation). */
  names: string[];
}

/** blobs/sha256/<hex> names carry their digest. */
export function digestFromName(name: string): string | undefined {
  const m = /(?:^|\/)blobs\/sha256\/([0-9a-f]{64})$/.exec(name) ?? /^([0-9a-f]{64})\.json$/.exec(name);
  return m ? `sha256:${m[1]}` : undefined;
}
