// This package's version, read once from its package.json (the CLI's --version, the feature cache key).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let version: string | undefined;

export function packageVersion(): string {
  if (version !== undefined) return version;
  // src/version.ts (tests via tsx-free runs) or dist/src/version.js: the package root is above src/
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'overlay2' && pkg.version) return (version = pkg.version);
    } catch { /* not here */ }
    dir = dirname(dir);
  }
  return (version = '0.0.0');
}
