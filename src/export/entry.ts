// What the export stream (export.ts) pulls tar entries from: the upper dir's scan (upper-source.ts)
// or a change list read through a mount (changes-source.ts).
import { constants as fsConstants } from 'node:fs';
import { O_CLOEXEC } from '../native/constants.js';
import type { TarHeader } from '../tar/header.js';

/** One entry to write: its header, and whether the source must open file data for it. */
export interface ExportEntry {
  header: TarHeader;
  hasData: boolean; // a regular file with size > 0: openData() gives its fd
  /** With hasData: the file's contents when the source already has them (header.size bytes, valid
   *  until the next next() call); then openData() is not called. */
  data?: Uint8Array;
}

/** Returned by next() when the source is waiting for a batch: call whenReady() and try again. */
export const NOT_READY = Symbol('not ready');

export interface EntrySource {
  next(): ExportEntry | null | typeof NOT_READY;
  /** Registers the one callback to run when next() can make progress again (or failed). */
  whenReady(cb: (err: Error | null) => void): void;
  /** Opens the data of the entry next() returned last (O_RDONLY|O_NOFOLLOW). */
  openData(): number;
  /** The path of that entry, for messages. */
  dataPath(): string;
  close(): void;
}

export const O_FILE = fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | O_CLOEXEC;
