import { EventEmitter } from 'node:events';
import { type FSWatcher, statSync, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import { createSecureContext, type Server } from 'node:tls';
import { InvalidOptionError, ReloadError } from './errors.js';
import { fingerprint256 } from './fingerprint.js';
import { checkKeyPair } from './key-pair.js';
import type { ReloadFiles, ReloadMaterial, ReloadOptions } from './options.js';
import { readPemFile } from './pem.js';
import { serverOptions } from './tls-options.js';

/** What a successful reload installed. */
export interface ReloadInfo {
  fingerprint256: string;
  notAfter: Date;
  subject: string;
}

/** Events of a `Reloader`. */
export interface ReloaderEvents {
  /** A new secure context is in use: new handshakes get the new certificate. */
  reload: [info: ReloadInfo];
  /** A reload was refused (bad PEM, key mismatch, expired, unreadable); the old context stays. */
  error: [err: ReloadError];
}

/** Anything with `setSecureContext`: `tls.Server`, `https.Server`, `http2.Http2SecureServer`. */
export type SecureContextHost = Pick<Server, 'setSecureContext'>;

/** The loader: file paths to read and watch, or a function returning the new material. */
export type ReloadSource = ReloadFiles | (() => ReloadMaterial | Promise<ReloadMaterial>);

/**
 * Keeps a TLS server's certificate fresh: on file change (or `reload()`), reads the new key and
 * certificate, validates them (parse, key matches, not expired, OpenSSL accepts the context) and
 * only then swaps the server's secure context. Existing connections are not touched.
 */
export class Reloader extends EventEmitter<ReloaderEvents> {
  readonly #server: SecureContextHost;
  readonly #source: ReloadSource;
  readonly #options: ReloadOptions;
  readonly #watchers: FSWatcher[] = [];
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<boolean> | undefined;
  #again = false;
  #closed = false;
  #lastCert = '';
  #lastKey = '';
  #current: ReloadInfo | undefined;

  constructor(server: SecureContextHost, source: ReloadSource, options: ReloadOptions = {}) {
    super();
    if (!server || typeof server.setSecureContext !== 'function') {
      throw new InvalidOptionError('reloadable() needs a TLS/HTTPS server (something with setSecureContext)');
    }
    const isFiles = typeof source === 'object' && source !== null;
    if (!isFiles && typeof source !== 'function') {
      throw new InvalidOptionError('reloadable() needs { certPath, keyPath } or a loader function');
    }
    if (isFiles && (typeof source.certPath !== 'string' || typeof source.keyPath !== 'string')) {
      throw new InvalidOptionError('reloadable() file source needs certPath and keyPath');
    }
    const debounce = options.debounceMs ?? 150;
    if (!(debounce >= 0 && debounce <= 60_000))
      throw new InvalidOptionError('debounceMs must be in 0..60000');
    this.#server = server;
    this.#source = source;
    this.#options = { ...options, debounceMs: debounce };
    const paths = isFiles
      ? [source.certPath, source.keyPath, ...(source.caPath ? [source.caPath] : [])]
      : [...(options.watch ?? [])];
    for (const path of paths) this.#watch(path);
    // A closed server needs no fresh certificates; stop watching with it.
    const emitter = server as Partial<Pick<EventEmitter, 'once'>>;
    if (typeof emitter.once === 'function') emitter.once.call(server, 'close', () => this.close());
  }

  /** What the last successful reload installed (undefined before the first). */
  get current(): ReloadInfo | undefined {
    return this.#current;
  }

  #watch(path: string): void {
    let isDir = false;
    try {
      isDir = statSync(path).isDirectory();
    } catch {
      // A file that does not exist yet is watched through its directory all the same.
    }
    // Watch the directory: tools replace certificates by rename, which orphans a watch on the file.
    const dir = isDir ? path : dirname(path);
    const name = isDir ? undefined : basename(path);
    let watcher: FSWatcher;
    try {
      watcher = watch(dir, { persistent: false }, (_event, filename) => {
        if (
          name === undefined ||
          filename === null ||
          filename === name ||
          String(filename).startsWith('..')
        ) {
          this.#schedule();
        }
      });
    } catch (cause) {
      this.close();
      throw new InvalidOptionError(`cannot watch ${dir} for ${path}: ${(cause as Error).message}`);
    }
    watcher.on('error', (cause) => this.#fail(new ReloadError(`watching ${dir} failed`, { cause })));
    this.#watchers.push(watcher);
  }

  #schedule(): void {
    if (this.#closed) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.reload();
    }, this.#options.debounceMs);
    this.#timer.unref();
  }

  #fail(err: ReloadError): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
    // Crashing a serving process over a bad certificate file would be worse than the bad file.
    else process.emitWarning(err.message, { code: err.code, detail: String(err.cause ?? '') });
  }

  async #load(): Promise<ReloadMaterial> {
    const source = this.#source;
    if (typeof source === 'function') return source();
    const [cert, key, ca] = await Promise.all([
      readPemFile(source.certPath),
      readPemFile(source.keyPath),
      source.caPath ? readPemFile(source.caPath) : undefined,
    ]);
    return ca === undefined ? { cert, key } : { cert, key, ca };
  }

  async #reloadOnce(): Promise<boolean> {
    let material: ReloadMaterial;
    try {
      material = await this.#load();
    } catch (cause) {
      this.#fail(
        new ReloadError('could not read the new key/certificate; keeping the current one', { cause }),
      );
      return false;
    }
    const certText = String(material.cert);
    const keyText = String(material.key);
    if (certText === this.#lastCert && keyText === this.#lastKey) return false;
    try {
      const pair = checkKeyPair(material, { rejectExpired: this.#options.rejectExpired ?? true });
      const opts = serverOptions({
        ...this.#options.serverOptions,
        cert: material.cert,
        key: material.key,
        ...(material.ca === undefined ? {} : { ca: material.ca }),
      });
      // Building the context first makes OpenSSL's own checks fail here, not inside the server.
      createSecureContext(opts);
      this.#server.setSecureContext(opts);
      this.#lastCert = certText;
      this.#lastKey = keyText;
      this.#current = {
        fingerprint256: fingerprint256(pair.leaf),
        notAfter: new Date(pair.leaf.validTo),
        subject: pair.leaf.subject,
      };
      this.emit('reload', this.#current);
      return true;
    } catch (cause) {
      const reason = cause instanceof Error ? cause.message : String(cause);
      this.#fail(
        new ReloadError(`new key/certificate rejected (${reason}); keeping the current one`, { cause }),
      );
      return false;
    }
  }

  /**
   * Loads, validates and installs the material now. Resolves `true` when a new context was
   * installed, `false` when nothing changed or the new material was refused (an `error` event says
   * why). Concurrent calls are coalesced.
   */
  reload(): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    const run = async (): Promise<boolean> => {
      let changed = false;
      do {
        this.#again = false;
        changed = (await this.#reloadOnce()) || changed;
      } while (this.#again && !this.#closed);
      return changed;
    };
    this.#running = run().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** Stops watching. The server keeps its current context. */
  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    for (const w of this.#watchers) w.close();
    this.#watchers.length = 0;
  }
}

/**
 * Hot reload for a TLS/HTTPS server: `reloadable(server, { certPath, keyPath })` watches the
 * files; `reloadable(server, () => load(), { watch: [dir] })` uses your loader. Listen to `error`
 * to learn about refused files (without a listener a process warning is emitted instead).
 */
export function reloadable(
  server: SecureContextHost,
  source: ReloadSource,
  options?: ReloadOptions,
): Reloader {
  return new Reloader(server, source, options);
}
