// Decodes one file in a process of its own and reports its peak RSS (VmHWM), so a test or bench can
// tell what a hostile input costs in memory: `node decode-child.js FILE DECODER`. Prints one JSON
// line: { ok, bytes, code, message, hwmKiB }.
import * as fs from 'node:fs';
import { decompressed, type ZstdDecoder } from '../../src/tar/decompress.js';

const [file, decoder] = process.argv.slice(2);
const result: { ok: boolean; bytes: number; code?: string; message?: string; hwmKiB?: number } = { ok: false, bytes: 0 };
try {
  for await (const chunk of decompressed(fs.createReadStream(file), { zstd: (decoder ?? 'auto') as ZstdDecoder })) {
    result.bytes += chunk.length;
  }
  result.ok = true;
} catch (e) {
  result.code = (e as { code?: string }).code;
  result.message = (e as Error).message;
}
result.hwmKiB = Number(/^VmHWM:\s*(\d+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1] ?? NaN);
console.log(JSON.stringify(result));
