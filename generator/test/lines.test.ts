import { describe, expect, it } from 'vitest';
import { LineSplitter } from '../src/lines.js';

describe('LineSplitter', () => {
  it('gives out a line split across chunks once, whole', () => {
    const s = new LineSplitter(100);
    expect(s.push('[NOTICE]   (1) : haproxy version is 2.6\n[WARNING]  (1) : Exiting Mas')).toEqual(['[NOTICE]   (1) : haproxy version is 2.6']);
    expect(s.push('ter process...\n')).toEqual(['[WARNING]  (1) : Exiting Master process...']);
    expect(s.push('')).toEqual([]);
  });

  it('gives out several lines of one chunk, empty lines included, and keeps the unfinished one', () => {
    const s = new LineSplitter(100);
    expect(s.push('a\n\nb\nc')).toEqual(['a', '', 'b']);
    expect(s.end()).toEqual(['c']);
    expect(s.end()).toEqual([]);
  });

  it('cuts a line longer than the bound into pieces of the bound, and holds no more than it', () => {
    const s = new LineSplitter(4);
    expect(s.push('abcdefghij')).toEqual(['abcd', 'efgh']);
    expect(s.push('k\nxy')).toEqual(['ijk']);
    expect(s.end()).toEqual(['xy']);
  });

  it('cuts alike however the chunks fall: a long line whole in one chunk too', () => {
    const whole = new LineSplitter(4);
    expect(whole.push('abcdefghij\nok\n')).toEqual(['abcd', 'efgh', 'ij', 'ok']);
    const split = new LineSplitter(4);
    expect([...split.push('abcdefghij'), ...split.push('\nok\n')]).toEqual(['abcd', 'efgh', 'ij', 'ok']);
  });
});
