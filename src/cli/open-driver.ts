// How a CLI command opens its home: the driver module is imported only when a command needs it (so
// help, --version and usage errors never load it); read-only unless the command writes; mount
// references persist in the home, so they pair up across CLI processes.
import type { HomeOpener } from './command.js';

export const openDriver: HomeOpener = async (home, options, writes) => {
  const { Overlay2Driver } = await import('../driver.js');
  return Overlay2Driver.init(home, options, { readOnly: !writes, mountReferences: 'persistent' });
};
