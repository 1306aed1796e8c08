// What watches an apply: progress and abort, the image-archive check, the tar-split recorder and
// the diffID. applyDiff passes one ApplyTap to the extractor (src/apply/apply.ts), which calls it
// around every uncompressed chunk and wraps its TarSink with it.
import { createHash, type Hash } from 'node:crypto';
import { Overlay2Error } from '../errors.js';
import type { TarEntry, TarSink } from '../tar/reader.js';
import type { ProgressCounter } from '../progress.js';
import type { TarSplitRecorder } from '../tar-split/record.js';

export interface ApplyTap {
  /** The sink the tar reader feeds: sees each entry, then hands it to the extractor's. */
  wrap(sink: TarSink): TarSink;
  /** Each uncompressed chunk, before and after the reader parsed it. */
  before(chunk: Buffer): void;
  after(chunk: Buffer): void;
  /** Input (still compressed) bytes read. */
  input(bytes: number): void;
  /** The archive was read to its end, before the result is swapped in: throwing discards it. */
  finish(): void;
}

export interface LayerTapResult {
  /** "sha256:<hex>" of the uncompressed tar ('' when the tap was made without a digest). */
  diffId: string;
  /** Bytes of the uncompressed tar. */
  tarSize: number;
}

/** The tap applyDiff uses: all of it optional but the diffID. */
export class LayerTap implements ApplyTap {
  private readonly hash: Hash | null;
  private tarSize = 0;
  private readonly image = new ImageArchiveDetector();
  result: LayerTapResult | null = null;

  constructor(private readonly progress: ProgressCounter, private readonly recorder: TarSplitRecorder | null,
    private readonly refuseImages: boolean, private readonly expectDiffId?: string, digest = true) {
    // Without a digest, result.diffId is '' (nobody asked for it: no record, nothing to check).
    this.hash = digest ? createHash('sha256') : null;
  }

  wrap(sink: TarSink): TarSink {
    const inner = this.recorder ? this.recorder.wrap(sink) : sink;
    return {
      entry: (e: TarEntry) => {
        this.progress.entries++;
        if (this.refuseImages) this.image.check(e);
        inner.entry(e);
      },
      data: (buf, start, end) => inner.data(buf, start, end),
      end: () => inner.end(),
    };
  }

  before(chunk: Buffer): void {
    this.hash?.update(chunk);
    this.tarSize += chunk.length;
    this.recorder?.before(chunk);
  }

  after(chunk: Buffer): void {
    this.recorder?.after(chunk);
    this.progress.report();
  }

  input(bytes: number): void {
    this.progress.addBytes(bytes);
  }

  finish(): void {
    this.result = { diffId: this.hash ? `sha256:${this.hash.digest('hex')}` : '', tarSize: this.tarSize };
    if (this.expectDiffId !== undefined && this.result.diffId !== this.expectDiffId) {
      throw new Overlay2Error('ERR_DIGEST_MISMATCH',
        `overlay2: digest mismatch: the layer tar is ${this.result.diffId}, the image's diff_ids say ${this.expectDiffId}`);
    }
    this.recorder?.finish();
    this.progress.report();
  }
}

const HEX64 = /^[0-9a-f]{64}$/;

/** An image archive (`docker save`, OCI layout) given where a layer tar is expected. Only clear
 *  cases count, since a layer may well hold a file called manifest.json: Docker's manifest.json
 *  next to a <64 hex>/layer.tar or blobs/sha256/<64 hex>, or OCI's oci-layout next to index.json
 *  or blobs/sha256/<64 hex>, all at the archive's top. */
class ImageArchiveDetector {
  private manifest = false;
  private ociLayout = false;
  private index = false;
  private blobs = false;
  private legacyLayer = false;

  check(e: TarEntry): void {
    const name = e.name.replace(/^(\.\/)+/, '').replace(/^\/+/, '');
    if (name === 'manifest.json') this.manifest = true;
    else if (name === 'oci-layout') this.ociLayout = true;
    else if (name === 'index.json') this.index = true;
    else if (name.startsWith('blobs/sha256/') && HEX64.test(name.slice(13))) this.blobs = true;
    else if (name.endsWith('/layer.tar') && HEX64.test(name.slice(0, -10))) this.legacyLayer = true;
    else return;
    if ((this.manifest && (this.blobs || this.legacyLayer)) || (this.ociLayout && (this.index || this.blobs))) {
      throw new Overlay2Error('ERR_BAD_ARCHIVE',
        'overlay2: bad archive: this is an image archive (docker save / OCI layout), not a layer: use `overlay2 load` (driver.load)');
    }
  }
}
