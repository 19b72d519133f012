import { PassThrough } from 'node:stream';

import { parse } from 'pg-protocol';
import { describe, expect, it } from 'vitest';

import { MAX_ERROR_RESPONSE_BYTES, SqlState } from '../../src/pg/constants.js';
import { decodeErrorResponse, encodeErrorResponse, truncateUtf8 } from '../../src/pg/error-response.js';
import { bytes, hex } from './bytes.js';

/** Decodes with node-postgres's own protocol parser: an independent reader of our bytes. */
async function parseWithPgProtocol(message: Buffer): Promise<Record<string, unknown>> {
  const stream = new PassThrough();
  const seen: Record<string, unknown>[] = [];
  const done = parse(stream, (msg) => seen.push(msg as unknown as Record<string, unknown>));
  stream.end(message);
  await done;
  expect(seen).toHaveLength(1);
  return seen[0] ?? {};
}

describe('encodeErrorResponse', () => {
  it('writes S, V, C, M and the final NUL, byte for byte', () => {
    const out = encodeErrorResponse({ severity: 'FATAL', sqlstate: '08P01', message: 'bad' });
    expect(out.toString('hex')).toBe(
      hex(`
        45 0000001f
        53 46415441 4c 00
        56 46415441 4c 00
        43 3038503031 00
        4d 626164 00
        00`).toString('hex'),
    );
  });

  it('adds D and H when given, in that order', () => {
    const out = encodeErrorResponse({
      severity: 'ERROR',
      sqlstate: SqlState.invalidCatalogName,
      message: 'unknown tenant "acme"',
      detail: 'No route.',
      hint: 'Check the tenant.',
    });
    const body = bytes()
      .byte(0x53).cstring('ERROR')
      .byte(0x56).cstring('ERROR')
      .byte(0x43).cstring('3D000')
      .byte(0x4d).cstring('unknown tenant "acme"')
      .byte(0x44).cstring('No route.')
      .byte(0x48).cstring('Check the tenant.')
      .byte(0x00)
      .packet();
    expect(out).toEqual(Buffer.concat([Buffer.from('E'), body]));
    expect(out.readInt32BE(1)).toBe(out.length - 1);
  });

  it('omits empty detail and hint', () => {
    const out = encodeErrorResponse({ severity: 'FATAL', sqlstate: '28000', message: 'm', detail: '', hint: '' });
    expect([...(decodeErrorResponse(out)?.fields.keys() ?? [])]).toEqual(['S', 'V', 'C', 'M']);
  });

  it('decodes back to what went in', () => {
    const input = {
      severity: 'FATAL' as const,
      sqlstate: SqlState.tooManyConnections,
      message: 'too many connections for tenant "ünï"',
      detail: 'Limit is 5.',
      hint: 'Try again later.',
    };
    const decoded = decodeErrorResponse(encodeErrorResponse(input));
    expect(decoded).toMatchObject({
      severity: 'FATAL',
      sqlstate: '53300',
      message: input.message,
      detail: input.detail,
      hint: input.hint,
    });
    expect(decoded?.fields.get('V')).toBe('FATAL');
  });

  it('is read by node-postgres (pg-protocol) as the same error', async () => {
    const msg = await parseWithPgProtocol(
      encodeErrorResponse({
        severity: 'FATAL',
        sqlstate: SqlState.cannotConnectNow,
        message: 'tenant "acme" is paused',
        detail: 'maintenance',
        hint: 'retry in a minute',
      }),
    );
    expect(msg).toMatchObject({
      name: 'error',
      severity: 'FATAL',
      code: '57P03',
      message: 'tenant "acme" is paused',
      detail: 'maintenance',
      hint: 'retry in a minute',
    });
  });

  it('replaces NUL inside text so the framing stays whole', async () => {
    const out = encodeErrorResponse({
      severity: 'FATAL',
      sqlstate: '3D000',
      message: 'db "a\0Mforged"',
      detail: '\0',
      hint: 'h\0\0',
    });
    const decoded = decodeErrorResponse(out);
    expect([...(decoded?.fields.keys() ?? [])]).toEqual(['S', 'V', 'C', 'M', 'D', 'H']);
    expect(decoded?.message).toBe('db "a\uFFFDMforged"');
    expect(decoded?.detail).toBe('\uFFFD');
    expect(decoded?.hint).toBe('h\uFFFD\uFFFD');
    expect((await parseWithPgProtocol(out)).message).toBe('db "a\uFFFDMforged"');
  });

  it('sends an invalid SQLSTATE as XX000 rather than corrupt the field', () => {
    for (const sqlstate of ['', '3d000', '3D0000', '08P0\0', 'ABCDÉ']) {
      expect(decodeErrorResponse(encodeErrorResponse({ severity: 'FATAL', sqlstate, message: 'm' }))?.sqlstate).toBe(
        'XX000',
      );
    }
  });

  it('falls back to FATAL for a severity outside the type (JavaScript callers)', () => {
    const severity = 'PANIC' as unknown as 'FATAL';
    expect(decodeErrorResponse(encodeErrorResponse({ severity, sqlstate: '08P01', message: 'm' }))?.severity).toBe(
      'FATAL',
    );
  });

  describe(`stays within ${MAX_ERROR_RESPONSE_BYTES} bytes`, () => {
    it('cuts a long message with an ellipsis', () => {
      const out = encodeErrorResponse({ severity: 'FATAL', sqlstate: '08P01', message: 'x'.repeat(5000) });
      expect(out.length).toBe(MAX_ERROR_RESPONSE_BYTES);
      const message = decodeErrorResponse(out)?.message ?? '';
      expect(message.endsWith('x\u2026')).toBe(true);
    });

    it('never splits a multi-byte character', () => {
      const out = encodeErrorResponse({ severity: 'FATAL', sqlstate: '08P01', message: '😀'.repeat(1000) });
      expect(out.length).toBeLessThanOrEqual(MAX_ERROR_RESPONSE_BYTES);
      const message = decodeErrorResponse(out)?.message ?? '';
      expect(message).not.toContain('\uFFFD');
      expect(message).toMatch(/^(😀)+…$/u);
    });

    it('keeps room for DETAIL and HINT when all three are long', () => {
      const out = encodeErrorResponse({
        severity: 'FATAL',
        sqlstate: '08P01',
        message: 'm'.repeat(2000),
        detail: 'd'.repeat(2000),
        hint: 'h'.repeat(2000),
      });
      expect(out.length).toBeLessThanOrEqual(MAX_ERROR_RESPONSE_BYTES);
      const decoded = decodeErrorResponse(out);
      expect(decoded?.message?.length).toBeGreaterThan(400);
      expect(decoded?.detail?.length).toBeGreaterThan(200);
      expect(decoded?.hint?.length).toBeGreaterThan(150);
    });

    it('gives a short message in full and the spare room to a long detail', () => {
      const decoded = decodeErrorResponse(
        encodeErrorResponse({ severity: 'FATAL', sqlstate: '08P01', message: 'short', detail: 'd'.repeat(5000), hint: 'hint' }),
      );
      expect(decoded?.message).toBe('short');
      expect(decoded?.hint).toBe('hint');
      expect(decoded?.detail?.length).toBeGreaterThan(900);
    });

    it('leaves text that fits untouched', () => {
      const message = 'y'.repeat(900);
      expect(decodeErrorResponse(encodeErrorResponse({ severity: 'ERROR', sqlstate: '08P01', message }))?.message).toBe(
        message,
      );
    });
  });
});

describe('truncateUtf8', () => {
  it.each<[string, number, string]>([
    ['abc', 3, 'abc'],
    ['abcd', 3, '\u2026'],
    ['abcdef', 5, 'ab\u2026'],
    ['ééé', 5, 'é\u2026'], // é is 2 bytes, the ellipsis 3
    ['ééé', 4, '\u2026'], // never half an é
    ['abcdef', 2, ''], // no room even for the ellipsis
  ])('%j to %i bytes', (text, max, expected) => {
    const got = truncateUtf8(text, max);
    expect(got).toBe(expected);
    expect(Buffer.byteLength(got)).toBeLessThanOrEqual(max);
  });
});

describe('decodeErrorResponse', () => {
  it('refuses anything but one well-framed ErrorResponse', () => {
    const good = encodeErrorResponse({ severity: 'FATAL', sqlstate: '08P01', message: 'm' });
    expect(decodeErrorResponse(good)).toBeDefined();
    expect(decodeErrorResponse(good.subarray(0, good.length - 1))).toBeUndefined();
    expect(decodeErrorResponse(Buffer.concat([good, Buffer.from([0])]))).toBeUndefined();
    expect(decodeErrorResponse(Buffer.from('N'))).toBeUndefined();
    expect(decodeErrorResponse(Buffer.alloc(0))).toBeUndefined();
  });
});
