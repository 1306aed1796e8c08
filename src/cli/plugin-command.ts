// `overlay2 plugin`: serves the driver to dockerd as a graphdriver plugin until SIGTERM or SIGINT,
// then shuts down cleanly (in-flight calls finish or are aborted, everything unmounted, socket removed).
import type { CommandContext } from './command.js';
import { servePlugin } from '../plugin/index.js';

export async function plugin({ values, usage }: CommandContext): Promise<number> {
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  const grace = values.grace === undefined ? undefined : Number(str(values.grace));
  if (grace !== undefined && !(grace >= 0)) usage(`--grace needs a number of seconds, got ${values.grace}`);

  const handle = await servePlugin({
    name: str(values.name),
    socket: str(values.socket),
    // only an explicit --home: otherwise the Home dockerd sends in GraphDriver.Init
    home: str(values.home),
    graceMs: grace === undefined ? undefined : grace * 1000,
    onError: (line) => console.error(`overlay2 plugin: ${line}`),
  });
  console.error(`overlay2 plugin: serving ${handle.name} on ${handle.socket} (dockerd --experimental --storage-driver ${handle.name})`);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  console.error(`overlay2 plugin: ${signal}: finishing calls in flight, unmounting, removing ${handle.socket}`);
  await handle.close();
  return 0;
}
