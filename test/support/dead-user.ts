// What a kill -9 leaves in HOME/.refs/.users: a user of the home that never left. Tests that plant
// a crash's leftovers by hand record one, so the next init sweeps the layer dirs as it does after a
// real crash (src/layout/home-users.ts); tests that kill a real process need none.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

export function recordDeadUser(home: string): void {
  const file = join(home, '.refs', '.users');
  let users: Record<string, string> = {};
  try { users = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>; } catch { /* none yet */ }
  const gone = spawnSync('true').pid!; // exited: its pid names no live process of that start time
  users[String(gone)] = '1';
  mkdirSync(join(home, '.refs'), { recursive: true, mode: 0o700 });
  writeFileSync(file, JSON.stringify(users), { mode: 0o600 });
}
