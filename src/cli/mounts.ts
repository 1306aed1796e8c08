// Mount commands: mount, unmount, cleanup. Their references persist in the home (the driver is
// opened with mountReferences: 'persistent'), so they pair up across CLI processes.
import type { CommandContext } from './command.js';
import { write } from './output.js';

export async function mount({ args: [id], values, open }: CommandContext): Promise<number> {
  const label = typeof values.label === 'string' ? values.label : undefined;
  write((await (await open()).get(id!, label)) + '\n');
  return 0;
}

export async function unmount({ args: [id], open }: CommandContext): Promise<number> {
  await (await open()).put(id!);
  return 0;
}

export async function cleanup({ open }: CommandContext): Promise<number> {
  await (await open()).cleanup();
  return 0;
}
