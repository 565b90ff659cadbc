import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach } from 'vitest';
import { ChatCore } from '../../src/chat/index.js';
import { FileStore } from '../../src/store/index.js';

/** Tokens that are readable in assertions: `tok:<nick>`. */
export const fakeTokens = { issue: (n: string) => `tok:${n}`, verify: (t: string) => t.slice(4) };

export interface CoreFixture {
  dir: string;
  store: FileStore;
  core: ChatCore;
}

/** A fresh chat core on a file store in a temporary directory for every test of the file. */
export function useFileCore(prefix: string): CoreFixture {
  const fixture = {} as CoreFixture;
  beforeEach(async () => {
    fixture.dir = mkdtempSync(join(tmpdir(), prefix));
    fixture.store = new FileStore({ dataDir: fixture.dir });
    await fixture.store.open();
    fixture.core = new ChatCore(fixture.store, { historyOnJoin: 10 });
  });
  afterEach(async () => {
    await fixture.core.shutdown();
    await fixture.store.close();
    rmSync(fixture.dir, { recursive: true, force: true });
  });
  return fixture;
}
