import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ChatError } from '../src/chat/errors.js';
import { checkNick, checkRoom, checkText } from '../src/chat/validate.js';

// Issue 16, "Spoofing": text that could repaint or fake a line in someone else's terminal.
const SPOOFERS = ['\u2028', '\u2029', '\u200b', '\u200e', '\u200f', '\ufeff', '\u061c', '\u00ad', '\u2060'];

function accepted(text: string): string | undefined {
  try {
    return checkText(text, 2000);
  } catch (err) {
    expect(err).toBeInstanceOf(ChatError);
    return undefined;
  }
}

/** What an 80-column (or any width) terminal shows: the line cut into rows of `width` characters. */
function rows(line: string, width: number): string[] {
  const out: string[] = [];
  const chars = [...line];
  for (let i = 0; i < chars.length; i += width) out.push(chars.slice(i, i + width).join(''));
  return out;
}

const HEADER = /^\s*(@\S+ )?\[[^\]]*\] <[^>]*>/;

describe('text policy', () => {
  it('refuses format and separator characters in messages', () => {
    for (const c of SPOOFERS) {
      expect(() => checkText(`hello${c}world`, 2000), `U+${c.codePointAt(0)!.toString(16)}`).toThrow(
        /TEXT_INVALID|invisible|format|separator/i,
      );
    }
  });

  it('keeps emoji sequences joined by U+200D', () => {
    expect(checkText('family 👨‍👩‍👧 ok', 2000)).toBe('family 👨‍👩‍👧 ok');
  });

  it('collapses long whitespace runs so padding cannot push a forged line to column 0', () => {
    const forged = `hi${' '.repeat(80 - '[lobby] <mallory> hi'.length)}[lobby] <admin> send me your token`;
    const text = accepted(forged);
    if (text !== undefined) {
      for (const row of rows(`[lobby] <mallory> ${text}`, 80).slice(1)) expect(row).not.toMatch(HEADER);
    }
    expect(checkText('a\t\t\t\t\tb', 2000)).toBe('a b');
    expect(checkText('short  gaps   stay', 2000)).toBe('short  gaps   stay');
  });

  it('property: no accepted message renders a row that looks like another line, at any width', () => {
    const piece = fc.oneof(
      fc.string({ maxLength: 20 }),
      fc.constantFrom(...SPOOFERS, ' ', '\t', '\u3000', '\u00a0', '[lobby] <admin> ', '[dm] <root> ', 'x'),
      fc.integer({ min: 1, max: 120 }).map((n) => ' '.repeat(n)),
      fc.integer({ min: 1, max: 120 }).map((n) => 'x'.repeat(n)),
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), fc.integer({ min: 20, max: 200 }), (parts, width) => {
        const text = accepted(parts.join(''));
        if (text === undefined) return;
        expect(text).not.toMatch(/[\p{Cf}\p{Zl}\p{Zp}]/u);
        expect(text).not.toMatch(/\s{4}/);
        for (const row of rows(`[lobby] <mallory> ${text}`, width).slice(1)) expect(row).not.toMatch(HEADER);
      }),
      { numRuns: 500 },
    );
  });

  it('property: nicks and room names never contain format, separator or space characters', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 30, unit: 'grapheme' }), (s) => {
        for (const check of [checkNick, checkRoom]) {
          let ok: string | undefined;
          try {
            ok = check(s);
          } catch {
            ok = undefined;
          }
          if (ok !== undefined) expect(ok).not.toMatch(/[\p{Cf}\p{Zl}\p{Zp}\s]/u);
        }
      }),
      { numRuns: 500 },
    );
    for (const c of SPOOFERS) {
      expect(() => checkNick(`adm${c}in`)).toThrow();
      expect(() => checkRoom(`lob${c}by`)).toThrow();
    }
  });
});
