// User and group names for tar headers. Docker 20.10 builds headers with Go's tar.FileInfoHeader,
// which looks up the file's HOST uid/gid with os/user (glibc's getpwuid_r/getgrgid_r through NSS
// "files" on a normal host) and leaves the name empty when there is no entry. We read the same
// databases the same way (first matching line wins, Go's/glibc's line rules), once per export.
import { readFileSync } from 'node:fs';

export interface IdNameFiles {
  passwd: string;
  group: string;
}

const DEFAULT_FILES: IdNameFiles = { passwd: '/etc/passwd', group: '/etc/group' };

/** uid → user name and gid → group name, as latin1 "byte strings" (one char per byte). */
export class IdNames {
  private users: Map<number, string> | null = null;
  private groups: Map<number, string> | null = null;

  constructor(private readonly files: IdNameFiles = DEFAULT_FILES) {}

  userName(uid: number): string {
    this.users ??= parseColonFile(this.files.passwd, 7);
    return this.users.get(uid) ?? '';
  }

  groupName(gid: number): string {
    this.groups ??= parseColonFile(this.files.group, 4);
    return this.groups.get(gid) ?? '';
  }
}

/**
 * id → name from /etc/passwd (7 fields: name:pw:uid:gid:gecos:home:shell) or /etc/group (4 fields:
 * name:pw:gid:members). Mirrors Go's os/user pure parser, which follows glibc: lines are trimmed,
 * blank and '#' lines skipped, NIS "+"/"-" lines ignored, ids must be plain decimal, and the first
 * matching line wins. A missing or unreadable file simply yields no names.
 */
function parseColonFile(path: string, fields: number): Map<number, string> {
  const out = new Map<number, string>();
  let text: string;
  try {
    text = readFileSync(path, 'latin1');
  } catch {
    return out;
  }
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line[0] === '#') continue;
    const parts = line.split(':');
    if (parts.length < fields) continue; // passwd lines need 6 colons, group lines 3
    const name = parts[0]!;
    if (name === '' || name[0] === '+' || name[0] === '-') continue;
    const idText = parts[2]!;
    if (!/^[0-9]+$/.test(idText)) continue;
    if (fields === 7 && !/^-?[0-9]+$/.test(parts[3]!)) continue;
    const id = Number(idText);
    // Go compares the decimal text ("%d" of the id), so "007" never matches uid 7.
    if (String(id) !== idText) continue;
    if (!out.has(id)) out.set(id, name);
  }
  return out;
}
