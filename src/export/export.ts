// A layer as a tar stream, byte for byte what Docker 20.10's overlay2 Diff writes
// (pkg/archive TarWithOptions + overlayWhiteoutConverter over Go 1.19's archive/tar):
//   exportLayer   — native: walks the layer's upper dir, overlay whiteouts become AUFS ones.
//   exportChanges — naive: a mounted tree plus a change list (deleted paths become whiteouts).
//
// Docker's rules, reproduced here (see test/fixtures/export/README.md for how they were checked):
// - Go filepath.Walk order: each directory's entries in byte order, a directory before its
//   children, the root itself never; names relative, directories with a trailing "/".
// - Headers from lstat: mode = permission, setuid/setgid/sticky and c_IS* type bits; mtime in
//   whole seconds, no atime/ctime; uname/gname looked up for the HOST ids; sockets skipped.
// - Hard links: a non-directory with nlink > 1 is written in full at its first path, later paths
//   are typeflag '1' naming the first one.
// - Only security.capability among xattrs (a revision-3 value cut to revision 2), as PAX.
// - uid/gid go through the id maps (host → container) except for whiteouts.
// - An overlay whiteout (char device 0/0) becomes an empty 0600 file ".wh.NAME". The kernel links
//   all whiteouts to one inode, and Docker's hard-link map runs before the conversion: later
//   whiteouts keep the first one's original path as a (meaningless) link name. We keep it too.
// - An opaque directory gets an empty "DIR/.wh..wh..opq" entry (mode = dir mode & 0777, mtime 0,
//   the directory's owners) right after its own entry. trusted.overlay.* is never exported.
//
// Deliberate differences from Docker: Docker logs and skips entries it cannot read, encode or
// map to a container id (leaving a silently incomplete layer); we fail the stream instead. A file
// that grew since it was listed is cut at the listed size (as Docker does); one that shrank fails.
// Names are bytes: a name that is not UTF-8 is read, opened and written (PAX path/linkpath records
// with its raw bytes, as Go's archive/tar writes them) unchanged, its xattrs included.
import { Readable } from 'node:stream';
import { closeSync, readSync } from 'node:fs';
import type { Change } from '../changes/change.js';
import { Overlay2Error } from '../errors.js';
import { END_OF_ARCHIVE, TarHeaderEncoder, blockPadding } from '../tar/header.js';
import { NOT_READY, type EntrySource, type ExportEntry } from './entry.js';
import { UpperDirSource } from './upper-source.js';
import { ChangesSource } from './changes-source.js';
import type { ExportOptions } from './options.js';

export type { ExportOptions } from './options.js';

// Buffer#fill validates its arguments and calls into C++: a few hundred ns per small file's padding.
const fillZero = Uint8Array.prototype.fill;

/** Native export: the upper dir of a layer whose parent is its lower, in Docker's layer format. */
export function exportLayer(upperDir: string, opts: ExportOptions): Readable {
  return new TarStream(() => new UpperDirSource(upperDir, opts));
}

/**
 * Naive export: `changes` (from comparing the layer with its parent) read from `root`, the
 * layer's mounted tree. Entries come in the same walk order as exportLayer's, and a deleted path
 * becomes a ".wh.NAME" file where NAME sorts (mode 0600, uid/gid 0, mtime 0), so the tar equals
 * the native one for the same change set except for whiteout times, owners and stale link names,
 * and an opaque directory, which appears as whiteouts of its old children instead of a
 * ".wh..wh..opq" marker. (moby's ExportChanges sorts plain paths and stamps whiteouts with the
 * current time, atime and ctime; we do not copy that.)
 */
export function exportChanges(root: string, changes: Change[], opts: ExportOptions): Readable {
  return new TarStream(() => new ChangesSource(root, changes, opts));
}

// ---------------------------------------------------------------------------------------------
// The stream: pulls entries one at a time and packs headers and file data into fresh chunks.
// The entries come from an EntrySource (export-entry.ts).

// Chunks are pushed as they are and never reused (the reader may keep them), so the chunks a reader
// has dropped stay allocated until V8 next collects young objects — about a dozen of them at any
// time, whatever their size (measured: 4 MiB chunks left ~50 MiB of dead buffers, 1 MiB ones ~13).
// Peak RSS is bounded by that (issue #12: < 128 MiB for any layer), so 1 MiB: a fresh buffer costs
// page faults the 4 MiB ones avoided (glibc recycled those), which big files' export pays (see
// bench/RESULTS.md).
export const CHUNK_SIZE = 1 << 20;

class TarStream extends Readable {
  private source: EntrySource | null = null;
  private readonly encoder = new TarHeaderEncoder();
  private chunk: Buffer | null = null;   // the chunk being filled
  private pos = 0;
  private pending: Buffer | null = null; // header bytes that did not fit the last chunk
  private fd = -1;                       // file whose data comes next
  private data: Uint8Array | null = null; // or its contents, from the source
  private dataLeft = 0;
  private padLeft = 0;
  private trailerLeft = -1;              // -1 until the entries run out
  private waiting = false;               // for the source; resumes by itself
  private scheduled = false;

  constructor(private readonly open: () => EntrySource) {
    super({ highWaterMark: CHUNK_SIZE });
  }

  // Readable.read() calls _read() and then takes everything buffered: a chunk pushed right here
  // would be concatenated with the one the reader is about to get (a copy of every byte).
  // Producing on the next tick hands out each chunk as it was filled.
  override _read(): void {
    if (this.waiting || this.scheduled) return;
    this.scheduled = true;
    process.nextTick(() => {
      this.scheduled = false;
      if (!this.destroyed) this.pump();
    });
  }

  /** Fills and pushes chunks until the reader has enough, the archive ends or the source waits. */
  private pump(): void {
    try {
      this.source ??= this.open();
      for (;;) {
        const state = this.fill();
        if (state === 'wait') {
          this.waiting = true;
          this.source.whenReady((err) => {
            this.waiting = false;
            if (err) this.destroy(err);
            else if (!this.destroyed) this.pump();
          });
          return;
        }
        const chunk = this.chunk!.subarray(0, this.pos);
        this.chunk = null;
        this.pos = 0;
        const more = chunk.length === 0 || this.push(chunk);
        if (state === 'end') {
          this.push(null);
          return;
        }
        if (!more) return;
      }
    } catch (e) {
      this.destroy(e as Error);
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.closeFile();
    try {
      this.source?.close();
    } catch (e) {
      err ??= e as Error;
    }
    cb(err);
  }

  /** Fills this.chunk: 'full', 'end' (the last bytes of the archive are in), or 'wait'. */
  private fill(): 'full' | 'end' | 'wait' {
    const chunk = (this.chunk ??= Buffer.allocUnsafe(CHUNK_SIZE));
    while (this.pos < CHUNK_SIZE) {
      const room = CHUNK_SIZE - this.pos;
      if (this.pending !== null) {
        const n = Math.min(this.pending.length, room);
        this.pending.copy(chunk, this.pos, 0, n);
        this.pos += n;
        this.pending = n === this.pending.length ? null : this.pending.subarray(n);
      } else if (this.dataLeft > 0) {
        this.pos += this.readData(chunk, this.pos, room);
      } else if (this.padLeft > 0) {
        const n = Math.min(this.padLeft, room);
        chunk.fill(0, this.pos, this.pos + n);
        this.pos += n;
        this.padLeft -= n;
      } else if (this.trailerLeft >= 0) {
        const n = Math.min(this.trailerLeft, room);
        chunk.fill(0, this.pos, this.pos + n);
        this.pos += n;
        this.trailerLeft -= n;
        if (this.trailerLeft === 0) return 'end';
      } else {
        const entry = this.source!.next();
        if (entry === NOT_READY) return 'wait';
        if (entry === null) this.trailerLeft = END_OF_ARCHIVE.length;
        else this.startEntry(entry, chunk, room);
      }
    }
    return 'full';
  }

  /** Writes the entry's header (what fits; the rest waits in `pending`) and opens its data. */
  private startEntry(entry: ExportEntry, chunk: Buffer, room: number): void {
    const h = entry.header;
    if (entry.hasData) {
      // Opened before the header goes out, so a failure never leaves a header without its data.
      if (entry.data !== undefined) this.data = entry.data;
      else this.fd = this.source!.openData();
      this.dataLeft = h.size;
      this.padLeft = blockPadding(h.size);
    }
    // one USTAR block goes straight into the chunk; anything else is encoded aside and copied
    const direct = this.encoder.encodeInto(h, chunk, this.pos);
    if (direct > 0) {
      this.pos += direct;
      return;
    }
    const bytes = this.encoder.encode(h);
    const n = Math.min(bytes.length, room);
    bytes.copy(chunk, this.pos, 0, n);
    this.pos += n;
    if (n < bytes.length) this.pending = Buffer.from(bytes.subarray(n));
  }

  /** Reads file data straight into the chunk; exactly the size the header announced. Contents the
   *  source had are copied with their padding when it fits (builtin set/fill: Buffer#copy and
   *  Buffer#fill cost more than the copy of a small file). */
  private readData(chunk: Buffer, pos: number, room: number): number {
    if (this.data !== null) {
      const data = this.data;
      const from = data.length - this.dataLeft;
      if (this.dataLeft > room) {
        chunk.set(data.subarray(from, from + room), pos);
        this.dataLeft -= room;
        return room;
      }
      const n = this.dataLeft;
      chunk.set(from === 0 ? data : data.subarray(from), pos);
      this.dataLeft = 0;
      this.data = null;
      const pad = Math.min(this.padLeft, room - n);
      fillZero.call(chunk, 0, pos + n, pos + n + pad);
      this.padLeft -= pad;
      return n + pad;
    }
    const n = readSync(this.fd, chunk, pos, Math.min(this.dataLeft, room), null);
    if (n === 0) {
      const path = this.source!.dataPath();
      throw new Overlay2Error('ERR_BAD_ARCHIVE', `overlay2: ${path} shrank while it was being exported`, { path });
    }
    this.dataLeft -= n;
    if (this.dataLeft === 0) this.closeFile();
    return n;
  }

  private closeFile(): void {
    if (this.fd >= 0) {
      const fd = this.fd;
      this.fd = -1;
      closeSync(fd);
    }
  }
}
