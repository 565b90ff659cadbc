import type { LogLevel } from './config.js';

const ORDER: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

export interface Logger {
  error(msg: string): void;
  warn(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
}

/** Logs go to stderr; stdout carries only the listener addresses, so scripts can parse it. */
export function createLogger(level: LogLevel): Logger {
  const at = ORDER[level];
  const line = (lvl: LogLevel, msg: string) => {
    if (ORDER[lvl] <= at) process.stderr.write(`${new Date().toISOString()} ${lvl.padEnd(5)} ${msg}\n`);
  };
  return {
    error: (m) => line('error', m),
    warn: (m) => line('warn', m),
    info: (m) => line('info', m),
    debug: (m) => line('debug', m),
  };
}
