// The CLI as installed: the bin package.json names (the bundled CLI, dist/cli/overlay2.cjs), so the
// tests run what users run, not tsc's module graph.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const pkg = JSON.parse(readFileSync(join(process.cwd(), 'package.json'), 'utf8')) as { bin: { overlay2: string } };
export const CLI_BIN = join(process.cwd(), pkg.bin.overlay2);
