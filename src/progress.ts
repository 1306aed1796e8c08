// Progress and cancellation for the long operations (applyDiff, diff, load, save).

/** Where a long operation is. `bytes`: input read (applyDiff, load: as stored, still compressed)
 *  or output written (diff, save); `entries`: tar members passed; `totalBytes`: the whole, when known. */
export interface Progress {
  bytes: number;
  entries: number;
  totalBytes?: number;
}

export interface Control {
  /** Called as the operation advances (after each chunk) and once at its end. */
  onProgress?: (p: Progress) => void;
  /** Aborting rejects the operation with the signal's reason and leaves nothing half done. */
  signal?: AbortSignal;
}

/** Counts bytes and entries and reports them; one per operation. */
export class ProgressCounter {
  bytes = 0;
  entries = 0;

  constructor(private readonly control: Control, public totalBytes?: number) {}

  addBytes(n: number): void {
    this.bytes += n;
  }

  report(): void {
    this.control.signal?.throwIfAborted();
    this.control.onProgress?.({ bytes: this.bytes, entries: this.entries, ...(this.totalBytes === undefined ? {} : { totalBytes: this.totalBytes }) });
  }
}
