import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename } from 'node:fs/promises';

/**
 * Small JSON state files of the file store (accounts, private-room lists): read whole at start,
 * rewritten whole after each change. Readers see the old or the new file, never a torn one.
 */

/** The file's text, or undefined when it does not exist yet (its directory is created, mode 0700). */
export async function readStateFile(dir: string, path: string): Promise<string | undefined> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Writes `data` as JSON through a temporary file (mode 0600), fsync and rename over `path`. */
export async function writeStateFile(path: string, data: unknown): Promise<void> {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(JSON.stringify(data));
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}
