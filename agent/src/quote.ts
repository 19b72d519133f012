// Rendering client- or operator-supplied values (tenant ids, user and database names, parameter
// names, fields of a tenants file) into messages that go back to the client and into logs: quoted,
// truncated, with anything that could corrupt a terminal or a log line escaped. Pure. The one
// quoting helper of pgroute: the decoder, the decision and the generator's validation all use it.

/** Longest value echoed back, in code points (PostgreSQL's own identifier limit is 63 bytes). */
export const MAX_ECHO_CHARS = 63;

// C0/C1 controls, DEL, format characters (bidi overrides, zero-width joiners, BOM), line/paragraph
// separators and lone surrogates. `"` and `\` are escaped too so the quoting stays unambiguous.
const NEEDS_ESCAPE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}"\\]|\p{Cs}/u;
const ESCAPE_ALL = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}"\\]|\p{Cs}/gu;

function escapeChar(ch: string): string {
  if (ch === '"') return '\\"';
  if (ch === '\\') return '\\\\';
  const code = ch.codePointAt(0) ?? 0;
  return code <= 0xff
    ? '\\x' + code.toString(16).padStart(2, '0')
    : '\\u' + (code <= 0xffff ? code.toString(16).padStart(4, '0') : '{' + code.toString(16) + '}');
}

/** Escapes controls in free text (e.g. a decoder message) without quoting or truncating it beyond `max`. */
export function sanitizeText(text: string, max = 300): string {
  let s = text.length > max ? text.slice(0, max) + '...' : text;
  if (NEEDS_ESCAPE.test(s)) s = s.replace(ESCAPE_ALL, (ch) => (ch === '"' || ch === '\\' ? ch : escapeChar(ch)));
  return s;
}

/**
 * `"value"` with controls, quotes and backslashes escaped; values longer than `maxChars` code points
 * (default MAX_ECHO_CHARS) are cut and end in `..."` so the reader sees the value was truncated.
 */
export function quoteValue(value: string, maxChars = MAX_ECHO_CHARS): string {
  let s = value;
  let cut = false;
  if (s.length > maxChars) {
    // Cut by code points, never inside a surrogate pair.
    let i = 0;
    let n = 0;
    while (i < s.length && n < maxChars) {
      const c = s.charCodeAt(i);
      i += c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00 ? 2 : 1;
      n++;
    }
    if (i < s.length) {
      s = s.slice(0, i);
      cut = true;
    }
  }
  if (NEEDS_ESCAPE.test(s)) s = s.replace(ESCAPE_ALL, escapeChar);
  return cut ? `"${s}..."` : `"${s}"`;
}
