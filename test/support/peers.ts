// Docker's own overlay2 driver as a CLI (built from Debian's Go packages by ../shared/peers/build.sh),
// for tests that check this driver against the real thing. Never committed; found where it was built.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

export function findPeer(name: 'moby-ovl' | 'cs-ovl'): string | null {
  const env = name === 'moby-ovl' ? process.env.OVERLAY2_MOBY_PEER : process.env.OVERLAY2_CS_PEER;
  const candidates = [env, join('/opt/ovl-peers', name), join(process.cwd(), 'bench', '.peers', name)];
  return candidates.find((c): c is string => !!c && existsSync(c)) ?? null;
}

export interface PeerResult { code: number | null; out: string; err: string }

export function runPeer(bin: string, home: string, args: string[], input?: Buffer): PeerResult {
  const r = spawnSync(bin, ['--home', home, ...args], { input, maxBuffer: 1 << 30 });
  return { code: r.status, out: r.stdout?.toString() ?? '', err: r.stderr?.toString() ?? '' };
}
