import { describe, expect, it } from 'vitest';

import { decodePreamble } from '../../src/pg/preamble.js';
import type { DecodedPreamble, PreambleProblem } from '../../src/pg/preamble-types.js';
import { bytes, hex, startup } from './bytes.js';

// Captured from psql 15.18 (Debian) on a terminal:
//   psql 'host=127.0.0.1 port=<port> user=alice dbname=app sslmode=prefer'
// after the listener answered its SSLRequest with 'N'. On a tty psql adds client_encoding
// (resolved from the locale, here UTF8); see psql-capture.test.ts for the live capture.
const PSQL15_TTY_STARTUP = hex(`
  0000004c 00030000
  75736572 00 616c696365 00
  6461746162617365 00 617070 00
  6170706c69636174696f6e5f6e616d65 00 7073716c 00
  636c69656e745f656e636f64696e67 00 55544638 00
  00`);

// Same psql with options='-c pgroute.tenant=acme' and stdout not a tty (no client_encoding).
const PSQL15_OPTIONS_STARTUP = hex(`
  00000056 00030000
  75736572 00 616c696365 00
  6461746162617365 00 617070 00
  6f7074696f6e73 00 2d63207067726f7574652e74656e616e743d61636d65 00
  6170706c69636174696f6e5f6e616d65 00 7073716c 00
  00`);

function problemOf(result: DecodedPreamble): PreambleProblem | undefined {
  return result.kind === 'invalid' ? result.problem : undefined;
}

function expectProblem(packet: Buffer, problem: PreambleProblem): string {
  const result = decodePreamble(packet);
  expect(result).toMatchObject({ kind: 'invalid', problem });
  return result.kind === 'invalid' ? result.message : '';
}

function cancel(keyLength: number, processId = 4242): Buffer {
  const key = Buffer.alloc(keyLength, 0xab);
  return bytes().int32(80877102).int32(processId).raw(key).packet();
}

describe('decodePreamble: StartupMessage', () => {
  it('decodes a real psql 15 startup packet, parameters in the order sent', () => {
    const result = decodePreamble(PSQL15_TTY_STARTUP);
    expect(result.kind).toBe('startup');
    if (result.kind !== 'startup') return;
    expect(result.protocol).toEqual({ major: 3, minor: 0 });
    expect(result.params).toBeInstanceOf(Map);
    expect([...result.params]).toEqual([
      ['user', 'alice'],
      ['database', 'app'],
      ['application_name', 'psql'],
      ['client_encoding', 'UTF8'],
    ]);
  });

  it('the hand-built packet is byte-identical to the psql capture', () => {
    const built = startup([
      ['user', 'alice'],
      ['database', 'app'],
      ['application_name', 'psql'],
      ['client_encoding', 'UTF8'],
    ]);
    expect(built.toString('hex')).toBe(PSQL15_TTY_STARTUP.toString('hex'));
  });

  it('keeps the options parameter verbatim', () => {
    const result = decodePreamble(PSQL15_OPTIONS_STARTUP);
    expect(result).toMatchObject({ kind: 'startup' });
    if (result.kind !== 'startup') return;
    expect(result.params.get('options')).toBe('-c pgroute.tenant=acme');
  });

  it('accepts protocol 3.2 (00 03 00 02) and reports the minor', () => {
    const packet = startup([['user', 'u'], ['database', 'd'], ['_pq_.some_extension', 'on']], 0x00030002);
    expect(packet.subarray(4, 8)).toEqual(hex('00 03 00 02'));
    expect(decodePreamble(packet)).toEqual({
      kind: 'startup',
      protocol: { major: 3, minor: 2 },
      params: new Map([['user', 'u'], ['database', 'd'], ['_pq_.some_extension', 'on']]),
    });
  });

  it('accepts any 3.x minor: the backend negotiates minors', () => {
    const result = decodePreamble(startup([['user', 'u']], 0x0003ffff));
    expect(result).toMatchObject({ kind: 'startup', protocol: { major: 3, minor: 65535 } });
  });

  it('keeps empty values, spaces, "=" and non-ASCII text', () => {
    const result = decodePreamble(
      startup([['user', 'ünïcødé 😀'], ['options', ''], ['search_path', 'a = b, "c d"']]),
    );
    expect(result.kind).toBe('startup');
    if (result.kind !== 'startup') return;
    expect(result.params.get('user')).toBe('ünïcødé 😀');
    expect(result.params.get('options')).toBe('');
    expect(result.params.get('search_path')).toBe('a = b, "c d"');
  });

  it('keeps a leading byte order mark instead of silently dropping it', () => {
    const result = decodePreamble(startup([['user', '\uFEFFalice']]));
    expect(result).toMatchObject({ kind: 'startup' });
    if (result.kind === 'startup') expect(result.params.get('user')).toBe('\uFEFFalice');
  });

  it('accepts exactly 10000 bytes and refuses 10001', () => {
    const overhead = startup([['user', '']]).length; // header + "user\0" + "\0" + final "\0"
    const exact = startup([['user', 'x'.repeat(10000 - overhead)]]);
    expect(exact.length).toBe(10000);
    expect(decodePreamble(exact).kind).toBe('startup');

    const over = startup([['user', 'x'.repeat(10001 - overhead)]]);
    expect(over.length).toBe(10001);
    expect(expectProblem(over, 'too-long')).toBe('startup packet is 10001 bytes; the limit is 10000');
  });
});

describe('decodePreamble: negotiation and cancel requests', () => {
  it('decodes SSLRequest 00 00 00 08 04 d2 16 2f', () => {
    expect(decodePreamble(hex('00 00 00 08 04 d2 16 2f'))).toEqual({ kind: 'ssl-request' });
  });

  it('decodes GSSENCRequest 00 00 00 08 04 d2 16 30', () => {
    expect(decodePreamble(hex('00 00 00 08 04 d2 16 30'))).toEqual({ kind: 'gssenc-request' });
  });

  it('decodes a protocol 3.0 CancelRequest with a 4-byte key', () => {
    const packet = hex('00 00 00 10 04 d2 16 2e 00 00 30 39 de ad be ef');
    expect(decodePreamble(packet)).toEqual({
      kind: 'cancel',
      processId: 12345,
      secretKey: hex('de ad be ef'),
    });
  });

  it.each([32, 256])('decodes a protocol 3.2 CancelRequest with a %i-byte key', (keyLength) => {
    const result = decodePreamble(cancel(keyLength));
    expect(result).toMatchObject({ kind: 'cancel', processId: 4242 });
    if (result.kind === 'cancel') expect(result.secretKey).toEqual(Buffer.alloc(keyLength, 0xab));
  });

  it('identifies a cancel by its code, not by a length of 16', () => {
    // 16 bytes with the 3.0 protocol code is a StartupMessage, not a cancel...
    const sixteen = startup([['user', 'a']]);
    expect(sixteen.length).toBe(16);
    expect(decodePreamble(sixteen)).toMatchObject({ kind: 'startup', params: new Map([['user', 'a']]) });
    // ...and a cancel of another length is still a cancel.
    expect(decodePreamble(cancel(20))).toMatchObject({ kind: 'cancel' });
  });

  it('copies the secret key out of the packet buffer', () => {
    const packet = cancel(4);
    const result = decodePreamble(packet);
    packet.fill(0);
    expect(result).toMatchObject({ kind: 'cancel', processId: 4242 });
    if (result.kind === 'cancel') expect(result.secretKey).toEqual(Buffer.alloc(4, 0xab));
  });
});

describe('decodePreamble: every problem', () => {
  describe('too-short', () => {
    it('empty buffer', () => {
      expect(expectProblem(Buffer.alloc(0), 'too-short')).toBe(
        'first packet is 0 bytes; a PostgreSQL connection starts with at least 8',
      );
    });
    it('fewer than 4 bytes', () => {
      expectProblem(hex('00 00 00'), 'too-short');
    });
    it('a declared length below 8', () => {
      expect(expectProblem(hex('00 00 00 04'), 'too-short')).toContain('declares a length of 4 bytes');
      expectProblem(hex('00 00 00 00 04 d2 16 2f'), 'too-short');
    });
    it('fewer bytes than declared', () => {
      expect(expectProblem(hex('00 00 00 08 04 d2 16'), 'too-short')).toBe(
        'first packet declares 8 bytes but only 7 arrived; the client stopped mid-packet',
      );
      expectProblem(startup([['user', 'alice']]).subarray(0, 12), 'too-short');
    });
  });

  describe('too-long', () => {
    it('names the size and the limit', () => {
      expect(expectProblem(bytes().int32(196608).packet(12000), 'too-long')).toBe(
        'startup packet is 12000 bytes; the limit is 10000',
      );
    });
    it('judges the declared length even when only the header arrived', () => {
      expectProblem(hex('00 00 27 11'), 'too-long'); // 10001
    });
    it('reads the length unsigned (ff ff ff ff is 4294967295, not -1)', () => {
      expect(expectProblem(hex('ff ff ff ff 00 03 00 00'), 'too-long')).toContain('4294967295 bytes');
    });
    it('an HTTP request on the PostgreSQL port', () => {
      expectProblem(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), 'too-long');
    });
  });

  it('length-mismatch: more bytes than declared', () => {
    const sslThenMore = Buffer.concat([hex('00 00 00 08 04 d2 16 2f'), hex('00')]);
    expect(expectProblem(sslThenMore, 'length-mismatch')).toBe(
      'first packet declares 8 bytes but 9 arrived; a client must wait for the server before sending more',
    );
  });

  describe('unsupported-protocol', () => {
    it.each([
      ['2.0', 0x00020000],
      ['4.0', 0x00040000],
      ['0.0', 0x00000000],
    ])('protocol %s', (version, code) => {
      expect(expectProblem(startup([['user', 'u']], code), 'unsupported-protocol')).toContain(
        `unsupported frontend protocol ${version}`,
      );
    });
    it.each([
      ['1234.5677', 80877101],
      ['1234.5681', 80877105],
    ])('unknown request code %s', (version, code) => {
      expect(expectProblem(bytes().int32(code).packet(), 'unsupported-protocol')).toContain(
        `unknown request code ${version}`,
      );
    });
    it('a direct TLS ClientHello (sslnegotiation=direct)', () => {
      expect(expectProblem(hex('16 03 01 02 00 01 00 01 fc 03 03'), 'unsupported-protocol')).toContain(
        'sslnegotiation=postgres',
      );
    });
  });

  describe('bad-request-length', () => {
    it('SSLRequest longer than 8 bytes', () => {
      expect(expectProblem(hex('00 00 00 0c 04 d2 16 2f 00 00 00 00'), 'bad-request-length')).toBe(
        'SSLRequest is 12 bytes; it must be exactly 8',
      );
    });
    it('GSSENCRequest longer than 8 bytes', () => {
      expectProblem(hex('00 00 00 09 04 d2 16 30 00'), 'bad-request-length');
    });
    it('CancelRequest with a 257-byte key', () => {
      expect(expectProblem(cancel(257), 'bad-request-length')).toBe(
        'CancelRequest secret key is 257 bytes; the key must be 4 to 256 bytes',
      );
    });
    it('CancelRequest with a 3-byte or empty key', () => {
      expectProblem(cancel(3), 'bad-request-length');
      expectProblem(cancel(0), 'bad-request-length');
    });
    it('CancelRequest too short for its process id', () => {
      expect(expectProblem(hex('00 00 00 08 04 d2 16 2e'), 'bad-request-length')).toContain(
        'too short to hold a process id',
      );
    });
  });

  describe('unterminated-parameter', () => {
    it('a name running to the end', () => {
      const packet = bytes().int32(196608).cstring('user').cstring('alice').text('database').packet();
      expect(expectProblem(packet, 'unterminated-parameter')).toContain('name at byte 19');
    });
    it('a value running to the end', () => {
      const packet = bytes().int32(196608).cstring('user').text('alice').packet();
      expect(expectProblem(packet, 'unterminated-parameter')).toContain('value of startup parameter "user"');
    });
    it('a name with no value at all', () => {
      expectProblem(bytes().int32(196608).cstring('user').packet(), 'unterminated-parameter');
    });
  });

  describe('missing-terminator', () => {
    it('the list ends after a value without the final \\0', () => {
      const packet = bytes().int32(196608).cstring('user').cstring('alice').packet();
      expect(expectProblem(packet, 'missing-terminator')).toContain('without the final \\0');
    });
    it('a startup with no body at all', () => {
      expectProblem(hex('00 00 00 08 00 03 00 00'), 'missing-terminator');
    });
  });

  describe('trailing-bytes', () => {
    it('garbage after the final \\0', () => {
      const packet = bytes().int32(196608).cstring('user').cstring('alice').byte(0).text('xyz').packet();
      expect(expectProblem(packet, 'trailing-bytes')).toContain('3 unexpected bytes');
    });
    it('an extra \\0 after the final \\0', () => {
      const packet = bytes().int32(196608).cstring('user').cstring('alice').byte(0, 0).packet();
      expectProblem(packet, 'trailing-bytes');
    });
  });

  it('empty-parameter-name: a \\0 where a name should be, then value\\0 and more', () => {
    // What a client emits for parameters {user: 'alice', '': 'x'}.
    const packet = bytes().int32(196608).cstring('user').cstring('alice').cstring('').cstring('x').byte(0).packet();
    expect(expectProblem(packet, 'empty-parameter-name')).toContain('empty name at byte 19');
  });

  it('duplicate-parameter', () => {
    const packet = startup([['user', 'alice'], ['database', 'a'], ['user', 'mallory']]);
    expect(expectProblem(packet, 'duplicate-parameter')).toBe(
      'startup parameter "user" is sent twice; send it once',
    );
  });

  describe('missing-user', () => {
    it('no user parameter', () => {
      expect(expectProblem(startup([['database', 'app']]), 'missing-user')).toContain('set the user');
    });
    it('an empty user, which PostgreSQL also refuses', () => {
      expectProblem(startup([['user', ''], ['database', 'app']]), 'missing-user');
    });
    it('no parameters at all', () => {
      expectProblem(hex('00 00 00 09 00 03 00 00 00'), 'missing-user');
    });
  });

  describe('invalid-encoding', () => {
    const withValue = (value: number[]): Buffer =>
      bytes().int32(196608).cstring('user').byte(...value, 0).byte(0).packet();

    it.each([
      ['a lone 0xff', [0xff]],
      ['a broken 2-byte sequence', [0xc3, 0x28]],
      ['an overlong "/"', [0xc0, 0xaf]],
      ['an encoded surrogate', [0xed, 0xa0, 0x80]],
      ['Latin-1 "é"', [0x63, 0x61, 0x66, 0xe9]],
      ['a truncated 4-byte sequence', [0xf0, 0x9f, 0x98]],
    ])('value with %s', (_what, value) => {
      expect(expectProblem(withValue(value), 'invalid-encoding')).toContain('is not valid UTF-8');
    });

    it('a name that is not UTF-8', () => {
      const packet = bytes().int32(196608).cstring('user').cstring('u').byte(0xfe, 0).cstring('v').byte(0).packet();
      expect(expectProblem(packet, 'invalid-encoding')).toBe(
        'startup parameter name at byte 15 is not valid UTF-8',
      );
    });
  });

  it('reaches every PreambleProblem', () => {
    const all: Record<PreambleProblem, Buffer> = {
      'too-short': Buffer.alloc(0),
      'too-long': hex('00 00 27 11'),
      'length-mismatch': hex('00 00 00 08 04 d2 16 2f 00'),
      'unsupported-protocol': startup([['user', 'u']], 0x00020000),
      'bad-request-length': cancel(257),
      'unterminated-parameter': bytes().int32(196608).text('user').packet(),
      'missing-terminator': bytes().int32(196608).cstring('user').cstring('u').packet(),
      'trailing-bytes': bytes().int32(196608).cstring('user').cstring('u').byte(0, 1).packet(),
      'empty-parameter-name': bytes().int32(196608).cstring('user').cstring('u').cstring('').cstring('x').byte(0).packet(),
      'duplicate-parameter': startup([['user', 'u'], ['user', 'u']]),
      'missing-user': startup([]),
      'invalid-encoding': bytes().int32(196608).cstring('user').byte(0xff, 0, 0).packet(),
    };
    for (const [problem, packet] of Object.entries(all)) {
      const result = decodePreamble(packet);
      expect(problemOf(result), problem).toBe(problem);
      if (result.kind === 'invalid') expect(result.message.length).toBeGreaterThan(10);
    }
  });

  it('quotes hostile names safely and briefly in messages', () => {
    const name = `evil\n${'x'.repeat(500)}`;
    const message = expectProblem(startup([['user', 'u'], [name, '1'], [name, '2']]), 'duplicate-parameter');
    expect(message).not.toContain('\n');
    expect(message.length).toBeLessThan(160);
  });
});
