// The one reader of /proc/self/mountinfo: the mount points of this process's mount namespace, with
// the fields the driver asks about (which device, which filesystem type).
import { readFileSync } from 'node:fs';

export interface MountEntry {
  /** "major:minor" of the mounted device (field 3) */
  majMin: string;
  /** the mount point, octal escapes (\040 for a space) undone (field 5) */
  point: string;
  /** the filesystem type (the first field after the " - " separator) */
  fstype: string;
}

export function readMountInfo(): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (!line) continue;
    const f = line.split(' ');
    entries.push({
      majMin: f[2] ?? '',
      point: (f[4] ?? '').replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))),
      fstype: f[f.indexOf('-') + 1] ?? '',
    });
  }
  return entries;
}
