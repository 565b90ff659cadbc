import { realpathSync } from 'node:fs';
import { type FileHandle, open, realpath } from 'node:fs/promises';
import { extname, isAbsolute, join, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream';
import type { Context } from './context.js';
import { HttpError, InvalidOptionError } from './errors.js';
import type { StaticOptions } from './options.js';
import { Reply } from './respond.js';

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.csv': 'text/csv; charset=utf-8',
  '.xml': 'application/xml; charset=utf-8',
  '.svg': 'image/svg+xml; charset=utf-8',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.avif': 'image/avif',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
  '.pdf': 'application/pdf',
  '.zip': 'application/zip',
  '.gz': 'application/gzip',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.otf': 'font/otf',
  '.mp3': 'audio/mpeg',
  '.wav': 'audio/wav',
  '.ogg': 'audio/ogg',
  '.mp4': 'video/mp4',
  '.webm': 'video/webm',
};

/** Content type for a file name by extension (case-insensitive); octet-stream when unknown. */
export function contentTypeFor(file: string, overrides?: Record<string, string>): string {
  const ext = extname(file).toLowerCase();
  return overrides?.[ext] ?? TYPES[ext] ?? 'application/octet-stream';
}

/** What {@link parseRange} decided: one inclusive byte range, `'unsatisfiable'` (416), or `null` (200). */
export type RangeResult = { start: number; end: number } | 'unsatisfiable' | null;

/**
 * Parses a Range header against a representation of `size` bytes (RFC 9110 §14). Returns the one
 * byte range to send (inclusive `end`), `'unsatisfiable'` (→ 416), or null when the header should be
 * ignored (malformed, another unit, or several ranges: a full 200 is always a valid answer).
 */
export function parseRange(header: string, size: number): RangeResult {
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (m === null) return null;
  const first = m[1]!;
  const last = m[2]!;
  if (first === '' && last === '') return null;
  if (first.length > 15 || last.length > 15) return null;
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  let end = last === '' ? size - 1 : Number(last);
  if (end < start) return null;
  if (start >= size) return 'unsatisfiable';
  if (end >= size) end = size - 1;
  return { start, end };
}

/** Does an If-None-Match value match `etag`? Weak comparison, as RFC 9110 §13.1.2 requires. */
export function etagMatches(header: string, etag: string): boolean {
  if (header.trim() === '*') return true;
  const bare = etag.startsWith('W/') ? etag.slice(2) : etag;
  for (const part of header.split(',')) {
    let tag = part.trim();
    if (tag.startsWith('W/')) tag = tag.slice(2);
    if (tag === bare) return true;
  }
  return false;
}

/**
 * A handler serving files under `root` from the route's wildcard, e.g.
 * `app.get('/static/*', serveStatic('./public'))` or `app.get('/*', serveStatic(dir))`.
 *
 * Safety: the path parameter is decoded exactly once (by the router; malformed encoding → 400);
 * NUL bytes → 400; `..`, `.` and empty segments (anything the server's path normaliser would not
 * produce), backslashes, absolute and drive-letter paths → 403; the resolved
 * real path (symlinks followed) must stay inside the real `root` → otherwise 404.
 */
export function serveStatic(root: string, options: StaticOptions = {}): (ctx: Context) => Promise<unknown> {
  const base = resolve(root);
  let realBase: string;
  try {
    realBase = realpathSync(base);
  } catch (err) {
    throw new InvalidOptionError(
      `serveStatic root ${JSON.stringify(root)} is not accessible: ${String(err)}`,
    );
  }
  if (options.maxAge !== undefined && (!Number.isInteger(options.maxAge) || options.maxAge < 0)) {
    throw new InvalidOptionError('maxAge must be a non-negative integer (seconds)');
  }
  const index = options.index ?? 'index.html';
  const dotfiles = options.dotfiles ?? 'ignore';
  const param = options.param ?? '*';
  const useEtag = options.etag ?? true;
  const useLastModified = options.lastModified ?? true;
  const maxAge = options.maxAge ?? 0;
  const cacheControl =
    maxAge === 0 ? 'no-cache' : `public, max-age=${maxAge}${options.immutable ? ', immutable' : ''}`;
  const types = options.contentTypes;
  const precompressed = options.precompressed ?? false;
  const inside = (file: string): boolean => file === realBase || file.startsWith(realBase + sep);

  return async function serveStaticHandler(ctx: Context): Promise<unknown> {
    const method = ctx.req.method;
    if (method !== 'GET' && method !== 'HEAD') {
      throw new HttpError(405, 'Only GET and HEAD are allowed here', {
        code: 'ERR_HTTP_METHOD_NOT_ALLOWED',
        headers: { allow: 'GET, HEAD' },
      });
    }
    const rel = ctx.params[param] ?? '';
    if (rel.includes('\0')) throw new HttpError(400, 'NUL byte in path', { code: 'ERR_HTTP_INVALID_PATH' });
    if (rel.includes('\\') || isAbsolute(rel) || /^[A-Za-z]:/.test(rel)) throw forbidden();
    const segments = rel.split('/');
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i]!;
      // Only canonical paths (as the server's normaliser makes them) are served: a `.` or empty
      // segment would name the same file as a path a hook or the router saw differently.
      if (seg === '..' || seg === '.' || (seg === '' && i !== segments.length - 1 && rel !== '')) {
        throw forbidden();
      }
      if (seg.length > 1 && seg[0] === '.' && seg !== '..') {
        if (dotfiles === 'deny') throw forbidden();
        if (dotfiles === 'ignore') throw notFound();
      }
    }
    let file = join(base, rel);
    if (!(file === base || file.startsWith(base + sep))) throw forbidden();

    let handle = await openInside(file, inside);
    try {
      let stat = await handle.stat();
      if (stat.isDirectory()) {
        await handle.close();
        if (index === false) throw notFound();
        if (rel !== '' && !rel.endsWith('/')) {
          // Relative links in the index page need the trailing slash.
          const search = ctx.search;
          return new Reply(301, undefined, { location: `${ctx.path}/${search ? `?${search}` : ''}` });
        }
        file = join(file, index);
        handle = await openInside(file, inside);
        stat = await handle.stat();
      }
      if (!stat.isFile()) throw notFound();
      const type = contentTypeFor(file, types);
      let encoding: string | undefined;
      if (precompressed) {
        // A sibling `file.br` / `file.gz` made at build time, when the client accepts it.
        const accepted = acceptedEncodings(ctx.req.headers['accept-encoding']);
        for (const [name, ext] of ENCODINGS) {
          if (!accepted.has(name)) continue;
          const sibling = await openInside(file + ext, inside).catch(() => undefined);
          if (sibling === undefined) continue;
          const siblingStat = await sibling.stat();
          if (!siblingStat.isFile()) {
            await sibling.close();
            continue;
          }
          await handle.close();
          handle = sibling;
          stat = siblingStat;
          encoding = name;
          break;
        }
        ctx.res.setHeader('vary', 'Accept-Encoding');
      }
      return sendFile(ctx, handle, stat.size, stat.mtime, {
        type,
        cacheControl,
        useEtag,
        useLastModified,
        encoding,
      });
    } catch (err) {
      await handle.close().catch(() => {});
      throw err;
    }
  };
}

function forbidden(): HttpError {
  return new HttpError(403, 'Forbidden path', { code: 'ERR_HTTP_FORBIDDEN_PATH' });
}

function notFound(): HttpError {
  return new HttpError(404, 'File not found', { code: 'ERR_HTTP_NOT_FOUND' });
}

async function openInside(file: string, inside: (f: string) => boolean): Promise<FileHandle> {
  let real: string;
  try {
    real = await realpath(file);
  } catch {
    throw notFound();
  }
  if (!inside(real)) throw notFound();
  try {
    return await open(real, 'r');
  } catch {
    throw notFound();
  }
}

const ENCODINGS: readonly [string, string][] = [
  ['br', '.br'],
  ['gzip', '.gz'],
];

/** Content codings the client accepts (q > 0), lower-cased. */
export function acceptedEncodings(header: string | undefined): Set<string> {
  const out = new Set<string>();
  if (header === undefined) return out;
  for (const part of header.split(',')) {
    const [raw, ...params] = part.toLowerCase().split(';');
    const name = raw?.trim();
    if (!name) continue;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    if (q !== undefined && !(Number(q.slice(2)) > 0)) continue;
    out.add(name);
  }
  return out;
}

interface SendOptions {
  type: string;
  /** Content-Encoding of a precompressed sibling being sent instead of the file. */
  encoding: string | undefined;
  cacheControl: string;
  useEtag: boolean;
  useLastModified: boolean;
}

/** Writes the file behind `handle` with conditional and range handling; takes ownership of it. */
function sendFile(ctx: Context, handle: FileHandle, size: number, mtime: Date, opts: SendOptions): unknown {
  const { req, res } = ctx;
  // Each encoding is its own representation, so it gets its own validator.
  const tag = `${size.toString(16)}-${Math.floor(mtime.getTime()).toString(16)}${opts.encoding ? `-${opts.encoding}` : ''}`;
  const etag = `W/"${tag}"`;
  const lastModified = mtime.toUTCString();
  res.setHeader('cache-control', opts.cacheControl);
  res.setHeader('accept-ranges', 'bytes');
  res.setHeader('x-content-type-options', 'nosniff');
  if (opts.useEtag) res.setHeader('etag', etag);
  if (opts.useLastModified) res.setHeader('last-modified', lastModified);

  const inm = req.headers['if-none-match'];
  const ims = req.headers['if-modified-since'];
  let notModified = false;
  if (opts.useEtag && inm !== undefined) notModified = etagMatches(inm, etag);
  else if (opts.useLastModified && inm === undefined && ims !== undefined) {
    const since = Date.parse(ims);
    notModified = !Number.isNaN(since) && Math.floor(mtime.getTime() / 1000) * 1000 <= since;
  }
  if (notModified) {
    void handle.close();
    res.statusCode = 304;
    res.end();
    return res;
  }

  let start = 0;
  let end = size - 1;
  const rangeHeader = req.headers.range;
  if (rangeHeader !== undefined && ifRangeHolds(req.headers['if-range'] as string | undefined, etag, mtime)) {
    const range = parseRange(rangeHeader, size);
    if (range === 'unsatisfiable') {
      void handle.close();
      res.statusCode = 416;
      res.setHeader('content-range', `bytes */${size}`);
      res.setHeader('content-type', 'text/plain; charset=utf-8');
      res.end('Range Not Satisfiable');
      return res;
    }
    if (range !== null) {
      start = range.start;
      end = range.end;
      res.statusCode = 206;
      res.setHeader('content-range', `bytes ${start}-${end}/${size}`);
    }
  }
  res.setHeader('content-type', opts.type);
  if (opts.encoding !== undefined) res.setHeader('content-encoding', opts.encoding);
  res.setHeader('content-length', size === 0 ? 0 : end - start + 1);
  if (req.method === 'HEAD' || size === 0) {
    void handle.close();
    res.end();
    return res;
  }
  const stream = handle.createReadStream({ start, end, autoClose: true });
  pipeline(stream, res, (err) => {
    if (err) res.destroy();
  });
  return res;
}

function ifRangeHolds(ifRange: string | undefined, etag: string, mtime: Date): boolean {
  if (ifRange === undefined) return true;
  const value = ifRange.trim();
  // Weak validators never satisfy If-Range (strong comparison), so an ETag here means "send it all".
  if (value.startsWith('"') || value.startsWith('W/')) return value === etag && !etag.startsWith('W/');
  const date = Date.parse(value);
  return !Number.isNaN(date) && Math.floor(mtime.getTime() / 1000) * 1000 <= date;
}
