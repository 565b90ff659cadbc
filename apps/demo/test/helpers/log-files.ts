import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Every `*.log` file under `dir` (any layout: the old single file or segments). */
export function logFiles(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[])
    .filter((name) => name.endsWith('.log'))
    .sort()
    .map((name) => join(dir, name));
}

/**
 * Every line of every log file, parsed: throws on a line that is not JSON, so "the log stays
 * parseable" is checked on the bytes, not through the store's own recovery (which skips them).
 */
export function logRecords(dir: string): { id: string; room: string; text: string }[] {
  const out: { id: string; room: string; text: string }[] = [];
  for (const file of logFiles(dir)) {
    const data = readFileSync(file, 'utf8');
    if (data.length > 0 && !data.endsWith('\n')) throw new Error(`${file}: ends without a newline`);
    for (const [i, line] of data.split('\n').entries()) {
      if (line === '') continue;
      try {
        out.push(JSON.parse(line) as { id: string; room: string; text: string });
      } catch {
        throw new Error(`${file}: line ${i + 1} is not JSON (${line.length} chars): ${line.slice(0, 80)}`);
      }
    }
  }
  return out;
}
