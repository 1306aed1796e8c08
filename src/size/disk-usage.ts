// PLACEHOLDER until the usage branch lands.
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
export async function diskUsage(dir: string): Promise<{ size: number; inodes: number }> {
  const seen = new Set<string>();
  let size = 0;
  const walk = async (p: string): Promise<void> => {
    const st = await fsp.lstat(p, { bigint: true });
    const k = `${st.dev}:${st.ino}`;
    if (!seen.has(k)) { seen.add(k); size += Number(st.blocks) * 512; }
    if (st.isDirectory()) for (const n of await fsp.readdir(p)) await walk(join(p, n));
  };
  await walk(dir);
  return { size, inodes: seen.size };
}
