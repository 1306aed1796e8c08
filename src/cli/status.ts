// `overlay2 status`: moby's Status() pairs, then the layer count and the disk use of the layers.
import type { CommandContext } from './command.js';
import { write } from './output.js';

export async function status({ values, open }: CommandContext): Promise<number> {
  const d = await open();
  const layers = await d.layers();
  const diskUse = layers.reduce((n, l) => n + l.size, 0);
  if (values.json) {
    write(JSON.stringify({ ...Object.fromEntries(d.status()), Layers: layers.length, 'Disk Use': diskUse }, null, 2) + '\n');
  } else {
    const lines = [...d.status(), ['Layers', String(layers.length)], ['Disk Use', `${diskUse} bytes`]];
    write(lines.map(([k, v]) => `${k}: ${v}\n`).join(''));
  }
  return 0;
}
