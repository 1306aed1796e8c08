// Builds tar archives byte by byte for the import tests, hostile ones included: every field can be
// set to what an attacker would put there (a tar library would refuse to write most of them).

export interface HeaderSpec {
  name: string;
  type?: string;          // typeflag character; '0' by default
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;          // the size FIELD (defaults to data length)
  mtime?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  data?: Buffer | string; // content written after the header (padded to 512)
  /** Last word on the raw 512 bytes, before the checksum is computed. */
  patch?: (block: Buffer) => void;
  /** Store this checksum instead of the right one. */
  checksum?: number;
}

function octal(block: Buffer, off: number, len: number, value: number): void {
  const s = value.toString(8).padStart(len - 1, '0');
  if (s.length > len - 1) throw new Error(`test tar: ${value} does not fit ${len} bytes`);
  block.write(s + '\0', off, len, 'latin1');
}

/** One member: header block plus padded content. */
export function member(spec: HeaderSpec): Buffer {
  const block = Buffer.alloc(512);
  const name = Buffer.from(spec.name, 'utf8');
  if (name.length > 100) throw new Error('test tar: name longer than 100 bytes: use pax() or gnuLong()');
  name.copy(block, 0);
  const data = spec.data === undefined ? Buffer.alloc(0) : Buffer.from(spec.data);
  octal(block, 100, 8, spec.mode ?? 0o644);
  octal(block, 108, 8, spec.uid ?? 0);
  octal(block, 116, 8, spec.gid ?? 0);
  octal(block, 124, 12, spec.size ?? data.length);
  octal(block, 136, 12, spec.mtime ?? 1_600_000_000);
  block.write(spec.type ?? '0', 156, 1, 'latin1');
  if (spec.linkname) Buffer.from(spec.linkname, 'utf8').copy(block, 157, 0, 100);
  block.write('ustar\0', 257, 6, 'latin1');
  block.write('00', 263, 2, 'latin1');
  block.write('root', 265, 32, 'latin1');
  block.write('root', 297, 32, 'latin1');
  octal(block, 329, 8, spec.devmajor ?? 0);
  octal(block, 337, 8, spec.devminor ?? 0);
  spec.patch?.(block);
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of block) sum += b;
  octal(block, 148, 7, spec.checksum ?? sum);
  block[155] = 0x20;
  const pad = (512 - (data.length % 512)) % 512;
  return Buffer.concat([block, data, Buffer.alloc(pad)]);
}

/** A PAX record "LEN key=value\n" with the right length prefix. */
export function paxRecord(key: string, value: Buffer | string): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), Buffer.from(value), Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

/** A local ('x') or global ('g') PAX header member. */
export function pax(records: Array<[string, Buffer | string]>, type: 'x' | 'g' = 'x'): Buffer {
  const payload = Buffer.concat(records.map(([k, v]) => paxRecord(k, v)));
  return member({ name: 'PaxHeaders/x', type, data: payload });
}

/** A GNU long name ('L') or long link ('K') member. */
export function gnuLong(type: 'L' | 'K', value: Buffer | string): Buffer {
  return member({ name: '././@LongLink', type, data: Buffer.concat([Buffer.from(value), Buffer.alloc(1)]) });
}

export const file = (name: string, data: Buffer | string = '', extra: Partial<HeaderSpec> = {}): Buffer =>
  member({ name, data, ...extra });
export const dir = (name: string, extra: Partial<HeaderSpec> = {}): Buffer =>
  member({ name, type: '5', mode: 0o755, ...extra });
export const symlink = (name: string, target: string, extra: Partial<HeaderSpec> = {}): Buffer =>
  member({ name, type: '2', linkname: target, mode: 0o777, ...extra });
export const hardlink = (name: string, target: string, extra: Partial<HeaderSpec> = {}): Buffer =>
  member({ name, type: '1', linkname: target, ...extra });

/** The members followed by the two end-of-archive blocks. */
export function tarOf(...members: Buffer[]): Buffer {
  return Buffer.concat([...members, Buffer.alloc(1024)]);
}
