import { constants } from 'node:fs';
import { open } from 'node:fs/promises';

/**
 * The few file operations the log needs. Node's `FileHandle` fits as is; tests pass a wrapper
 * that fails, stalls or short-writes to prove that nothing is acknowledged before `datasync`.
 */
export interface LogHandle {
  write(
    buffer: Uint8Array,
    offset: number,
    length: number,
    position: number,
  ): Promise<{ bytesWritten: number }>;
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  datasync(): Promise<void>;
  truncate(length: number): Promise<void>;
  stat(): Promise<{ size: number }>;
  close(): Promise<void>;
}

/** Opens (creating, mode 0600) a log segment for positional reads and writes. */
export type OpenLogFile = (path: string) => Promise<LogHandle>;

/**
 * No O_APPEND: writes go to the offset the store tracks as its last durable byte, so bytes a
 * failed write left behind are overwritten, never appended after.
 */
export const openLogFile: OpenLogFile = (path) => open(path, constants.O_RDWR | constants.O_CREAT, 0o600);

/**
 * Writes every byte or throws: a short write (a full disk often gives one before ENOSPC) is
 * continued from where it stopped, and a write of zero bytes counts as a failure, not a retry.
 */
export async function writeAll(fh: LogHandle, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
    if (!(bytesWritten > 0)) {
      throw Object.assign(new Error(`write returned ${bytesWritten} bytes at offset ${position + done}`), {
        code: 'ENOSPC',
      });
    }
    done += bytesWritten;
  }
}
