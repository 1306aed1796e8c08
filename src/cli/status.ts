// `overlay2 status`: moby's Status() pairs, then the layer count, the disk use of the layers, and the
// space interrupted work still holds (a kill -9 mid-apply leaves a staging dir; a crashed create,
// remove or load leaves .partial entries) until the next command that writes clears it.
import { lstatSync } from 'node:fs';
import type { CommandContext } from './command.js';
import { write } from './output.js';
import { staleDirs } from '../apply/leftovers.js';
import { otherLiveUsers } from '../layout/home-users.js';
import { directorySize } from '../size/directory-size.js';

export async function status({ values, open, home }: CommandContext): Promise<number> {
  const d = await open();
  const layers = await d.layers();
  const diskUse = layers.reduce((n, l) => n + l.size, 0);
  const stale = staleDirs(home, layers.map((l) => l.id), !otherLiveUsers(home));
  let staleBytes = 0;
  for (const path of stale) {
    const st = lstatSync(path, { throwIfNoEntry: false });
    staleBytes += st === undefined ? 0 : st.isDirectory() ? await directorySize(path).catch(() => 0) : st.size;
  }
  if (values.json) {
    write(JSON.stringify({ ...Object.fromEntries(d.status()), Layers: layers.length, 'Disk Use': diskUse, 'Stale Work': staleBytes }, null, 2) + '\n');
  } else {
    const lines = [...d.status(), ['Layers', String(layers.length)], ['Disk Use', `${diskUse} bytes`],
      ['Stale Work', stale.length === 0 ? '0 bytes'
        : `${staleBytes} bytes in ${stale.length} ${stale.length === 1 ? 'leftover' : 'leftovers'} of interrupted work (the next command that writes removes them)`]];
    write(lines.map(([k, v]) => `${k}: ${v}\n`).join(''));
  }
  return 0;
}
