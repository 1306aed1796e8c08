// `overlay2 snapshotter`: serves the home to containerd as a proxy snapshotter until SIGTERM or SIGINT,
// then shuts down cleanly (calls in flight finish or are cut after the grace time, socket removed).
import type { CommandContext } from './command.js';
import { serveSnapshotter, DEFAULT_SNAPSHOTTER_SOCKET, type LogLevel } from '../snapshotter/server.js';

const LEVELS: readonly LogLevel[] = ['debug', 'info', 'error'];

export async function snapshotter({ values, usage, open }: CommandContext): Promise<number> {
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  const grace = values.grace === undefined ? undefined : Number(str(values.grace));
  if (grace !== undefined && !(grace >= 0)) usage(`--grace needs a number of seconds, got ${values.grace}`);
  const level = str(values['log-level']) ?? 'info';
  if (!LEVELS.includes(level as LogLevel)) usage(`--log-level is one of ${LEVELS.join(', ')}, got ${level}`);

  const driver = await open();
  const handle = await serveSnapshotter(driver, {
    socket: str(values.socket) ?? DEFAULT_SNAPSHOTTER_SOCKET,
    graceMs: grace === undefined ? undefined : grace * 1000,
    logLevel: level as LogLevel,
    remoteLayers: (values['remote-layers'] as string[] | undefined) ?? [],
  });
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  console.error(`overlay2 snapshotter: ${signal}: finishing calls in flight, removing ${handle.socket}`);
  await handle.close();
  return 0;
}
