import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseSan, parseSans, sameSans } from '../../src/tls/sans.js';

describe('SANs', () => {
  it('tells IPs from DNS names and canonicalizes both', () => {
    expect(parseSan('127.0.0.1')).toEqual({ type: 'ip', value: '127.0.0.1' });
    expect(parseSan('0:0:0:0:0:0:0:1')).toEqual({ type: 'ip', value: '::1' });
    expect(parseSan('[2001:DB8::1]')).toEqual({ type: 'ip', value: '2001:db8::1' });
    expect(parseSan('DB.Example.COM.')).toEqual({ type: 'dns', value: 'db.example.com' });
    expect(parseSan('*.example.com')).toEqual({ type: 'dns', value: '*.example.com' });
    expect(parseSan('localhost')).toEqual({ type: 'dns', value: 'localhost' });
  });
  it('rejects what is neither, naming it', () => {
    for (const bad of ['', 'a b', '-x.com', 'x..com', '*.com', 'a.*.com', 'x_y.com', '300.1.1.1.', '10.0.0.256']) {
      expect(() => parseSan(bad), bad).toThrow(/neither an IP address nor a valid DNS name/);
    }
  });
  it('dedupes and compares as sets', () => {
    expect(parseSans(['a.com', 'A.com', '::1', '0::1']).map((s) => s.value)).toEqual(['a.com', '::1']);
    expect(sameSans(['a.com', '127.0.0.1'], ['127.0.0.1', 'A.COM'])).toBe(true);
    expect(sameSans(['a.com'], ['a.com', 'b.com'])).toBe(false);
  });
  it('canonical forms are fixed points', () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain()), (raw) => {
        const once = parseSan(raw);
        expect(parseSan(once.value)).toEqual(once);
      }),
    );
  });
});
