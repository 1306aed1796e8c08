// One bench/bombs.ts case in a process of its own. `decode FILE DECODER`: decompress and count;
// `apply HOME FILE`: applyDiff of a (compressed) layer into a new layer of a driver at HOME. Prints
// one JSON line with the process's VmHWM.
import * as fs from 'node:fs';
import { decompressed, type ZstdDecoder } from '../src/tar/decompress.js';
import { Overlay2Driver } from '../src/driver.js';

const [what, a, b] = process.argv.slice(2);
const result: Record<string, unknown> = {};
try {
  if (what === 'decode') {
    let bytes = 0;
    for await (const c of decompressed(fs.createReadStream(a), { zstd: b as ZstdDecoder })) bytes += c.length;
    result.bytes = bytes;
  } else {
    const d = await Overlay2Driver.init(a);
    const id = `layer-${process.pid}`;
    await d.create(id);
    result.bytes = await d.applyDiff(id, '', fs.createReadStream(b));
    await d.remove(id);
  }
  result.ok = true;
} catch (e) {
  result.ok = false;
  result.code = (e as { code?: string }).code;
  result.message = (e as Error).message.slice(0, 200);
}
result.hwmKiB = Number(/^VmHWM:\s*(\d+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0);
console.log(JSON.stringify(result));
