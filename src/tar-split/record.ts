// Records a layer tar's own bytes at apply time, as Docker's tar-split does, so `save` can hand the
// layer back byte for byte (same diffID) although no exporter could re-create another writer's
// headers, padding and trailer. What is kept: every byte that is not a regular file's content
// (headers, PAX/GNU records, padding, the end-of-archive blocks and whatever follows them), and for
// each regular file its path and size; the content is read back from diff/ (assemble.ts).
// Content the extractor does not keep (whiteout and AUFS-metadata entries with data) stays inline.
//
// The file: HOME/<id>/ovl2-tar-split.gz. Docker's overlay2 never lists a layer dir (it only knows
// link, lower, diff, work, merged, committed and removes the dir whole), and Docker keeps its own
// tar-split in image/overlay2/layerdb, so the file is invisible to it. Format (gzip members,
// concatenated): "OVL2TS1\n", then records: 'R' u32le n <n raw bytes> | 'F' u32le n <n bytes
// path, as on disk> u32le hi u32le lo (size). Written to a temp name during the apply, renamed by commit().
import * as fs from 'node:fs';
import { gzipSync } from 'node:zlib';
import type { TarEntry, TarSink } from '../tar/reader.js';
import { cleanName } from '../tar/archive-safety.js';
import { TAR_WHITEOUT_PREFIX } from '../overlay-format.js';
import { nameBytes } from '../util/byte-names.js';

export const TAR_SPLIT_FILE = 'ovl2-tar-split.gz';
export const TAR_SPLIT_MAGIC = Buffer.from('OVL2TS1\n');
const FLUSH_AT = 1 << 20;

export class TarSplitRecorder {
  private readonly tmp: string;
  private fd: number;
  private parts: Buffer[] = [TAR_SPLIT_MAGIC];
  private partsLen = TAR_SPLIT_MAGIC.length;
  private chunk: Buffer | null = null;
  private pos = 0;
  private path: string | null = null;
  private size = 0;
  private emitted = false;

  constructor(private readonly file: string) {
    this.tmp = `${file}.tmp-${process.pid}`;
    this.fd = fs.openSync(this.tmp, 'w', 0o600);
  }

  wrap(sink: TarSink): TarSink {
    return {
      entry: (e: TarEntry) => {
        this.path = e.kind === 'file' && e.size > 0 ? keptPath(e.name) : null;
        this.size = e.size;
        this.emitted = false;
        sink.entry(e);
      },
      data: (buf, start, end) => {
        if (this.path !== null) {
          // The reader hands out slices of the chunk it was given (copy-free): positions are exact.
          if (buf !== this.chunk) throw new Error('overlay2: internal: tar data outside the current chunk');
          this.raw(buf, this.pos, start);
          if (!this.emitted) {
            this.fileRecord(this.path, this.size);
            this.emitted = true;
          }
          this.pos = end;
        }
        sink.data(buf, start, end);
      },
      end: () => sink.end(),
    };
  }

  before(chunk: Buffer): void {
    this.chunk = chunk;
    this.pos = 0;
  }

  after(chunk: Buffer): void {
    this.raw(chunk, this.pos, chunk.length);
    this.chunk = null;
  }

  /** Writes what is buffered; the file stays at its temp name until commit(). */
  finish(): void {
    this.flush();
    fs.fsyncSync(this.fd);
  }

  /** Gives the file its real name (the layer is complete). */
  commit(): void {
    this.close();
    fs.renameSync(this.tmp, this.file);
  }

  /** Drops the file (the apply failed). */
  discard(): void {
    this.close();
    fs.rmSync(this.tmp, { force: true });
  }

  private close(): void {
    if (this.fd >= 0) {
      fs.closeSync(this.fd);
      this.fd = -1;
    }
  }

  private raw(buf: Buffer, start: number, end: number): void {
    if (end <= start) return;
    const head = Buffer.allocUnsafe(5);
    head[0] = 0x52;
    head.writeUInt32LE(end - start, 1);
    this.push(head);
    this.push(Buffer.from(buf.subarray(start, end)));
  }

  private fileRecord(path: string, size: number): void {
    const name = nameBytes(path);
    const rec = Buffer.allocUnsafe(13 + name.length);
    rec[0] = 0x46;
    rec.writeUInt32LE(name.length, 1);
    name.copy(rec, 5);
    rec.writeUInt32LE(Math.floor(size / 0x100000000), 5 + name.length);
    rec.writeUInt32LE(size >>> 0, 9 + name.length);
    this.push(rec);
  }

  private push(b: Buffer): void {
    this.parts.push(b);
    this.partsLen += b.length;
    if (this.partsLen >= FLUSH_AT) this.flush();
  }

  private flush(): void {
    if (this.partsLen === 0) return;
    const gz = gzipSync(Buffer.concat(this.parts, this.partsLen), { level: 1 });
    for (let off = 0; off < gz.length;) off += fs.writeSync(this.fd, gz, off);
    this.parts = [];
    this.partsLen = 0;
  }
}

/** The path a regular file's content lands at in diff/, or null when the extractor does not keep it
 *  (whiteouts, AUFS metadata, names it refuses: those fail the apply anyway). */
function keptPath(name: string): string | null {
  const path = cleanName(name);
  if (path === null || path === '') return null;
  if (path.split('/').some((c) => c.startsWith(TAR_WHITEOUT_PREFIX))) return null;
  return path;
}
