import type { LogHandle, OpenLogFile } from '../../src/store/log-handle.js';
import { openLogFile } from '../../src/store/log-handle.js';

type Fault = 'fail' | 'stall' | undefined;

/**
 * Real files underneath; `write` and `datasync` can be made to fail (EIO/ENOSPC), stall until
 * released, or (writes) come back short. Every handle opened is recorded, with the calls it saw.
 */
export class FaultyFs {
  write: Fault = undefined;
  sync: Fault = undefined;
  /** Write at most this many bytes per call (a short write), then, if set, fail with ENOSPC. */
  shortWrite: number | undefined;
  shortThenFail = false;
  /** Fail only this many times, then behave again (undefined: until cleared). */
  failTimes: number | undefined;
  errorCode = 'ENOSPC';
  readonly handles: { path: string; calls: string[] }[] = [];
  syncCalls = 0;
  syncsResolved = 0;
  private gates: (() => void)[] = [];

  /** Let every stalled call continue (a stall with `fail` also set then fails). */
  release(): void {
    const gates = this.gates;
    this.gates = [];
    for (const g of gates) g();
  }

  get stalled(): number {
    return this.gates.length;
  }

  private stall(): Promise<void> {
    return new Promise((r) => this.gates.push(r));
  }

  private shouldFail(): boolean {
    if (this.failTimes === undefined) return true;
    if (this.failTimes <= 0) return false;
    this.failTimes--;
    return true;
  }

  private error(op: string): Error {
    return Object.assign(new Error(`${this.errorCode}: injected ${op} failure`), { code: this.errorCode });
  }

  readonly open: OpenLogFile = async (path) => {
    const real = await openLogFile(path);
    const rec = { path, calls: [] as string[] };
    this.handles.push(rec);
    const fs = this;
    const handle: LogHandle = {
      async write(buffer, offset, length, position) {
        rec.calls.push('write');
        if (fs.write === 'stall') await fs.stall();
        if (fs.write === 'fail' && fs.shouldFail()) throw fs.error('write');
        if (fs.shortWrite !== undefined) {
          const n = Math.min(length, fs.shortWrite);
          const r = await real.write(buffer, offset, n, position);
          if (fs.shortThenFail && n < length) fs.write = 'fail';
          return r;
        }
        return real.write(buffer, offset, length, position);
      },
      read: (buffer, offset, length, position) => real.read(buffer, offset, length, position),
      async datasync() {
        rec.calls.push('datasync');
        fs.syncCalls++;
        if (fs.sync === 'stall') await fs.stall();
        if (fs.sync === 'fail' && fs.shouldFail()) throw fs.error('datasync');
        await real.datasync();
        fs.syncsResolved++;
      },
      truncate: (length) => {
        rec.calls.push('truncate');
        return real.truncate(length);
      },
      stat: () => real.stat(),
      close: () => real.close(),
    };
    return handle;
  };
}
