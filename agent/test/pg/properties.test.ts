import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { MAX_ERROR_RESPONSE_BYTES, MAX_STARTUP_PACKET } from '../../src/pg/constants.js';
import { decodeErrorResponse, encodeErrorResponse } from '../../src/pg/error-response.js';
import { encodeCancelRequest, encodeStartupMessage } from '../../src/pg/frontend.js';
import { parseStartupOptions, splitStartupOptions } from '../../src/pg/options.js';
import { decodePreamble } from '../../src/pg/preamble.js';
import type { PreambleProblem } from '../../src/pg/preamble-types.js';
import { bytes, startup } from './bytes.js';

const PROBLEMS: ReadonlySet<PreambleProblem> = new Set<PreambleProblem>([
  'too-short',
  'too-long',
  'length-mismatch',
  'unsupported-protocol',
  'bad-request-length',
  'unterminated-parameter',
  'missing-terminator',
  'trailing-bytes',
  'empty-parameter-name',
  'duplicate-parameter',
  'missing-user',
  'invalid-encoding',
]);

/** Full-Unicode text (well-formed: no lone surrogates) without NUL. */
const text = (maxLength: number, minLength = 0) =>
  fc.string({ unit: 'binary', minLength, maxLength }).filter((s) => !s.includes('\0'));

function expectWellFormedResult(packet: Buffer): void {
  const result = decodePreamble(packet);
  expect(['startup', 'ssl-request', 'gssenc-request', 'cancel', 'invalid']).toContain(result.kind);
  if (result.kind === 'invalid') {
    expect(PROBLEMS.has(result.problem)).toBe(true);
    expect(result.message.length).toBeGreaterThan(0);
  }
}

describe('properties', { timeout: 30_000 }, () => {
  it('StartupMessage: encode -> decode gives back the parameters, in order', () => {
    fc.assert(
      fc.property(
        text(60, 1),
        fc.uniqueArray(fc.tuple(text(40, 1), text(80)), { selector: ([name]) => name, maxLength: 20 }),
        fc.integer({ min: 0, max: 0xffff }),
        (user, rest, minor) => {
          const pairs: Array<[string, string]> = [['user', user], ...rest.filter(([name]) => name !== 'user')];
          const packet = encodeStartupMessage(pairs, { major: 3, minor });
          // Agrees with the hand builder (Buffer.equals: toEqual walks large buffers slowly).
          expect(packet.equals(startup(pairs, 0x00030000 | minor))).toBe(true);
          const result = decodePreamble(packet);
          if (packet.length > MAX_STARTUP_PACKET) {
            expect(result).toMatchObject({ kind: 'invalid', problem: 'too-long' });
            return;
          }
          expect(result.kind).toBe('startup');
          if (result.kind !== 'startup') return;
          expect(result.protocol).toEqual({ major: 3, minor });
          expect([...result.params]).toEqual(pairs);
        },
      ),
      { numRuns: 250 },
    );
  });

  it('CancelRequest: encode -> decode for every key length 4..256', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -0x80000000, max: 0x7fffffff }),
        fc.uint8Array({ minLength: 4, maxLength: 256 }),
        (processId, key) => {
          expect(decodePreamble(encodeCancelRequest(processId, key))).toEqual({
            kind: 'cancel',
            processId,
            secretKey: Buffer.from(key),
          });
        },
      ),
    );
  });

  it('arbitrary bytes never make decodePreamble throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (raw) => expectWellFormedResult(Buffer.from(raw))),
      { numRuns: 2000 },
    );
  });

  it('arbitrary bodies behind a valid header never make it throw', () => {
    const code = fc.constantFrom(0x00030000, 0x00030002, 80877102, 80877103, 80877104, 0x00020000);
    const body = fc.oneof(
      fc.uint8Array({ maxLength: 300 }),
      // NUL-rich bodies reach the parameter-list paths more often than uniform bytes do.
      fc.array(fc.constantFrom(0, 0, 0x75, 0x73, 0x65, 0x72, 0xff, 0xc3, 0x80), { maxLength: 60 }).map(
        (a) => new Uint8Array(a),
      ),
    );
    const lengthSkew = fc.oneof(fc.constant(0), fc.integer({ min: -12, max: 12 }));
    fc.assert(
      fc.property(code, body, lengthSkew, (c, b, skew) => {
        const packet = bytes().int32(c).raw(b).packet(8 + b.length + skew);
        expectWellFormedResult(packet);
      }),
      { numRuns: 3000 },
    );
  });

  it('options: escaped words split back into the same words', () => {
    const escape = (word: string): string => word.replace(/[\\\s]/g, (c) => `\\${c}`);
    fc.assert(
      fc.property(fc.array(text(20, 1), { maxLength: 10 }), (words) => {
        expect(splitStartupOptions(words.map(escape).join(' '))).toEqual(words);
      }),
    );
  });

  it('options: -c name=value settings read back, values verbatim', () => {
    const name = fc.stringMatching(/^[a-z][a-z0-9_]{0,10}(\.[a-z][a-z0-9_]{0,10})?$/);
    const escape = (value: string): string => value.replace(/[\\ \t\n\v\f\r]/g, (c) => `\\${c}`);
    fc.assert(
      fc.property(fc.uniqueArray(fc.tuple(name, text(30)), { selector: ([n]) => n, maxLength: 8 }), (settings) => {
        const options = settings.map(([n, v]) => `-c ${n}=${escape(v)}`).join('  ');
        expect([...parseStartupOptions(options)]).toEqual(settings);
      }),
    );
  });

  it('ErrorResponse: always framed, within the cap, and faithful when it fits', () => {
    const anyText = fc.string({ unit: 'binary', maxLength: 1500 });
    fc.assert(
      fc.property(
        fc.constantFrom('FATAL' as const, 'ERROR' as const),
        fc.string({ maxLength: 6 }),
        anyText,
        fc.option(anyText, { nil: undefined }),
        fc.option(anyText, { nil: undefined }),
        (severity, sqlstate, message, detail, hint) => {
          const out = encodeErrorResponse({ severity, sqlstate, message, detail, hint });
          expect(out.length).toBeLessThanOrEqual(MAX_ERROR_RESPONSE_BYTES);
          const decoded = decodeErrorResponse(out);
          expect(decoded).toBeDefined();
          expect(decoded?.severity).toBe(severity);
          expect(decoded?.sqlstate).toMatch(/^[0-9A-Z]{5}$/);
          const clean = message.replaceAll('\0', '\uFFFD');
          if (Buffer.byteLength(clean) <= 400 && (detail ?? '').length + (hint ?? '').length < 100) {
            expect(decoded?.message).toBe(clean);
          } else {
            expect(clean.startsWith((decoded?.message ?? '').replace(/\u2026$/, ''))).toBe(true);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
