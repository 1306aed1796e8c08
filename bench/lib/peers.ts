// The peers every benchmark puts beside our figure: moby's and containers/storage's own overlay
// drivers as CLIs, built from Debian's Go packages by ../shared/peers/build.sh (never committed).
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';

export type PeerName = 'moby-ovl' | 'cs-ovl';

const ENV: Record<PeerName, string | undefined> = {
  'moby-ovl': process.env.OVERLAY2_MOBY_PEER,
  'cs-ovl': process.env.OVERLAY2_CS_PEER,
};

export function findPeer(name: PeerName): string | null {
  const candidates = [ENV[name], join('/opt/ovl-peers', name), join(process.cwd(), 'bench', '.peers', name)];
  return candidates.find((c): c is string => !!c && existsSync(c)) ?? null;
}

/** The peer, building it into bench/.peers when missing (benchmarks only; ~3 minutes once). */
export function ensurePeer(name: PeerName): string | null {
  const found = findPeer(name);
  if (found) return found;
  const script = resolve(process.cwd(), '..', 'shared', 'peers', 'build.sh');
  if (!existsSync(script)) return null;
  console.error(`building the peers with ${script} ...`);
  spawnSync('bash', [script, join(process.cwd(), 'bench', '.peers')], { stdio: 'inherit' });
  return findPeer(name);
}

export interface PeerResult { code: number | null; out: string; err: string; opMs: number }

/** Runs `peer --home HOME args...`; opMs is the peer's own "op=" time (the operation alone). */
export function runPeer(bin: string, home: string, args: string[], input?: Buffer | string): PeerResult {
  const r = spawnSync(bin, ['--home', home, ...args], { input, maxBuffer: 1 << 30 });
  const err = r.stderr?.toString() ?? '';
  const op = /op=([0-9.]+)ms/.exec(err);
  return { code: r.status, out: r.stdout?.toString() ?? '', err, opMs: op ? Number(op[1]) : NaN };
}
