import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

/**
 * Trust on first use for CA pins learned from discovery: a DNS-SD answer is unauthenticated, so a
 * pin is only believed the first time a server is seen; later a different pin for the same server
 * is refused with a warning (like ssh's known_hosts). The store is a small JSON file.
 */
export type PinDecision =
  | { kind: 'first-use'; pin: string }
  | { kind: 'known'; pin: string }
  | { kind: 'changed'; pin: string; remembered: string };

/** Servers remembered at most; the oldest entries go first. */
const MAX_ENTRIES = 1000;

/** `$CHAT_KNOWN_PINS`, else `$XDG_CONFIG_HOME/net-chat/known-pins.json`, else `~/.config/…`. */
export function defaultPinFile(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CHAT_KNOWN_PINS) return env.CHAT_KNOWN_PINS;
  const base = env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'net-chat', 'known-pins.json');
}

export class KnownPins {
  readonly #file: string;
  #entries: Record<string, string>;

  constructor(file: string) {
    this.#file = file;
    this.#entries = Object.create(null);
    try {
      const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
      if (parsed && typeof parsed === 'object') {
        for (const [k, v] of Object.entries(parsed)) if (typeof v === 'string') this.#entries[k] = v;
      }
    } catch {
      // No file yet, or unreadable: start empty (a broken file is rewritten on the next save).
    }
  }

  get file(): string {
    return this.#file;
  }

  /** What to do with `pin` announced by `server` (an `address:port` of its TLS endpoint). */
  check(server: string, pin: string): PinDecision {
    const remembered = this.#entries[server];
    if (remembered === undefined) return { kind: 'first-use', pin };
    if (remembered === pin) return { kind: 'known', pin };
    return { kind: 'changed', pin, remembered };
  }

  remember(server: string, pin: string): void {
    delete this.#entries[server];
    this.#entries[server] = pin;
    const keys = Object.keys(this.#entries);
    for (const k of keys.slice(0, Math.max(0, keys.length - MAX_ENTRIES))) delete this.#entries[k];
    mkdirSync(dirname(this.#file), { recursive: true, mode: 0o700 });
    const tmp = `${this.#file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(this.#entries, null, 2)}\n`, { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, this.#file);
  }
}
