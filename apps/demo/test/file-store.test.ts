import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compareIds, FileStore, isMessageId, type StoredMessage } from '../src/store/index.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'chat-store-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('file store', () => {
  it('gives strictly increasing ids and keeps every acked message across a reopen', async () => {
    const s1 = new FileStore({ dataDir: dir });
    await s1.open();
    const acked = await Promise.all(Array.from({ length: 300 }, (_, i) => s1.append('lobby', 'a', `m${i}`)));
    for (let i = 1; i < acked.length; i++) expect(compareIds(acked[i - 1]!.id, acked[i]!.id)).toBe(-1);
    await s1.close();
    const s2 = new FileStore({ dataDir: dir });
    await s2.open();
    const { messages } = await s2.read('lobby', { after: '0-0', limit: 1000 });
    expect(messages.map((m) => m.text)).toEqual(acked.map((m) => m.text));
    const next = await s2.append('lobby', 'a', 'later');
    expect(compareIds(next.id, acked.at(-1)!.id)).toBe(1);
    await s2.close();
  });

  it('recovers from a torn last line and keeps appending on a fresh line', async () => {
    const s1 = new FileStore({ dataDir: dir });
    await s1.open();
    await s1.append('lobby', 'a', 'one');
    await s1.append('lobby', 'a', 'two');
    await s1.close();
    appendFileSync(s1.path, '{"id":"9-0","room":"lobby","ni');
    const warnings: string[] = [];
    const s2 = new FileStore({ dataDir: dir, onWarning: (w) => warnings.push(w) });
    await s2.open();
    await s2.append('lobby', 'a', 'three');
    await s2.close();
    const s3 = new FileStore({ dataDir: dir });
    await s3.open();
    const { messages } = await s3.read('lobby', { limit: 10 });
    expect(messages.map((m) => m.text)).toEqual(['one', 'two', 'three']);
    expect(warnings.join()).toMatch(/torn/);
    expect(readFileSync(s3.path, 'utf8').endsWith('\n')).toBe(true);
    await s3.close();
  });

  it('skips a corrupt line in the middle without losing the rest', async () => {
    writeFileSync(
      join(dir, 'messages.log'),
      '{"id":"1-0","room":"r","nick":"a","text":"x","ts":1}\nGARBAGE\n{"id":"2-0","room":"r","nick":"a","text":"y","ts":2}\n',
    );
    const s = new FileStore({ dataDir: dir });
    await s.open();
    expect((await s.read('r', { limit: 10 })).messages.map((m) => m.text)).toEqual(['x', 'y']);
    await s.close();
  });

  it('reads after any id exactly the later messages (property)', async () => {
    const s = new FileStore({ dataDir: dir });
    await s.open();
    const all: StoredMessage[] = [];
    for (let i = 0; i < 60; i++) all.push(await s.append('r', 'n', `t${i}`));
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 59 }), fc.integer({ min: 1, max: 70 }), async (i, limit) => {
        const { messages, truncated } = await s.read('r', { after: all[i]!.id, limit });
        const expected = all.slice(i + 1, i + 1 + limit);
        expect(messages.map((m) => m.id)).toEqual(expected.map((m) => m.id));
        expect(truncated).toBe(i + 1 + limit < all.length);
      }),
      { numRuns: 100 },
    );
    await s.close();
  });

  it('orders ids numerically, not as strings', () => {
    expect(compareIds('999-0', '1000-0')).toBe(-1);
    expect(compareIds('5-10', '5-9')).toBe(1);
    expect(isMessageId('12-3')).toBe(true);
    expect(isMessageId('12-3; DROP')).toBe(false);
  });
});
