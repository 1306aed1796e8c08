// stargz-snapshotter's containerd-stargz-grpc as a plain proxy snapshotter, the peer of our
// snapshotter (built from Debian's Go sources by ../shared/peers/build-stargz.sh; never committed).
import { existsSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

export const STARGZ = process.env.OVERLAY2_STARGZ ?? '/opt/ovl-peers/containerd-stargz-grpc';

export interface RunningStargz { socket: string; pid: number; stop(): void }

/** Starts the daemon on `socket` with its state in `root`; null when it is not built here. */
export async function startStargz(socket: string, root: string): Promise<RunningStargz | null> {
  if (!existsSync(STARGZ)) return null;
  const child: ChildProcess = spawn(STARGZ, ['--address', socket, '--root', root], { stdio: 'ignore' });
  for (let i = 0; i < 200 && !existsSync(socket); i++) await sleep(50);
  if (!existsSync(socket)) {
    child.kill('SIGKILL');
    throw new Error(`${STARGZ} did not open ${socket} in 10 s`);
  }
  return { socket, pid: child.pid!, stop: () => { child.kill('SIGTERM'); } };
}
