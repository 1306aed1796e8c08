// An error crosses the thread boundary as plain fields: structured clone keeps an Error's message
// but drops what callers branch on (code, errno, syscall, path) and what the apply's error wording
// reads (entry, id). Rebuilt on the main thread as the same kind of error with the same fields.
import { Overlay2Error, type Overlay2ErrorCode } from '../errors.js';

export interface WireError {
  overlay2: boolean;
  name: string;
  message: string;
  stack?: string;
  /** Own enumerable fields worth keeping (code, errno, syscall, path, dest, entry, id, option). */
  fields: Record<string, string | number>;
  cause?: WireError;
}

const FIELDS = ['code', 'errno', 'syscall', 'path', 'dest', 'entry', 'id', 'option'];

export function toWire(e: unknown, depth = 0): WireError {
  if (!(e instanceof Error)) return { overlay2: false, name: 'Error', message: String(e), fields: {} };
  const fields: Record<string, string | number> = {};
  for (const k of FIELDS) {
    const v = (e as unknown as Record<string, unknown>)[k];
    if (Object.prototype.hasOwnProperty.call(e, k) && (typeof v === 'string' || typeof v === 'number')) fields[k] = v;
  }
  const cause = (e as { cause?: unknown }).cause;
  return {
    overlay2: e instanceof Overlay2Error, name: e.name, message: e.message, stack: e.stack, fields,
    cause: cause !== undefined && depth < 2 ? toWire(cause, depth + 1) : undefined,
  };
}

export function fromWire(w: WireError): Error {
  const cause = w.cause ? fromWire(w.cause) : undefined;
  let e: Error;
  if (w.overlay2) {
    e = new Overlay2Error(w.fields.code as Overlay2ErrorCode, w.message, { cause });
  } else {
    e = new Error(w.message, cause === undefined ? undefined : { cause });
    if (w.name !== 'Error') e.name = w.name;
  }
  for (const [k, v] of Object.entries(w.fields)) {
    if (k !== 'code' || !w.overlay2) (e as unknown as Record<string, unknown>)[k] = v;
  }
  if (w.stack) e.stack = `${w.stack}\n    at (the stream worker thread)`;
  return e;
}
