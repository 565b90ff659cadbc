import { InvalidPathError } from './errors.js';

/**
 * The canonical form of a request path, computed once before routing so that the router, hooks,
 * `ctx.path`, `ctx.url` and `serveStatic` all judge the same string. Pure: string in, string out.
 *
 * - Percent-escapes of unreserved characters (RFC 3986 §2.3: `A-Z a-z 0-9 - . _ ~`) are decoded,
 *   other escapes keep their bytes with upper-case hex (`%c3%a9` → `%C3%A9`), so two spellings of
 *   one path become one string.
 * - Escapes that would change the path's structure or meaning are refused: `%2F` (`/`), `%5C`
 *   (`\`) and `%00`; a raw `\` too, since some file systems and proxies read it as `/`.
 * - `.` segments and empty segments (`//`) are removed; a trailing `/` is kept.
 * - `..` segments are refused rather than resolved: browsers resolve them before sending, so only
 *   hand-made requests carry them, and refusing leaves no doubt about what a hook saw.
 * - Malformed escapes (`%zz`, a lone `%`) are refused.
 *
 * Refusals throw `InvalidPathError` (400 `ERR_HTTP_INVALID_PATH`). The common path (no `%`, no
 * `\`, no `/.` and no `//`) is returned as it is, without allocating.
 */
export function normalizePath(path: string): string {
  const length = path.length;
  let i = 0;
  for (; i < length; i++) {
    const c = path.charCodeAt(i);
    if (c === PERCENT || c === BACKSLASH) break;
    if (c === SLASH && i + 1 < length) {
      const next = path.charCodeAt(i + 1);
      if (next === SLASH || next === DOT) break;
    }
  }
  if (i === length) return path;
  return slowPath(path);
}

const PERCENT = 37;
const SLASH = 47;
const DOT = 46;
const BACKSLASH = 92;

function slowPath(path: string): string {
  if (path.charCodeAt(0) !== SLASH) throw new InvalidPathError('Request path must start with "/"');
  const parts = path.slice(1).split('/');
  const kept: string[] = [];
  let trailing = false;
  for (let p = 0; p < parts.length; p++) {
    const segment = decodeUnreserved(parts[p]!);
    trailing = segment === '' || segment === '.';
    if (trailing) continue;
    if (segment === '..') throw new InvalidPathError('Path contains a ".." segment');
    kept.push(segment);
  }
  if (kept.length === 0) return '/';
  const joined = `/${kept.join('/')}`;
  return trailing ? `${joined}/` : joined;
}

function decodeUnreserved(segment: string): string {
  if (segment.indexOf('%') === -1 && segment.indexOf('\\') === -1) return segment;
  let out = '';
  for (let i = 0; i < segment.length; i++) {
    const ch = segment[i]!;
    if (ch === '\\') throw new InvalidPathError('Path contains a backslash');
    if (ch !== '%') {
      out += ch;
      continue;
    }
    const high = hexValue(segment.charCodeAt(i + 1));
    const low = hexValue(segment.charCodeAt(i + 2));
    if (high === -1 || low === -1) throw new InvalidPathError('Malformed percent-encoding in path');
    const byte = high * 16 + low;
    if (byte === 0x2f || byte === 0x5c || byte === 0) {
      throw new InvalidPathError('Path contains an encoded "/", "\\" or NUL');
    }
    out += isUnreserved(byte) ? String.fromCharCode(byte) : `%${HEX[high]}${HEX[low]}`;
    i += 2;
  }
  return out;
}

const HEX = '0123456789ABCDEF';

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

function isUnreserved(byte: number): boolean {
  return (
    (byte >= 0x41 && byte <= 0x5a) ||
    (byte >= 0x61 && byte <= 0x7a) ||
    (byte >= 0x30 && byte <= 0x39) ||
    byte === 0x2d ||
    byte === 0x2e ||
    byte === 0x5f ||
    byte === 0x7e
  );
}
