import { afterEach, expect, it, vi } from 'vitest';

afterEach(() => {
  vi.restoreAllMocks();
});

async function run(example: string): Promise<string> {
  const lines: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
    lines.push(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '));
  });
  await import(`../examples/${example}`);
  return lines.join('\n');
}

it('runs the README echo example', async () => {
  expect(await run('echo.mjs')).toBe('echo: hello');
});

it('runs the README request/response example', async () => {
  expect(await run('request.mjs')).toBe('pong: ping (attempts: 1)');
});

it('runs the README DNS-SD example', async () => {
  expect(await run('dns-sd.mjs')).toMatch(/^found Example chat( \(\d+\))? port 8080 ws=\/ws$/);
});
