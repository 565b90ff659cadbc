import { ChatError } from './errors.js';

/** Longest run of whitespace kept as typed; longer runs become one space. */
export const MAX_WHITESPACE_RUN = 3;

// C0/C1 controls (except tab), DEL: they would let one user repaint another user's terminal.
const CONTROL_RE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/u;
// Format characters (Cf: zero-width spaces and joiners, bidi marks and overrides, BOM, soft hyphen,
// Arabic letter mark) and line/paragraph separators (Zl, Zp): invisible or line-breaking, so they
// disguise text or split one message into what looks like two lines.
const INVISIBLE_RE = /[\p{Cf}\p{Zl}\p{Zp}]/u;
// Characters that render blank without being whitespace (Hangul fillers, braille blank): padding.
const BLANK_FILLERS_RE = /[\u115f\u1160\u3164\uffa0\u2800]/u;
// A zero-width joiner inside an emoji sequence (👨‍👩‍👧) is legitimate: removed before the check.
const EMOJI_ZWJ_RE = /(?<=\p{Extended_Pictographic}\ufe0f?)\u200d(?=\p{Extended_Pictographic})/gu;
const WHITESPACE_RUN_RE = new RegExp(`\\s{${MAX_WHITESPACE_RUN + 1},}`, 'gu');
// What the line protocol prints before a message: `[room] <nick>` (or `@id [room] <nick>`).
// Text containing it could be wrapped by a terminal so that the copy starts a row of its own.
const LINE_HEADER_RE = /\[[^\]\s]{1,40}\]\s*<[^>\s]{1,40}>/u;

function invalid(message: string): ChatError {
  return new ChatError('TEXT_INVALID', message);
}

/**
 * The chat's rules for message text. Returns the text as stored: tabs and other whitespace become
 * spaces, and runs longer than {@link MAX_WHITESPACE_RUN} collapse to one space (padding is how a
 * forged line is pushed to the start of a terminal row). Refuses controls, format and separator
 * characters, blank fillers and anything that looks like a chat line header.
 */
export function applyTextPolicy(text: string): string {
  if (CONTROL_RE.test(text)) throw invalid('message contains control characters');
  if (INVISIBLE_RE.test(text.replace(EMOJI_ZWJ_RE, ''))) {
    throw invalid('message contains invisible format or line separator characters (e.g. U+200B, U+2028)');
  }
  if (BLANK_FILLERS_RE.test(text)) throw invalid('message contains blank filler characters');
  const cleaned = text.replace(/\s/gu, ' ').replace(WHITESPACE_RUN_RE, ' ');
  if (LINE_HEADER_RE.test(cleaned)) {
    throw invalid('message must not contain a chat line header like "[room] <nick>"');
  }
  return cleaned;
}
