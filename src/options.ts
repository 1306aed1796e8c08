// Driver options ("overlay2.*", as dockerd's --storage-opt) and per-layer storage options.
import { Overlay2Error } from './errors.js';
import { defaultThinOptions, parseThinOption, settleThinOptions, type ThinOptions } from './thin/options.js';

export interface DriverOptions {
  /** overlay2.override_kernel_check: accepted for compatibility; the kernel check is a warning only. */
  overrideKernelCheck: boolean;
  /** overlay2.size: default quota of read-write layers, bytes (0 = none). Needs XFS project quotas. */
  quotaSize: number;
  /** cvmfsMountMethod, thin.root, thin.mount_command (src/thin/options.ts) */
  thin: ThinOptions;
}

const UNITS: Record<string, number> = {
  '': 1, b: 1,
  k: 1024, kb: 1024, kib: 1024,
  m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2,
  g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3,
  t: 1024 ** 4, tb: 1024 ** 4, tib: 1024 ** 4,
  p: 1024 ** 5, pb: 1024 ** 5, pib: 1024 ** 5,
};

/** A size such as "10G", "512m", "1.5GiB" in bytes, as docker/go-units RAMInBytes reads it (binary units). */
export function parseSize(value: string, option: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  const unit = m ? UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new Overlay2Error('ERR_BAD_OPTION', `overlay2: invalid size ${JSON.stringify(value)} for ${option}`, { option });
  }
  const bytes = Math.floor(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes)) {
    throw new Overlay2Error('ERR_BAD_OPTION', `overlay2: size ${JSON.stringify(value)} for ${option} is too large`, { option });
  }
  return bytes;
}

function parseBool(value: string, option: string): boolean {
  // Go's strconv.ParseBool
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false;
  throw new Overlay2Error('ERR_BAD_OPTION', `overlay2: invalid boolean ${JSON.stringify(value)} for ${option}`, { option });
}

/** Splits "key=value" (docker's parsers.ParseKeyValueOpt): the key is trimmed and lower-cased. */
function splitOption(option: string): [string, string] {
  const eq = option.indexOf('=');
  if (eq < 0) {
    throw new Overlay2Error('ERR_BAD_OPTION', `overlay2: unable to parse key/value option: ${option}`, { option });
  }
  return [option.slice(0, eq).trim().toLowerCase(), option.slice(eq + 1).trim()];
}

/** Every driver option key, as a user writes it (the error for an unknown key lists them). */
export const DRIVER_OPTION_KEYS = ['overlay2.override_kernel_check', 'overlay2.size', 'cvmfsMountMethod', 'thin.root', 'thin.mount_command'] as const;

export function parseDriverOptions(options: readonly string[] | Record<string, string> = []): DriverOptions {
  const list = Array.isArray(options)
    ? options
    : Object.entries(options as Record<string, string>).map(([k, v]) => `${k}=${v}`);
  const out: DriverOptions = { overrideKernelCheck: false, quotaSize: 0, thin: defaultThinOptions() };
  for (const option of list) {
    if (typeof option !== 'string') {
      throw new Overlay2Error('ERR_BAD_OPTION', `overlay2: option ${JSON.stringify(option)} is not a string`);
    }
    const [key, value] = splitOption(option);
    switch (key) {
      case 'overlay2.override_kernel_check':
        out.overrideKernelCheck = parseBool(value, key);
        break;
      case 'overlay2.size':
        out.quotaSize = parseSize(value, key);
        break;
      default:
        if (parseThinOption(out.thin, key, value)) break;
        throw new Overlay2Error('ERR_BAD_OPTION', `overlay2: unknown option ${key} (the options are ${DRIVER_OPTION_KEYS.join(', ')})`, { option: key });
    }
  }
  settleThinOptions(out.thin);
  return out;
}

/** Per-layer options of create/createReadWrite (docker run --storage-opt). Only "size" exists. */
export function parseStorageOpt(storageOpt: Record<string, string> | undefined): { size: number } {
  let size = 0;
  for (const [rawKey, value] of Object.entries(storageOpt ?? {})) {
    const key = rawKey.toLowerCase();
    if (key !== 'size') {
      throw new Overlay2Error('ERR_BAD_OPTION', `overlay2: unknown storage option ${rawKey}`, { option: rawKey });
    }
    size = parseSize(String(value), 'size');
  }
  return { size };
}
