import { describe, expect, it } from 'vitest';
import { quoteValue, sanitizeText } from '../../src/quote.js';

describe('quoteValue', () => {
  it.each([
    ['acme', '"acme"'],
    ['', '""'],
    ['a"b', '"a\\"b"'],
    ['a\\b', '"a\\\\b"'],
    ['a\nb\tc\u0000', '"a\\x0ab\\x09c\\x00"'],
    ['\u007f\u0085', '"\\x7f\\x85"'],
    ['rtl\u202eevil', '"rtl\\u202eevil"'],
    ['zero\u200bwidth', '"zero\\u200bwidth"'],
    ['line\u2028sep', '"line\\u2028sep"'],
    ['lone\ud800', '"lone\\ud800"'],
    ['ünïcödé 数据库', '"ünïcödé 数据库"'],
  ])('%j -> %s', (input, expected) => {
    expect(quoteValue(input)).toBe(expected);
  });

  it('truncates to 63 code points and marks it', () => {
    expect(quoteValue('a'.repeat(63))).toBe(`"${'a'.repeat(63)}"`);
    expect(quoteValue('a'.repeat(64))).toBe(`"${'a'.repeat(63)}..."`);
    // never splits a surrogate pair
    const emoji = '😀'.repeat(70);
    expect(quoteValue(emoji)).toBe(`"${'😀'.repeat(63)}..."`);
  });

  it('bounds what it writes, not what it reads: escaped bytes count as their escapes', () => {
    expect(quoteValue('\0'.repeat(300), 80)).toBe(`"${'\\x00'.repeat(20)}..."`);
    expect(quoteValue('a\nb')).toBe('"a\\x0ab"');
  });
});

describe('sanitizeText', () => {
  it('escapes controls but keeps quotes', () => {
    expect(sanitizeText('say "hi"\r\n')).toBe('say "hi"\\x0d\\x0a');
  });
  it('bounds the length', () => {
    expect(sanitizeText('x'.repeat(1000), 10)).toBe('xxxxxxxxxx...');
  });
});
