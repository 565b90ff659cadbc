import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidPathError } from '../src/errors.js';
import { normalizePath } from '../src/path.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 2000);

/** Paths made of the characters that matter here, plus arbitrary text. */
const pathArb = fc
  .array(
    fc.oneof(
      fc.constantFrom(
        '/',
        '.',
        '..',
        '%',
        '%2e',
        '%2E',
        '%2f',
        '%5c',
        '%00',
        '%70',
        '%7E',
        '%c3%a9',
        '%25',
        '\\',
        '~',
      ),
      fc.string({ maxLength: 4 }),
      fc.constantFrom('a', 'static', 'private', 'x.txt'),
    ),
    { maxLength: 16 },
  )
  .map((parts) => `/${parts.join('')}`);

function attempt(path: string): string | InvalidPathError {
  try {
    return normalizePath(path);
  } catch (err) {
    if (err instanceof InvalidPathError) return err;
    throw err;
  }
}

/** The path as the router decodes it, segment by segment (null when a segment does not decode). */
function decodedSegments(path: string): string[] | null {
  try {
    return path
      .split('/')
      .filter((s) => s !== '' && s !== '.')
      .map((s) => decodeURIComponent(s));
  } catch {
    return null;
  }
}

describe('normalizePath', () => {
  it('leaves canonical paths alone (same string)', () => {
    for (const p of ['/', '/a', '/a/b/', '/static/app.js', '/a.b/c..d/.e', '/%C3%A9', '/a%20b']) {
      expect(normalizePath(p)).toBe(p);
    }
  });

  it('canonicalises the bypass spellings of the review', () => {
    expect(normalizePath('/static/./private/secret.txt')).toBe('/static/private/secret.txt');
    expect(normalizePath('/static/%70rivate/secret.txt')).toBe('/static/private/secret.txt');
    expect(normalizePath('/static/%2e/private')).toBe('/static/private');
    expect(normalizePath('//static///private/')).toBe('/static/private/');
    expect(normalizePath('/a/.')).toBe('/a/');
    expect(normalizePath('/%7e%41%c3%a9')).toBe('/~A%C3%A9');
  });

  it.each([
    '/a/../b',
    '/..',
    '/%2e%2e/x',
    '/.%2E/x',
    '/a%2Fb',
    '/a%2fb',
    '/a%5Cb',
    '/a\\b',
    '/a%00',
    '/%',
    '/%zz',
    '/%4',
  ])('refuses %s', (p) => {
    expect(() => normalizePath(p)).toThrow(InvalidPathError);
  });

  it('is idempotent, never yields dot segments, empty segments or structural escapes', () => {
    fc.assert(
      fc.property(pathArb, (path) => {
        const out = attempt(path);
        if (out instanceof InvalidPathError) return;
        expect(normalizePath(out)).toBe(out);
        expect(out.startsWith('/')).toBe(true);
        expect(out.includes('//')).toBe(false);
        const segments = out.split('/').slice(1);
        expect(segments.includes('.')).toBe(false);
        expect(segments.includes('..')).toBe(false);
        expect(/%(2f|5c|00)/i.test(out)).toBe(false);
        expect(out.includes('\\')).toBe(false);
        // Escapes of unreserved characters are always decoded; others are upper-case.
        expect(/%(4[1-9A-F]|5[0-9A]|6[1-9A-F]|7[0-9A]|3[0-9]|2D|2E|5F|7E)/i.test(out)).toBe(false);
        expect(/%[0-9A-F]?[a-f]/.test(out)).toBe(false);
      }),
      { numRuns: RUNS },
    );
  });

  it('keeps the meaning: the router decodes the same segments from input and output', () => {
    fc.assert(
      fc.property(pathArb, (path) => {
        const out = attempt(path);
        const before = decodedSegments(path);
        if (before === null) return; // malformed input: refused by us or later by the router
        const structural = before.some(
          (s) => s === '..' || s.includes('/') || s.includes('\\') || s.includes('\0'),
        );
        if (structural) {
          expect(out).toBeInstanceOf(InvalidPathError);
          return;
        }
        expect(typeof out).toBe('string');
        // A decoded '.' segment is removed like a literal one.
        expect(decodedSegments(out as string)).toEqual(before.filter((s) => s !== '.'));
      }),
      { numRuns: RUNS },
    );
  });
});
