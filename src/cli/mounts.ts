// Mount commands: mount, unmount, cleanup. Their references persist in the home (the driver is
// opened with mountReferences: 'persistent'), so they pair up across CLI processes.
import type { CommandContext } from './command.js';
import { write } from './output.js';
import { isMountReferenced } from '../mount/shared-refs.js';

export async function mount({ args: [id], values, open }: CommandContext): Promise<number> {
  const label = typeof values.label === 'string' ? values.label : undefined;
  write((await (await open()).get(id!, label)) + '\n');
  return 0;
}

/** Releases one reference. A layer nobody holds mounted is not an error (moby's Put returns nil, and
 *  a script's cleanup may unmount twice) but is said on stderr, so a mistyped id does not pass
 *  unnoticed; a layer that does not exist fails, as moby's Put does. */
export async function unmount({ args: [id], open, home }: CommandContext): Promise<number> {
  const d = await open();
  if (!(await d.exists(id!))) throw new Error(`overlay2: layer ${id} does not exist`);
  const held = isMountReferenced(home, id!);
  await d.put(id!);
  if (!held) console.error(`overlay2: layer ${id} is not mounted; nothing to unmount`);
  return 0;
}

export async function cleanup({ open }: CommandContext): Promise<number> {
  await (await open()).cleanup();
  return 0;
}
