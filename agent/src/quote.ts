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
 * `"value"` with controls, quotes and backslashes escaped; a value whose escaped form is longer than
 * `maxChars` (default MAX_ECHO_CHARS) is cut, by code points, and ends in `..."` so the reader sees
 * it was truncated. The bound is on what is written, so a value of control bytes (each escaped to 4
 * characters) cannot make a message longer than a plain one.
 */
export function quoteValue(value: string, maxChars = MAX_ECHO_CHARS): string {
  if (value.length <= maxChars && !NEEDS_ESCAPE.test(value)) return `"${value}"`;
  let out = '';
  let written = 0; // in code points of the output
  for (const ch of value) {
    // Iterating a string yields code points: a surrogate pair is never split.
    const piece = NEEDS_ESCAPE.test(ch) ? escapeChar(ch) : ch;
    const width = piece === ch ? 1 : piece.length;
    if (written + width > maxChars) return `"${out}..."`;
    out += piece;
    written += width;
  }
  return `"${out}"`;
}

/**
 * A value of any type for a message: a string quoted (quoteValue), undefined as "nothing", anything
 * else as JSON cut at `maxChars` ("..."). Written piece by piece and stopped at the bound, never
 * stringified whole: YAML aliases let a 600-byte file stand for a billion values (one array
 * referenced from another, ten times over), which JSON.stringify would try to write out in full.
 */
export function describeValue(value: unknown, maxChars = MAX_ECHO_CHARS): string {
  if (typeof value === 'string') return quoteValue(value, maxChars);
  if (value === undefined) return 'nothing';
  let out = '';
  const open = new Set<object>();
  // false once the bound is passed: every caller then stops.
  const put = (piece: string): boolean => {
    out += piece;
    return out.length <= maxChars;
  };
  const walk = (v: unknown): boolean => {
    if (typeof v === 'string') return put(JSON.stringify(v.slice(0, maxChars + 1)));
    if (typeof v === 'number' || typeof v === 'boolean') return put(String(v));
    if (v === null) return put('null');
    if (typeof v !== 'object') return put(typeof v);
    if (open.has(v)) return put('(itself)');
    open.add(v);
    try {
      if (Array.isArray(v)) {
        if (!put('[')) return false;
        for (let i = 0; i < v.length; i++) if ((i > 0 && !put(',')) || !walk(v[i])) return false;
        return put(']');
      }
      if (!put('{')) return false;
      let first = true;
      for (const key in v) {
        if (!Object.prototype.hasOwnProperty.call(v, key)) continue;
        if ((!first && !put(',')) || !put(`${JSON.stringify(key.slice(0, maxChars + 1))}:`) || !walk((v as Record<string, unknown>)[key])) return false;
        first = false;
      }
      return put('}');
    } finally {
      open.delete(v);
    }
  };
  return walk(value) ? out : `${out.slice(0, maxChars)}...`;
}
